"""nccl-tests logs (every `*_perf` binary's text table) -> `collectives` records.

What is read: the version line (2.x), `Collective test starting: X_perf`, the parameter line
(nThread/nGpus/minBytes/.../iters), the "Using devices" rank lines (rank, host, device index,
bus id, name; with or without `Group`), `NCCL version`, the column header (with or without
`root`; `#wrong` counts or the old `error` magnitudes), one row per size with the out-of-place and
in-place blocks, and the footer (out-of-bounds values, average bus bandwidth). `NCCL INFO` lines and
mpirun's `[1,0]<stdout>:` tags are skipped silently.

Each row gives two records (out-of-place, in-place) keyed like tppbench's collectives:
`collectives/<op>/bytes=S,world_size=n`. The placement tppbench measures for that op
(results.collective_conventions.IN_PLACE) gets the plain key, the other one adds
`placement=in-place|out-of-place`, so `compare` aligns a tppbench run with the matching half.
S is the size column (nccl-tests' S, the same S tppbench uses per operation); rate = S / t from
the printed time (nccl-tests' algbw formula, before its 2-decimal rounding); busbw = rate x the
nccl-tests factor for n ranks. The printed time/algbw/busbw stay in `extra["printed"]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from results.analysis.collective_conventions import FORMULAS, IN_PLACE, busbw_factor, convention
from results.importers import nccl_tests_json
from results.importers.nccl_tests_json import OPS, op_from_option
from results.importers.source import (NUMBER, ImportFailed, Imported, Skipped, Source, Tool, device,
                                      imported_run, printed_number, printed_stats, provenance,
                                      unknown_devices)
from results.files.keys import case_key
from results.files.schema import DeviceInfo, Measurement, RunResult

TOOL = "nccl-tests"
TIMING = ("t = nccl-tests' printed time: host wall clock over the timed iterations / iterations, "
          "combined over ranks as its -a option says (default: average)")

_TAG = re.compile(r"^\[\d+,\d+\]<std(?:out|err)>:")
_VERSION = re.compile(r"nccl-tests version (\S+)")
# rccl-tests (ROCm/rccl-tests) prints the same table under its own version line and, unprefixed, a
# library block (next-capabilities.md §2.4): `RCCL version : ...`, `HIP version  : ...`, ...
_RCCL_VERSION = re.compile(r"rccl-tests:\s*Version\s+(\S+)")
_RCCL_LIB = re.compile(r"^(RCCL|HIP|ROCm) version\s*:\s*(\S+)\s*$")
_RCCL_FIELD = re.compile(r"^(Hostname|Librccl path)\s*:\s*(\S+)\s*$")
# what people paste around a log: shell prompts and command lines, a publisher's cut mark
_NRANKS = re.compile(r"NCCL INFO .*\bnranks (\d+)\b")
_ELIDED = re.compile(r"^#?\s*(\.\.\.|…)\s*$")  # a rank list elided by its publisher
# a row of a log with no header: size count type redop [root] then 4 numbers per placement
_BARE_ROW = re.compile(r"^\s*\d+\s+\d+\s+[a-z]\w*\s+\w+\s+(-?\d+\s+)?(\S+\s+){7}\S+\s*$")
_PASTED = re.compile(r"^\s*(\$ |> |<snip>|\[\.\.\.\]|\.\.\.$|-x |--mca |/\S+/(all_reduce|all_gather|reduce_scatter|"
                     r"alltoall|broadcast|reduce|sendrecv)_perf )")
_STARTING = re.compile(r"Collective test starting:\s*(\w+)_perf")
_PERF = re.compile(r"\b(" + "|".join(OPS) + r")_perf\b")
_PARAMS = re.compile(r"minBytes:?\s+\d+")
_RANK = re.compile(r"^#?\s*Rank\s+(\d+)\s+(?:Group\s+\d+\s+)?Pid\s+\d+\s+on\s+(\S+)\s+device\s+(\d+)\s+"
                   r"\[([^\]]*)\]\s+(.+?)\s*$")
_NCCL = re.compile(r"NCCL version (\S+)")
_OOB = re.compile(r"Out of bounds values\s*:\s*(\d+)\s+(\w+)")
_AVG = re.compile(rf"Avg bus bandwidth\s*:\s*({NUMBER})(?![\d.])")
_ROW = re.compile(r"^\s*\d+\s+\d+\s+\S+")
_NOISE = re.compile(r"NCCL INFO|NCCL WARN|^#\s*$|^#\s+\(B\)|out-of-place|Errors with asterisks|^#\s*Using devices")
START = re.compile(r"nccl-tests version|Collective test starting|nThreads?:? \d+ nGpus|^#?\s*size\s+count\s+type")  # where a log begins
_MARKERS = ("Avg bus bandwidth", "out-of-place", "Using devices", "nccl-tests version", "Collective test starting",
            "(elements)", "rccl-tests: Version")
_STRONG = re.compile(r"nccl-tests version|Collective test starting|nThreads?:? \d+ nGpus|#\s*size\s+count\s+type")


def detect(text: str) -> bool:
    if nccl_tests_json.detect(text):
        return True
    head = text[:200_000]
    if sum(marker in head for marker in _MARKERS) >= 2 or (
            bool(_STRONG.search(head)) and ("Rank" in head or "(elements)" in head)):
        return True
    # only rows (a log cut above its header) beside NCCL's own lines or the footer
    bare = sum(1 for line in head.splitlines()[:2000] if _BARE_ROW.match(_TAG.sub("", line)))
    return bare >= 3 and ("NCCL INFO" in head or "Avg bus bandwidth" in head)


@dataclass
class _Table:
    columns: list[str]
    line: int
    blocks: list[int]  # index of each block's `time` column


def parse(source: Source, collective: str | None = None) -> Imported:
    if source.text.lstrip()[:1] == "{":  # the -J JSON document (results.importers.nccl_tests_json)
        return nccl_tests_json.parse(source, collective)
    lines = source.lines()
    tool_version = op = nccl = None
    tool_name = TOOL
    libraries: dict[str, str] = {}
    params_line: str | None = None
    ranks: list[tuple[int, str, int, str, str]] = []
    table: _Table | None = None
    rows: list[tuple[int, list[str]]] = []
    skipped: list[Skipped] = []
    footer: dict[str, Any] = {}
    seen_output = False
    nranks: int | None = None
    elided = False
    loose: list[tuple[int, list[str]]] = []  # rows before any header (a log cut above its header)
    for number, raw in enumerate(lines, start=1):
        line = _TAG.sub("", raw).rstrip()
        if not line.strip():
            continue
        if m := _NRANKS.search(line):
            nranks = max(nranks or 0, int(m.group(1)))
        if _ELIDED.match(line):
            elided = True
            continue
        if table is None and _BARE_ROW.match(line):
            loose.append((number, line.split()))
            seen_output = True
            continue
        if m := _VERSION.search(line):
            tool_version, seen_output = m.group(1), True
        elif m := _RCCL_VERSION.search(line):
            tool_name, tool_version, seen_output = "rccl-tests", m.group(1), True
        elif m := _RCCL_LIB.match(line.strip()):
            tool_name = "rccl-tests"
            libraries[f"{m.group(1).lower()}_version"] = m.group(2)
        elif m := _RCCL_FIELD.match(line.strip()):
            libraries["hostname" if m.group(1) == "Hostname" else "librccl_path"] = m.group(2)
        elif m := _STARTING.search(line):
            op = _op(m.group(1), source, number, op)
            seen_output = True
        elif _PARAMS.search(line):
            params_line, seen_output = line.lstrip("# ").strip(), True
        elif m := _RANK.match(line.strip()):
            ranks.append((int(m.group(1)), m.group(2), int(m.group(3)), m.group(4), m.group(5)))
        elif m := _NCCL.search(line):
            nccl = m.group(1)
        elif _is_header(line):
            if table is not None and rows:
                raise ImportFailed(source.name, number, "a second result table: one nccl-tests run per "
                                   "file (split concatenated logs and import each)")
            table = _header(line, number, source)
            seen_output = True
        elif m := _OOB.search(line):
            footer["out_of_bounds"] = {"count": int(m.group(1)), "verdict": m.group(2)}
        elif m := _AVG.search(line):
            footer["avg_bus_bandwidth_gbs"] = float(m.group(1))
        elif table is not None and _ROW.match(line) and "avg_bus_bandwidth_gbs" not in footer:
            tokens = line.split()
            if len(tokens) == len(table.columns):
                rows.append((number, tokens))
            elif number == source.last_text_line():
                raise ImportFailed(source.name, number, f"truncated: the last row has {len(tokens)} of "
                                   f"{len(table.columns)} columns")
            else:
                skipped.append(Skipped(number, line, f"{len(tokens)} columns, the header has {len(table.columns)}"))
        elif m := _PERF.search(line):
            if op is None and not line.lstrip().startswith("#"):
                op = _op(m.group(1), source, number, op)
        elif _NOISE.search(line) or not seen_output:
            continue
        elif _PASTED.match(line):
            skipped.append(Skipped(number, line, "pasted around the log (a shell prompt, command line or cut mark)"))
        else:
            skipped.append(Skipped(number, line, "not a line nccl-tests prints"))
    if table is None and loose:
        table, rows = _implied_table(loose, source)
    if table is None:
        if seen_output:  # nccl-tests' own header lines, then the end of the file
            raise ImportFailed(source.name, source.last_text_line(), "truncated: nccl-tests' header but no "
                               "result table")
        raise ImportFailed(source.name, source.first_text_line(), "no nccl-tests result table (no "
                           "'size count type redop ...' header)")
    last = source.last_text_line()
    if "avg_bus_bandwidth_gbs" not in footer and skipped and skipped[-1].line == last and rows:
        raise ImportFailed(source.name, last, "truncated: the file ends in a line that is not a whole row")
    if not rows:
        raise ImportFailed(source.name, last,
                           f"truncated: the result table (header at line {table.line}) has no rows")
    listed = len({r[0] for r in ranks}) or None
    if elided and ranks:  # "..." stands for ranks left out: the world is the highest rank + 1
        listed = max(r[0] for r in ranks) + 1
    if listed is None and nranks:
        listed = nranks
    op = op or op_from_option(collective, source)
    inferred = None
    if op is None:
        op, inferred = _infer_collective(rows, table, listed, source)
    world, world_note = _world_size(op, listed, rows, table)
    if elided:
        world_note += " (the log elides rank lines with '...': the highest rank listed + 1)"
    elif not ranks and nranks:
        world_note = f"{nranks}: from 'nranks {nranks}' in NCCL INFO lines"
    tool = Tool(tool_name, tool_version, {"parameters": params_line, "footer": footer, "world_size": world_note,
                                          "collective_from": (inferred or "the log") if collective is None else "--collective",
                                          **({"libraries": libraries} if libraries else {})})
    host = ranks[0][1] if ranks else libraries.get("hostname")
    rocm = tool_name == "rccl-tests"
    measurements = [m for number, tokens in rows for m in _records(op, tokens, number, table, world, source,
                                                                      tool, host)]
    complete = "avg_bus_bandwidth_gbs" in footer
    run = imported_run(
        source, tool, host=host, suites=("collectives",), world_size=world or 1,
        hosts=[r[1] for r in ranks], complete=complete,
        incomplete_reason=None if complete else "the log ends before nccl-tests' footer (Avg bus bandwidth)",
        skipped=skipped, nccl=nccl or libraries.get("rccl_version"), backend="rocm" if rocm else "cuda",
        hip=libraries.get("hip_version"), rocm=libraries.get("rocm_version"),
    )
    devices = _devices(ranks, tool_name) or unknown_devices([0], source, tool_name)  # a log without rank lines
    return Imported(RunResult(run=run, devices=devices, measurements=tuple(measurements)), tuple(skipped))


def _implied_table(loose: list[tuple[int, list[str]]], source: Source) -> tuple[_Table, list[tuple[int, list[str]]]]:
    """A log with no column header: the rows' shape decides, where it is unambiguous (13 columns
    with root or 12 without: 8 numbers per placement pair; sizes growing)."""
    widths = {len(t) for _, t in loose}
    if len(widths) != 1 or widths - {12, 13}:
        raise ImportFailed(source.name, loose[0][0], "rows without a column header, and not all of the "
                           "nccl-tests shape (12 or 13 columns): cannot tell what each column is")
    sizes = [int(t[0]) for _, t in loose]
    if sizes != sorted(sizes):
        raise ImportFailed(source.name, loose[0][0], "rows without a column header whose sizes do not grow: "
                           "not an nccl-tests table")
    root = ["root"] if widths == {13} else []
    columns = ["size", "count", "type", "redop", *root, "time", "algbw", "busbw", "#wrong",
               "time", "algbw", "busbw", "#wrong"]
    first = 4 + len(root)
    return _Table(columns=columns, line=loose[0][0], blocks=[first, first + 4]), loose


def _infer_collective(rows: list[tuple[int, list[str]]], table: _Table, world: int | None,
                      source: Source) -> tuple[str, str]:
    """The collective from the printed busbw/algbw ratio and the world size, where it is unique:
    2(n-1)/n all_reduce; (n-1)/n with redop sum reduce_scatter; 1 with redop sum reduce. Else the
    one-line error asking for --collective."""
    ask = "; pass --collective"
    if world is None or world < 3:
        raise ImportFailed(source.name, table.line, "the log does not say which collective it measured, and "
                           f"with {'an unknown' if world is None else world} world size the busbw/algbw ratio "
                           "cannot tell" + ask)
    algbw, busbw = (table.columns.index(name, table.blocks[0]) for name in ("algbw", "busbw"))
    ratios = sorted(b / a for a, b in ((_number(t[algbw]), _number(t[busbw])) for _, t in rows) if a and b and a >= 1.0)
    if not ratios:
        raise ImportFailed(source.name, table.line, "no row with algbw >= 1 GB/s to read busbw/algbw from" + ask)
    ratio = ratios[len(ratios) // 2]
    redops = {t[table.columns.index("redop")] for _, t in rows}
    n = world
    how = f"inferred: busbw/algbw {ratio:.3f} over {n} ranks"
    if abs(ratio / (2 * (n - 1) / n) - 1) < 0.02:
        return "all_reduce", f"{how} = 2(n-1)/n"
    if abs(ratio / ((n - 1) / n) - 1) < 0.02:
        if redops == {"sum"} or redops - {"none"}:
            return "reduce_scatter", f"{how} = (n-1)/n with redop {'/'.join(sorted(redops))}"
        raise ImportFailed(source.name, table.line, f"busbw/algbw {ratio:.3f} = (n-1)/n for {n} ranks fits "
                           "all_gather and alltoall alike (redop none)" + ask)
    if abs(ratio - 1) < 0.02:
        if redops - {"none"}:
            return "reduce", f"{how} = 1 with redop {'/'.join(sorted(redops))}"
        raise ImportFailed(source.name, table.line, "busbw/algbw 1 fits broadcast and sendrecv alike "
                           "(redop none; their busbw is the same either way)" + ask)
    raise ImportFailed(source.name, table.line, f"busbw/algbw {ratio:.3f} fits no collective for {n} ranks" + ask)


def _op(name: str, source: Source, number: int, current: str | None) -> str:
    if name not in OPS:
        raise ImportFailed(source.name, number, f"{name}_perf is not imported (supported: "
                           f"{', '.join(n + '_perf' for n in OPS)})")
    if current is not None and OPS[name] != current:
        raise ImportFailed(source.name, number, f"a second collective ({name}_perf after {current}): one "
                           "nccl-tests run per file")
    return OPS[name]


def _is_header(line: str) -> bool:
    words = line.lstrip("#").split()
    return words[:4] == ["size", "count", "type", "redop"]


def _header(line: str, number: int, source: Source) -> _Table:
    columns = line.lstrip("#").split()
    blocks = [i for i, c in enumerate(columns) if c == "time"]
    ends = blocks[1:] + [len(columns)]
    if len(blocks) != 2 or any({"algbw", "busbw"} - set(columns[b:e]) for b, e in zip(blocks, ends)):
        cut = number == source.last_text_line()
        raise ImportFailed(source.name, number, "truncated: the file ends inside the table header" if cut else
                           "a table header without out-of-place and in-place time/algbw/busbw columns")
    return _Table(columns=columns, line=number, blocks=blocks)


def _number(text: str) -> float | None:
    return printed_number(text.rstrip("*"))  # nccl-tests marks a value over its threshold with '*'


def _records(op: str, tokens: list[str], number: int, table: _Table, world: int | None, source: Source,
             tool: Tool, host: str | None) -> list[Measurement]:
    cols = table.columns
    size, count = int(tokens[0]), int(tokens[1])
    root = tokens[cols.index("root")] if "root" in cols else None
    out = []
    for in_place, start in zip((False, True), table.blocks):
        end = table.blocks[1] if start == table.blocks[0] else len(cols)
        block = {cols[i]: tokens[i] for i in range(start, end)}
        time_us = _number(block["time"])
        wrong_name = "#wrong" if "#wrong" in block else "error" if "error" in block else None
        wrong = block.get(wrong_name) if wrong_name else None
        params: dict[str, Any] = {"bytes": size}
        if world is not None:
            params["world_size"] = world
        if in_place != IN_PLACE[op]:
            params["placement"] = "in-place" if in_place else "out-of-place"
        printed = {"time_us": time_us, "algbw_gbs": _number(block["algbw"]),
                   "busbw_gbs": _number(block.get("busbw", "N/A")), wrong_name or "check": wrong}
        factor = busbw_factor(op, world) if world else None
        rate = size / (time_us * 1e-6) if time_us and size else None
        busbw = rate * factor if rate is not None and factor is not None else (
            printed["busbw_gbs"] * 1e9 if printed["busbw_gbs"] is not None else None)
        status, reason = _status(wrong_name, wrong, rate)
        extra = {
            "imported": provenance(source, tool, number), "printed": printed, "count": count,
            "type": tokens[2], "redop": tokens[3], "root": root, "in_place": in_place, "world_size": world,
            "busbw_formula": FORMULAS[op],
        }
        out.append(Measurement(
            key=case_key("collectives", op, params), benchmark="collectives", variant=op, precision=None,
            params=params, device_index=None, status=status, reason=reason, unit="byte",
            convention=convention(op, TIMING) + ("" if factor else "; n not printed, so busbw is the printed one"),
            work_per_call=float(size), rate=rate if status != "skipped" else None, host=host, rank=0,
            stats=printed_stats(rate) if rate else None,
            busbw=busbw if status != "skipped" else None, busbw_factor=factor, extra=extra,
        ))
    return out


def _world_size(op: str, listed: int | None, rows: list[tuple[int, list[str]]], table: _Table
                ) -> tuple[int | None, str]:
    """The rank count of the rank lines, when the printed busbw/algbw agrees with it (a log may keep
    only some rank lines); None otherwise. The count is never inferred from the ratio itself."""
    if listed is None:
        return None, "unknown: the log has no rank lines"
    algbw, busbw = (table.columns.index(name, table.blocks[0]) for name in ("algbw", "busbw"))
    printed = ((_number(t[algbw]), _number(t[busbw])) for _, t in rows)
    ratios = sorted(bus / alg for alg, bus in printed if alg and bus and alg >= 1.0)
    expected = busbw_factor(op, listed)
    if ratios and abs(ratios[len(ratios) // 2] / expected - 1) > 0.03:
        return None, (f"unknown: the log lists {listed} rank(s) but its busbw/algbw ({ratios[len(ratios) // 2]:.3f}) "
                      f"does not fit {listed} ({expected:.3f}): rank lines are missing")
    return listed, f"{listed}: from the rank lines"


def _status(wrong_name: str | None, wrong: str | None, rate: float | None) -> tuple[str, str | None]:
    if rate is None:
        return "skipped", "nccl-tests printed no time (or size 0) for this row"
    if wrong_name == "#wrong" and wrong not in (None, "N/A") and (_number(wrong) or 0) > 0:
        return "error", f"nccl-tests counted {wrong} wrong values (#wrong) in its correctness check"
    if wrong_name == "error" and wrong is not None and wrong.endswith("*"):
        return "error", f"nccl-tests' error {wrong} exceeds its threshold (marked with an asterisk)"
    return "ok", None


def _devices(ranks: list[tuple[int, str, int, str, str]], tool: str = TOOL) -> tuple[DeviceInfo, ...]:
    seen: dict[tuple[str, int], DeviceInfo] = {}
    for _, host, index, bus, name in sorted(ranks):
        if (host, index) not in seen:
            seen[(host, index)] = device(index, name, host, tool, pci_bus_id=bus or None)
    return tuple(seen.values())
