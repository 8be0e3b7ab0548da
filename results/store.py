"""Result files on disk: atomic, never-overwriting save; validating load; discovery.

File names sort by time and show host and device:
    20261126T071502Z_myhost_nvidia-h100-80gb-hbm3.json
A second run in the same second gets `-2`, `-3`, ... before `.json`; nothing is ever replaced.
"""

from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

from results.atomic import publish_new
from results.errors import ResultFileError
from results.schema import SCHEMA_VERSION, RunResult, SchemaError, from_dict, to_dict

SUPPORTED_VERSIONS = (1,)
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
    """The raw bytes of one result file; ResultFileError names the file when it cannot be read."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ResultFileError(path, "no such file") from None
    except IsADirectoryError:
        raise ResultFileError(path, "is a folder, not a result file") from None
    except OSError as exc:
        raise ResultFileError(path, f"cannot read: {exc}") from None


def parse_bytes(raw: bytes, path: str | os.PathLike[str]) -> RunResult:
    """Decode and validate the bytes of one result file; `path` only names it in errors.

    The one parsing boundary: `load` and the fleet index's worker processes both go through it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultFileError(path, f"cannot read: {exc}") from None
    if not text.strip():
        raise ResultFileError(path, "empty file")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ResultFileError(
            path, f"not valid JSON (truncated or corrupt?) at line {exc.lineno} column {exc.colno}"
        ) from None
    except _NonFiniteNumber as exc:
        raise ResultFileError(path, f"not valid JSON: {exc} is not a number JSON allows "
                                    "(tppbench never writes NaN or Infinity)") from None
    if not isinstance(data, dict):
        raise ResultFileError(path, "not a tppbench result file (top level is not an object)")
    if "schema_version" not in data:
        raise ResultFileError(path, "not a tppbench result file (no schema_version)")
    version = data["schema_version"]
    if version not in SUPPORTED_VERSIONS:
        raise ResultFileError(
            path,
            f"unknown schema_version {version!r} (this tppbench reads {list(SUPPORTED_VERSIONS)}; "
            f"writes {SCHEMA_VERSION})",
        )
    try:
        return from_dict(data)
    except SchemaError as exc:
        raise ResultFileError(path, f"invalid result file: {exc}") from None
    except TypeError as exc:  # a wrongly typed nested value that slipped past the field checks
        raise ResultFileError(path, f"invalid result file: {exc}") from None


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
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*.json") if not q.name.startswith("."))
        elif p.exists():
            yield p
        elif any(ch in text for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            if not matches:
                raise ResultFileError(text, "pattern matches no file")
            for m in matches:
                if m.is_dir():
                    yield from sorted(q for q in m.rglob("*.json") if not q.name.startswith("."))
                else:
                    yield m
        else:
            raise ResultFileError(text, "no such file or folder")
