"""GitHub-flavoured Markdown for pull requests and terminals. Every value from a file is escaped."""

from __future__ import annotations

import re
from typing import Any, Sequence

from results.analysis.compare import Comparison
from results.render.text import clean, comparison_cells
from results.render.units import human_rate, interval_text, percent

_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def esc(value: Any) -> str:
    """Inert Markdown: HTML metacharacters as entities, Markdown syntax backslash-escaped."""
    text = clean(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(esc(h) for h in headers) + " |",
             "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def comparison(comp: Comparison) -> str:
    many = len(comp.currents) > 1
    out = ["## tppbench compare", ""]
    out.append(f"- baseline: `{_code(comp.baseline.source)}`: {_side(comp.baseline)}")
    for cur in comp.currents:
        out.append(f"- current: `{_code(cur.source)}`: {_side(cur)}")
    counts = ", ".join(f"{n} {c}" for c, n in comp.counts().items() if n) or "no cases"
    out += [f"- factor x{comp.factor:g}, alpha {comp.alpha:g}: **{counts}**", ""]
    if comp.differences:
        out += ["### Context that differs", ""]
        out.append(table(
            ["what", "baseline", "current"] + (["in"] if many else []),
            [[d.label, d.baseline, d.current] + ([d.current_source] if many else [])
             for d in comp.differences],
        ))
        out.append("")
    if comp.throttled:
        out += ["Throttled cases: " + "; ".join(
            f"{t.side} {esc(t.key)}{' ' + esc(t.device) if t.device else ''}" for t in comp.throttled
        ), ""]
    out += ["### Cases", ""]
    out.append(table(*comparison_cells(comp)))
    return "\n".join(out) + "\n"


def _side(side: Any) -> str:
    devices = ", ".join(sorted(set(side.devices))) or "no device"
    return esc(f"host {side.host}, {devices}, {side.started_utc}")


def _code(text: str) -> str:
    return clean(text).replace("`", "'")


def report(data: Any) -> str:
    """The report's five sections as Markdown tables (no figures)."""
    subjects = {s.id: s.label for s in data.subjects}
    out = [f"# {esc(data.title)}", "",
           f"Generated {esc(data.generated_utc)}; verdicts as of {esc(data.as_of)}; near limit = within "
           f"{data.near_pct:g}% of a threshold.", ""]
    out += [f"- `{_code(s)}`" for s in data.sources]
    out += ["", "## 1. TPP versus performance density", "",
            f"2023 rule regions from {esc(data.regions_source)}: "
            + "; ".join(f"{esc(r.label)} TPP {interval_text(r.tpp_min, r.tpp_max)}, PD {interval_text(r.pd_min, r.pd_max)}"
                        for r in data.regions), ""]
    out.append(table(["point", "TPP", "performance density", "2023 regions"], [
        [p.label, f"{p.tpp:,.1f}", "-" if p.pd is None else f"{p.pd:.2f}",
         ", ".join(p.regions) or ("none" if p.pd is not None else "unknown (no die area)")]
        for p in data.map_points if p.kind != "catalog"]))
    out += ["", "### TPP versus DRAM bandwidth (2026 licence-review band)", "",
            f"Band from {esc(data.bands_source or 'no rule data')}: "
            + "; ".join(f"{esc(b.label)} TPP {interval_text(b.tpp_min, b.tpp_max)}, DRAM "
                        f"{interval_text(b.dram_min_gbs, b.dram_max_gbs)} GB/s" for b in data.bands), ""]
    out.append(table(["point", "TPP", "DRAM GB/s", "2026 band"], [
        [p.label, f"{p.tpp:,.1f}", f"{p.dram_gbs:,.0f}", ", ".join(p.inside) or "outside"]
        for p in data.band_points if p.kind != "catalog"]))
    out += ["", "## 2. Measured versus datasheet peak", ""]
    out.append(table(["device", "precision", "measured", "devices", "datasheet peak", "% of peak"], [
        [b.group, b.precision, human_rate(b.measured, b.unit), b.devices,
         human_rate(b.peak, b.unit) if b.peak else "-",
         percent(b.percent_of_peak) + (" ABOVE PEAK" if b.above_peak else "")]
        for b in data.precision]) if data.precision else "No successful matmul measurement.")
    if any(b.above_peak for b in data.precision):
        out += ["", esc(data.above_peak_note)]
    out += ["", "## 3. Bandwidth", ""]
    out.append(table(["device", "family", "variant", "rate", "devices", "bytes counted"], [
        [b.group, b.benchmark, b.variant, human_rate(b.rate, "byte/s"), b.devices, b.convention]
        for b in data.bandwidth]) if data.bandwidth else "No successful bandwidth measurement.")
    for matrix in data.peers:
        out += ["", f"Peer to peer {esc(matrix.variant)} (rows: source, columns: destination):", ""]
        out.append(table(["src \\ dst"] + [f"gpu{d}" for d in matrix.devices], [
            [f"gpu{s}"] + [human_rate(v, "byte/s") for v in row]
            for s, row in zip(matrix.devices, matrix.values)]))
    out += ["", "## 4. Verdicts", ""]
    rows = [[subjects.get(v.subject, v.subject), v.rule_set, v.basis,
             v.outcome + (" (NEAR LIMIT)" if v.near_limit else ""), v.paragraph or "-", v.nearest or "-",
             v.reason] for v in data.verdicts if v.applicable]
    out.append(table(["device", "regime", "basis", "outcome", "paragraph", "nearest threshold", "reason"], rows))
    for h in data.histories:
        out += ["", f"Status through time of {esc(h.label)} ({esc(h.basis or 'no basis')}; - = not in force):", ""]
        out.append(table(["regime", *h.dates], [[rid, *cells] for rid, cells in zip(h.regimes, h.cells)]))
        out += [""] + [f"- {esc(d)}: {esc(t)}" for d, t in h.changes]
    out += ["", "## 5. Telemetry and context", ""]
    throttled = [t for t in data.telemetry if "throttled" in t.flags]
    out.append(table(["file", "device", "case", "throttle reasons"], [
        [t.source, t.device, t.key, ", ".join(t.throttle_reasons) or "-"] for t in throttled])
        if throttled else "No throttled cases.")
    for ctx in data.contexts:
        out += ["", f"Run context of `{_code(ctx.source)}`:", ""]
        out.append(table(["field", "value"], ctx.run))
    return "\n".join(out) + "\n"

