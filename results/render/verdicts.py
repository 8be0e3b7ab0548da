"""Plain-text output of check, devices, rules and whatif.

Device names, paths and probe fields come from result files, so every line is made terminal-safe
(`_lines`): control characters, escape sequences and embedded newlines become '?'."""

from __future__ import annotations

import datetime
import textwrap

from results.render.text import clean
from thresholds.check import Checked
from thresholds.load import load_catalog
from thresholds.model import BOX_EFFECTS, Interval, MetricValue, RuleSet, Verdict
from results.render.verdict_json import DISPLAY_METRICS
from results.render.verdict_text import LABELS, SUFFIX, cell, num, tags_text, value_text
from thresholds.whatif import METRIC_ORDER, WhatIf

OUTCOME_WORDS = {"controlled": "CONTROLLED", "not_controlled": "not controlled", "indeterminate": "INDETERMINATE"}
METRIC_TITLES = {
    "tpp": "TPP",
    "performance_density": "performance density (TPP/mm2)",
    "io_bidirectional_gbs": "I/O bidirectional (GB/s)",
    "memory_bandwidth_gbs": "memory bandwidth (GB/s)",
    "interconnect_bandwidth_gbs": "interconnect (GB/s) [bills]",
    "dram_plus_interconnect_gbs": "DRAM + interconnect (GB/s)",
    "datacenter": "datacenter part",
}


def _lines(lines: list[str]) -> str:
    """Join output lines, each made one terminal-safe line; ends with a newline."""
    return "\n".join(clean(line) for line in lines).rstrip() + "\n"


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return lines


def _metric_cell(mv: MetricValue) -> str:
    text = value_text(mv.value)
    if mv.value is not None and "R" in mv.tags:
        text += " (unverified)"
    return text


def _source_cell(mv: MetricValue) -> str:
    if mv.value is None:
        return mv.missing or ""
    return f"{mv.source} {tags_text(mv.tags)}".strip()


def verdict_lines(v: Verdict, indent: str = "    ", shown: set[str] | None = None) -> list[str]:
    """Lines for one verdict; notes and licence notes already in `shown` are not repeated."""
    shown = set() if shown is None else shown
    head = f"{v.basis:<14} {OUTCOME_WORDS[v.outcome]}"
    if v.effect != "controlled" and v.applicable:
        head = f"{v.basis:<14} {'informational (' + v.effect + ')'}"
        if v.met is None:
            head += ": INDETERMINATE"
    if v.paragraph:
        head += f"  {v.paragraph}"
    lines = [indent + head, f"{indent}  {v.reason}"]
    if v.nearest is not None:
        n = v.nearest
        lines.append(
            f"{indent}  nearest threshold: {LABELS.get(n.metric, n.metric)} {n.comparator} {num(n.threshold)}"
            f"{SUFFIX.get(n.metric, '')} ({n.paragraph}), value {num(n.value)}, margin {n.margin_pct:+.1f}%"
            + ("  NEAR LIMIT" if v.near_limit else ""))
    label = "condition" if v.effect in BOX_EFFECTS else "licence"  # a band's shipment conditions
    for note in v.licence_notes:
        if note not in shown:
            shown.add(note)
            lines.append(f"{indent}  {label}: {note}")
    for note in v.notes:
        if note not in shown:
            shown.add(note)
            lines.append(f"{indent}  note: {note}")
    return lines


def render_check(checked: list[Checked], rules: tuple[RuleSet, ...], as_of: datetime.date) -> str:
    out: list[str] = []
    by_id = {r.id: r for r in rules}
    for item in checked:
        s = item.subject
        out.append(f"== {s.name}  ({s.kind} {s.ref})")
        if s.match:
            out.append(f"   catalog: {s.part_id}, matched by {s.match}")
        rows = []
        for ms in s.metric_sets:
            for m in DISPLAY_METRICS:
                mv = ms.get(m)
                rows.append([METRIC_TITLES[m], _metric_cell(mv), ms.basis, _source_cell(mv)])
        out.extend("   " + line for line in _table(rows, ["metric", "value", "basis", "source"]))
        shown: set[str] = set()
        for note in (*s.notes, *(n for ms in s.metric_sets for n in ms.notes)):
            if note not in shown:
                shown.add(note)
                out.append(f"   note: {note}")
        for gap in s.gaps:
            out.append(f"   gap: {gap}")
        if not rules:
            out.append(f"  no regime selected: none is in force on {as_of} (see `tppbench rules`; --rules all)")
        current = None
        for v in item.verdicts:
            if v.rule_set != current:
                current = v.rule_set
                licence_shown = set(shown)
                rule = by_id[v.rule_set]
                state = "in force" if v.in_force else f"{rule.status}, not in force on {as_of}"
                out.append(f"  {rule.id} ({state}): {rule.title}")
                if not v.applicable:
                    out.append(f"    {v.reason}")
                    continue
            if v.applicable:
                out.extend(verdict_lines(v, shown=licence_shown))
        out.append("")
    return _lines(out)


def _thousands(x: float) -> str:
    return f"{x / 1000:,.1f}".removesuffix(".0") + "k"


