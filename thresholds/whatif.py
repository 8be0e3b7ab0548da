"""Headroom to every threshold (as a factor and in the part's own terms), cluster aggregates for N
devices, and training-compute horizons (days to reach each model threshold)."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

from thresholds.evaluate import evaluate
from thresholds.model import Interval, MetricSet, MetricValue, RuleSet, Subject, Verdict
from results.render.verdict_text import LABELS, SUFFIX, num, value_text

SECONDS_PER_DAY = 86400.0
METRIC_ORDER = ("tpp", "performance_density", "io_bidirectional_gbs", "memory_bandwidth_gbs")


@dataclass(frozen=True)
class Headroom:
    metric: str
    threshold: float
    comparator: str
    where: tuple[str, ...]  # "rule-set paragraph" (status)
    value: Interval
    factor: float  # threshold / value: multiply the value by this to reach the threshold
    at_or_above: bool
    own_terms: tuple[str, ...]


@dataclass(frozen=True)
class Horizon:
    ops: float
    where: tuple[str, ...]
    days_at_peak: float | None
    days_at_measured: float | None


@dataclass(frozen=True)
class WhatIf:
    subject: Subject
    count: int
    basis: str
    headroom: tuple[Headroom, ...]
    cluster_verdicts: tuple[Verdict, ...]
    devices_to_reach: tuple[str, ...]
    peak_ops_per_s: float | None
    peak_precision: str | None
    measured_ops_per_s: float | None
    measured_precision: str | None
    measured_source: str | None
    horizons: tuple[Horizon, ...]
    notes: tuple[str, ...]
    cuts: tuple[str, ...] = ()  # what was cut from the part this one is a variant of, and by how much


def _where(rule: RuleSet, label: str, as_of: datetime.date | None = None) -> str:
    """'us-ny-raise § 1420(6) frontier model (in force from 2027-01-01)' for a law not yet in effect."""
    if as_of is not None and rule.status == "in force" and rule.effective_from and rule.effective_from > as_of:
        return f"{rule.id} {label} (in force from {rule.effective_from})"
    return f"{rule.id} {label} ({rule.status})"


def _device_thresholds(rules: tuple[RuleSet, ...]) -> dict[tuple[str, float], tuple[str, list[str]]]:
    found: dict[tuple[str, float], tuple[str, list[str]]] = {}
    for rule in rules:
        for p in (*rule.paragraphs, *rule.exemptions):
            if p.scope != "device":
                continue
            for c in p.clauses:
                if c.comparator == "is":
                    continue
                key = (c.metric, float(c.value))
                comparator, where = found.setdefault(key, (c.comparator, []))
                text = _where(rule, p.label)
                if text not in where:
                    where.append(text)
    return found


def headroom(subject: Subject, rules: tuple[RuleSet, ...]) -> tuple[str, tuple[Headroom, ...]]:
    metrics = subject.primary
    if metrics is None:
        return "none", ()
    out = []
    order = {m: i for i, m in enumerate(METRIC_ORDER)}
    items = sorted(_device_thresholds(rules).items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1]))
    for (metric, threshold), (comparator, where) in items:
        mv = metrics.get(metric)
        if not isinstance(mv.value, Interval) or mv.value.central <= 0:
            continue
        value = mv.value
        factor = threshold / value.central
        above = value.central >= threshold
        out.append(Headroom(metric, threshold, comparator, tuple(where), value, factor, above,
                            tuple(_own_terms(subject, metrics, metric, threshold, value, above))))
    return metrics.basis, tuple(out)


def _own_terms(subject: Subject, metrics: MetricSet, metric: str, t: float, value: Interval,
               above: bool) -> list[str]:
    facts = subject.facts
    v = value.central
    terms: list[str] = []
    if metric == "tpp":
        if facts.sm_count:
            per_sm = v / facts.sm_count
            if above:
                keep = math.ceil(t / per_sm) - 1
                terms.append(f"keep at most {keep} of {facts.sm_count} SMs (disable {facts.sm_count - keep} or more)")
            else:
                need = math.ceil(t / per_sm)
                terms.append(f"would reach it with {need} SMs at the same clock (has {facts.sm_count})")
        if facts.clock_mhz:
            clock = facts.clock_mhz * t / v
            if above:
                terms.append(f"or an SM clock below {clock:,.0f} MHz (now {facts.clock_mhz:,.0f}, {facts.clock_source})")
            else:
                terms.append(f"or an SM clock of {clock:,.0f} MHz (now {facts.clock_mhz:,.0f}, {facts.clock_source})")
        if above:
            terms.append(f"or every dense rate more than {(1 - t / v) * 100:.1f}% lower")
    elif metric == "performance_density":
        tpp = metrics.get("tpp").value
        if isinstance(tpp, Interval):
            area = tpp.central / v
            need = tpp.central / t
            if above:
                terms.append(f"applicable die area above {need:,.0f} mm2 (now {area:,.0f}) at the same TPP, "
                             f"or TPP below {t * area:,.0f} at the same area")
            else:
                terms.append(f"reached with a die area of {need:,.0f} mm2 or less (now {area:,.0f})")
    elif metric in ("io_bidirectional_gbs", "memory_bandwidth_gbs"):
        unit = SUFFIX[metric]
        if above:
            terms.append(f"cut by more than {v - t:,.0f}{unit} (to below {num(t)}{unit})")
        else:
            terms.append(f"{t - v:,.0f}{unit} of room")
    return terms


def _cluster_metrics(subject: Subject, count: int, measured: tuple[float, str, str] | None) -> list[MetricSet]:
    facts = subject.facts
    metrics = subject.primary
    sets = []
    if facts.peak_ops_per_s is not None and metrics is not None:
        tpp = metrics.get("tpp").value
        values = {
            "aggregate_ops_per_s": MetricValue(
                "aggregate_ops_per_s", facts.peak_ops_per_s.scale(count), metrics.basis,
                source=f"{count} x {facts.peak_ops_precision} dense peak"),
        }
        if isinstance(tpp, Interval):
            values["aggregate_tpp"] = MetricValue("aggregate_tpp", tpp.scale(count), metrics.basis,
                                                  source=f"{count} x TPP")
        sets.append(MetricSet(metrics.basis, values))
    if measured is not None:
        sets.append(MetricSet("measured", {
            "aggregate_ops_per_s": MetricValue(
                "aggregate_ops_per_s", Interval.point(measured[0] * count), "measured",
                source=f"{count} x measured {measured[1]} rate ({measured[2]})"),
        }))
    return sets


def what_if(subject: Subject, rules: tuple[RuleSet, ...], count: int, as_of: datetime.date,
            measured: tuple[float, str, str] | None = None, near_pct: float = 10.0) -> WhatIf:
    """`measured`: (op/s per device, precision, source) from --measured; else the subject's own."""
    basis, rooms = headroom(subject, rules)
    facts = subject.facts
    if measured is None and facts.measured_ops_per_s is not None:
        measured = (facts.measured_ops_per_s, facts.measured_ops_precision or "", subject.ref)
    measured_ops = measured[0] if measured else None
    verdicts = []
    for metrics in _cluster_metrics(subject, count, measured):
        # allocations are counted in TPP, a peak quantity: no measured-basis allocation verdict
        scopes = ("cluster",) if metrics.basis == "measured" else ("cluster", "allocation")
        for rule in rules:
            for scope in scopes:
                if any(p.scope == scope for p in rule.paragraphs):
                    verdicts.append(evaluate(rule, metrics, as_of=as_of, near_pct=near_pct, scope=scope))
    reach = _devices_to_reach(subject, rules, measured_ops)
    peak = facts.peak_ops_per_s.central if facts.peak_ops_per_s else None
    horizons = _horizons(rules, count, peak, measured_ops, as_of)
    notes = []
    if measured_ops is None:
        notes.append("no measured matmul rate (give --measured RESULT): horizons at peak only")
    notes.append("cluster networking is not an input here: the networking clauses stay undecided")
    return WhatIf(
        subject=subject, count=count, basis=basis, headroom=rooms, cluster_verdicts=tuple(verdicts),
        devices_to_reach=tuple(reach), peak_ops_per_s=peak, peak_precision=facts.peak_ops_precision,
        measured_ops_per_s=measured_ops, measured_precision=measured[1] if measured else None,
        measured_source=measured[2] if measured else None, horizons=tuple(horizons), notes=tuple(notes),
        cuts=tuple(what_was_cut(subject)),
    )


