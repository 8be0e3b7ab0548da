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

from results.atomic import publish_new
from results.errors import ResultFileError
from results.schema import MAX_NESTING, READABLE_VERSIONS, SCHEMA_VERSION, RunResult, SchemaError, from_dict, to_dict
from results.terminal import short_repr
from results.untrusted_file import UnreadableFile, read_untrusted, utf8_text

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


def parse_bytes(raw: bytes, path: str | os.PathLike[str]) -> RunResult:
    """Decode and validate the bytes of one result file; `path` only names it in errors.

    The one parsing boundary: `load` and the fleet index's worker processes both go through it.
    Every limit for untrusted input is enforced here or in `results.schema.from_dict`: size
    (read_bytes), encoding (UTF-8 only: no byte-order mark, no NUL byte, no lone surrogate),
    nesting depth, number length and range, and the facts `from_dict` checks."""
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
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
        raise ResultFileError(path, "invalid result file: a string holds a lone UTF-16 surrogate "
                                    "(an unpaired \\ud800-\\udfff escape), which is not Unicode text")
    return result


def _decode_json(raw: bytes, text: str) -> object:
    """JSON text -> Python values. orjson (about 4x faster: the fleet index parses every file) when
    it gives exactly what the standard library would; anything it refuses, and any integer literal
    of 20+ digits (orjson turns those into floats), goes through `json.loads`, whose errors and
    values the checks after it are written for."""
    if _FAST_JSON is not None and _LONG_DIGIT_RUN not in raw.translate(_DIGITS_AS_ZERO):
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
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 20  # in the translated bytes: any run of 20 digits


# `\uD800`-`\uDFFF` escapes: a pair is an astral character, a lone one is not text.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


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
    for raw in paths:
        text = str(raw)
        p = Path(text)
        if os.path.isdir(p):  # False, not an OSError, for a name too long to exist
            yield from sorted(q for q in p.rglob("*.json") if not q.name.startswith("."))
        elif os.path.lexists(p):  # also a broken or looping link: the loader names the problem
            yield p
        elif any(ch in text for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            if not matches:
                raise ResultFileError(text, "pattern matches no file")
            for m in matches:
                if os.path.isdir(m):
                    yield from sorted(q for q in m.rglob("*.json") if not q.name.startswith("."))
                else:
                    yield m
        else:
            raise ResultFileError(text, "no such file or folder")
