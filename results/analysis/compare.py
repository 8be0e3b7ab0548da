"""Align two or more runs by case key and classify each change. Returns data, never strings.

One row per (case key, device slot) of each CURRENT file against BASE:
  improved / regressed  ratio of medians beyond `factor` and the samples differ significantly
  noisy                 ratio beyond `factor` but the difference is not significant
  unchanged             ratio within [1/factor, factor] (or not measured on either side, unless
                        the current side newly failed: that is `missing`)
  new / missing         measured on one side only (absent, skipped or failed on the other)
  incomparable          method version, precision, device model or counting convention differ
Rates are "higher is better" (flop/s, op/s, byte/s), so ratio = current / baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import Any, Iterable, Mapping, Sequence

from results.analysis.identity import Slot, device_of, model_name, slot, slot_label
from results.files.schema import DeviceInfo, Measurement, RunResult
from results.analysis.significance import DEFAULT_ALPHA, assess
from results.analysis.stats import rates_from_times

CHANGES = ("improved", "regressed", "unchanged", "noisy", "new", "missing", "incomparable")
DEFAULT_FACTOR = 1.05
CLOCK_DIFF_FRACTION = 0.02  # measured SM clocks differing by more than this are context

# (field, label) pairs shown when they differ between the files.
RUN_CONTEXT = (
    ("driver", "driver"), ("cuda", "CUDA"), ("torch", "torch"), ("nccl", "NCCL"),
    ("python", "Python"), ("harness_version", "tppbench"), ("mode", "mode"),
    ("backend", "backend"), ("os", "OS"), ("cpu_model", "CPU"), ("world_size", "world size"),
)
DEVICE_CONTEXT = (
    ("name", "device"), ("power_limit_w", "power limit (W)"),
    ("sm_clock_max_mhz", "max SM clock (MHz)"), ("sm_clock_app_mhz", "application SM clock (MHz)"),
    ("mem_clock_max_mhz", "max memory clock (MHz)"),
    ("mem_clock_app_mhz", "application memory clock (MHz)"), ("ecc_mode", "ECC"),
    ("mig_mode", "MIG"), ("pcie_gen_current", "PCIe generation"),
    ("pcie_width_current", "PCIe width"), ("threads", "CPU threads"),
)


@dataclass(frozen=True)
class Named:
    """A loaded result file and where it came from (a path, or `ref:<file>`)."""

    source: str
    result: RunResult


@dataclass(frozen=True)
class SideInfo:
    source: str
    host: str
    started_utc: str
    label: str | None
    devices: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "host": self.host, "started_utc": self.started_utc,
                "label": self.label, "devices": list(self.devices)}


@dataclass(frozen=True)
class ContextDifference:
    field: str  # "driver", "device.power_limit_w", "env.NCCL_ALGO", "telemetry.sm_clock_mhz"
    label: str  # in words, with the device slot when per device
    baseline: Any
    current: Any
    current_source: str

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "label": self.label, "baseline": self.baseline,
                "current": self.current, "current_source": self.current_source}


@dataclass(frozen=True)
class ThrottledCase:
    side: str  # "baseline" | "current"
    source: str
    key: str
    device: str  # slot label

    def to_dict(self) -> dict[str, Any]:
        return {"side": self.side, "source": self.source, "key": self.key, "device": self.device}


@dataclass(frozen=True)
class Row:
    key: str
    device: str  # slot label, "" when the runs have a single device
    change: str  # one of CHANGES
    ratio: float | None  # current median / baseline median
    baseline_rate: float | None  # per second, in rate_unit
    current_rate: float | None
    rate_unit: str  # "flop/s" | "op/s" | "byte/s"
    test: str | None  # significance method, when one ran
    p_value: float | None
    reason: str  # why this classification, in words
    baseline_n: int
    current_n: int
    baseline_flags: tuple[str, ...]
    current_flags: tuple[str, ...]
    current_source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key, "device": self.device, "change": self.change, "ratio": self.ratio,
            "baseline_rate": self.baseline_rate, "current_rate": self.current_rate,
            "rate_unit": self.rate_unit, "test": self.test, "p_value": self.p_value,
            "reason": self.reason, "baseline_n": self.baseline_n, "current_n": self.current_n,
            "baseline_flags": list(self.baseline_flags), "current_flags": list(self.current_flags),
            "current": self.current_source,
        }


@dataclass(frozen=True)
class Comparison:
    baseline: SideInfo
    currents: tuple[SideInfo, ...]
    factor: float
    alpha: float
    differences: tuple[ContextDifference, ...]
    throttled: tuple[ThrottledCase, ...]
    rows: tuple[Row, ...]

    def counts(self) -> dict[str, int]:
        out = {c: 0 for c in CHANGES}
        for row in self.rows:
            out[row.change] += 1
        return out

    def any_of(self, changes: Iterable[str]) -> bool:
        wanted = set(changes)
        return any(row.change in wanted for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "alpha": self.alpha,
            "baseline": self.baseline.to_dict(),
            "currents": [c.to_dict() for c in self.currents],
            "context": {
                "differences": [d.to_dict() for d in self.differences],
                "throttled": [t.to_dict() for t in self.throttled],
            },
            "rows": [r.to_dict() for r in self.rows],
            "counts": self.counts(),
        }


def compare(
    baseline: Named,
    currents: Sequence[Named],
    *,
    factor: float = DEFAULT_FACTOR,
    alpha: float = DEFAULT_ALPHA,
) -> Comparison:
    """Compare every CURRENT run with BASE. `factor` > 1 is the ratio that counts as a change."""
    if factor <= 1.0:
        raise ValueError("factor must be greater than 1")
    rows: list[Row] = []
    differences: list[ContextDifference] = []
    throttled: list[ThrottledCase] = list(_throttled("baseline", baseline))
    for current in currents:
        rows.extend(_rows(baseline, current, factor, alpha))
        differences.extend(_differences(baseline, current))
        throttled.extend(_throttled("current", current))
    return Comparison(
        baseline=_side(baseline), currents=tuple(_side(c) for c in currents), factor=factor,
        alpha=alpha, differences=tuple(differences), throttled=tuple(throttled), rows=tuple(rows),
    )


# --------------------------------------------------------------------------- alignment


def _index(result: RunResult) -> dict[tuple[str, Slot], Measurement]:
    out: dict[tuple[str, Slot], Measurement] = {}
    for m in result.measurements:
        out.setdefault((m.key, slot(m)), m)
    return out


def _slot_map(base_slots: set[Slot], cur_slots: set[Slot]) -> dict[Slot, Slot]:
    """current slot -> baseline slot. One baseline device serves every current device."""
    if len(base_slots) == 1 and base_slots != cur_slots:
        (only,) = base_slots
        return {s: only for s in cur_slots}
    return {s: s for s in cur_slots if s in base_slots}


def _rows(baseline: Named, current: Named, factor: float, alpha: float) -> list[Row]:
    base_index = _index(baseline.result)
    cur_index = _index(current.result)
    base_slots = {s for _, s in base_index}
    cur_slots = {s for _, s in cur_index}
    mapping = _slot_map(base_slots, cur_slots)
    show_slot = len(cur_slots | base_slots) > 1
    rows: list[Row] = []
    used: set[tuple[str, Slot]] = set()
    for (key, cslot), cur in cur_index.items():
        bslot = mapping.get(cslot)
        base = base_index.get((key, bslot)) if bslot is not None else None
        if base is not None:
            used.add((key, bslot))
        label = slot_label(cslot) if show_slot else ""
        rows.append(_classify(key, label, baseline, base, current, cur, factor, alpha))
    for (key, bslot), base in base_index.items():
        if (key, bslot) in used:
            continue
        label = slot_label(bslot) if show_slot else ""
        rows.append(_classify(key, label, baseline, base, current, None, factor, alpha))
    return rows


# --------------------------------------------------------------------------- classification


def _classify(
    key: str, device: str, baseline: Named, base: Measurement | None, current: Named,
    cur: Measurement | None, factor: float, alpha: float,
) -> Row:
    def row(change: str, reason: str, **extra: Any) -> Row:
        unit = (cur or base).unit  # type: ignore[union-attr]
        return Row(
            key=key, device=device, change=change, ratio=extra.get("ratio"),
            baseline_rate=base.rate if base is not None else None,
            current_rate=cur.rate if cur is not None else None, rate_unit=f"{unit}/s",
            test=extra.get("test"), p_value=extra.get("p_value"), reason=reason,
            baseline_n=len(base.times_s) if base is not None else 0,
            current_n=len(cur.times_s) if cur is not None else 0,
            baseline_flags=tuple(base.flags) if base is not None else (),
            current_flags=tuple(cur.flags) if cur is not None else (),
            current_source=current.source,
        )

    base_ok = base is not None and base.status == "ok"
    cur_ok = cur is not None and cur.status == "ok"
    if not base_ok and not cur_ok:
        if base is None:
            return row("new", f"not in baseline; current {cur.status}: {cur.reason}")  # type: ignore[union-attr]
        if cur is None:
            return row("missing", f"not in current; baseline {base.status}: {base.reason}")
        if cur.status == "error" and base.status != "error":  # a new failure must not hide as unchanged
            return row("missing", f"current error (baseline {base.status}): {cur.reason}")
        return row("unchanged", f"not measured on either side ({base.status} / {cur.status}): {cur.reason}")
    if not base_ok:
        why = "not in baseline" if base is None else f"baseline {base.status}: {base.reason}"
        return row("new", why)
    if not cur_ok:
        why = "not in current" if cur is None else f"current {cur.status}: {cur.reason}"
        return row("missing", why)
    assert base is not None and cur is not None
    mismatch = _mismatch(baseline, base, current, cur)
    if mismatch:
        return row("incomparable", mismatch)
    if not base.rate or base.rate <= 0:
        return row("incomparable", "baseline rate is zero")
    ratio = cur.rate / base.rate  # type: ignore[operator]
    if 1.0 / factor <= ratio <= factor:
        return row("unchanged", f"within x{factor:g}", ratio=ratio)
    sig = assess(
        rates_from_times(base.work_per_call, base.times_s),
        rates_from_times(cur.work_per_call, cur.times_s),
        baseline_stats=base.stats, current_stats=cur.stats, alpha=alpha,
    )
    common = dict(ratio=ratio, test=sig.method, p_value=sig.p_value)
    if not sig.significant:
        return row("noisy", f"beyond x{factor:g} but not significant ({sig.detail})", **common)
    change = "improved" if ratio > 1 else "regressed"
    return row(change, f"beyond x{factor:g} and significant ({sig.detail})", **common)


def _mismatch(baseline: Named, base: Measurement, current: Named, cur: Measurement) -> str:
    if base.method_version != cur.method_version:
        return f"method version {base.method_version} -> {cur.method_version}"
    if base.precision != cur.precision:
        return f"precision {base.precision} -> {cur.precision}"
    if base.unit != cur.unit or base.convention != cur.convention:
        return f"counting differs: {base.unit} {base.convention!r} -> {cur.unit} {cur.convention!r}"
    b_dev = device_of(baseline.result, base)
    c_dev = device_of(current.result, cur)
    if b_dev is not None and c_dev is not None and model_name(b_dev) != model_name(c_dev):
        return f"device model {b_dev.name} -> {c_dev.name}"
    return ""


# --------------------------------------------------------------------------- context


def _side(named: Named) -> SideInfo:
    run = named.result.run
    return SideInfo(
        source=named.source, host=run.host, started_utc=run.started_utc, label=run.label,
        devices=tuple(d.name for d in named.result.devices),
    )


def _device_pairs(base: RunResult, cur: RunResult) -> list[tuple[DeviceInfo, DeviceInfo]]:
    if len(base.devices) == 1:
        return [(base.devices[0], d) for d in cur.devices]
    by_index = {d.index: d for d in base.devices}
    return [(by_index[d.index], d) for d in cur.devices if d.index in by_index]


def _differences(baseline: Named, current: Named) -> list[ContextDifference]:
    base, cur = baseline.result, current.result
    out: list[ContextDifference] = []

    def add(field: str, label: str, b: Any, c: Any) -> None:
        if b != c:
            out.append(ContextDifference(field, label, _plain(b), _plain(c), current.source))

    for name, label in RUN_CONTEXT:
        add(name, label, getattr(base.run, name), getattr(cur.run, name))
    for key in sorted(set(base.run.env) | set(cur.run.env)):
        add(f"env.{key}", key, base.run.env.get(key), cur.run.env.get(key))
    pairs = _device_pairs(base, cur)
    many = len(pairs) > 1
    for b_dev, c_dev in pairs:
        where = f" (gpu{c_dev.index})" if many else ""
        for name, label in DEVICE_CONTEXT:
            add(f"device.{name}", label + where, getattr(b_dev, name), getattr(c_dev, name))
    b_clock, c_clock = _typical_sm_clock(base), _typical_sm_clock(cur)
    if b_clock and c_clock and abs(c_clock / b_clock - 1) > CLOCK_DIFF_FRACTION:
        add("telemetry.sm_clock_mhz", "measured SM clock (MHz, median of case means)",
            round(b_clock), round(c_clock))
    return out


def _typical_sm_clock(result: RunResult) -> float | None:
    means = [
        m.telemetry.sm_clock_mhz.mean
        for m in result.measurements
        if m.status == "ok" and m.telemetry is not None and m.telemetry.sm_clock_mhz is not None
    ]
    return median(means) if means else None


def _throttled(side: str, named: Named) -> Iterable[ThrottledCase]:
    for m in named.result.measurements:
        if "throttled" in m.flags:
            yield ThrottledCase(side, named.source, m.key, slot_label(slot(m)))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value
