"""evaluate(rule, metrics) -> Verdict, with three-valued (Kleene) logic.

A clause whose metric is unknown, or whose published range straddles the threshold, is
indeterminate (None), never false. On the measured basis a value is a lower bound of the
theoretical peak the rules are written on (a part never runs faster than its peak), so it is
compared as "at least the measured value": a measured value below a threshold leaves the clause
undecided, and a measured verdict is never `not_controlled` by itself.

Paragraphs combine their clauses with all/any; a regime's outcome is: some controlling paragraph
met AND no exemption met. The reported paragraph is the first one met in file order (the files
list paragraphs from most to least specific)."""

from __future__ import annotations

import datetime
import math
from typing import Iterable

from thresholds.model import (  # noqa: I001
    BOX_EFFECTS,
    REL_TOLERANCE, Clause, ClauseResult, Interval, LicenceNote, MetricSet, Nearest, Paragraph,
    RuleSet, Verdict,
)
from results.render.verdict_text import clause_text, tags_text

SCOPE_WORDS = {
    "cluster": "compute clusters (aggregate op/s and networking)",
    "model": "model training compute (operations)",
    "allocation": "export volumes per customer or country (aggregate TPP)",
    "hbm-stack": "HBM stacks (memory bandwidth density)",
    "device": "single devices",
}


# --------------------------------------------------------------------------- three-valued logic


def all3(values: Iterable[bool | None]) -> bool | None:
    values = list(values)
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def any3(values: Iterable[bool | None]) -> bool | None:
    values = list(values)
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def not3(value: bool | None) -> bool | None:
    return None if value is None else not value


def _eq(a: float, b: float) -> bool:
    return math.isfinite(a) and abs(a - b) <= REL_TOLERANCE * max(abs(b), 1.0)


def compare(value: Interval | bool | None, comparator: str, threshold: float | bool) -> bool | None:
    """True / False when the whole value (range) is on one side of the threshold, else None."""
    if value is None:
        return None
    if comparator == "is":
        return value == threshold if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    t, lo, hi = float(threshold), value.lo, value.hi
    if comparator == ">=":
        if lo >= t or _eq(lo, t):
            return True
        return False if hi < t and not _eq(hi, t) else None
    if comparator == ">":
        if lo > t and not _eq(lo, t):
            return True
        return False if hi <= t or _eq(hi, t) else None
    if comparator == "<":
        if hi < t and not _eq(hi, t):
            return True
        return False if lo >= t or _eq(lo, t) else None
    if comparator == "<=":
        if hi <= t or _eq(hi, t):
            return True
        return False if lo > t and not _eq(lo, t) else None
    raise ValueError(f"unknown comparator {comparator!r}")


def margin(value: Interval, threshold: float) -> tuple[float, float]:
    """(margin_pct, the value used): (value - threshold) / threshold x 100 with the range bound
    nearest the threshold; 0 when a bounded range contains the threshold; the lower bound of an
    open range ("at least")."""
    if not value.bounded:
        return (value.lo - threshold) / threshold * 100, value.lo
    if value.lo <= threshold <= value.hi:
        used = threshold if not value.is_point else value.lo
        return (0.0 if not value.is_point else (value.lo - threshold) / threshold * 100), used
    bounds = [b for b in (value.lo, value.hi) if math.isfinite(b)]
    used = min(bounds, key=lambda b: abs(b - threshold))
    return (used - threshold) / threshold * 100, used


# --------------------------------------------------------------------------- paragraphs


MEASURED_BASIS = "measured"
MEASURED_CAVEAT = ("measured: a lower bound of the theoretical peak the rules are written on, so a "
                   "measured value below a threshold decides nothing")


def as_peak(value: Interval | bool | None, basis: str) -> Interval | bool | None:
    """What a value says about the theoretical peak: itself, or on the measured basis "at least it"."""
    if basis == MEASURED_BASIS and isinstance(value, Interval):
        return Interval(value.lo, math.inf)
    return value


def _clause_results(label: str, clauses: tuple[Clause, ...], metrics: MetricSet) -> list[ClauseResult]:
    out = []
    for clause in clauses:
        mv = metrics.get(clause.metric)
        result = compare(as_peak(mv.value, metrics.basis), clause.comparator, clause.value)
        pct = None
        if isinstance(mv.value, Interval) and clause.comparator != "is" and float(clause.value) != 0:
            pct = margin(mv.value, float(clause.value))[0]
        out.append(ClauseResult(label, clause, mv.value, result, pct, mv.missing))
    return out