def _short_cell(mv: MetricValue, compact_from: float = 100_000) -> str:
    """A devices-table value; '*' marks a figure resting on one the reference marks [R]. A range
    reaching `compact_from` is written in thousands ("100k-200k", "20k-22k") so the table stays
    DEVICES_WIDTH wide (`check ID` prints the full figures)."""
    text = value_text(mv.value)
    value = mv.value
    if isinstance(value, Interval) and value.bounded and not value.is_point and value.hi >= compact_from:
        text = f"{_thousands(value.lo)}-{_thousands(value.hi)}"
    return text + "*" if mv.value is not None and "R" in mv.tags else text


def _regime_state(rule: RuleSet, as_of: datetime.date) -> str:
    if rule.in_force_on(as_of):
        return f"{rule.id}: in force since {rule.effective_from}"
    if rule.status == "proposed":
        return f"{rule.id}: proposed {rule.proposed_on}, never in force"
    if rule.effective_from and as_of < rule.effective_from:
        return f"{rule.id}: in force from {rule.effective_from}"
    return f"{rule.id}: {rule.status} since {rule.status_date}"


DEVICES_WIDTH = 120  # `tppbench devices` stays one screen wide


def column_heading(rule_id: str) -> str:
    """A regime's column heading in `devices`: its id without the "us-" every US regime shares, so
    the table stays within DEVICES_WIDTH (the notes under it give the full ids)."""
    return rule_id.removeprefix("us-")


def render_devices(checked: list[Checked], rules: tuple[RuleSet, ...],
                   as_of: datetime.date | None = None) -> str:
    """The catalog table, grouped by vendor (a heading line per vendor), at most DEVICES_WIDTH wide."""
    as_of = as_of or datetime.date.today()
    stack_only = [r for r in rules if "device" not in r.scopes()]
    rules = tuple(r for r in rules if "device" in r.scopes())
    header = ["id", "TPP", "PD", "I/O GB/s", "DRAM GB/s", "DC", *[column_heading(r.id) for r in rules]]
    vendor_of = {p.id: p.vendor or "other" for p in load_catalog()}
    first_seen: dict[str, int] = {}
    for item in checked:
        first_seen.setdefault(vendor_of.get(item.subject.part_id or "", "other"), len(first_seen))
    # one heading per vendor: parts of a vendor listed in a later file join its group
    checked = sorted(checked, key=lambda item: first_seen[vendor_of.get(item.subject.part_id or "", "other")])
    rows, vendors = [], []
    for item in checked:
        m = item.subject.primary
        verdicts = {v.rule_set: v for v in item.verdicts}
        vendors.append(vendor_of.get(item.subject.part_id or "", "other"))
        rows.append([
            item.subject.ref,
            _short_cell(m.get("tpp")), _short_cell(m.get("performance_density")),
            _short_cell(m.get("io_bidirectional_gbs")), _short_cell(m.get("memory_bandwidth_gbs"), 10_000),
            value_text(m.get("datacenter").value),
            *[cell(verdicts[r.id]) if r.id in verdicts else "" for r in rules],
        ])
    table = _table(rows, header)
    lines = table[:2]
    current = None
    for vendor, line in zip(vendors, table[2:]):
        if vendor != current:
            current = vendor
            lines.append(f"-- {vendor} ({vendors.count(vendor)} parts)")
        lines.append(line)
    notes = [
        "Peak-declared figures from thresholds/devices/*.toml (a-b: published range, 100k = 100,000; * = rests on a figure "
        "the reference marks [R]: recalled, unverified; ? = indeterminate, "
        "e.g. a figure is unpublished or a range straddles a threshold; ~ = a threshold within 10%; "
        "n/a = the regime has no device-level threshold; inside/outside = informational band, or a tariff box; "
        "a column heading is the regime's id without 'us-').",
        f"Regimes on {as_of}: " + "; ".join(_regime_state(r, as_of) for r in (*rules, *stack_only)) + "."
        + (f" Not a column: {', '.join(r.id for r in stack_only)} (thresholds for HBM stacks only: n/a for "
           "every part; see --json)." if stack_only else ""),
        "Regimes with only cluster, model or allocation thresholds: see `tppbench rules` and `tppbench whatif`.",
        "Details and sources: tppbench check ID [--json]; a part through time: tppbench history ID.",
    ]
    lines.append("")
    for note in notes:
        lines.extend(textwrap.wrap(note, DEVICES_WIDTH - 1))
    return _lines(lines)


def _clauses_text(p) -> str:
    def one(c) -> str:
        if isinstance(c.value, bool):
            return f"{c.metric} is {'true' if c.value else 'false'}"
        unverified = " (unverified [R])" if "R" in c.tags else ""
        return f"{c.metric} {c.comparator} {num(float(c.value))} {c.unit}{unverified}"

    return (" and " if p.combine == "all" else " or ").join(one(c) for c in p.clauses)


