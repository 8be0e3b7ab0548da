"""Subjects, verdicts and rule sets as plain JSON-able dicts (the `--json` documents)."""

from __future__ import annotations

from typing import Any

from thresholds.model import Interval, MetricSet, MetricValue, RuleSet, Subject, Verdict

# Metrics shown for a subject (memory bandwidth density is defined for HBM stacks only).
DISPLAY_METRICS = ("tpp", "performance_density", "io_bidirectional_gbs", "memory_bandwidth_gbs",
                   "interconnect_bandwidth_gbs", "dram_plus_interconnect_gbs", "datacenter")


def _num(x: float) -> float:
    return round(x, 4)


def value_json(value: Interval | bool | None) -> tuple[Any, list | None]:
    """(value, range): a point is itself; a bounded range gives its midpoint and [lo, hi]; an open
    range ("at least") gives its lower bound and [lo, null]."""
    if value is None or isinstance(value, bool):
        return value, None
    if value.is_point:
        return _num(value.lo), None
    return _num(value.central), [_num(value.lo), _num(value.hi) if value.bounded else None]


def metric_json(mv: MetricValue) -> dict[str, Any]:
    value, value_range = value_json(mv.value)
    out: dict[str, Any] = {"value": value, "unit": mv.unit, "basis": mv.basis}
    if value_range is not None:
        out["range"] = value_range
    if mv.source:
        out["source"] = mv.source
    if mv.tags:
        out["tags"] = list(mv.tags)
        if "R" in mv.tags:
            out["unverified"] = True
    if mv.inputs:
        out["inputs"] = dict(mv.inputs)
    if mv.note:
        out["note"] = mv.note
    if mv.missing:
        out["missing"] = mv.missing
    return out


def metric_set_json(ms: MetricSet) -> dict[str, Any]:
    return {m: metric_json(ms.get(m)) for m in DISPLAY_METRICS}


def verdict_json(v: Verdict) -> dict[str, Any]:
    nearest = None
    if v.nearest is not None:
        n = v.nearest
        nearest = {"metric": n.metric, "threshold": n.threshold, "value": _num(n.value),
                   "margin_pct": round(n.margin_pct, 2), "comparator": n.comparator,
                   "paragraph": n.paragraph}
        if n.value_range is not None:
            nearest["range"] = [_num(n.value_range[0]),
                                None if n.value_range[1] is None else _num(n.value_range[1])]
    clauses = []
    for c in v.clauses:
        value, value_range = value_json(c.value)
        item = {"paragraph": c.paragraph, "metric": c.clause.metric, "comparator": c.clause.comparator,
                "threshold": c.clause.value, "unit": c.clause.unit, "value": value, "result": c.result,
                "margin_pct": None if c.margin_pct is None else round(c.margin_pct, 2)}
        if value_range is not None:
            item["range"] = value_range
        if c.missing and c.value is None:
            item["missing"] = c.missing
        clauses.append(item)
    return {
        "rule_set": v.rule_set, "basis": v.basis, "outcome": v.outcome, "paragraph": v.paragraph,
        "near_limit": v.near_limit, "nearest": nearest, "reason": v.reason,
        "applicable": v.applicable, "effect": v.effect, "met": v.met,
        "paragraphs_met": list(v.paragraphs_met), "paragraphs_undecided": list(v.paragraphs_undecided),
        "exemption": v.exemption, "licence_notes": list(v.licence_notes), "notes": list(v.notes),
        "in_force": v.in_force, "status": v.status, "clauses": clauses,
    }


def subject_json(subject: Subject, verdicts: list[Verdict]) -> dict[str, Any]:
    primary = subject.primary
    return {
        "subject": subject.name,
        "kind": subject.kind,
        "ref": subject.ref,
        "catalog_id": subject.part_id,
        "match": subject.match,
        "metrics": metric_set_json(primary) if primary else {},
        "metrics_by_basis": {ms.basis: metric_set_json(ms) for ms in subject.metric_sets},
        "verdicts": [verdict_json(v) for v in verdicts],
        "notes": list(subject.notes),
        "gaps": list(subject.gaps),
    }


def rule_json(rule: RuleSet, as_of) -> dict[str, Any]:
    def clause(c):
        return {"metric": c.metric, "comparator": c.comparator, "value": c.value, "unit": c.unit,
                **({"note": c.note} if c.note else {}), **({"tags": list(c.tags)} if c.tags else {}),
                **({"unverified": True} if "R" in c.tags else {})}

    def para(p):
        return {"label": p.label, "scope": p.scope, "effect": p.effect, "combine": p.combine,
                "text": p.text, "tags": list(p.tags), "clauses": [clause(c) for c in p.clauses],
                **({"scope_note": p.scope_note} if p.scope_note else {})}

    return {
        "id": rule.id, "title": rule.title, "citation": rule.citation,
        "citation_tags": list(rule.citation_tags), "url": rule.url,
        "effective_from": rule.effective_from.isoformat() if rule.effective_from else None,
        "proposed_on": rule.proposed_on.isoformat() if rule.proposed_on else None,
        "status": rule.status,
        "status_date": rule.status_date.isoformat() if rule.status_date else None,
        "status_note": rule.status_note, "in_force": rule.in_force_on(as_of),
        "as_of": as_of.isoformat(), "scopes": list(rule.scopes()),
        "paragraphs": [para(p) for p in rule.paragraphs],
        "exemptions": [para(e) for e in rule.exemptions],
        "licence_notes": [{"paragraphs": list(n.paragraphs), "text": n.text, "tags": list(n.tags),
                           "effective_from": n.effective_from.isoformat() if n.effective_from else None,
                           "conditions": [clause(c) for c in n.clauses]} for n in rule.licence_notes],
        "notes": [{"text": n.text, "tags": list(n.tags)} for n in rule.notes],
        "file": rule.path,
    }
