"""Fleet view over a tidy frame: per-metric statistics, outlier GPUs and hosts, slowest GPU per host.

Values are compared only within one (case key, device model) group. A GPU's value for a case is
the median over its runs (GPU identity = UUID, else host#index); a host's value is the median
over its GPUs. Outliers, by rule:
  robust-z   robust z-score 0.6745 (x - median) / MAD, flagged when |z| >= threshold (default
             3.5, Iglewicz and Hoaglin); groups of fewer than 3 are never flagged; when MAD is 0
             the mean absolute deviation x 1.2533 stands in; and the spread used is never below
             1 % of the median (a run-to-run noise floor: in a very uniform fleet a GPU 1 % off
             is not an outlier, however many MADs that is).
  pct-below  flagged when the value is at least `threshold` percent (default 10) below the
             group median; groups of fewer than 2 are never flagged.
A GPU seen under several hosts or device indices (one UUID) is shown with the smallest of them.
The slowest GPU of a host is the one with the lowest relative speed: the median, over its
cases, of its value divided by the fleet median for that case and model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

METHODS = ("robust-z", "pct-below")
DEFAULT_THRESHOLD = {"robust-z": 3.5, "pct-below": 10.0}
MIN_GROUP = {"robust-z": 3, "pct-below": 2}
GROUP = ["key", "device_name", "rate_unit"]
MAD_TO_SIGMA = 0.6745
MEANAD_TO_SIGMA = 1.253314
MIN_RELATIVE_SPREAD = 0.01  # robust-z spread floor, as a fraction of the group median


@dataclass(frozen=True)
class OutlierRule:
    method: str = "robust-z"
    threshold: float = DEFAULT_THRESHOLD["robust-z"]

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown outlier method {self.method!r}")
        if not self.threshold > 0:
            raise ValueError("outlier threshold must be positive")

    def describe(self) -> str:
        if self.method == "robust-z":
            return f"robust z-score |z| >= {self.threshold:g}"
        return f"{self.threshold:g}% or more below the fleet median"


@dataclass(frozen=True)
class FleetAnalysis:
    rule: OutlierRule
    rows: "pd.DataFrame"  # the tidy frame + fleet_median, ratio_to_median, robust_z, pct_below_median, outlier
    summary: "pd.DataFrame"  # per key + device model: count, gpus, hosts, median, mad, min, max
    gpus: "pd.DataFrame"  # per key + model + GPU: value and outlier test
    hosts: "pd.DataFrame"  # per key + model + host: value and outlier test
    slowest: "pd.DataFrame"  # per host: its slowest GPU

    @property
    def measurement_count(self) -> int:
        return len(self.rows)

    @property
    def gpu_count(self) -> int:
        return int(self.rows["gpu"].nunique())

    @property
    def host_count(self) -> int:
        return int(self.rows["host"].nunique())

    @property
    def slowest_rows(self) -> int:
        """Rows of the whole slowest-GPU table (`slowest` may hold only the first of them)."""
        return len(self.slowest)

    @property
    def gpu_outliers(self) -> "pd.DataFrame":
        """One row per outlier GPU: cases flagged, and its worst case."""
        return _per_unit(self.gpus, ["host", "gpu", "device_index", "device_name"])

    @property
    def host_outliers(self) -> "pd.DataFrame":
        """One row per outlier host: cases flagged, and its worst case."""
        return _per_unit(self.hosts, ["host", "device_name"])


def analyze(frame: "pd.DataFrame", rule: OutlierRule = OutlierRule()) -> FleetAnalysis:
    import pandas as pd

    ok = frame[(frame["status"] == "ok") & frame["rate"].notna() & frame["device_name"].notna()]
    gpus = (
        ok.groupby(GROUP + ["gpu"], sort=False, observed=True)
        .agg(host=("host", "min"), device_index=("device_index", "min"),
             runs=("rate", "size"), value=("rate", "median"))
        .reset_index()
    )
    gpus = _flag(gpus, rule)
    hosts = (
        gpus.groupby(GROUP + ["host"], sort=False, observed=True)
        .agg(gpus=("gpu", "size"), value=("value", "median"))
        .reset_index()
    )
    hosts = _flag(hosts, rule)
    summary = _summary(ok, gpus, hosts)
    rows = frame.merge(
        gpus[GROUP + ["gpu", "fleet_median", "robust_z", "pct_below_median", "outlier"]],
        on=GROUP + ["gpu"], how="left",
    )
    rows["ratio_to_median"] = rows["rate"] / rows["fleet_median"]
    rows["outlier"] = rows["outlier"].astype("boolean").fillna(False).astype(bool)
    slowest = _slowest(gpus) if len(gpus) else pd.DataFrame(columns=SLOWEST_COLUMNS)
    return FleetAnalysis(rule, rows, summary, gpus, hosts, slowest)


def _summary(ok: "pd.DataFrame", gpus: "pd.DataFrame", hosts: "pd.DataFrame") -> "pd.DataFrame":
    """Per key + model: measurements, GPUs (rows of `gpus`), hosts (rows of `hosts`: the hosts
    of its GPUs), median, MAD, min, max of the rates."""
    grouped = ok.groupby(GROUP, sort=False, observed=True)
    out = grouped.agg(count=("rate", "size"), median=("rate", "median"), min=("rate", "min"), max=("rate", "max"))
    out["gpus"] = gpus.groupby(GROUP, sort=False).size()
    out["hosts"] = hosts.groupby(GROUP, sort=False).size()
    med = grouped["rate"].transform("median")
    out["mad"] = (ok["rate"] - med).abs().groupby([ok[c] for c in GROUP], sort=False).median()
    return out.reset_index()[GROUP + ["count", "gpus", "hosts", "median", "mad", "min", "max"]]


def _flag(table: "pd.DataFrame", rule: OutlierRule) -> "pd.DataFrame":
    """Add fleet_median, mad, robust_z, pct_below_median, direction and outlier to a value table."""
    import numpy as np

    keys = [table[c] for c in GROUP]
    grouped = table.groupby(keys, sort=False)["value"]
    median = grouped.transform("median")
    deviation = table["value"] - median
    mad = deviation.abs().groupby(keys, sort=False).transform("median")
    mean_ad = deviation.abs().groupby(keys, sort=False).transform("mean")
    size = grouped.transform("size")
    scale = np.where(mad > 0, mad / MAD_TO_SIGMA, mean_ad * MEANAD_TO_SIGMA)
    scale = np.maximum(scale, median.abs() * MIN_RELATIVE_SPREAD)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, deviation / scale, 0.0)
    z = np.where(size >= MIN_GROUP["robust-z"], z, np.nan)
    pct_below = (median - table["value"]) / median * 100.0
    out = table.copy()
    out["fleet_median"] = median
    out["mad"] = mad
    out["robust_z"] = z
    out["pct_below_median"] = pct_below
    if rule.method == "robust-z":
        flagged = np.abs(np.nan_to_num(z, nan=0.0)) >= rule.threshold
    else:
        flagged = (pct_below >= rule.threshold) & (size >= MIN_GROUP["pct-below"])
    out["outlier"] = np.asarray(flagged, dtype=bool)
    out["direction"] = np.where(deviation < 0, "slow", np.where(deviation > 0, "fast", ""))
    return out


SLOWEST_COLUMNS = ["host", "gpu", "device_index", "device_name", "gpus_on_host",
                   "relative_speed", "worst_key", "worst_ratio"]


def _slowest(gpus: "pd.DataFrame") -> "pd.DataFrame":
    import pandas as pd

    table = gpus.assign(ratio=gpus["value"] / gpus["fleet_median"])
    table = table[table["ratio"].notna()]  # a fleet median of 0 gives no ratio (0/0): nothing to rank
    if table.empty:
        return pd.DataFrame(columns=SLOWEST_COLUMNS)
    per_gpu = (
        table.groupby(["host", "gpu"], sort=False)
        .agg(device_index=("device_index", "min"), device_name=("device_name", "min"),
             relative_speed=("ratio", "median"))
        .reset_index()
    )
    worst = table.loc[table.groupby(["host", "gpu"], sort=False)["ratio"].idxmin(),
                      ["host", "gpu", "key", "ratio"]]
    worst = worst.rename(columns={"key": "worst_key", "ratio": "worst_ratio"})
    per_gpu = per_gpu.merge(worst, on=["host", "gpu"], how="left")
    per_gpu["gpus_on_host"] = per_gpu.groupby("host")["gpu"].transform("size")
    pick = per_gpu.loc[per_gpu.groupby("host", sort=False)["relative_speed"].idxmin()]
    return pick.sort_values(["relative_speed", "host"]).reset_index(drop=True)[SLOWEST_COLUMNS]


def _per_unit(table: "pd.DataFrame", unit: list[str]) -> "pd.DataFrame":
    """Collapse per-case outlier rows to one row per GPU or host, worst case first."""
    cases = table.groupby(unit, sort=False, dropna=False)["key"].size().rename("cases")
    flagged = table[table["outlier"]]
    if flagged.empty:
        return flagged.assign(cases=[], flagged_cases=[])
    worst = flagged.loc[flagged.groupby(unit, sort=False, dropna=False)["pct_below_median"].idxmax()]
    counts = flagged.groupby(unit, sort=False, dropna=False)["key"].size().rename("flagged_cases")
    out = worst.merge(counts.reset_index(), on=unit).merge(cases.reset_index(), on=unit)
    return out.sort_values("pct_below_median", ascending=False).reset_index(drop=True)
