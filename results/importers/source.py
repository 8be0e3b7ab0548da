"""What every importer shares: the input's identity, the one-line failure, provenance, the run record.

An importer reads a `Source` (the text plus its name and sha256) and returns an `Imported`: the
RunResult and the lines it could not read. A file it cannot import at all raises `ImportFailed`,
whose message names the file and the line.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import re
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Iterable, Mapping

from results.errors import TppbenchError
from results.files.schema import DeviceInfo, RunInfo, RunResult, Stats
from results.analysis.stats import summarize
from results.files.untrusted_file import UnreadableFile, utf8_text

# A number as the tools print it: non-negative, decimal, at most a two-digit exponent; nothing float()
# refuses ("70..742", "1.2.3") and, with digit runs bounded by Source.of, nothing it makes infinite.
NUMBER = r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d{1,2})?"
MAX_DIGITS = 100  # a longer run of digits is no tool's figure (and int() refuses over 4,300)
_LONG_DIGITS = re.compile(rf"\d{{{MAX_DIGITS + 1}}}")


def printed_number(text: str) -> float | None:
    """The value of one printed number (a whole word: "12.5", "1e-05"); None for "N/A", "nan",
    "-5", "1.2.3" and anything else that is not a figure a tool prints."""
    return float(text) if re.fullmatch(NUMBER, text) else None


@dataclass(frozen=True)
class Source:
    name: str  # as given on the command line; "<stdin>" for "-"
    text: str
    sha256: str
    host: str | None = None  # --host: the host name when the output does not print one

    @classmethod
    def of(cls, name: str, raw: bytes, host: str | None = None) -> "Source":
        """Decode UTF-8 text (a leading byte-order mark is dropped); ImportFailed when not text."""
        try:  # the whole input, so the offset is the file's (utf-8-sig counted it from after the BOM)
            text = utf8_text(raw).removeprefix("\ufeff")
        except UnreadableFile as exc:
            raise ImportFailed(name, None, exc.problem) from None
        if "\0" in text:
            raise ImportFailed(name, None, "contains NUL bytes: a binary file, not a tool's text output")
        if long := _LONG_DIGITS.search(text):
            line = text.count("\n", 0, long.start()) + 1
            raise ImportFailed(name, line, f"a number of more than {MAX_DIGITS} digits: not a tool's output")
        return cls(name=name, text=text, sha256=hashlib.sha256(raw).hexdigest(), host=host)

    def lines(self) -> tuple[str, ...]:
        """The text's lines; carriage returns and erase-line sequences (ESC[K), a terminal's overwritten
        progress lines, split lines too. Split once per Source: importers ask for it (and for the last
        line) again and again, once per unreadable row."""
        return self._lines

    @functools.cached_property
    def _lines(self) -> tuple[str, ...]:
        return tuple(self.text.replace("\r\n", "\n").replace("\r", "\n").replace("\x1b[K", "\n").split("\n"))

    def first_text_line(self) -> int | None:
        """Number of the first line that is not blank (for errors about the whole file)."""
        return next((i for i, text in enumerate(self.lines(), start=1) if text.strip()), None)

    def last_text_line(self) -> int:
        """Number of the last line that is not blank; 0 for a blank text."""
        return self._last_text_line

    @functools.cached_property
    def _last_text_line(self) -> int:
        lines = self.lines()
        return next((i for i in range(len(lines), 0, -1) if lines[i - 1].strip()), 0)


class ImportFailed(TppbenchError):
    """The whole file cannot be imported; the message names the file and (where known) the line."""

    def __init__(self, name: str, line: int | None, problem: str) -> None:
        where = f"{name}: line {line}" if line is not None else name
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Skipped:
    line: int
    text: str
    why: str


@dataclass(frozen=True)
class Imported:
    result: RunResult
    skipped: tuple[Skipped, ...] = ()


@dataclass(frozen=True)
class Tool:
    """Which tool printed the text and what it says about itself."""

    name: str
    version: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def provenance(source: Source, tool: Tool, line: int) -> dict[str, Any]:
    """A record's `extra["imported"]`: where its numbers were read."""
    return {"tool": tool.name, "version": tool.version, "file": source.name, "sha256": source.sha256,
            "line": line}


def imported_run(source: Source, tool: Tool, *, host: str | None, suites: Iterable[str],
                 world_size: int = 1, hosts: Iterable[str] = (), complete: bool = True,
                 incomplete_reason: str | None = None, skipped: Iterable[Skipped] = (),
                 backend: str = "cuda", **versions: str | None) -> RunInfo:
    """The `run` block of an imported file. `started_utc` is the import time (the tools print no
    UTC start time); `imported_from` says so, and keeps what the tool printed about itself."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    name = source.host or host or unknown_host(source)
    imported_from = {
        "tool": tool.name, "version": tool.version, "file": source.name, "sha256": source.sha256,
        "started_utc_is": "the import time (the tool's output has no UTC start time)",
        "host_from": ("--host" if source.host else "the tool's output" if host else
                      "nowhere: the output names no host; pass --host"),
        "skipped_lines": [{"line": s.line, "text": s.text[:200], "why": s.why} for s in skipped],
        **dict(tool.details),
    }
    return RunInfo(
        host=name, started_utc=now, finished_utc=None, mode="imported", argv=(),
        harness_version=_harness_version(), suites=tuple(dict.fromkeys(suites)), backend=backend,
        complete=complete, incomplete_reason=incomplete_reason, world_size=world_size,
        hosts=tuple(dict.fromkeys(hosts)) or (name,), source="imported", imported_from=imported_from,
        **{k: v for k, v in versions.items() if v is not None},
    )


def printed_stats(rate: float) -> Stats:
    """`stats` of a record whose tool printed one figure and no samples: n = 1 (one printed figure,
    not one sample), every statistic that figure, no spread. The loader asks an imported ok record
    for this instead of raw `times_s`, which the tools do not print."""
    return summarize([rate])


def unknown_host(source: Source) -> str:
    """The host of an output that names none: unknown, and told apart from other files' by their sha256."""
    return f"unknown-{source.sha256[:8]}"


def unknown_devices(indices: Iterable[int], source: Source, tool: str) -> tuple[DeviceInfo, ...]:
    """Devices a tool measured (its matrix has their columns) but did not name: one unknown model per
    file (its sha256), so `fleet` never groups two different unnamed GPUs as one model."""
    out = []
    for index in sorted(set(indices)):
        named = device(index, f"unknown GPU {source.sha256[:8]}", source.host, tool)
        out.append(dataclasses.replace(named, unavailable={**named.unavailable, "name": f"{tool} printed no device list"}))
    return tuple(out)


def device(index: int, name: str, host: str | None, tool: str, pci_bus_id: str | None = None) -> DeviceInfo:
    """A device as the tool printed it: name (and bus id where printed); the rest is not known."""
    missing = f"not printed by {tool}"
    unavailable = {"pci_device_id": missing, "uuid": missing, "nvlink": missing}
    if pci_bus_id is None:
        unavailable["pci_bus_id"] = missing
    return DeviceInfo(index=index, backend="cuda", name=name.strip(), host=host, pci_bus_id=pci_bus_id,
                      unavailable=unavailable)


def _harness_version() -> str:
    try:
        return metadata.version("tppbench")
    except metadata.PackageNotFoundError:
        return "unknown"