def render_rules(rules: tuple[RuleSet, ...], as_of: datetime.date) -> str:
    rows = []
    for r in rules:
        start = r.effective_from.isoformat() if r.effective_from else f"proposed {r.proposed_on}"
        end = r.status_date.isoformat() if r.status_date else ""
        rows.append([r.id, "yes" if r.in_force_on(as_of) else "no", r.status, start, end,
                     ", ".join(r.scopes()), r.citation])
    lines = _table(rows, ["id", f"in force {as_of}", "status", "from", "until", "scope", "citation"])
    lines.append("")
    for r in rules:
        lines.append(f"{r.id}: {r.title}")
        for p in r.paragraphs:
            lines.append(f"  {p.label} [{p.scope}, {p.effect}]: {_clauses_text(p)} {tags_text(p.tags)}".rstrip())
        for e in r.exemptions:
            lines.append(f"  exemption {e.label}: {_clauses_text(e)} {tags_text(e.tags)}".rstrip())
        if r.status_note:
            lines.append(f"  status: {r.status_note}")
    return _lines(lines)


def _days(days: float | None) -> str:
    if days is None:
        return "-"
    if days < 1:
        return f"{days * 24:,.1f} h"
    if days >= 365 * 2:
        return f"{days:,.0f} d ({days / 365.25:,.1f} years)"
    return f"{days:,.1f} d"


def render_whatif(w: WhatIf) -> str:
    s = w.subject
    out = [f"== {s.name}  ({s.kind} {s.ref}), {w.count} device(s)",
           f"Headroom on the {w.basis} basis (factor = threshold / value; < 1: above the threshold):"]
    rows = []
    for h in w.headroom:
        rows.append([
            f"{LABELS[h.metric]} {h.comparator} {num(h.threshold)}{SUFFIX.get(h.metric, '')}",
            value_text(h.value), f"x{h.factor:.3f}", "at/above" if h.at_or_above else "below",
            "; ".join(h.where),
        ])
    if rows:
        out.extend("  " + line for line in _table(rows, ["threshold", "value", "factor", "now", "where"]))
    else:
        out.append("  none: no figure on which a device threshold is written is known for this subject")
    for h in w.headroom:
        if h.own_terms:
            out.append(f"  {LABELS[h.metric]} {h.comparator} {num(h.threshold)}: " + "; ".join(h.own_terms))
    if w.cuts:
        out.append("What was cut: " + w.cuts[0])
        out.extend(f"  {line}" for line in w.cuts[1:])
    out.append("")
    peak = f"{num(w.peak_ops_per_s)} op/s ({w.peak_precision} dense peak)" if w.peak_ops_per_s else "unknown"
    out.append(f"Per device: peak {peak}; measured "
               + (f"{num(w.measured_ops_per_s)} op/s ({w.measured_precision}, {w.measured_source})"
                  if w.measured_ops_per_s else "none"))
    if w.peak_ops_per_s:
        out.append(f"{w.count} device(s): aggregate peak {num(w.peak_ops_per_s * w.count)} op/s"
                   + (f", measured {num(w.measured_ops_per_s * w.count)} op/s" if w.measured_ops_per_s else ""))
    for v in w.cluster_verdicts:
        out.append(f"  {v.rule_set} ({v.status}):")
        out.extend(verdict_lines(v, "    "))
    if w.devices_to_reach:
        out.append("Devices to reach each cluster / allocation threshold:")
        out.extend(f"  {line}" for line in w.devices_to_reach)
    out.append("")
    out.append(f"Training compute horizons for {w.count} device(s) (days of continuous running at the "
               f"fastest dense precision: peak {w.peak_precision or '-'}, measured {w.measured_precision or '-'}):")
    rows = [[f"{num(h.ops)} op", _days(h.days_at_peak), _days(h.days_at_measured), "; ".join(h.where)]
            for h in w.horizons]
    out.extend("  " + line for line in _table(rows, ["threshold", "at peak", "at measured", "where"]))
    for note in w.notes:
        out.append(f"note: {note}")
    return _lines(out)


def render_history(histories: list) -> str:
    """`tppbench history`: one table per subject (a row per date, a column per device-level
    regime), each row followed by what changed on that date and why."""
    from thresholds.history import cell_word, why

    out: list[str] = []
    for h in histories:
        s = h.subject
        figures = ""
        if s.primary is not None:
            figures = ", " + s.primary.basis + ": " + ", ".join(
                f"{LABELS[m]} {value_text(s.primary.get(m).value)}{SUFFIX.get(m, '')}"
                for m in METRIC_ORDER)
        out.append(f"== {s.name}  ({s.kind} {s.ref}){figures}")
        if not h.rows:
            out.append("  no dated regime in the rule data")
            continue
        header = ["date", *h.regimes]
        rows = [[row.date.isoformat(), *[cell_word(row.verdict(r)) for r in h.regimes]] for row in h.rows]
        table = _table(rows, header)
        out.extend("  " + line for line in table[:2])
        for line, row in zip(table[2:], h.rows):
            out.append("  " + line)
            out.extend("      " + text for text in why(row))
        out.append("")
    out.append("Cells: - = not in force on that date; otherwise as in `tppbench devices` (paragraph met, "
               "not, not (Note 2), inside/outside the band, ? = undecided, ~ = a threshold within the "
               "--near percentage). Dates and thresholds come from thresholds/rules/*.toml.")
    return _lines(out)
