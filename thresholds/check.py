"""`check` as a library: choose regimes, resolve subjects, evaluate every regime on every basis."""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass

from thresholds.tf32 import DEFAULT_TF32_BITS, difference_note, other_convention, under_convention
from thresholds.errors import RuleSelectionError
from thresholds.evaluate import evaluate
from thresholds.load import load_rules
from thresholds.model import RuleSet, Subject, Verdict
from results.render.verdict_json import subject_json
from thresholds.subjects import resolve


@dataclass(frozen=True)
class Checked:
    subject: Subject
    verdicts: tuple[Verdict, ...]


def select_rules(spec: str | None, as_of: datetime.date) -> tuple[RuleSet, ...]:
    """None: every regime in force on `as_of`; "all": every regime; else a comma-separated id list."""
    rules = load_rules()
    if spec is None:
        return tuple(r for r in rules if r.in_force_on(as_of))
    if spec.strip().lower() == "all":
        return rules
    by_id = {r.id: r for r in rules}
    chosen = []
    for raw in spec.split(","):
        rule_id = raw.strip()
        if not rule_id:
            continue
        if rule_id not in by_id:
            raise RuleSelectionError(
                f"argument --rules: unknown regime {rule_id!r} (known: {', '.join(by_id)}, or 'all')")
        chosen.append(by_id[rule_id])
    if not chosen:
        raise RuleSelectionError("argument --rules: no regime named")
    return tuple(dict.fromkeys(chosen))


def device_rules(as_of: datetime.date | None, scopes: tuple[str, ...] = ("device", "hbm-stack")
                 ) -> tuple[RuleSet, ...]:
    """Regimes with a threshold of one of `scopes`, proposals (bills, NPRMs) left out; with a date,
    only those then in force. `check --rules all` still evaluates the proposals."""
    rules = [r for r in load_rules() if set(scopes) & set(r.scopes()) and r.status != "proposed"]
    if as_of is not None:
        rules = [r for r in rules if r.in_force_on(as_of)]
    return tuple(rules)


def check_subject(subject: Subject, rules: tuple[RuleSet, ...], as_of: datetime.date,
                  near_pct: float, tf32_bits: int = DEFAULT_TF32_BITS) -> Checked:
    """Every regime on every basis. Declared TPP follows `tf32_bits` (thresholds.tf32); where the
    other TF32 convention would give another outcome, the verdict carries a note saying so."""
    if tf32_bits != DEFAULT_TF32_BITS:  # the subject's declared TPP (and PD) under the chosen reading
        subject = dataclasses.replace(subject, metric_sets=tuple(
            under_convention(ms, tf32_bits) or ms for ms in subject.metric_sets))
    other = other_convention(tf32_bits)
    readings = [(ms, under_convention(ms, other)) for ms in subject.metric_sets]
    verdicts = []
    for rule in rules:
        for metrics, alternative in readings:
            verdict = evaluate(rule, metrics, as_of=as_of, near_pct=near_pct)
            if alternative is not None and verdict.applicable:
                note = difference_note(verdict, evaluate(rule, alternative, as_of=as_of, near_pct=near_pct),
                                       alternative, other)
                if note is not None:
                    verdict = dataclasses.replace(verdict, notes=(*verdict.notes, note))
            verdicts.append(verdict)
    return Checked(subject, tuple(verdicts))


def run_check(subjects: list[str], rules: str | None, as_of: datetime.date | None,
              near_pct: float, tf32_bits: int = DEFAULT_TF32_BITS) -> list[Checked]:
    day = as_of or datetime.date.today()
    chosen = select_rules(rules, day)
    out = []
    for text in subjects:
        for subject in resolve(text):
            out.append(check_subject(subject, chosen, day, near_pct, tf32_bits))
    return out


def document(checked: list[Checked]) -> dict:
    return {"subjects": [subject_json(c.subject, list(c.verdicts)) for c in checked]}
