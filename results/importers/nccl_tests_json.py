"""nccl-tests `-J file.json` (JSON since 2025-10) -> `collectives` records, as the text importer
makes them (results.importers.nccl_tests), with the per-iteration samples where the file has them.

The structure follows the writer, NVIDIA/nccl-tests src/util.cu (read at commit a0b82b2,
v2.19.6): top-level `version` (the JSON format's), `start_time`, `args` (argv: the binary's name
says the collective, e.g. ".../all_reduce_perf"), `env`, `nccl_version` (an integer code),
`config`, `devices` (rank, group, pid, hostname, device, device_hex, device_info), `results[]`
(`size`, `count`, `type`, `redop`, `root` -- a string padded to 6 --, `out_of_place` and
`in_place` each {`time` or `cpu_time` (us), `alg_bw`, `bus_bw`, `nwrong`} or null, optional
`*_per_iter` with `times_us`), `out_of_bounds`, `average_bus_bandwidth`, `errors` (a list of
strings, [""] when NCCL had none), `end_time`. Booleans are the strings "true"/"false"; a NaN
double is the string "nan". Host names are kept as printed (publishers replace them with
placeholders such as "<HOST>")."""

from __future__ import annotations

import json
import re
from typing import Any

from results.analysis.collective_conventions import FORMULAS, IN_PLACE, busbw_factor, convention
from results.analysis.stats import summarize
from results.files.keys import case_key
from results.files.schema import Measurement, RunResult
from results.importers.source import (ImportFailed, Imported, Source, Tool, device, imported_run, printed_stats,
                                      provenance, unknown_devices)

TOOL = "nccl-tests"
# nccl-tests' binary names (X_perf) -> tppbench's collective names; shared with the text importer
OPS = {"all_reduce": "all_reduce", "all_gather": "all_gather", "reduce_scatter": "reduce_scatter",
       "alltoall": "all_to_all", "broadcast": "broadcast", "reduce": "reduce", "sendrecv": "sendrecv"}
TIMING = ("t = nccl-tests' time (us): host wall clock over the timed iterations / iterations; with -I the "
          "per-iteration CUDA-event times are kept as times_s")
_BINARY = re.compile(r"(?:^|/)(\w+?)_perf(?:_mpi)?$")


def detect(text: str) -> bool:
    head = text.lstrip()[:1]
    if head != "{":
        return False
    try:
        doc = json.loads(text)
    except ValueError:
        return '"nccl_version"' in text[:20_000] and '"results"' in text  # a malformed one: parse says why
    return isinstance(doc, dict) and "nccl_version" in doc and "results" in doc


def _version_text(code: Any) -> str | None:
    """NCCL_VERSION_CODE 22703 -> "2.27.3" (major*10000 + minor*100 + patch for 2.9+)."""
    if not isinstance(code, int) or code <= 0:
        return None
    return f"{code // 10000}.{code // 100 % 100}.{code % 100}" if code >= 20900 else str(code)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if number == number else None  # "nan"
    return None


def parse(source: Source, collective: str | None = None) -> Imported:
    try:
        doc = json.loads(source.text)
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise ImportFailed(source.name, line, f"malformed JSON: {getattr(exc, 'msg', exc)}") from None
    if not isinstance(doc, dict) or "results" not in doc or "nccl_version" not in doc:
        raise ImportFailed(source.name, 1, "a JSON document that is not nccl-tests' -J output "
                           "(no 'nccl_version' and 'results')")
    results = doc["results"]
    if not isinstance(results, list):
        raise ImportFailed(source.name, None, "field 'results' must be a list")
    op = _op(doc, collective, source)
    ranks = [d for d in doc.get("devices") or [] if isinstance(d, dict)]
    world = len({d.get("rank") for d in ranks}) or None
    factor = busbw_factor(op, world) if world else None
    tool = Tool(TOOL, str(doc.get("version")), {
        "format": "nccl-tests -J JSON", "json_version": doc.get("version"), "args": doc.get("args"),
        "config": doc.get("config"), "start_time": doc.get("start_time"), "end_time": doc.get("end_time"),
        "out_of_bounds": doc.get("out_of_bounds"), "average_bus_bandwidth": doc.get("average_bus_bandwidth"),
        "errors": doc.get("errors"), "collective_from": "args[0]" if collective is None else "--collective",
        "world_size": f"{world}: from the devices list" if world else "unknown: no devices list"})
    hosts = [str(d.get("hostname")) for d in ranks if d.get("hostname") is not None]
    measurements = []
    for i, row in enumerate(results):
        if not isinstance(row, dict) or not isinstance(row.get("size"), int):
            raise ImportFailed(source.name, None, f"results[{i}].size must be an integer")
        for in_place in (False, True):
            block = row.get("in_place" if in_place else "out_of_place")
            if block is None:
                continue
            if not isinstance(block, dict):
                raise ImportFailed(source.name, None, f"results[{i}].{'in_place' if in_place else 'out_of_place'} "
                                   "must be an object or null")
            per_iter = row.get("in_place_per_iter" if in_place else "out_of_place_per_iter")
            measurements.append(_record(op, row, block, per_iter, in_place, world, factor, i, source, tool,
                                        hosts[0] if hosts else None))
    if not measurements:
        raise ImportFailed(source.name, None, "no result in 'results' (nccl-tests wrote the header only)")
    errors = [e for e in doc.get("errors") or [] if isinstance(e, str) and e]
    complete = "average_bus_bandwidth" in doc and not errors
    run = imported_run(source, tool, host=hosts[0] if hosts else None, suites=("collectives",),
                       world_size=world or 1, hosts=hosts, complete=complete,
                       incomplete_reason=None if complete else (
                           f"nccl-tests reported: {errors[0]}" if errors else "no average_bus_bandwidth block: "
                           "the run did not finish"),
                       nccl=_version_text(doc.get("nccl_version")))
    devices = tuple({(str(d.get("hostname")), d.get("device")): device(
        int(d["device"]), str(d.get("device_info") or "unknown"), str(d.get("hostname")), TOOL,
        pci_bus_id=str(d.get("device_hex")) if d.get("device_hex") else None)
        for d in ranks if isinstance(d.get("device"), int)}.values()) or unknown_devices([0], source, TOOL)
    return Imported(RunResult(run=run, devices=devices, measurements=tuple(measurements)), ())


