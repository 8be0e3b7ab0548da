"""Result files on disk: atomic, never-overwriting save; validating load; discovery.

File names sort by time and show host and device:
    20261126T071502Z_myhost_nvidia-h100-80gb-hbm3.json
A second run in the same second gets `-2`, `-3`, ... before `.json`; nothing is ever replaced.
"""

from __future__ import annotations

import codecs
import glob
import json
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

from results.files import compiled_schema
from results.files.atomic import publish_new
from results.errors import ResultFileError
from results.files.schema import MAX_NESTING, READABLE_VERSIONS, SCHEMA_VERSION, RunResult, SchemaError, from_dict, to_dict
from results.terminal import short_repr
from results.files.untrusted_file import UnreadableFile, read_untrusted, utf8_text

SUPPORTED_VERSIONS = READABLE_VERSIONS
# Result files seen here: 24 KB (CPU quick run), 36 KB (one-GPU quick fixture); this leaves room
# for raw samples of long runs on many GPUs while refusing a file of hundreds of MB unread.
MAX_RESULT_FILE_BYTES = 64 * 1024 * 1024
_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str, limit: int = 40) -> str:
    """Lower-case, dash-separated, file-name-safe form of `text`."""
    return _SLUG.sub("-", text.lower()).strip("-")[:limit] or "unknown"


def file_name(result: RunResult) -> str:
    stamp = re.sub(r"[-:]", "", result.run.started_utc.split(".")[0])
    if not stamp.endswith("Z"):
        stamp += "Z"
    device = result.devices[0].name if result.devices else result.run.backend or "nodevice"
    return f"{stamp}_{slug(result.run.host)}_{slug(device)}.json"


def save(result: RunResult, folder: str | os.PathLike[str]) -> Path:
    """Write `result` into `folder` atomically and return the new path.

    Never overwrites: an existing name gets a numeric suffix. A crash mid-write leaves at most a
    hidden `.tmp` file, never a partial result file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    payload = (json.dumps(to_dict(result), indent=1, allow_nan=False) + "\n").encode("utf-8")
    return publish_new(folder / file_name(result), lambda handle: handle.write(payload))


def load(path: str | os.PathLike[str]) -> RunResult:
    """Read and validate one result file; ResultFileError names the file and the problem."""
    path = Path(path)
    return parse_bytes(read_bytes(path), path)


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The raw bytes of one result file; ResultFileError names the file when it cannot be read.

    Special files (FIFOs, devices, sockets), symlink loops and files over MAX_RESULT_FILE_BYTES
    are refused from a `stat`, before the file is opened for reading."""
    try:
        return read_untrusted(path, MAX_RESULT_FILE_BYTES, "a result file")
    except UnreadableFile as exc:
        raise ResultFileError(path, exc.problem) from None


def parse_bytes(raw: bytes, path: str | os.PathLike[str], *, records: bool = True) -> RunResult:
    """Decode and validate the bytes of one result file; `path` only names it in errors.

    records=False (the fleet index): where the compiled decoder accepts the file, its validated
    document (attribute access like a RunResult, not frozen dataclasses) rather than a RunResult.

    The one parsing boundary: `load` and the fleet index's worker processes both go through it.
    Every limit for untrusted input is enforced here or in `results.schema.from_dict`: size
    (read_bytes), encoding (UTF-8 only: no byte-order mark, no NUL byte, no lone surrogate),
    nesting depth, number length and range, and the facts `from_dict` checks.

    The compiled decoder (`results.compiled_schema`) goes first: what it accepts, every check
    here accepts (a BOM, a NUL byte or a byte that is not UTF-8 is not JSON to it either); what it
    does not accept, these checks decide, with their messages."""
    result = compiled_schema.decode(raw, records=records)  # None: it cannot tell; the checks below decide
    if result is not None:
        return result
    if raw.startswith(codecs.BOM_UTF8):
        raise ResultFileError(path, "starts with a byte-order mark (BOM): not a tppbench result file "
                                    "(they are plain UTF-8 JSON without one)")
    if b"\0" in raw:
        raise ResultFileError(path, "contains NUL bytes: a binary or corrupt file, not JSON")
    try:
        text = utf8_text(raw)
    except UnreadableFile as exc:
        raise ResultFileError(path, exc.problem) from None
    if not text or text.isspace():
        raise ResultFileError(path, "empty file")
    try:
        data = _decode_json(raw, text)
    except json.JSONDecodeError as exc:
        raise ResultFileError(
            path, f"not valid JSON (truncated or corrupt?) at line {exc.lineno} column {exc.colno}"
        ) from None
    except _NonFiniteNumber as exc:
        raise ResultFileError(path, f"not valid JSON: {exc} is not a number JSON allows "
                                    "(tppbench never writes NaN or Infinity)") from None
    except RecursionError:  # the C scanner's own guard, raised before the stack is at risk
        raise ResultFileError(path, "nested too deeply (hundreds of levels of lists or objects; a result "
                                    f"file has fewer than {MAX_NESTING})") from None
    except ValueError as exc:  # int(): a literal over sys.get_int_max_str_digits() digits
        raise ResultFileError(path, f"a number is too long to read ({_first_line(exc)})") from None
    if not isinstance(data, dict):
        raise ResultFileError(path, "not a tppbench result file (top level is not an object)")
    if "schema_version" not in data:
        raise ResultFileError(path, "not a tppbench result file (no schema_version)")
    version = data["schema_version"]
    if type(version) is not int or version not in SUPPORTED_VERSIONS:  # not true, not 1.0
        raise ResultFileError(
            path,
            f"unknown schema_version {short_repr(version)} (this tppbench reads {list(SUPPORTED_VERSIONS)}; "
            f"writes {SCHEMA_VERSION})",
        )
    try:
        result = from_dict(data)
    except SchemaError as exc:
        raise ResultFileError(path, f"invalid result file: {exc}") from None
    if compiled_schema.surrogate_escape(raw) and _has_lone_surrogate(data):
        raise ResultFileError(path, "invalid result file: a string holds a lone UTF-16 surrogate "
                                    "(an unpaired \\ud800-\\udfff escape), which is not Unicode text")
    return result


