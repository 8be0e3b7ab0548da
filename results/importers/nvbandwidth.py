"""nvbandwidth runs (text output, and `-j` JSON) -> hostlink, p2p, memory and nvbandwidth records.

Read from the text (versions 0.2 to 0.10 print the same shapes): the version lines, CUDA runtime
and driver versions, the device list (`Device 0: NAME (bus id)`, multi-node `Process ...`), each
testcase (`Running NAME.` / `Waiving NAME.`), its matrices (description line, column header, one
row per source with `N/A` for pairs not measured), `SUM NAME[_sub] VALUE` and
`COEFFICIENT_OF_VARIATION` lines. From JSON: the same facts from the `nvbandwidth` object.

Mapping (each record's `convention` says what nvbandwidth counted; GB = 1e9 B; a figure is the
median of nvbandwidth's samples, 3 by default):
- host_to_device_memcpy_ce / device_to_host_memcpy_ce -> hostlink/h2d_pinned, hostlink/d2h_pinned per GPU;
- host_to_device_ / device_to_host_bidirectional_memcpy_ce (one direction measured while the other
  runs) stay under their names, and their sum per GPU is hostlink/bidirectional_pinned;
- device_to_device_memcpy_write_ce / _read_ce -> p2p/unidirectional / p2p/unidirectional_read per pair;
- device_to_device_bidirectional_memcpy_write_ce / _read_ce -> p2p/bidirectional / _read per pair:
  the `Total` matrix where printed (0.6+), else the two directions' cells added;
- device_local_copy -> memory/copy with rate = 2 x the printed figure (nvbandwidth counts the copied
  bytes once; tppbench's memory/copy counts bytes read + bytes written);
- every other bandwidth testcase -> nvbandwidth/<testcase> per GPU or per pair; latency testcases
  (ns, not a rate) are listed as not imported;
- p2p/aggregate_io per GPU (what `check` reads as the measured 2022 I/O): the largest of the GPU's
  measured peer figures -- all peers at once (all_to_one/one_to_all inbound + outbound), the best
  single pair both ways, the best single pair one way. Each is a lower bound of the GPU's aggregate
  bidirectional peer I/O; they are not added, because pairs measured one at a time share the same
  links (NVSwitch, PCIe). The host link is kept beside it, not added (nvbandwidth does not print
  which links peer and host traffic share), so the record carries `host_link_missing`: a lower bound.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from results.importers.source import (NUMBER, ImportFailed, Imported, Skipped, Source, Tool, device,
                                      imported_run, printed_number, unknown_devices)
from results.files.schema import DeviceInfo, Measurement, RunResult
from results.importers.nvbandwidth_records import (  # noqa: F401 - the parsed form and the mapping, re-exported
    GB, HOSTLINK, MEDIAN, P2P, TOOL, Matrix, Testcase, _aggregates, _host_bidirectional, _records, _with_host)

_VERSION = re.compile(r"^nvbandwidth Version:\s*(\S+)")
_GIT = re.compile(r"^Built from Git version:\s*(\S*)")
_RUNTIME = re.compile(r"^CUDA Runtime Version:\s*(.+)$")
_CUDA_DRIVER = re.compile(r"^CUDA Driver Version(?: \(API\))?:\s*(.+)$")
_DRIVER = re.compile(r"^Driver Version:\s*(.+)$")
_DEVICE = re.compile(r"^Device (\d+):\s*(.+?)(?:\s+\(([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.\d)?)\))?\s*$")
_PROCESS = re.compile(r"^Process (\d+) \((\S+)\): device (\d+):\s*(.+?)(?:\s+\(([0-9a-fA-F:.]+)\))?\s*$")
_RUNNING = re.compile(r"^Running (\w+)\.$")
_WAIVING = re.compile(r"^Waiving (\w+)\.$")
_STATUS = re.compile(r"^(Waived|Error|Not Found):\s*(.*)$")
_SUM = re.compile(rf"^SUM (\w+) (-?{NUMBER})$")
_CV = re.compile(r"^COEFFICIENT_OF_VARIATION (\w+) ([-\d.eE+]+)$")
_FAILURE = re.compile(r"ASSERT|error|fail|invalid", re.IGNORECASE)  # nvbandwidth stopping on its own
_COLUMNS = re.compile(r"^\s*0(?:\s+\d+)*\s*$")
_NOISE = re.compile(r"^(NOTE:|Additional system-specific|Performance can vary|The reported results|"
                    r"nvbandwidth CLI|#{5,})")
START = re.compile(r"^nvbandwidth Version:|\"nvbandwidth\"\s*:")  # where a run's output begins
_MARKERS = ("nvbandwidth Version:", "Built from Git version:", "Running host_to_device", "Running device_to_", "memcpy CE ", "memcpy SM ",
            "SUM device_to_", "SUM host_to_", '"nvbandwidth"')


def detect(text: str) -> bool:
    head = text[:200_000]
    return sum(marker in head for marker in _MARKERS) >= 2 or (
        '"nvbandwidth"' in head and '"testcases"' in head)


@dataclass
class _Header:
    version: str | None = None
    git: str | None = None
    runtime: str | None = None
    cuda_driver: str | None = None
    driver: str | None = None
    hostname: str | None = None
    devices: list[DeviceInfo] = field(default_factory=list)


def parse(source: Source, collective: str | None = None) -> Imported:
    stripped = source.text.lstrip()
    if stripped.startswith("{") or '"nvbandwidth"' in source.text[:4000] and "{" in source.text[:4000]:
        header, cases, skipped = _parse_json(source)
        form = "json"
    else:
        header, cases, skipped = _parse_text(source)
        form = "text"
    if not cases:
        if header.version is not None:
            raise ImportFailed(source.name, source.last_text_line(), "truncated: nvbandwidth's header but no testcase")
        raise ImportFailed(source.name, source.first_text_line(), "no nvbandwidth testcase in the file")
    tool = Tool(TOOL, header.version, {"format": form, "git_version": header.git,
                                       "cuda_runtime": header.runtime, "cuda_driver": header.cuda_driver})
    host = source.host or header.hostname
    records: list[Measurement] = []
    not_imported: list[dict[str, Any]] = []
    for case in cases:
        records.extend(_records(case, source, tool, host, not_imported))
    records.extend(_host_bidirectional(records, source, tool, host))
    records.extend(_aggregates(records, source, tool, host))
    if not records:
        raise ImportFailed(source.name, cases[0].line, "no bandwidth figure in the file "
                           f"(testcases: {', '.join(c.name for c in cases)})")
    stopped = [c for c in cases if c.status == "Error" and not c.matrices]
    tool.details["not_imported"] = not_imported
    run = imported_run(
        source, tool, host=host, suites=dict.fromkeys(m.benchmark for m in records),
        hosts=[d.host for d in header.devices if d.host], complete=not stopped,
        incomplete_reason=(f"{stopped[0].name} printed no result ({stopped[0].message})" if stopped else None),
        skipped=skipped, driver=header.driver, cuda=header.runtime,
    )
    listed = tuple(header.devices if host is None else [_with_host(d, host) for d in header.devices])
    unlisted = {m.device_index for m in records if m.device_index is not None} - {d.index for d in listed}
    devices = listed + unknown_devices(unlisted, source, TOOL)  # measured but not in the (trimmed) device list
    return Imported(RunResult(run=run, devices=devices, measurements=tuple(records)), tuple(skipped))


# --------------------------------------------------------------------------- text


def _parse_text(source: Source) -> tuple[_Header, list[Testcase], list[Skipped]]:
    lines = source.lines()
    last = source.last_text_line()
    header = _Header()
    cases: list[Testcase] = []
    skipped: list[Skipped] = []
    matrix: Matrix | None = None
    pending: str | None = None
    seen = False
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        case = cases[-1] if cases else None
        if matrix is not None and len(matrix.rows) < matrix.expected_rows():
            row = _row(line, matrix.columns)
            if row is not None and row[0] == len(matrix.rows):
                matrix.rows.append(row[1])
                matrix.lines.append(number)
                continue
            if number == last:
                raise ImportFailed(source.name, number, "truncated: the file ends inside a matrix")
            skipped.append(Skipped(number, line, f"not row {len(matrix.rows)} of the matrix above"))
            if row is None and not _looks_like_row(line):
                matrix = None  # something else started: this line is read again below
            else:
                continue
        if m := _VERSION.match(line):
            header.version, seen = m.group(1), True
        elif m := _GIT.match(line):
            header.git = m.group(1)
        elif m := _RUNTIME.match(line):
            header.runtime = m.group(1).strip()
        elif m := _CUDA_DRIVER.match(line):
            header.cuda_driver = m.group(1).strip()
        elif m := _DRIVER.match(line):
            header.driver = m.group(1).strip()
        elif m := _DEVICE.match(line):
            header.devices.append(device(int(m.group(1)), m.group(2), None, TOOL, pci_bus_id=m.group(3)))
        elif m := _PROCESS.match(line):
            header.devices.append(device(int(m.group(3)), m.group(4), m.group(2), TOOL, pci_bus_id=m.group(5)))
        elif m := _RUNNING.match(line):
            cases.append(Testcase(m.group(1), number))
            matrix, pending, seen = None, None, True
        elif m := _WAIVING.match(line):
            cases.append(Testcase(m.group(1), number, status="Waived", message="waived by nvbandwidth"))
            matrix, pending, seen = None, None, True
        elif (m := _STATUS.match(line)) and case is not None:
            case.status, case.message = m.group(1), m.group(2) or None
        elif (m := _SUM.match(line)) and case is not None:
            if not case.name:
                case.name = m.group(1)
            case.sums[m.group(1)] = float(m.group(2))
            sub = m.group(1)[len(case.name) + 1:] if m.group(1).startswith(case.name + "_") else None
            if sub and case.matrices and case.matrices[-1].sub is None:
                case.matrices[-1].sub = sub.lower()
            matrix = None
        elif _CV.match(line) and case is not None:
            continue
        elif _COLUMNS.match(line) and case is not None and pending is not None:
            matrix = Matrix(pending, len(line.split()))
            if re.search(r"\bTotal\b", pending):
                matrix.sub = "total"
            case.matrices.append(matrix)
            pending = None
        elif seen and not _NOISE.match(line) and _is_description(line) and not _looks_like_row(line):
            if case is None or (case.name == "" and case.matrices):
                cases.append(Testcase("", number))  # the "Running NAME." line is missing: named by SUM
            pending, matrix = line, None
        elif _NOISE.match(line) or not seen:
            continue
        elif case is not None and case.status in ("Passed", "Error") and not case.matrices:
            case.status = "Error"
            case.message = (case.message + " " if case.message else "") + line
        else:
            skipped.append(Skipped(number, line, "not a line nvbandwidth prints"))
    if matrix is not None and len(matrix.rows) < matrix.expected_rows():
        raise ImportFailed(source.name, last, f"truncated: the matrix has {len(matrix.rows)} of "
                           f"{matrix.expected_rows()} rows")
    final = cases[-1] if cases else None
    if final is not None and not final.matrices and final.status in ("Passed", "Error") and not (
            final.message and _FAILURE.search(final.message)):
        # the output ends inside a testcase that printed no result and no failure of nvbandwidth's own
        raise ImportFailed(source.name, last, f"truncated: {final.name or 'a testcase'} started but its "
                           "result is missing")
    return header, cases, skipped


def _is_description(line: str) -> bool:
    return bool(re.search(r"\((GB/s|ns)\)\s*$", line))  # "memcpy CE CPU(row) -> GPU(column) bandwidth (GB/s)"


def _row(line: str, columns: int) -> tuple[int, list[float | None]] | None:
    words = line.split()
    if len(words) != columns + 1 or not words[0].isdigit():
        return None
    cells: list[float | None] = []
    for word in words[1:]:
        if word == "N/A":
            cells.append(None)
            continue
        if (value := printed_number(word)) is None:
            return None
        cells.append(value)
    return int(words[0]), cells


def _looks_like_row(line: str) -> bool:
    words = line.split()
    return bool(words) and words[0].isdigit()


# --------------------------------------------------------------------------- JSON


def _parse_json(source: Source) -> tuple[_Header, list[Testcase], list[Skipped]]:
    lines = source.lines()
    first = next((i for i, text in enumerate(lines) if text.lstrip().startswith("{")), None)
    if first is None:
        raise ImportFailed(source.name, 1, "no JSON object in the file")
    closing = max((i for i, text in enumerate(lines) if text.rstrip().endswith("}")), default=len(lines) - 1)
    skipped = [Skipped(i + 1, text, "outside nvbandwidth's JSON object") for i, text in enumerate(lines)
               if text.strip() and (i < first or i > closing)]
    body = "\n".join(lines[first:closing + 1])
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ImportFailed(source.name, first + exc.lineno, f"not valid JSON (truncated?): {exc.msg}") from None
    except RecursionError:  # the C scanner's own guard, raised before the stack is at risk
        raise ImportFailed(source.name, first + 1, "JSON nested too deeply (hundreds of levels): not "
                           "nvbandwidth's output") from None
    root = data.get("nvbandwidth") if isinstance(data, dict) else None
    if not isinstance(root, dict) or not isinstance(root.get("testcases", []), list):
        raise ImportFailed(source.name, first + 1, "JSON without an 'nvbandwidth' object holding 'testcases'")
    header = _Header(version=_text(root.get("version")), git=_text(root.get("git_version")),
                     runtime=_text(root.get("CUDA Runtime Version")), driver=_text(root.get("Driver Version")),
                     hostname=_text(root.get("hostname")))
    devices = root.get("GPU Device list")
    for entry in devices if isinstance(devices, list) else []:
        if m := _DEVICE.match(f"Device {entry}" if not str(entry).startswith("Device") else str(entry)):
            header.devices.append(device(int(m.group(1)), m.group(2), header.hostname, TOOL, pci_bus_id=m.group(3)))
    name_lines = [i for i, text in enumerate(lines, start=1) if '"name"' in text and first < i <= closing + 1]
    cases = []
    for position, raw in enumerate(root.get("testcases", [])):
        line = name_lines[position] if position < len(name_lines) else first + 1
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            skipped.append(Skipped(line, str(raw)[:200], "a testcase without a name"))
            continue
        case = Testcase(raw["name"], line, status=str(raw.get("status") or "Passed"),
                        message=_text(raw.get("error")), buffer_bytes=_int(raw.get("bufferSize")))
        matrix_raw = raw.get("bandwidth_matrix")
        if isinstance(matrix_raw, list) and matrix_raw:
            description = str(raw.get("bandwidth_description", "")).strip()
            matrix = Matrix(description, len(matrix_raw[0]) if isinstance(matrix_raw[0], list) else 0)
            for r, row in enumerate(matrix_raw):
                cells = [_cell(c) for c in row] if isinstance(row, list) else None
                if cells is None or any(c is _BAD for c in cells):
                    skipped.append(Skipped(line, str(row)[:200], f"{case.name}: row {r} is not a list of numbers"))
                    continue
                matrix.rows.append(cells)
                matrix.lines.append(line)
            case.matrices.extend(_split_stacked(matrix))
        if isinstance(total := _cell(raw.get("sum")), float):
            case.sums[case.name] = total
        cases.append(case)
    return header, cases, skipped


_BAD = object()


def _split_stacked(matrix: Matrix) -> list[Matrix]:
    """nvbandwidth's JSON appends every matrix of a testcase to one `bandwidth_matrix` and keeps the
    last description (a bidirectional testcase: direction 1, direction 2, then Total): k stacked
    square matrices become k matrices, the last one named by the description."""
    n = matrix.columns
    k = len(matrix.rows) // n if n and matrix.expected_rows() == n else 1
    if k <= 1 or len(matrix.rows) != k * n:
        return [matrix]
    last = "total" if re.search(r"\bTotal\b", matrix.description) else None
    parts = []
    for part in range(k):
        rows, lines = matrix.rows[part * n:(part + 1) * n], matrix.lines[part * n:(part + 1) * n]
        sub = last if part == k - 1 and last else f"part{part + 1}"
        parts.append(Matrix(matrix.description, n, rows, lines, sub))
    return parts


def _cell(value: Any) -> Any:
    """A JSON matrix cell: None for "N/A", the figure of a number or numeric string, else _BAD (NaN,
    Infinity, a negative figure, true/false, a list)."""
    if value in ("N/A", None):
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return _BAD
    figure = printed_number(value if isinstance(value, str) else repr(value))
    return _BAD if figure is None else figure


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _int(value: Any) -> int | None:
    figure = _cell(value) if isinstance(value, (int, float)) else None
    return int(figure) if isinstance(figure, float) else None