def _combine(combine: str, results: list[ClauseResult]) -> bool | None:
    truths = [r.result for r in results]
    return all3(truths) if combine == "all" else any3(truths)


def _why(r: ClauseResult) -> str:
    text = clause_text(r.clause, r.value, r.result)
    if r.value is None and r.missing:
        text += f" [{r.missing}]"
    return text


def _met_text(paragraph: Paragraph, results: list[ClauseResult]) -> str:
    joiner = " and " if paragraph.combine == "all" else " or "
    if paragraph.combine == "any":
        results = [r for r in results if r.result] or results
    return joiner.join(_why(r) for r in results)


def _failed_text(paragraph: Paragraph, results: list[ClauseResult], want: bool | None) -> str:
    chosen = [r for r in results if r.result is want]
    if paragraph.combine == "any" and want is False:
        chosen = results
    return (" and " if want is None else "; ").join(_why(r) for r in chosen[:3])


# --------------------------------------------------------------------------- verdicts


def evaluate(
    rule: RuleSet,
    metrics: MetricSet,
    *,
    as_of: datetime.date,
    near_pct: float = 10.0,
    scope: str = "device",
) -> Verdict:
    common = {"rule_set": rule.id, "basis": metrics.basis, "in_force": rule.in_force_on(as_of),
              "status": rule.status}
    paragraphs = [p for p in rule.paragraphs if p.scope == scope]
    if not paragraphs:
        return _not_applicable(rule, scope, common)
    evaluated = []
    all_results: list[ClauseResult] = []
    for p in paragraphs:
        results = _clause_results(p.label, p.clauses, metrics)
        all_results.extend(results)
        evaluated.append((p, results, _combine(p.combine, results)))
    exemptions = []
    for e in (e for e in rule.exemptions if e.scope == scope):
        results = _clause_results(e.label, e.clauses, metrics)
        all_results.extend(results)
        exemptions.append((e, results, _combine(e.combine, results)))

    controlling = [(p, r, t) for p, r, t in evaluated if p.effect == "controlled"]
    informational = not controlling
    judged = evaluated if informational else controlling
    met = any3(t for _, _, t in judged)
    exempt = any3(t for _, _, t in exemptions) if exemptions else False
    paragraphs_met = tuple(p.label for p, _, t in judged if t is True)
    undecided = tuple(p.label for p, _, t in judged if t is None)
    first_met = next(((p, r) for p, r, t in judged if t is True), None)
    exemption_met = next(((e, r) for e, r, t in exemptions if t is True), None)
    exemption_open = next(((e, r) for e, r, t in exemptions if t is None), None)

    if informational:
        outcome = "indeterminate" if met is None else "not_controlled"
        paragraph = first_met[0].label if met else None
        effect = judged[0][0].effect
        reason = _informational_reason(judged, met, first_met)
    else:
        effect = "controlled"
        truth = all3([met, not3(exempt)])
        outcome = {True: "controlled", False: "not_controlled", None: "indeterminate"}[truth]
        paragraph = first_met[0].label if truth else None
        reason = _classification_reason(truth, judged, first_met, exemption_met, exemption_open, met)

    nearest, near_limit = _nearest(all_results, near_pct)
    # Licence notes of a controlling paragraph that is met, and the conditions of a box a part is
    # inside (the 2026 band's shipment conditions).
    shows_notes = outcome == "controlled" or (informational and met is True and effect in BOX_EFFECTS)
    licence = _licence_notes(rule.licence_notes, paragraph, metrics, as_of) if shows_notes else ()
    notes = list(metrics.notes)
    if metrics.basis == MEASURED_BASIS and outcome != "controlled" and met is not False:
        reason += f" ({MEASURED_CAVEAT})"
    if not common["in_force"]:
        notes.append(_status_text(rule, as_of))
    return Verdict(
        outcome=outcome, paragraph=paragraph, near_limit=near_limit, nearest=nearest, reason=reason,
        applicable=True, effect=effect, met=met, paragraphs_met=paragraphs_met,
        paragraphs_undecided=undecided,
        exemption=exemption_met[0].label if exemption_met and outcome == "not_controlled" else None,
        clauses=tuple(all_results), licence_notes=licence, notes=tuple(dict.fromkeys(notes)), **common,
    )


