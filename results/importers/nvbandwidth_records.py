"""nvbandwidth's testcases as parsed (Matrix, Testcase) -> tppbench records: the mapping that
`results.importers.nvbandwidth`'s docstring describes (hostlink, p2p, memory, nvbandwidth/<name>,
the derived host-link bidirectional sum and p2p/aggregate_io)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable

from results.importers.source import Source, Tool, printed_stats, provenance
from results.files.keys import case_key
from results.files.schema import DeviceInfo, Measurement

TOOL = "nvbandwidth"
GB = 1e9
MEDIAN = "nvbandwidth reports the median of its samples (3 by default; the mean with -m); GB = 1e9 B"
HOSTLINK = {"host_to_device_memcpy_ce": "h2d_pinned", "device_to_host_memcpy_ce": "d2h_pinned"}
P2P = {"device_to_device_memcpy_write_ce": "unidirectional", "device_to_device_memcpy_read_ce": "unidirectional_read",
       "device_to_device_bidirectional_memcpy_write_ce": "bidirectional",
       "device_to_device_bidirectional_memcpy_read_ce": "bidirectional_read"}
HOST_BIDIRECTIONAL = ("host_to_device_bidirectional_memcpy_ce", "device_to_host_bidirectional_memcpy_ce")
AGGREGATE_CONVENTION = (
    "largest measured peer figure of this GPU, each a lower bound of its aggregate bidirectional peer I/O: "
    "all peers at once (nvbandwidth all_to_one/one_to_all: total inbound + total outbound, two runs), the best "
    "single pair both ways, the best single pair one way; pairs measured one at a time share links, so they "
    "are not added; the host link is not added either (nvbandwidth does not print which links are shared)")


@dataclass
class Matrix:
    description: str
    columns: int
    rows: list[list[float | None]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    sub: str | None = None  # read1 / read2 / total ... from the SUM line or the description

    def expected_rows(self) -> int:
        return 1 if ("CPU(row)" in self.description or "All G" in self.description
                     or "local" in self.description) else self.columns


@dataclass
class Testcase:
    name: str
    line: int
    status: str = "Passed"
    message: str | None = None
    matrices: list[Matrix] = field(default_factory=list)
    sums: dict[str, float] = field(default_factory=dict)
    buffer_bytes: int | None = None


# --------------------------------------------------------------------------- records


def _records(case: Testcase, source: Source, tool: Tool, host: str | None,
             not_imported: list[dict[str, Any]]) -> list[Measurement]:
    if case.status != "Passed" or not case.matrices:
        status = "skipped" if case.status in ("Waived", "Not Found") else "error"
        why = case.message or f"nvbandwidth: {case.status}"
        if case.status == "Passed":
            status, why = "error", "the testcase printed no result (the run stopped here)"
        return [_record(case, "nvbandwidth", case.name, {}, None, None, source, tool, host, case.line,
                        f"nvbandwidth {case.name}", status=status, reason=why)]
    if any("(ns)" in m.description or "latency" in m.description.lower() for m in case.matrices):
        not_imported.append({"testcase": case.name, "line": case.line, "why": "a latency (ns), not a rate"})
        return []
    out = []
    raw = case.matrices
    if case.name in P2P and "bidirectional" in case.name:
        # pairs both ways as p2p records; the printed per-direction matrices stay under nvbandwidth names
        out.extend(_pairs_bidirectional(case, source, tool, host))
        raw = [m for m in case.matrices if m.sub != "total"]
    for matrix in raw:
        for figure in _figures(matrix):
            index, params, value, line = figure
            what = f"nvbandwidth {case.name} ({matrix.description}): {MEDIAN}"
            if case.name in HOSTLINK:
                out.append(_record(case, "hostlink", HOSTLINK[case.name], _bytes(case), index, value, source, tool,
                                   host, line, f"{what}; bytes copied once per direction (copy engine, pinned host buffer)"))
            elif case.name in P2P and "src" in params and "bidirectional" not in case.name:
                out.append(_record(case, "p2p", P2P[case.name], {**params, **_bytes(case)}, params["src"], value,
                                   source, tool, host, line, f"{what}; bytes copied src->dst once (copy engine)"))
            elif case.name == "device_local_copy":
                out.append(_record(case, "memory", "copy", _bytes(case), index, 2 * value, source, tool, host, line,
                                   f"{what}; nvbandwidth counts the copied bytes once, the rate here is 2 x its "
                                   "figure: bytes read + bytes written (tppbench's memory/copy)",
                                   printed=value))
            else:
                variant = case.name + (f"_{matrix.sub}" if matrix.sub else "")
                out.append(_record(case, "nvbandwidth", variant, params, index, value, source, tool, host, line, what))
    return out


def _figures(matrix: Matrix) -> Iterable[tuple[int | None, dict[str, int], float, int]]:
    """(device index, params, GB/s, line) per printed cell; pairs read with the printed arrow."""
    single_row = matrix.expected_rows() == 1
    reverse = "<-" in matrix.description and "<->" not in matrix.description
    for r, row in enumerate(matrix.rows):
        for c, value in enumerate(row):
            if value is None:
                continue
            if single_row:
                yield c, {"gpu": c}, value, matrix.lines[r]
            else:
                src, dst = (c, r) if reverse else (r, c)
                yield src, {"src": src, "dst": dst}, value, matrix.lines[r]


def _pairs_bidirectional(case: Testcase, source: Source, tool: Tool, host: str | None) -> list[Measurement]:
    """One p2p record per unordered pair: the Total matrix's cell, or both directions' cells added."""
    total = next((m for m in case.matrices if m.sub == "total"), None)
    single = case.matrices[0] if total is None and len(case.matrices) == 1 else None
    out = []
    source_matrix = total or single
    if source_matrix is None:
        return out
    n = len(source_matrix.rows)
    for i in range(n):
        for j in range(i + 1, min(n, len(source_matrix.rows[i]))):
            if total is not None:
                value = total.rows[i][j]
                how = "nvbandwidth's Total matrix: both directions at once, summed by nvbandwidth"
            else:
                a, b = single.rows[i][j], single.rows[j][i]
                value = None if a is None or b is None else a + b
                how = ("the two directions' cells added: each measured while the opposite copy ran "
                       "(nvbandwidth's measured stream; two runs)")
            if value is None:
                continue
            out.append(_record(case, "p2p", P2P[case.name], {"src": i, "dst": j, **_bytes(case)}, i, value, source,
                               tool, host, source_matrix.lines[i],
                               f"nvbandwidth {case.name}: sum of both directions between the pair, {how}; {MEDIAN}"))
    return out


def _host_bidirectional(records: list[Measurement], source: Source, tool: Tool,
                        host: str | None) -> list[Measurement]:
    """hostlink/bidirectional_pinned per GPU: h2d measured under d2h load + d2h measured under h2d load."""
    parts: dict[int, dict[str, Measurement]] = {}
    for m in records:
        if m.benchmark == "nvbandwidth" and m.variant in HOST_BIDIRECTIONAL and m.status == "ok":
            parts.setdefault(m.device_index, {})[m.variant] = m
    out = []
    for gpu, found in sorted(parts.items()):
        if len(found) < 2:
            continue
        h2d, d2h = found[HOST_BIDIRECTIONAL[0]], found[HOST_BIDIRECTIONAL[1]]
        out.append(_derived("hostlink", "bidirectional_pinned", {}, gpu, h2d.rate + d2h.rate, source, tool, host,
                            h2d.extra["imported"]["line"],
                            "sum of both directions: nvbandwidth host_to_device_bidirectional_memcpy_ce (h2d measured "
                            "while a d2h copy ran) + device_to_host_bidirectional_memcpy_ce (the reverse), two runs; "
                            + MEDIAN, {"h2d_under_load": h2d.rate, "d2h_under_load": d2h.rate}))
    return out


def _aggregates(records: list[Measurement], source: Source, tool: Tool, host: str | None) -> list[Measurement]:
    inbound: dict[int, float] = {}
    outbound: dict[int, float] = {}
    pair_both: dict[int, float] = {}
    pair_one: dict[int, float] = {}
    host_link: dict[int, float] = {}
    first_line: dict[int, int] = {}
    for m in records:
        if m.status != "ok" or m.rate is None:
            continue
        line = m.extra["imported"]["line"]
        if m.benchmark == "p2p":
            target = pair_both if m.variant.startswith("bidirectional") else pair_one
            for gpu in (m.params["src"], m.params["dst"]):
                target[gpu] = max(target.get(gpu, 0.0), m.rate)
                first_line.setdefault(gpu, line)
        elif m.benchmark == "nvbandwidth" and "gpu" in m.params:
            gpu = m.params["gpu"]
            description = m.extra.get("description", "")
            if "All G" not in description:
                continue
            into_gpu = ("-> GPU(column)" in description) or ("GPU(column) <-" in description)
            target = inbound if into_gpu else outbound
            target[gpu] = max(target.get(gpu, 0.0), m.rate)
            first_line.setdefault(gpu, line)
        elif m.benchmark == "hostlink" and m.variant == "bidirectional_pinned":
            host_link[m.device_index] = m.rate
    out = []
    for gpu in sorted(first_line):
        candidates = {
            "all_peers_at_once_in_plus_out": (inbound[gpu] + outbound[gpu]) if gpu in inbound and gpu in outbound else None,
            "best_pair_both_directions": pair_both.get(gpu),
            "best_pair_one_direction": pair_one.get(gpu),
        }
        known = {k: v for k, v in candidates.items() if v is not None}
        if not known:
            continue
        chosen = max(known, key=known.get)
        record = _derived("p2p", "aggregate_io", {"device": gpu}, gpu, known[chosen], source, tool, host, first_line[gpu],
                          AGGREGATE_CONVENTION, {"candidates": candidates, "chosen": chosen,
                                                 "hostlink_bidirectional": host_link.get(gpu),
                                                 "hostlink_not_added": "nvbandwidth does not print which links peer "
                                                                       "and host traffic share"})
        out.append(dataclasses.replace(record, flags=("host_link_missing",)))
    return out


def _bytes(case: Testcase) -> dict[str, int]:
    return {"bytes": case.buffer_bytes} if case.buffer_bytes else {}


def _record(case: Testcase, benchmark: str, variant: str, params: dict[str, Any], index: int | None,
            gbs: float | None, source: Source, tool: Tool, host: str | None, line: int, convention: str, *,
            status: str = "ok", reason: str | None = None, printed: float | None = None) -> Measurement:
    description = case.matrices[0].description if case.matrices else None
    extra = {"imported": provenance(source, tool, line), "testcase": case.name, "description": description,
             "printed_gbs": printed if printed is not None else gbs, "sums_gbs": dict(case.sums)}
    if status == "ok" and not gbs:
        status, reason = "error", f"nvbandwidth printed {gbs} GB/s"
    return Measurement(
        key=case_key(benchmark, variant, params), benchmark=benchmark, variant=variant, precision=None,
        params=params, device_index=index, status=status, reason=reason, unit="byte", convention=convention,
        work_per_call=float(case.buffer_bytes or 0), rate=gbs * GB if gbs is not None and status == "ok" else None,
        stats=printed_stats(gbs * GB) if gbs and status == "ok" else None, host=host, extra=extra,
    )


def _derived(benchmark: str, variant: str, params: dict[str, Any], gpu: int, rate: float, source: Source,
             tool: Tool, host: str | None, line: int, convention: str, parts: dict[str, Any]) -> Measurement:
    return Measurement(
        key=case_key(benchmark, variant, params), benchmark=benchmark, variant=variant, precision=None,
        params=params, device_index=gpu, status="ok", reason=None, unit="byte", convention=convention,
        work_per_call=0.0, rate=rate, host=host,
        extra={"imported": provenance(source, tool, line), "derived_from": parts},
    )


def _with_host(d: DeviceInfo, host: str) -> DeviceInfo:
    return d if d.host else dataclasses.replace(d, host=host)
