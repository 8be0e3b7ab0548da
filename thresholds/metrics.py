"""Metrics on the peak-declared basis (catalog part or spec file), and the TPP arithmetic shared by
every basis: TPP = max over precisions of dense TOPS x bit length (reference §2.2, §7.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from thresholds.interconnect import (DRAM_PLUS_INTERCONNECT, INTERCONNECT, declared_interconnect,
                                     dram_plus_interconnect)
from thresholds.model import (
    PRECISION_BITS, DeviceFacts, Figure, Interval, MetricSet, MetricValue, Part,
)

DECLARED = "peak-declared"


@dataclass(frozen=True)
class TppResult:
    tpp: Interval
    ops_per_s: Interval  # max over precisions of dense op/s (for cluster sums)
    winners: tuple[str, ...]  # precisions that reach the maximum TPP
    ops_precision: str
    per_precision: Mapping[str, Interval]  # precision -> TPP contribution


def tpp_from_tops(tops: Mapping[str, Interval], bits: Mapping[str, int] = PRECISION_BITS) -> TppResult | None:
    """Max over precisions of TOPS x bit length; integer and float alike; None when no rate.
    `bits`: the bit length per precision (thresholds.tf32 passes TF32 at 16 for the other convention)."""
    rates = {p: v for p, v in tops.items() if p in bits and v.hi > 0}
    if not rates:
        return None
    per = {p: v.scale(bits[p]) for p, v in rates.items()}
    best = max(per.values(), key=lambda i: (i.hi, i.lo))
    tpp = best
    for value in per.values():
        tpp = tpp.max_with(value)
    top = max(v.central for v in per.values())
    winners = tuple(p for p, v in per.items() if abs(v.central - top) <= 1e-6 * max(top, 1.0))
    ops_precision = max(rates, key=lambda p: (rates[p].hi, rates[p].lo))
    ops = rates[ops_precision].scale(1e12)
    return TppResult(tpp, ops, winners, ops_precision, per)


def fmt_interval(value: Interval, digits: int = 1) -> str:
    if value.is_point:
        return f"{value.lo:,.{digits}f}".rstrip("0").rstrip(".")
    if not value.bounded:
        return f">= {value.lo:,.{digits}f}".rstrip("0").rstrip(".")
    lo = f"{value.lo:,.{digits}f}".rstrip("0").rstrip(".")
    hi = f"{value.hi:,.{digits}f}".rstrip("0").rstrip(".")
    return f"{lo}-{hi}"


def _tags(*figures: Figure | None) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for f in figures:
        if f is not None:
            for t in f.tags:
                seen.setdefault(t, None)
    return tuple(seen)


def _best_supported(figures: list[Figure]) -> list[Figure]:
    """The tied winning figures that carry the TPP's confidence: a maximum reached by a verified
    figure (A100: fp16 312 x 16 [V]) is not made unverified by an [R] figure that ties it
    (INT4 1,248 x 4). Only when every winner is [R] is the TPP itself unverified."""
    verified = [f for f in figures if not f.unverified]
    return verified or figures


def tpp_source(result: TppResult, tops: Mapping[str, Interval], unit: str = "TOPS") -> str:
    return " = ".join(
        f"{p} {fmt_interval(tops[p])} {unit} x {PRECISION_BITS[p]}" for p in result.winners
    )


def declared_metrics(part: Part, origin: str) -> tuple[MetricSet, DeviceFacts]:
    """Peak-declared metrics of a catalog part or spec file; `origin` names it in sources."""
    values: dict[str, MetricValue] = {}
    tops = {p: f.value for p, f in part.dense_tops.items() if isinstance(f.value, Interval)}
    result = tpp_from_tops(tops)
    facts = DeviceFacts()
    if result is None:
        values["tpp"] = MetricValue("tpp", None, DECLARED, missing="no dense rate published")
    else:
        win = _best_supported([part.dense_tops[p] for p in result.winners])
        values["tpp"] = MetricValue(
            "tpp", result.tpp, DECLARED, source=f"{tpp_source(result, tops)} ({origin})",
            tags=_tags(*win), inputs={"precisions": list(result.winners),
                                      "tops": {p: [v.lo, v.hi if v.bounded else None]  # None: "at least lo"
                                               for p, v in tops.items()}},
        )
        facts = DeviceFacts(peak_ops_per_s=result.ops_per_s, peak_ops_precision=result.ops_precision)
    area = part.die_area_mm2
    if result is None:
        values["performance_density"] = MetricValue(
            "performance_density", None, DECLARED, missing="TPP unknown")
    elif area is None:
        values["performance_density"] = MetricValue(
            "performance_density", None, DECLARED, missing="applicable die area not published")
    else:
        values["performance_density"] = MetricValue(
            "performance_density", result.tpp.divided_by(area.value), DECLARED,
            source=f"TPP / {fmt_interval(area.value)} mm2 applicable die area ({area.source or origin})",
            tags=_tags(*_best_supported([part.dense_tops[p] for p in result.winners]), area),
            inputs={"die_area_mm2": [area.value.lo, area.value.hi] if not area.value.is_point else area.value.lo},
        )
    if part.io_gbs:
        total = Interval(0.0, 0.0)
        for fig in part.io_gbs.values():
            total = total.plus(fig.value)
        parts = " + ".join(f"{k} {fmt_interval(f.value)}" for k, f in part.io_gbs.items())
        values["io_bidirectional_gbs"] = MetricValue(
            "io_bidirectional_gbs", total, DECLARED, source=f"{parts} ({origin})",
            tags=_tags(*part.io_gbs.values()),
            inputs={k: f.value.central for k, f in part.io_gbs.items()},
            note="sum of declared bidirectional link rates, memory excluded",
        )
    else:
        values["io_bidirectional_gbs"] = MetricValue(
            "io_bidirectional_gbs", None, DECLARED, missing="link rates not published")
    mem = part.memory_bandwidth_gbs
    values["memory_bandwidth_gbs"] = (
        MetricValue("memory_bandwidth_gbs", mem.value, DECLARED, source=mem.source or origin, tags=mem.tags)
        if mem is not None
        else MetricValue("memory_bandwidth_gbs", None, DECLARED, missing="memory bandwidth not published")
    )
    values[INTERCONNECT] = declared_interconnect(part, DECLARED, origin)
    values[DRAM_PLUS_INTERCONNECT] = dram_plus_interconnect(values, DECLARED)
    values["datacenter"] = datacenter_metric(part, DECLARED, origin)
    values["memory_bandwidth_density_gbs_mm2"] = MetricValue(
        "memory_bandwidth_density_gbs_mm2", None, DECLARED,
        missing="defined for HBM stacks and packages of memory; not computed for a logic package")
    sm = part.sm_count.value.lo if part.sm_count and isinstance(part.sm_count.value, Interval) else None
    clock = (part.boost_clock_mhz.value.lo
             if part.boost_clock_mhz and isinstance(part.boost_clock_mhz.value, Interval) else None)
    if sm or clock:
        facts = DeviceFacts(
            sm_count=int(sm) if sm else None, clock_mhz=clock,
            clock_source=(f"catalog boost clock [{'/'.join(part.boost_clock_mhz.tags)}]"
                          if part.boost_clock_mhz else None),
            peak_ops_per_s=facts.peak_ops_per_s, peak_ops_precision=facts.peak_ops_precision,
        )
    return MetricSet(DECLARED, values), facts


def datacenter_metric(part: Part | None, basis: str, origin: str) -> MetricValue:
    """'Designed or marketed for datacenters' is not measurable: it always comes from the catalog
    or spec file, whatever the basis."""
    if part is None:
        return MetricValue("datacenter", None, basis, missing="not a catalog part: datacenter design unknown")
    fig = part.datacenter
    if fig is None:
        return MetricValue("datacenter", None, basis, missing=f"datacenter flag not given ({origin})")
    return MetricValue("datacenter", fig.value, basis, source=fig.source or origin, tags=fig.tags)