def _not_applicable(rule: RuleSet, scope: str, common: dict) -> Verdict:
    scope_notes = [p.scope_note for p in rule.paragraphs if p.scope_note]
    scopes = ", ".join(SCOPE_WORDS.get(s, s) for s in rule.scopes())
    if scope_notes:
        reason = f"not applicable to a {scope}: {scope_notes[0]}"
    else:
        reason = f"not applicable to a {scope}: this regime's thresholds apply to {scopes}"
        if scope == "device":
            reason += " (see `tppbench whatif`)"
    return Verdict(
        outcome="not_controlled", paragraph=None, near_limit=False, nearest=None, reason=reason,
        applicable=False, effect=rule.paragraphs[0].effect, met=None, **common,
    )


def _classification_reason(truth, judged, first_met, exemption_met, exemption_open, met) -> str:
    if truth:
        p, results = first_met
        text = f"{_met_text(p, results)} -> {p.label}"
        others = [q.label for q, _, t in judged if t is True and q is not p]
        return text + (f" (also meets {', '.join(others)})" if others else "")
    if exemption_met is not None and met is not False:
        e, results = exemption_met
        return f"{_met_text(e, results)} -> {e.label}: not controlled"
    if truth is False:
        parts = [f"{p.label}: {_failed_text(p, r, False)}" for p, r, _ in judged]
        return "; ".join(parts) + " -> no paragraph met"
    if met is True and exemption_open is not None:
        p, results = first_met
        e, eres = exemption_open
        return (f"{_met_text(p, results)} -> {p.label}, unless {e.label} applies "
                f"(undecided: {_failed_text(e, eres, None)})")
    return _undecided_text(judged)


def _undecided_text(judged) -> str:
    """'PD unknown [applicable die area not published] -> 3A090.a.2, 3A090.b.2 undecided'."""
    labels = [p.label for p, _, t in judged if t is None]
    whys = dict.fromkeys(_why(r) for p, results, t in judged if t is None for r in results if r.result is None)
    return f"{'; '.join(whys)} -> {', '.join(labels)} undecided"


def _informational_reason(judged, met, first_met) -> str:
    inside = "inside" if judged[0][0].effect in BOX_EFFECTS else "meets"
    outside = "outside" if judged[0][0].effect in BOX_EFFECTS else "does not meet"
    if met:
        p, results = first_met
        return f"{_met_text(p, results)} -> {inside} {p.label}"
    if met is False:
        parts = [f"{_failed_text(p, r, False)} -> {outside} {p.label}" for p, r, _ in judged]
        return "; ".join(parts)
    return _undecided_text(judged)


def _nearest(results: list[ClauseResult], near_pct: float) -> tuple[Nearest | None, bool]:
    seen: dict[tuple[str, float], Nearest] = {}
    for r in results:
        if r.clause.comparator == "is" or not isinstance(r.value, Interval) or r.margin_pct is None:
            continue
        threshold = float(r.clause.value)
        key = (r.clause.metric, threshold)
        if key in seen:
            continue
        pct, used = margin(r.value, threshold)
        value_range = None if r.value.is_point else (r.value.lo, r.value.hi if r.value.bounded else None)
        seen[key] = Nearest(r.clause.metric, threshold, used, pct, r.clause.comparator, r.paragraph, value_range)
    if not seen:
        return None, False
    nearest = min(seen.values(), key=lambda n: abs(n.margin_pct))
    return nearest, any(abs(n.margin_pct) <= near_pct for n in seen.values())


def _licence_notes(notes: tuple[LicenceNote, ...], paragraph: str | None, metrics: MetricSet,
                   as_of: datetime.date) -> tuple[str, ...]:
    out = []
    for note in notes:
        if paragraph not in note.paragraphs:
            continue
        if note.effective_from is not None and as_of < note.effective_from:
            continue
        results = _clause_results("licence", note.clauses, metrics)
        truth = _combine(note.combine, results) if results else True
        if truth is False:
            continue
        text = f"{note.text} {tags_text(note.tags)}".strip()
        if truth is None:
            text = f"may apply (undecided: {'; '.join(_why(r) for r in results if r.result is None)}): {text}"
        out.append(text)
    return tuple(out)


def _status_text(rule: RuleSet, as_of: datetime.date) -> str:
    if rule.status == "proposed":
        return f"{rule.id} is a proposal (published {rule.proposed_on}), never in force"
    if rule.effective_from and as_of < rule.effective_from:
        return f"{rule.id} was not yet in force on {as_of} (effective {rule.effective_from})"
    return f"{rule.id} is {rule.status} since {rule.status_date}; not in force on {as_of}"
