"""Output files other than result files (CSV, Parquet, the report): a path that can be written,
and an atomic write that replaces an older file. Failures are one line, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, BinaryIO, Callable


def check_output(path: str | os.PathLike[str], inputs: Any = ()) -> Path:
    """An output file path that can be written: its folder exists, it is not a folder, and it is
    not one of the input result files (which are never modified). Else a one-line UsageError."""
    from results.errors import UsageError

    target = Path(path)
    if len(target.name.encode(errors="surrogateescape")) > 255:  # NAME_MAX of common file systems
        raise UsageError(f"{target}: file name longer than 255 bytes")
    if not os.path.isdir(target.parent):  # os.path: False, not an OSError, for an over-long name
        raise UsageError(f"{target}: folder {target.parent} does not exist")
    if os.path.isdir(target):
        raise UsageError(f"{target}: is a folder; give a file name to write")
    resolved = os.path.realpath(target)  # unlike Path.resolve, never raises on a symlink loop
    if any(os.path.realpath(p) == resolved for p in inputs):
        raise UsageError(f"{target}: is one of the input result files; input files are never overwritten")
    return target


def write_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> Path:
    """Write an output file (CSV, Parquet, report) atomically, replacing an older one.

    `write` gets the open binary handle. A failure leaves any existing file untouched and is one
    line (exit 1), not a traceback."""
    from results.files.atomic import publish_replace
    from results.errors import TppbenchError

    target = check_output(path)
    try:
        return publish_replace(target, write)
    except OSError as exc:
        raise TppbenchError(f"{target}: cannot write: {exc.strerror or exc}") from None
