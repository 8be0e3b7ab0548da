"""The vocabulary of thresholds/: frozen records for rules, catalog parts, metrics and verdicts.

Units are in names or in the `UNITS` table: TPP is bit length x dense TOPS (a number without a unit
of its own, written "TPP"); performance density is TPP per mm2 of applicable die area; link and
memory rates are GB/s (10^9 byte/s), bidirectional for links. Every catalog figure carries the
reference's confidence tags (`TAGS`) and a source.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from typing import Mapping

# Bit length of the operation per precision (reference §2.2, §8.3; TF32 counted as 32, §9.2).
# fp6: 6 by the TPP definition's own rule (bit length of the operation); no BIS statement on it was
# found (regulations-2026.md §1.6, §5). CDNA 4 runs MXFP6 at the MXFP4 rate, so without it the
# max over precisions understated MI350X/MI355X by a third.
PRECISION_BITS: Mapping[str, int] = {
    "fp64": 64, "fp32": 32, "tf32": 32, "fp16": 16, "bf16": 16,
    "fp8": 8, "int8": 8, "fp6": 6, "fp4": 4, "int4": 4,
}

# Metric id -> unit. A clause must name a metric from here, with exactly this unit.
UNITS: Mapping[str, str] = {
    "tpp": "TPP",
    "performance_density": "TPP/mm2",
    "io_bidirectional_gbs": "GB/s",
    "memory_bandwidth_gbs": "GB/s",
    "interconnect_bandwidth_gbs": "GB/s",  # the 2025-26 bills' metric (thresholds/interconnect.py)
    "dram_plus_interconnect_gbs": "GB/s",
    "memory_bandwidth_density_gbs_mm2": "GB/s/mm2",
    "datacenter": "flag",
    "bio_sequence_data": "flag",
    "aggregate_ops_per_s": "op/s",
    "aggregate_tpp": "TPP",
    "training_ops": "op",
    "training_compute_cost_usd": "USD",  # New York RAISE Act's second frontier-model clause
    "network_gbit_s": "Gbit/s",
}
FLAG_METRICS = frozenset(m for m, u in UNITS.items() if u == "flag")
COMPARATORS = (">=", ">", "<", "<=", "is")
TAGS = ("P", "P*", "S", "V", "R", "I")
BASES = ("peak-declared", "peak-derived", "measured")
STATUSES = ("in force", "superseded", "revoked", "not enforced", "proposed")
SCOPES = ("device", "cluster", "model", "allocation", "hbm-stack")
EFFECTS = ("controlled", "band", "reporting", "allocation", "presumption", "duty")
# Effects whose paragraphs are boxes on the metric axes: a part is "inside" or "outside" them
# (the 2026 China review band; the Section 232 tariff boxes, a duty rather than a control).
BOX_EFFECTS = ("band", "duty")

# Values within this relative distance of a threshold count as equal to it (float arithmetic:
# 1600 / (1600 / 5.92) is not exactly 5.92).
REL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Interval:
    """A number, or a published range [lo, hi] (hi may be +inf for "at least lo")."""

    lo: float
    hi: float

    @classmethod
    def point(cls, value: float) -> "Interval":
        return cls(float(value), float(value))

    @property
    def is_point(self) -> bool:
        return self.lo == self.hi

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.hi)

    @property
    def central(self) -> float:
        """The value itself, the midpoint of a bounded range, or the lower bound of an open one."""
        return (self.lo + self.hi) / 2 if self.bounded else self.lo

    def scale(self, factor: float) -> "Interval":
        a, b = self.lo * factor, self.hi * factor
        return Interval(min(a, b), max(a, b))

    def plus(self, other: "Interval") -> "Interval":
        return Interval(self.lo + other.lo, self.hi + other.hi)

    def divided_by(self, other: "Interval") -> "Interval":
        return Interval(self.lo / other.hi, self.hi / other.lo)

    def max_with(self, other: "Interval") -> "Interval":
        return Interval(max(self.lo, other.lo), max(self.hi, other.hi))


@dataclass(frozen=True)
class Figure:
    """One catalog figure with its provenance: value (a bool for flags), tags, source."""

    value: Interval | bool
    tags: tuple[str, ...]
    source: str
    note: str | None = None

    @property
    def unverified(self) -> bool:
        return "R" in self.tags


@dataclass(frozen=True)
class Note:
    text: str
    tags: tuple[str, ...]


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class Clause:
    metric: str
    comparator: str
    value: float | bool
    unit: str
    note: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Paragraph:
    """A labelled condition: clauses combined with all (and) or any (or)."""

    label: str
    scope: str
    effect: str
    combine: str  # "all" | "any"
    clauses: tuple[Clause, ...]
    text: str = ""
    tags: tuple[str, ...] = ()
    scope_note: str | None = None


@dataclass(frozen=True)
class LicenceNote:
    paragraphs: tuple[str, ...]
    text: str
    tags: tuple[str, ...]
    combine: str
    clauses: tuple[Clause, ...]
    effective_from: datetime.date | None = None


@dataclass(frozen=True)
class RuleSet:
    id: str
    title: str
    citation: str
    citation_tags: tuple[str, ...]
    status: str
    effective_from: datetime.date | None
    status_date: datetime.date | None
    paragraphs: tuple[Paragraph, ...]
    exemptions: tuple[Paragraph, ...] = ()
    licence_notes: tuple[LicenceNote, ...] = ()
    notes: tuple[Note, ...] = ()
    url: str | None = None
    status_note: str | None = None
    proposed_on: datetime.date | None = None
    path: str = ""

    def in_force_on(self, day: datetime.date) -> bool:
        if self.status == "proposed" or self.effective_from is None:
            return False
        if day < self.effective_from:
            return False
        if self.status == "in force":
            return True
        return self.status_date is not None and day < self.status_date

    def scopes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.scope for p in self.paragraphs))


# --------------------------------------------------------------------------- catalog


@dataclass(frozen=True)
class Part:
    """One catalog part: datasheet figures, each with its source and tags."""

    id: str
    name: str
    vendor: str
    datacenter: Figure | None
    dense_tops: Mapping[str, Figure]
    io_gbs: Mapping[str, Figure]
    die_area_mm2: Figure | None = None
    memory_bandwidth_gbs: Figure | None = None
    sm_count: Figure | None = None
    boost_clock_mhz: Figure | None = None
    # DRAM/HBM capacity as the datasheet prints it ("141 GB"); most datasheets do not say whether
    # their GB is 10^9 or 2^30 bytes, so a capacity check compares against both (docs/verification.md)
    memory_capacity_gb: Figure | None = None
    aliases: tuple[str, ...] = ()
    pci_ids: tuple[str, ...] = ()  # "vvvv:dddd", lower-case hex
    pci_ids_source: str | None = None
    gaps: tuple[str, ...] = ()
    notes: tuple[Note, ...] = ()
    path: str = ""
    variant_of: str | None = None  # the catalog part this one was cut down from (China variants)
    catalog_part: str | None = None  # a spec file's: the catalog part the sheet describes (verify's floors)


@dataclass(frozen=True)
class ArchitectureCheck:
    part: str
    sm_count: int
    clock_mhz: float
    precisions: tuple[str, ...]
    tags: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Architecture:
    compute_capability: str
    name: str
    ops_per_clock_per_sm: Mapping[str, float]
    tags: tuple[str, ...]
    source: str
    notes: str | None = None
    checks: tuple[ArchitectureCheck, ...] = ()


@dataclass(frozen=True)
class RateTable:
    rates: Mapping[str, float]
    tags: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class DerivationTables:
    architectures: Mapping[str, Architecture]
    nvlink_link_gbs: RateTable
    pcie_lane_gbs: RateTable
    memory_transfers_per_clock: float
    memory_tags: tuple[str, ...]
    memory_source: str


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class MetricValue:
    """One metric on one basis. `value` None means unknown, with the reason in `missing`."""

    metric: str
    value: Interval | bool | None
    basis: str
    source: str = ""
    tags: tuple[str, ...] = ()
    inputs: Mapping[str, object] = field(default_factory=dict)
    note: str | None = None
    missing: str | None = None

    @property
    def unit(self) -> str:
        return UNITS[self.metric]

    @property
    def known(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class MetricSet:
    basis: str
    values: Mapping[str, MetricValue]
    notes: tuple[str, ...] = ()

    def get(self, metric: str) -> MetricValue:
        found = self.values.get(metric)
        if found is not None:
            return found
        return MetricValue(metric, None, self.basis, missing=f"no {metric} on this basis")


@dataclass(frozen=True)
class DeviceFacts:
    """What whatif can use to express headroom in the part's own terms (SMs, clock, die area)."""

    sm_count: int | None = None
    clock_mhz: float | None = None
    clock_source: str | None = None
    peak_ops_per_s: Interval | None = None  # max over precisions of dense peak op/s
    peak_ops_precision: str | None = None
    measured_ops_per_s: float | None = None
    measured_ops_precision: str | None = None