def op_from_option(collective: str | None, source: Source) -> str | None:
    """--collective (all_reduce, all_reduce_perf or tppbench's all_to_all) as tppbench names it."""
    if collective is None:
        return None
    name = collective.removesuffix("_perf")
    if name not in OPS and name not in OPS.values():
        raise ImportFailed(source.name, None, f"--collective {collective!r} is not one of {', '.join(OPS)}")
    return OPS.get(name, name)


def _op(doc: dict, collective: str | None, source: Source) -> str:
    if collective is not None:
        return op_from_option(collective, source)
    args = doc.get("args") or []
    m = _BINARY.search(str(args[0])) if args else None
    if m is None or m.group(1) not in OPS:
        raise ImportFailed(source.name, None, "the JSON does not say which collective it measured (args[0] is "
                           f"{str(args[0])[:60]!r} if any); pass --collective" if args else
                           "the JSON has no args to name the collective; pass --collective")
    return OPS[m.group(1)]


def _record(op, row, block, per_iter, in_place, world, factor, i, source, tool, host) -> Measurement:
    size = int(row["size"])
    time_us = _number(block.get("time", block.get("cpu_time")))
    rate = size / (time_us * 1e-6) if time_us and size else None
    params: dict[str, Any] = {"bytes": size}
    if world is not None:
        params["world_size"] = world
    if in_place != IN_PLACE[op]:
        params["placement"] = "in-place" if in_place else "out-of-place"
    times = [t * 1e-6 for t in (per_iter or {}).get("times_us", []) if isinstance(t, (int, float)) and t > 0]
    nwrong = _number(block.get("nwrong"))
    status, reason = ("ok", None) if rate else ("skipped", "nccl-tests printed no time (or size 0) for this row")
    if status == "ok" and nwrong:
        status, reason = "error", f"nccl-tests counted {nwrong:g} wrong values (nwrong) in its correctness check"
    printed = {"time_us": time_us, "algbw_gbs": _number(block.get("alg_bw")), "busbw_gbs": _number(block.get("bus_bw")),
               "nwrong": block.get("nwrong")}
    stats = summarize([size / t for t in times]) if times else (printed_stats(rate) if rate else None)
    if times and stats is not None:
        rate = stats.median  # the samples' median, as for tppbench's own records
    busbw = rate * factor if rate and factor else (printed["busbw_gbs"] * 1e9 if printed["busbw_gbs"] else None)
    extra = {"imported": {**provenance(source, tool, 1), "json_path": f"results[{i}]"}, "printed": printed,
             "count": row.get("count"), "type": row.get("type"), "redop": row.get("redop"),
             "root": str(row.get("root")).strip() if row.get("root") is not None else None,
             "in_place": in_place, "world_size": world, "busbw_formula": FORMULAS[op],
             "times_from": "the file's per-iteration times_us" if times else "the printed time alone (no -I)"}
    return Measurement(
        key=case_key("collectives", op, params), benchmark="collectives", variant=op, precision=None, params=params,
        device_index=None, status=status, reason=reason, unit="byte",
        convention=convention(op, TIMING) + ("" if factor else "; n unknown, so busbw is the printed one"),
        work_per_call=float(size), times_s=tuple(times), rate=rate if status != "skipped" else None,
        host=host, rank=0, stats=stats if status != "skipped" else None,
        busbw=busbw if status != "skipped" else None, busbw_factor=factor, extra=extra)
