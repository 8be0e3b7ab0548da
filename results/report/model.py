"""The records `tppbench report` shows: frozen, units in names, built by `results.report`."""

from __future__ import annotations

import math
from dataclasses import dataclass

INF = math.inf


@dataclass(frozen=True)
class Region:
    """A rectangle of the TPP x performance-density plane: tpp_min <= TPP < tpp_max, likewise PD."""

    label: str  # "3A090.a.1"
    tpp_min: float
    tpp_max: float
    pd_min: float
    pd_max: float

    @property
    def group(self) -> str:  # "3A090.a" | "3A090.b"
        return self.label.rsplit(".", 1)[0] if self.label.count(".") >= 2 else self.label

    def contains(self, tpp: float, pd: float) -> bool:
        return self.tpp_min <= tpp < self.tpp_max and self.pd_min <= pd < self.pd_max


@dataclass(frozen=True)
class Band:
    """A rectangle of the TPP x DRAM-bandwidth plane: the 2026 case-by-case band
    (tpp_min <= TPP < tpp_max and dram_min_gbs <= DRAM < dram_max_gbs), or a Section 232 tariff box
    (effect "duty", every bound strict: lower_exclusive)."""

    label: str
    tpp_min: float
    tpp_max: float
    dram_min_gbs: float
    dram_max_gbs: float
    effect: str = "band"
    lower_exclusive: bool = False

    def contains(self, tpp: float, dram_gbs: float) -> bool:
        if self.lower_exclusive:
            return self.tpp_min < tpp < self.tpp_max and self.dram_min_gbs < dram_gbs < self.dram_max_gbs
        return self.tpp_min <= tpp < self.tpp_max and self.dram_min_gbs <= dram_gbs < self.dram_max_gbs


@dataclass(frozen=True)
class BandPoint:
    """A point of the TPP x DRAM map: a subject's basis or a catalog part."""

    label: str
    tpp: float
    dram_gbs: float
    kind: str  # "catalog" | "peak-declared" | "peak-derived" | "measured"
    dram_range: tuple[float, float] | None = None
    inside: tuple[str, ...] = ()  # the bands the point falls in
    cut_from: tuple[float, float] | None = None  # (TPP, DRAM GB/s) of the part this variant was cut from


@dataclass(frozen=True)
class HistoryStrip:
    """One subject's outcome per device-level regime at each date of the rule data."""

    subject: str  # Subject.id
    label: str
    basis: str | None
    regimes: tuple[str, ...]
    dates: tuple[str, ...]
    cells: tuple[tuple[str, ...], ...]  # [regime][date]: "-", "3A090.a.1", "not~", "inside", ...
    classes: tuple[tuple[str, ...], ...]  # [regime][date]: none|controlled|not_controlled|indeterminate|inside|outside
    changes: tuple[tuple[str, str], ...]  # (date, what changed and why)


@dataclass(frozen=True)
class Subject:
    """One measured device of one result file."""

    id: str  # "s1", "s2", ... (stable within a report)
    source: str
    host: str
    device_index: int
    device_name: str
    label: str  # "NVIDIA H100 80GB HBM3 on host-a gpu0"
    catalog_id: str | None
    match: str | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class MapPoint:
    label: str
    tpp: float
    pd: float | None  # None: no die area, so no place on the PD axis
    kind: str  # "catalog" | "peak-declared" | "peak-derived" | "measured"
    pd_range: tuple[float, float] | None = None
    regions: tuple[str, ...] = ()  # the 2023 paragraphs the point falls in


@dataclass(frozen=True)
class PrecisionBar:
    group: str  # "<device model> in <file>" (median over that file's devices of the model)
    precision: str
    measured: float  # flop/s or op/s
    measured_min: float
    measured_max: float
    devices: int
    peak: float | None  # datasheet (declared) dense peak, same unit
    unit: str  # "flop/s" | "op/s"
    above_peak: bool = False  # measured above thresholds' ABOVE_PEAK_FRACTION of the datasheet peak

    @property
    def percent_of_peak(self) -> float | None:
        return 100.0 * self.measured / self.peak if self.peak else None


@dataclass(frozen=True)
class BandwidthBar:
    group: str
    benchmark: str  # "memory" | "hostlink"
    variant: str
    rate: float  # byte/s, median over the group's devices
    rate_min: float
    rate_max: float
    devices: int
    convention: str


@dataclass(frozen=True)
class PeerMatrix:
    group: str
    variant: str
    devices: tuple[int, ...]
    values: tuple[tuple[float | None, ...], ...]  # byte/s, [src][dst]


@dataclass(frozen=True)
class VerdictRow:
    subject: str  # Subject.id
    rule_set: str
    basis: str
    outcome: str
    paragraph: str | None
    applicable: bool
    in_force: bool | None
    near_limit: bool
    nearest: str  # in words: "performance_density 19.45 vs >= 5.92 (+228.5%)"
    reason: str


@dataclass(frozen=True)
class CaseTelemetry:
    source: str
    device: str
    key: str
    flags: tuple[str, ...]
    sm_clock_mhz: tuple[float, float, float] | None  # min, mean, max
    power_w_mean: float | None
    temperature_c_max: float | None
    throttle_reasons: tuple[str, ...]
    unavailable: str | None  # why there is no telemetry


@dataclass(frozen=True)
class RunContext:
    source: str
    run: tuple[tuple[str, str], ...]  # (field, value) in display order
    devices: tuple[tuple[tuple[str, str], ...], ...]


@dataclass(frozen=True)
class SoakSeries:
    """One soak record's windows: the rate (and power, where read) over time."""

    label: str  # "file: device 0 bf16"
    unit: str  # flop or op
    t_s: tuple[float, ...]
    rate_per_s: tuple[float, ...]
    power_w: tuple[float | None, ...]
    burst_rate: float | None
    steady_rate: float | None
    sustained_ratio: float | None


@dataclass(frozen=True)
class ReportData:
    title: str
    generated_utc: str
    as_of: str
    sources: tuple[str, ...]
    subjects: tuple[Subject, ...]
    regions: tuple[Region, ...]
    regions_source: str
    map_points: tuple[MapPoint, ...]  # subjects' points first, then catalog parts
    off_map: tuple[str, ...]  # catalog parts without a performance density
    precision: tuple[PrecisionBar, ...]
    bandwidth: tuple[BandwidthBar, ...]
    peers: tuple[PeerMatrix, ...]
    verdicts: tuple[VerdictRow, ...]
    telemetry: tuple[CaseTelemetry, ...]
    contexts: tuple[RunContext, ...]
    near_pct: float
    bands: tuple[Band, ...] = ()  # the 2026 rule's case-by-case band and the Section 232 boxes, from the rule data
    bands_source: str = ""
    band_points: tuple[BandPoint, ...] = ()  # subjects' points first, then catalog parts
    histories: tuple[HistoryStrip, ...] = ()
    above_peak_note: str = ""  # what an above_peak flag means (thresholds.datasheet)
    soaks: tuple[SoakSeries, ...] = ()  # --suite soak time series
