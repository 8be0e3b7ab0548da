"""mamf-finder logs (stas00/ml-engineering `mamf-finder.py`, benchmark versions 1-3) -> `matmul` records.

Read: the header (`** Dtype: torch.X`, the device properties line with the device name, `torch=`,
`cuda=`/`hip=`, `benchmark version: N`, the command line), one line per shape -- version 2+:
`N | MEAN(mean) MEDIAN(median) MAX(max) @ MxNxK | best: ...`, version 1: `N | T TFLOPS @ MxNxK | best: ...`
-- including lines a terminal overwrote with carriage returns (each becomes a line), and the final
block (`the best outcomes were:` mean/median/max with their shapes, or version 1's `The best
outcome was`).

One record per shape: `matmul/<precision>/mamf/m=M,n=N,k=K`, work = 2*M*N*K flop, rate = the median
TFLOPS (version 2+; the single printed figure in version 1) x 1e12; the printed mean/median/max stay in
`extra["printed_tflops"]`. A shape named by the final block but without its own line (a log that
kept only the summary) gets a record from the final block. The best shape -- the best median, else
the best mean -- carries the flag `achievable`: mamf-finder's Maximum Achievable Matmul FLOPS.
No iteration times are printed, so `times_s` stays empty.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from results.importers.source import (NUMBER, ImportFailed, Imported, Skipped, Source, Tool, device,
                                      imported_run, printed_stats, provenance, unknown_devices)
from results.files.keys import case_key
from results.files.schema import Measurement, RunResult

TOOL = "mamf-finder"
TERA = 1e12
CONVENTION = ("2*m*n*k operations per call (dense; one multiply-add counts 2); mamf-finder times each of its "
              "iterations with device events after zeroing a 256 MiB buffer (cache flush); the rate is the "
              "printed median TFLOPS over its timed iterations (version 1: the one figure it printed); 1 TFLOPS = 1e12")
PRECISIONS = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32",
              "float8_e4m3fn": "fp8", "float8_e4m3fnuz": "fp8", "float64": "fp64"}

_NUM = rf"({NUMBER})"
_SHAPE = r"(\d+)x(\d+)x(\d+)"
_V2 = re.compile(rf"^\s*(\d+)\s*\|\s*{_NUM}\(mean\)\s+{_NUM}\(median\)\s+{_NUM}\(max\)\s*@\s*{_SHAPE}\s*\|\s*best:")
_V1 = re.compile(rf"^\s*(\d+)\s*\|\s*{_NUM}\s*TFLOPS\s*@\s*{_SHAPE}\s*\|\s*best:")
_V1_BEST = re.compile(rf"best:\s*{_NUM}\s*TFLOPS\s*@\s*{_SHAPE}")
_BEST = re.compile(rf"^(mean|median|max):\s+{_NUM}\s*TFLOPS\s*@\s*{_SHAPE}")
_BEST_V1 = re.compile(rf"^The best outcome was\s*{_NUM}\s*TFLOPS\s*@\s*{_SHAPE}.*?\(tried (\d+) shapes\)")
_TRIED = re.compile(r"^Tried\s+(\d+)\s+shapes => the best outcomes were:")
_DTYPE = re.compile(r"^\*\* Dtype:\s*(?:torch\.)?(\w+)")
_PROPS = re.compile(r"DeviceProperties\(name='([^']+)'")
_TORCH = re.compile(r"^torch=(\S+)")
_CUDA = re.compile(r"(?:^|\s)cuda=([^,\s]+)")
_HIP = re.compile(r"^hip=([^,\s]+)")
_VERSION = re.compile(r"^(?:- )?benchmark version:\s*(\d+)")
_STARTED = re.compile(r"^Benchmark started on (.+)$")
_NOISE = re.compile(r"^(\*\* |Warming up|accelerator warmup|-{10,}|Legend:|Elapsed time:|geomean:|Across \d+ shapes|"
                    r"arithmetic mean:|geometric mean:|\^C|Linux |Darwin |\[?W\d|.*UserWarning|\s+torch\.mm)")
START = re.compile(r"^Benchmark started on|^\*\* Dtype:|^\s*\d+\s*\|.*TFLOPS|best outcome")  # where a log begins
_MARKERS = ("mamf-finder", "** Dtype:", "** Platform/Device info:", "** Critical software versions:",
            "best outcome", "(MxNxK)", "benchmark version:", "** Command line:")


def detect(text: str) -> bool:
    head = text[:200_000]
    return sum(marker in head for marker in _MARKERS) >= 2


def parse(source: Source, collective: str | None = None) -> Imported:
    lines = source.lines()
    info: dict[str, Any] = {}
    shapes: dict[tuple[int, int, int], dict[str, Any]] = {}
    best: dict[str, tuple[float, tuple[int, int, int], int]] = {}
    skipped: list[Skipped] = []
    command_next = False
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if command_next:
            info["command_line"], command_next = line, False
        elif line == "** Command line:":
            command_next = True
        elif m := _V2.match(line):
            shape = _shape(m, 5)
            shapes[shape] = {"line": number, "mean": float(m.group(2)), "median": float(m.group(3)),
                             "max": float(m.group(4)), "seen": shapes.get(shape, {}).get("seen", 0) + 1}
        elif m := _V1.match(line):
            shape, best_part = _shape(m, 3), _V1_BEST.search(line)
            if best_part is None:
                skipped.append(Skipped(number, line, "a version-1 line cut inside its 'best:' part, so whether its "
                                       "shape is stale cannot be told"))
                continue
            if shape == _shape(best_part, 2) and m.group(2) != best_part.group(1):
                skipped.append(Skipped(number, line, "a version-1 line whose shape is stale: it names the best shape "
                                       "but not the best figure (mamf-finder's cur_config bug, ml-engineering #58)"))
                continue
            shapes[shape] = {"line": number, "printed": float(m.group(2)), "seen": shapes.get(shape, {}).get("seen", 0) + 1}
        elif m := _BEST.match(line):
            best[m.group(1)] = (float(m.group(2)), _shape(m, 3), number)
        elif m := _BEST_V1.match(line):
            best["printed"] = (float(m.group(1)), _shape(m, 2), number)
            info["shapes_tried"] = int(m.group(5))
        elif m := _TRIED.match(line):
            info["shapes_tried"] = int(m.group(1))
        elif m := _DTYPE.match(line):
            info["dtype"], info["dtype_line"] = m.group(1), number
        elif m := _PROPS.search(line):
            info["device"], info["device_properties"] = m.group(1), line
        elif m := _TORCH.match(line):
            info["torch"] = m.group(1)
        elif m := _HIP.match(line):
            info["hip"] = m.group(1)
            if c := _CUDA.search(line):
                info["cuda"] = c.group(1)
        elif m := _CUDA.match(line):
            info["cuda"] = m.group(1)
        elif m := _VERSION.match(line):
            info["benchmark_version"] = m.group(1)
        elif m := _STARTED.match(line):
            info["started_local"] = m.group(1)
        elif _NOISE.match(line) or not (info or shapes or best):
            continue
        else:
            skipped.append(Skipped(number, line, "not a line mamf-finder prints"))
    if not shapes and not best:
        last = source.last_text_line()
        if info:
            raise ImportFailed(source.name, last, "truncated: a mamf-finder header but no shape result and no "
                               "final 'best outcome' block")
        raise ImportFailed(source.name, last, "no mamf-finder shape or result line")
    dtype = info.get("dtype")
    precision = PRECISIONS.get(dtype or "")
    if dtype is None:
        raise ImportFailed(source.name, source.first_text_line(), "no '** Dtype:' header line (a log kept without "
                           "its header), so the matmul precision is unknown")
    if precision is None:
        raise ImportFailed(source.name, info["dtype_line"], f"dtype {dtype!r} is not one tppbench records "
                           f"({', '.join(sorted(PRECISIONS))})")
    version = info.get("benchmark_version") or ("1" if "printed" in best else None)
    tool = Tool(TOOL, version, {k: v for k, v in info.items() if k not in ("torch", "cuda", "hip", "dtype_line")}
                | {"best_printed": {k: {"tflops": v[0], "shape": "x".join(map(str, v[1])), "line": v[2]}
                                    for k, v in best.items()}})
    records = [_record(shape, fig, precision, source, tool) for shape, fig in shapes.items()]
    records.extend(_from_best_block(best, shapes, precision, source, tool))
    records = _mark_achievable(records, best)
    run = imported_run(
        source, tool, host=None, suites=("matmul",), skipped=skipped, torch=info.get("torch"),
        cuda=info.get("cuda") if info.get("cuda") not in (None, "None") else None,
        complete="shapes_tried" in info,
        incomplete_reason=None if "shapes_tried" in info else "the log ends before mamf-finder's final block",
    )
    devices = ((device(0, info["device"], source.host, TOOL),) if "device" in info
               else unknown_devices([0], source, TOOL))
    return Imported(RunResult(run=run, devices=devices, measurements=tuple(records)), tuple(skipped))


def _shape(match: re.Match[str], first: int) -> tuple[int, int, int]:
    return int(match.group(first)), int(match.group(first + 1)), int(match.group(first + 2))


def _record(shape: tuple[int, int, int], fig: dict[str, Any], precision: str, source: Source, tool: Tool,
            *, origin: str = "its own line") -> Measurement:
    m, n, k = shape
    tflops = fig["median"] if "median" in fig else fig["printed"]
    printed = {key: fig[key] for key in ("mean", "median", "max", "printed") if key in fig}
    params = {"m": m, "n": n, "k": k}
    return Measurement(
        key=case_key("matmul", "mamf", params, precision), benchmark="matmul", variant="mamf",
        precision=precision, params=params, device_index=0, status="ok", reason=None, unit="flop",
        convention=CONVENTION, work_per_call=float(2 * m * n * k), rate=tflops * TERA, host=source.host,
        stats=printed_stats(tflops * TERA),
        extra={"imported": provenance(source, tool, fig["line"]), "printed_tflops": printed, "from": origin,
               "lines_for_this_shape": fig.get("seen", 1)},
    )


def _from_best_block(best: dict[str, tuple[float, tuple[int, int, int], int]],
                     shapes: dict[tuple[int, int, int], dict[str, Any]], precision: str, source: Source,
                     tool: Tool) -> list[Measurement]:
    """Shapes the final block names but no shape line printed: one record each, from that block."""
    found: dict[tuple[int, int, int], dict[str, Any]] = {}
    for statistic, (tflops, shape, line) in best.items():
        if shape in shapes:
            continue
        entry = found.setdefault(shape, {"line": line})
        entry[statistic] = tflops
    out = []
    for shape, fig in found.items():
        if "median" not in fig and "printed" not in fig:
            # only a best mean or max names this shape: record that figure, saying which it is
            statistic = "mean" if "mean" in fig else "max"
            fig = {**fig, "printed": fig[statistic], "statistic": statistic}
        out.append(_record(shape, fig, precision, source, tool, origin="the final 'best outcome' block"))
    return out


def _mark_achievable(records: list[Measurement], best: dict[str, tuple[float, tuple[int, int, int], int]]
                     ) -> list[Measurement]:
    chosen = best.get("median") or best.get("printed") or best.get("mean")
    if chosen is None:
        top = max(records, key=lambda r: r.rate)
        shape = (top.params["m"], top.params["n"], top.params["k"])
    else:
        shape = chosen[1]
    return [dataclasses.replace(r, flags=("achievable",)) if (r.params["m"], r.params["n"], r.params["k"]) == shape
            else r for r in records]
