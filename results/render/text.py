"""Plain terminal text: aligned tables with control characters from result files neutralised."""

from __future__ import annotations

from typing import Any, Sequence

from results.analysis.compare import Comparison
from results.render.units import human_rate, ratio_text
from results.terminal import printable


def clean(value: Any) -> str:
    """A value as one terminal-safe line (no escape sequences, newlines or tabs)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(clean(v) for v in value) or "-"
    return printable(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[clean(h) for h in headers]] + [[clean(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def comparison_cells(comp: Comparison) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows of the per-case comparison table (shared by the text and Markdown views)."""
    many = len(comp.currents) > 1
    headers = ["case"] + (["in"] if many else []) + ["baseline", "current", "ratio", "change", "why"]
    rows = []
    for r in comp.rows:
        case = f"{r.key} [{r.device}]" if r.device else r.key
        rows.append([case] + ([r.current_source] if many else []) + [
            human_rate(r.baseline_rate, r.rate_unit), human_rate(r.current_rate, r.rate_unit),
            ratio_text(r.ratio), r.change, r.reason,
        ])
    return headers, rows


def comparison(comp: Comparison) -> str:
    out = [f"baseline: {clean(comp.baseline.source)}  ({_side_words(comp.baseline)})"]
    for cur in comp.currents:
        out.append(f"current:  {clean(cur.source)}  ({_side_words(cur)})")
    out.append("")
    many = len(comp.currents) > 1
    if comp.differences:
        out.append("context that differs:")
        rows = [
            [d.label, d.baseline, "->", d.current] + ([d.current_source] if many else [])
            for d in comp.differences
        ]
        out.append(_indent(table(["what", "baseline", "", "current"] + (["in"] if many else []), rows)))
    else:
        out.append("context: no differences in driver, CUDA, torch, NCCL, power limit, clocks, ECC")
    if comp.throttled:
        out.append("throttled cases: " + "; ".join(
            f"{t.side} {clean(t.key)}{' ' + t.device if t.device else ''}" for t in comp.throttled
        ))
    out.append("")
    out.append(table(*comparison_cells(comp)))
    counts = comp.counts()
    out.append("")
    out.append(f"factor x{comp.factor:g}, alpha {comp.alpha:g}: " + ", ".join(
        f"{n} {c}" for c, n in counts.items() if n
    ) if comp.rows else "no cases to compare")
    return "\n".join(out) + "\n"


def _side_words(side: Any) -> str:
    devices = ", ".join(sorted(set(side.devices))) or "no device"
    label = f", label {side.label}" if side.label else ""
    return clean(f"host {side.host}, {devices}, {side.started_utc}{label}")


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def fleet(analysis: Any, files_read: int, skipped: int, top: int = 20) -> str:
    """The fleet tables: per metric and model, outlier GPUs and hosts, slowest GPU per host."""
    out = [
        f"fleet: {files_read} files, {analysis.measurement_count} measurements, "
        f"{analysis.gpu_count} GPUs on {analysis.host_count} hosts"
        + (f"; {skipped} bad files skipped" if skipped else ""),
        "",
        "per metric and device model (GPU rates are medians over their runs):",
    ]
    summary_rows = [
        [s.key, s.device_name, s.count, s.gpus, s.hosts, human_rate(s.median, s.rate_unit),
         human_rate(s.mad, s.rate_unit), human_rate(s.min, s.rate_unit), human_rate(s.max, s.rate_unit)]
        for s in analysis.summary.itertuples(index=False)
    ]
    out.append(table(["case", "device", "n", "gpus", "hosts", "median", "MAD", "min", "max"], summary_rows))
    out += ["", f"outlier GPUs ({analysis.rule.describe()}; worst case shown):"]
    out.append(_limited(analysis.gpu_outliers, top, lambda o: [
        o.host, o.device_index, o.gpu, f"{o.flagged_cases}/{o.cases}", o.key,
        human_rate(o.value, o.rate_unit), human_rate(o.fleet_median, o.rate_unit), _z(o.robust_z),
        f"{o.pct_below_median:.1f}%", o.direction,
    ], ["host", "index", "gpu", "cases off", "worst case", "rate", "fleet median", "robust z",
        "below median", "side"]))
    out += ["", f"outlier hosts (host value = median of its GPUs; {analysis.rule.describe()}):"]
    out.append(_limited(analysis.host_outliers, top, lambda o: [
        o.host, o.gpus, f"{o.flagged_cases}/{o.cases}", o.key, human_rate(o.value, o.rate_unit),
        human_rate(o.fleet_median, o.rate_unit), _z(o.robust_z), f"{o.pct_below_median:.1f}%", o.direction,
    ], ["host", "gpus", "cases off", "worst case", "host value", "fleet median", "robust z",
        "below median", "side"]))
    out += ["", "slowest GPU of each host (relative speed = median over cases of rate / fleet median):"]
    out.append(_limited(analysis.slowest, top, lambda s: [
        s.host, s.device_index, s.gpu, s.device_name, s.gpus_on_host, f"{s.relative_speed:.3f}",
        s.worst_key, f"{s.worst_ratio:.3f}",
    ], ["host", "index", "gpu", "device", "gpus", "relative speed", "worst case", "its ratio"],
        total=analysis.slowest_rows))
    return "\n".join(out) + "\n"


def _limited(frame: Any, top: int, cells: Any, headers: list[str], total: int | None = None) -> str:
    """The first `top` rows of `frame`; `total`: the length of the whole table when `frame`
    holds only its first rows."""
    total = len(frame) if total is None else total
    if total == 0:
        return "  none"
    shown = frame.head(top)
    text = table(headers, [cells(r) for r in shown.itertuples(index=False)])
    if total > top:
        text += f"\n... and {total - top} more (all rows: --csv, or --top)"
    return text


def _z(value: float) -> str:
    return "-" if value != value else f"{value:+.1f}"