def what_was_cut(subject: Subject) -> list[str]:
    """For a catalog variant (`variant_of`): its declared figures against the part it was cut from."""
    from thresholds.metrics import declared_metrics
    from thresholds.subjects import find_part

    part = find_part(subject.part_id) if subject.part_id else None
    parent = find_part(part.variant_of) if part is not None and part.variant_of else None
    if parent is None or subject.primary is None:
        return []
    before, _ = declared_metrics(parent, f"catalog {parent.id}")
    lines = [f"cut down from {parent.id} ({parent.name}):"]
    for metric in METRIC_ORDER:
        old, new = before.get(metric).value, subject.primary.get(metric).value
        if not isinstance(old, Interval) or not isinstance(new, Interval):
            lines.append(f"{LABELS[metric]}: {value_text(old)} -> {value_text(new)}")
            continue
        change = (new.central - old.central) / old.central * 100 if old.central else 0.0
        word = "unchanged" if abs(change) < 0.05 else f"{change:+.1f}%"
        lines.append(f"{LABELS[metric]} {value_text(old)}{SUFFIX.get(metric, '')} -> "
                     f"{value_text(new)}{SUFFIX.get(metric, '')} ({word})")
    return lines


def _devices_to_reach(subject: Subject, rules: tuple[RuleSet, ...], measured_ops: float | None) -> list[str]:
    facts = subject.facts
    metrics = subject.primary
    lines = []
    seen = set()
    for rule in rules:
        for p in rule.paragraphs:
            for c in p.clauses:
                key = (c.metric, c.value)
                if key in seen:
                    continue
                if c.metric == "aggregate_ops_per_s" and facts.peak_ops_per_s is not None:
                    seen.add(key)
                    per = facts.peak_ops_per_s.central
                    text = (f"{LABELS[c.metric]} {c.comparator} {num(float(c.value))} op/s "
                            f"({rule.id}): {math.ceil(float(c.value) / per):,} devices at {facts.peak_ops_precision} dense peak")
                    if measured_ops:
                        text += f", {math.ceil(float(c.value) / measured_ops):,} at the measured rate"
                    lines.append(text)
                elif c.metric == "aggregate_tpp" and metrics is not None:
                    tpp = metrics.get("tpp").value
                    if isinstance(tpp, Interval) and tpp.central > 0:
                        seen.add(key)
                        lines.append(f"{LABELS[c.metric]} {c.comparator} {num(float(c.value))} ({rule.id} "
                                     f"{p.label}): {math.floor(float(c.value) / tpp.central):,} devices at most")
    return lines


def _horizons(rules: tuple[RuleSet, ...], count: int, peak: float | None,
              measured: float | None, as_of: datetime.date | None = None) -> list[Horizon]:
    found: dict[float, list[str]] = {}
    for rule in rules:
        for p in rule.paragraphs:
            if p.scope != "model":
                continue
            for c in p.clauses:
                if c.metric == "training_ops":
                    found.setdefault(float(c.value), []).append(_where(rule, p.label, as_of))
    out = []
    for ops, where in sorted(found.items()):
        out.append(Horizon(
            ops, tuple(where),
            ops / (peak * count) / SECONDS_PER_DAY if peak else None,
            ops / (measured * count) / SECONDS_PER_DAY if measured else None,
        ))
    return out