@dataclass(frozen=True)
class Subject:
    """One thing to check: a catalog part, a spec file, or one device of a result file."""

    name: str
    kind: str  # "catalog" | "spec" | "result"
    ref: str
    metric_sets: tuple[MetricSet, ...]
    part_id: str | None = None
    match: str | None = None
    facts: DeviceFacts = DeviceFacts()
    notes: tuple[str, ...] = ()
    gaps: tuple[str, ...] = ()

    def basis(self, name: str) -> MetricSet | None:
        for s in self.metric_sets:
            if s.basis == name:
                return s
        return None

    @property
    def primary(self) -> MetricSet | None:
        """The basis the rules are written on: declared peak, else derived peak, else measured."""
        for name in BASES:
            found = self.basis(name)
            if found is not None:
                return found
        return None


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class ClauseResult:
    paragraph: str
    clause: Clause
    value: Interval | bool | None
    result: bool | None  # True / False / None (indeterminate)
    margin_pct: float | None = None
    missing: str | None = None


@dataclass(frozen=True)
class Nearest:
    metric: str
    threshold: float
    value: float
    margin_pct: float
    comparator: str
    paragraph: str
    value_range: tuple[float, float | None] | None = None


@dataclass(frozen=True)
class Verdict:
    rule_set: str
    basis: str
    outcome: str
    paragraph: str | None
    near_limit: bool
    nearest: Nearest | None
    reason: str
    applicable: bool = True
    effect: str = "controlled"
    met: bool | None = None
    paragraphs_met: tuple[str, ...] = ()
    paragraphs_undecided: tuple[str, ...] = ()
    exemption: str | None = None
    clauses: tuple[ClauseResult, ...] = ()
    licence_notes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    in_force: bool = True
    status: str = "in force"
