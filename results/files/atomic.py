"""Atomic file output: write to a temp file in the target folder, then publish it in one step.

`publish_new` never replaces an existing file (result files); `publish_replace` replaces one
(reports, CSV exports). Either way a failure or crash mid-write leaves no partial target file,
only (at worst) a hidden `.tmp` file. Files get the usual permissions (0666 less the umask), not
mkstemp's 0600, so folders of results can be shared.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _written_temp(folder: Path, prefix: str, write: Callable[[BinaryIO], Any]) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
    try:
        os.chmod(name, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        yield Path(name)
    finally:
        if os.path.exists(name):
            os.unlink(name)


def publish_replace(target: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> Path:
    """Write `target` atomically, replacing an existing file (os.replace)."""
    target = Path(target)
    for tmp in _written_temp(target.parent, f".{target.name}.", write):
        os.replace(tmp, target)
    return target


def publish_new(wanted: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> Path:
    """Write a new file atomically under `wanted`'s name, or `stem-2`, `stem-3`, ... when taken.

    A hard link publishes the file and fails instead of replacing an existing one."""
    wanted = Path(wanted)
    for tmp in _written_temp(wanted.parent, ".tppbench-", write):
        for attempt in range(1, 10_000):
            target = wanted if attempt == 1 else wanted.with_name(f"{wanted.stem}-{attempt}{wanted.suffix}")
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                continue
    raise FileExistsError(f"{wanted}: no free file name")
