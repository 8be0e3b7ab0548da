"""A part's status through time: the outcome under every device-level regime at each date on
which any regime came into force, changed (a licence note with its own date) or lapsed.

Data, not code: the dates come from the rule files (effective_from, status_date, licence-note
effective_from; a proposal that never came into force gives no date), and each outcome is the
existing `evaluate` run on the subject's primary basis as of that date.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from thresholds.evaluate import evaluate
from thresholds.model import BOX_EFFECTS, RuleSet, Subject, Verdict
from results.render.verdict_text import cell
from results.render.verdict_json import verdict_json
from results.render.verdict_text import LABELS, SUFFIX, num

SCOPE_WORDS = {"cluster": "cluster", "model": "model training compute", "allocation": "export volumes",
               "hbm-stack": "HBM stacks", "device": "devices"}


@dataclass(frozen=True)
class RuleEvent:
    date: datetime.date
    rule_set: str
    kind: str  # "in force" | "superseded" | "revoked" | "not enforced" | "licence change"
    text: str


@dataclass(frozen=True)
class HistoryRow:
    date: datetime.date
    events: tuple[RuleEvent, ...]
    verdicts: tuple[tuple[str, Verdict | None], ...]  # (regime id, verdict; None = not in force)
    changed: tuple[str, ...]  # regimes whose outcome differs from the previous row

    def verdict(self, rule_set: str) -> Verdict | None:
        return dict(self.verdicts).get(rule_set)


@dataclass(frozen=True)
class History:
    subject: Subject
    basis: str | None
    regimes: tuple[str, ...]
    rows: tuple[HistoryRow, ...]


def rule_events(rules: tuple[RuleSet, ...]) -> tuple[RuleEvent, ...]:
    """Every dated change in the rule data, oldest first."""
    events = []
    for r in rules:
        if r.status == "proposed" or r.effective_from is None:
            continue
        scopes = ", ".join(SCOPE_WORDS.get(s, s) for s in r.scopes())
        events.append(RuleEvent(r.effective_from, r.id, "in force",
                                f"{r.id} in force ({r.citation.split(',')[0]}; thresholds for {scopes})"))
        if r.status_date is not None:
            note = f": {r.status_note}" if r.status_note else ""
            events.append(RuleEvent(r.status_date, r.id, r.status, f"{r.id} {r.status}{note}"))
        for n in r.licence_notes:
            if n.effective_from is not None:
                events.append(RuleEvent(n.effective_from, r.id, "licence change",
                                        f"{r.id} licence exceptions change for {', '.join(n.paragraphs)}: "
                                        f"{_shorten(n.text, 110)}"))
    return tuple(sorted(events, key=lambda e: (e.date, e.rule_set, e.kind)))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def device_regimes(rules: tuple[RuleSet, ...]) -> tuple[RuleSet, ...]:
    """Regimes with a threshold on a single device (the ones a part's outcome can change under)."""
    return tuple(r for r in rules if "device" in r.scopes() and r.status != "proposed")


def history(subject: Subject, rules: tuple[RuleSet, ...], near_pct: float = 10.0) -> History:
    regimes = device_regimes(rules)
    events = rule_events(rules)
    metrics = subject.primary
    dates = sorted({e.date for e in events})
    rows: list[HistoryRow] = []
    previous: dict[str, str] = {}
    for day in dates:
        verdicts = []
        for r in regimes:
            v = evaluate(r, metrics, as_of=day, near_pct=near_pct) if metrics and r.in_force_on(day) else None
            verdicts.append((r.id, v))
        cells = {rid: cell_word(v) for rid, v in verdicts}
        changed = tuple(rid for rid, c in cells.items() if c != previous.get(rid, "-"))
        previous = cells
        rows.append(HistoryRow(day, tuple(e for e in events if e.date == day), tuple(verdicts), changed))
    return History(subject, metrics.basis if metrics else None, tuple(r.id for r in regimes), tuple(rows))


def cell_word(v: Verdict | None) -> str:
    """The table cell: '-' not in force; else the devices table's cell (3A090.a.1, not, inside, ?)."""
    return "-" if v is None else cell(v)


def why(row: HistoryRow) -> list[str]:
    """What changed on this date and why, one line per event and per changed outcome."""
    return [e.text for e in row.events] + (change_lines(row) or ["no device-level outcome changes"])


def change_lines(row: HistoryRow) -> list[str]:
    """One line per regime whose outcome changed on this date: the new outcome and why."""
    lines = []
    for rid in row.changed:
        v = row.verdict(rid)
        if v is None:
            lines.append(f"{rid}: no longer in force, its outcome lapses")
        else:
            lines.append(f"{rid}: {outcome_words(v)}: {v.reason}{deciding_margins(v)}{nearest_words(v)}")
    return lines


def outcome_words(v: Verdict) -> str:
    if v.effect in BOX_EFFECTS:
        area = "the tariff boxes" if v.effect == "duty" else "the band"
        return {True: f"inside {area}", False: f"outside {area}", None: f"{area} undecided"}[v.met]
    return {"controlled": f"controlled ({v.paragraph})", "not_controlled": "not controlled",
            "indeterminate": "undecided"}[v.outcome]


def deciding_margins(v: Verdict) -> str:
    """Margins of the clauses that decided: those of the paragraph met, else those that failed."""
    decided = v.paragraph or v.exemption or (v.paragraphs_met[0] if v.paragraphs_met else None)
    chosen = [c for c in v.clauses if c.margin_pct is not None and
              (c.paragraph == decided if decided else c.result is False)]
    seen = dict.fromkeys(f"{LABELS[c.clause.metric]} {c.margin_pct:+.1f}%" for c in chosen)
    return f"; margin {', '.join(seen)}" if seen else ""


def nearest_words(v: Verdict) -> str:
    n = v.nearest
    if n is None:
        return ""
    return (f" [nearest: {LABELS[n.metric]} {num(n.value)} vs {n.comparator} {num(n.threshold)}"
            f"{SUFFIX.get(n.metric, '')}, {n.margin_pct:+.1f}%]")


def history_json(h: History) -> dict:
    return {
        "subject": h.subject.name, "kind": h.subject.kind, "ref": h.subject.ref,
        "catalog_id": h.subject.part_id, "basis": h.basis, "regimes": list(h.regimes),
        "rows": [{
            "date": row.date.isoformat(),
            "events": [{"rule_set": e.rule_set, "kind": e.kind, "text": e.text} for e in row.events],
            "outcomes": {rid: ({"in_force": False, "cell": "-"} if v is None else
                               {"in_force": True, "cell": cell_word(v), **_short_verdict(verdict_json(v))})
                         for rid, v in row.verdicts},
            "changed": list(row.changed),
            "why": why(row),
            "changes": change_lines(row),
        } for row in h.rows],
    }


def _short_verdict(full: dict) -> dict:
    keep = ("outcome", "paragraph", "effect", "met", "near_limit", "nearest", "reason", "exemption")
    return {k: full[k] for k in keep}
