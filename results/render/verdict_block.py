"""The answer `run` and `show` end with: per measured device, three to six lines.

Matched catalog part (or "no catalog match"); its declared TPP / PD / I/O / DRAM bandwidth; the
outcome under each device-level regime in force today with the nearest threshold and margin; the
measured TPP and memory bandwidth as a percentage of the declared figures; a "near limit" line
when a threshold lies within `near_pct`; an `above_peak` line when a measured rate exceeds the
datasheet peak. The evaluation is `check`'s (thresholds.check / evaluate); `check --json` stays
the machine-readable form.
"""

from __future__ import annotations

import datetime

from results.errors import TppbenchError
from results.files.schema import RunResult
from thresholds.check import check_subject, device_rules
from thresholds.model import BOX_EFFECTS, PRECISION_BITS, Interval, MetricSet, Subject, Verdict
from thresholds.subjects import subjects_of_result
from results.render.verdict_text import LABELS, SUFFIX, num, value_text
from thresholds.whatif import METRIC_ORDER

SHORT = {"tpp": "TPP", "performance_density": "PD", "io_bidirectional_gbs": "I/O",
         "memory_bandwidth_gbs": "DRAM"}


def verdict_block(result: RunResult, origin: str, as_of: datetime.date | None = None,
                  near_pct: float = 10.0) -> list[str]:
    """Plain text lines (not yet terminal-escaped). Never raises for want of catalog or rules."""
    day = as_of or datetime.date.today()
    try:
        rules = device_rules(day, scopes=("device",))
        subjects = subjects_of_result(result, origin)
    except TppbenchError as exc:
        return [f"Export-control verdicts: not available ({exc})"]
    lines = [f"Export-control verdicts (device-level regimes in force on {day}; details and sources: "
             f"tppbench check {origin}):"]
    for subject in subjects:
        checked = check_subject(subject, rules, day, near_pct)
        lines.extend(device_lines(subject, checked.verdicts, near_pct))
    return lines


def device_lines(subject: Subject, verdicts: tuple[Verdict, ...], near_pct: float) -> list[str]:
    index = subject.ref.rsplit("#", 1)[-1]
    if subject.part_id:
        how = (subject.match or "").split(" (")[0]
        head = f"device {index} {subject.name}: catalog {subject.part_id} (matched by {how})"
    else:
        head = f"device {index} {subject.name}: no catalog match"
    lines = [head]
    primary = subject.primary
    if primary is not None and primary.basis != "measured":
        lines.append(f"  {primary.basis}: " + ", ".join(_figure(primary, m) for m in METRIC_ORDER))
    shown = [v for v in verdicts if v.basis == (primary.basis if primary else None) and v.applicable]
    for v in shown:
        lines.append(f"  {v.rule_set}: {_outcome(v)}" + _nearest(v))
    measured = subject.basis("measured")
    if measured is not None:
        lines.append("  measured: " + _measured(measured, primary))
    near = [v for v in shown if v.near_limit and v.nearest is not None]
    if near:
        lines.append("  near limit: " + "; ".join(
            f"{LABELS[v.nearest.metric]} {num(v.nearest.value)} is {v.nearest.margin_pct:+.1f}% from "
            f"{num(v.nearest.threshold)} ({v.rule_set} {v.nearest.paragraph})" for v in near)
            + f" (within {near_pct:g}%)")
    lines.extend(f"  {n}" for n in subject.notes if n.startswith("published: "))
    above = [n for n in (measured.notes if measured else ()) if n.startswith("above_peak:")]
    if above:
        lines.append("  " + above[0].replace("above_peak:", "ABOVE PEAK:", 1)
                     + (f" (+{len(above) - 1} more: tppbench check)" if len(above) > 1 else ""))
    return lines


def _figure(metrics: MetricSet, metric: str) -> str:
    value = metrics.get(metric).value
    return f"{SHORT[metric]} {value_text(value)}{SUFFIX.get(metric, '')}"


def _outcome(v: Verdict) -> str:
    if v.effect in BOX_EFFECTS:
        word = {True: "inside", False: "outside", None: "undecided against"}[v.met]
        where = v.paragraphs_met[0] if v.paragraphs_met else ("the tariff boxes" if v.effect == "duty" else "the band")
        return f"{word} {where}" + (" (a duty on US import: see its rule data)" if v.effect == "duty" and v.met else "")
    if v.outcome == "controlled":
        return f"CONTROLLED {v.paragraph}"
    if v.outcome == "not_controlled":
        return "not controlled" + (f" ({v.exemption})" if v.exemption else "")
    return "undecided" + (" (measured basis: a lower bound)" if v.basis == "measured" else "")


def _nearest(v: Verdict) -> str:
    n = v.nearest
    if n is None:
        return ""
    where = "" if v.effect in BOX_EFFECTS else f", {n.paragraph}"
    return (f"; nearest {LABELS[n.metric]} {num(n.value)} vs {n.comparator} {num(n.threshold)}"
            f"{SUFFIX.get(n.metric, '')} ({n.margin_pct:+.1f}%{where})")


def _measured(measured: MetricSet, peak: MetricSet | None) -> str:
    parts = []
    for metric in ("tpp", "memory_bandwidth_gbs"):
        mv = measured.get(metric)
        if not isinstance(mv.value, Interval):
            continue
        text = f"{SHORT[metric]} {value_text(mv.value)}{SUFFIX.get(metric, '')}"
        precisions = mv.inputs.get("precisions") or ()
        if metric == "tpp" and precisions:
            bits = PRECISION_BITS[precisions[0]]
            text += f" ({precisions[0]} {num(mv.value.lo / bits)} TOPS x {bits})"
        declared = peak.get(metric).value if peak is not None and peak.basis != "measured" else None
        if isinstance(declared, Interval) and declared.central > 0:
            text += f" = {mv.value.lo / declared.central * 100:.0f}% of {peak.basis} {value_text(declared)}"
        parts.append(text)
    if not parts:
        return "no matmul or memory rate"
    if peak is None or peak.basis == "measured":
        parts.append("no declared figure to compare with")
    return "; ".join(parts)