def _decode_json(raw: bytes, text: str) -> object:
    """JSON text -> Python values. orjson (about 4x faster: the fleet index parses every file) when
    it gives exactly what the standard library would; anything it refuses, and any integer literal
    of 20+ digits (orjson turns those into floats), goes through `json.loads`, whose errors and
    values the checks after it are written for."""
    if _FAST_JSON is not None and not compiled_schema.long_digit_run(raw):
        try:
            return _FAST_JSON.loads(raw)
        except _FAST_JSON.JSONDecodeError:
            pass  # the standard library names the problem (and the line) the same way every time
    return json.loads(text, parse_constant=_refuse_constant)


def _fast_json_module():
    """orjson where it is installed and new enough to refuse deep nesting itself (3.8 crashes on
    100,000 levels; 3.13 stops at 1,024); None otherwise (an offline GPU host may lack it)."""
    try:
        import orjson
    except ImportError:
        return None
    version = tuple(int(part) for part in re.findall(r"\d+", orjson.__version__)[:2])
    return orjson if version >= (3, 13) else None


_FAST_JSON = _fast_json_module()


def _has_lone_surrogate(data: object) -> bool:
    """Only reached for files with surrogate escapes (astral characters, rare): a precise check."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _first_line(exc: Exception) -> str:
    return str(exc).split(":")[0]


class _NonFiniteNumber(ValueError):
    pass


def _refuse_constant(name: str) -> None:
    raise _NonFiniteNumber(name)


def discover(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Expand folders (recursively, *.json) and globs into result-file paths, sorted per argument.

    A path that matches nothing raises ResultFileError so a typo is never silently ignored."""
    return map(Path, discover_names(paths))


def discover_names(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """`discover` as strings, as os.path.join makes them (not normalised like a Path: "./a/x.json"
    stays so); the fleet index walks 100,000s of files and takes abspaths, so no Path per file."""
    for raw in paths:
        text = str(raw)
        if os.path.isdir(text):  # False, not an OSError, for a name too long to exist
            yield from _json_files_under(text)
        elif os.path.lexists(text):  # also a broken or looping link: the loader names the problem
            yield text
        elif any(ch in text for ch in "*?["):
            matches = sorted(glob.glob(text, recursive=True), key=_path_parts)
            if not matches:
                raise ResultFileError(text, "pattern matches no file")
            for m in matches:
                if os.path.isdir(m):
                    yield from _json_files_under(m)
                else:
                    yield m
        else:
            raise ResultFileError(text, "no such file or folder")


def _json_files_under(folder: str) -> list[str]:
    """What `Path(folder).rglob("*.json")` finds, less names starting with "." (temporary files),
    in Path order: symbolic links to folders are not followed, unreadable folders are passed over.
    One `os.scandir` per folder (rglob scans each folder twice and builds a Path per entry)."""
    found: list[str] = []
    folders = [folder]
    while folders:
        current = folders.pop()
        try:
            with os.scandir(current) as scan:
                entries = list(scan)
        except PermissionError:
            continue
        for entry in entries:
            name = entry.name
            if name.endswith(".json") and not name.startswith("."):
                found.append(entry.path)
            try:
                if entry.is_dir() and not entry.is_symlink():
                    folders.append(entry.path)
            except OSError:
                continue
    found.sort(key=_path_parts)
    return found


def _path_parts(name: str) -> list[str]:
    """Sort key giving Path order (by components: "a/x.json" before "a-b/x.json")."""
    return name.split(os.sep)
