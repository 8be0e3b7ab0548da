"""The summary table that `tppbench run` ends with and `tppbench show` prints (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from results.files.schema import Measurement, RunResult
from results.terminal import printable

# work unit -> (display unit, divisor)
DISPLAY_UNITS = {"flop": ("TFLOP/s", 1e12), "op": ("TOP/s", 1e12), "byte": ("GB/s", 1e9)}


def _safe(text: str) -> str:
    """Text from a result file as a rich cell: no terminal escapes, no rich markup."""
    return escape(printable(text))


def display_rate(m: Measurement) -> tuple[str, str]:
    """(number, unit) in the table's units; '-' when there is no rate."""
    unit, divisor = DISPLAY_UNITS.get(m.unit, (f"{m.unit}/s", 1.0))
    if m.rate is None:
        return "-", unit
    return f"{m.rate / divisor:.4g}", unit


def best_of_sweep(result: RunResult) -> dict[tuple[int | None, str], Measurement]:
    """Per (device, precision): the fastest ok matmul shape (reference or sweep)."""
    best: dict[tuple[int | None, str], Measurement] = {}
    for m in result.measurements:
        if m.benchmark != "matmul" or m.status != "ok" or m.rate is None or m.precision is None:
            continue
        slot = (m.device_index, m.precision)
        if slot not in best or m.rate > (best[slot].rate or 0):
            best[slot] = m
    return best


def summary_table(result: RunResult) -> Table:
    run = result.run
    devices = ", ".join(f"[{d.index}] {d.name}" for d in result.devices) or "-"
    title = f"{run.host} | {run.backend or '?'} | {devices} | mode {run.mode}"
    if not run.complete:
        title += f" | INCOMPLETE: {run.incomplete_reason}"
    from thresholds.datasheet import ABOVE_PEAK_FRACTION, peak_fractions

    fractions = peak_fractions(result)
    parts = sorted({f.part_id for f in fractions.values()})
    caption = f"of peak: median / datasheet peak of catalog part {', '.join(parts)}" if parts else None
    if any(f.above_peak for f in fractions.values()):
        caption += (f"; ! = above_peak (over {ABOVE_PEAK_FRACTION * 100:.0f}% of the datasheet peak: "
                    "a warning, see the verdicts below)")
    table = Table(title=_safe(title), title_justify="left", show_lines=False, caption=caption,
                  caption_justify="left")
    columns = [("dev", "right"), ("case", "left"), ("median", "right"), ("unit", "left")]
    if fractions:
        columns.append(("of peak", "right"))
    columns += [("CV", "right"), ("n", "right"), ("flags / reason", "left")]
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")
    for position, m in enumerate(result.measurements):
        value, unit = display_rate(m)
        cv = f"{m.stats.cv * 100:.1f}%" if m.stats and m.status == "ok" else "-"
        n = str(m.stats.n) if m.stats else str(len(m.times_s) or "-")
        if m.status == "ok":
            note = _safe(", ".join(m.flags))
        else:
            note = f"[{'yellow' if m.status == 'skipped' else 'red'}]{m.status}[/]: {_safe(m.reason or '')}"
        dev = "-" if m.device_index is None else str(m.device_index)
        if m.rank is not None:
            dev = f"r{m.rank}:{dev}"
        cells = [dev, _safe(m.key), value, _safe(unit)]
        if fractions:
            fraction = fractions.get(position)
            cells.append("-" if fraction is None else
                         f"{fraction.fraction * 100:.0f}%" + (" !" if fraction.above_peak else ""))
        table.add_row(*cells, cv, n, note)
    return table


def sweep_table(result: RunResult) -> Table | None:
    best = best_of_sweep(result)
    if not any(m.variant == "sweep" for m in result.measurements):
        return None
    table = Table(title="achievable matmul rate (best shape of the sweep, MAMF-style)", title_justify="left")
    for name in ("dev", "precision", "best median", "unit", "shape m x n x k"):
        table.add_column(name)
    for (dev, precision), m in sorted(best.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1])):
        value, unit = display_rate(m)
        shape = "x".join(str(m.params.get(x)) for x in ("m", "n", "k"))
        table.add_row("-" if dev is None else str(dev), _safe(precision), value, _safe(unit), _safe(shape))
    return table


def make_console() -> Console:
    """A console for summaries: the terminal's width, or 160 columns in logs and pipes so each
    case keeps one row."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def print_summary(result: RunResult, console: Console | None = None, origin: str = "FILE") -> None:
    """The table, the sweep table, the counts, then the export-control verdict block per device
    (thresholds.verdict_block); `origin` names the file in the block's pointer to `check`."""
    console = console or make_console()
    console.print(summary_table(result))
    extra = sweep_table(result)
    if extra is not None:
        console.print(extra)
    counts = {s: sum(1 for m in result.measurements if m.status == s) for s in ("ok", "skipped", "error")}
    console.print(f"{counts['ok']} ok, {counts['skipped']} skipped, {counts['error']} error")
    from results.render.verdict_block import verdict_block

    for line in verdict_block(result, origin):
        console.print(_safe(line), highlight=False, soft_wrap=True)
