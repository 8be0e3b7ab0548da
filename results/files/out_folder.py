"""An output folder checked before any work is done: `run` checks --out before measuring, `import`
before reading its inputs, so a bad folder costs nothing and is said in one line."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from results.errors import UsageError


def check_out_folder(text: str) -> None:
    """--out must be a writable folder, or one that can be made (its nearest existing ancestor is a
    writable folder); said in one line before anything is measured. Nothing is left behind (an
    empty probe folder is made and removed)."""
    folder = Path(text).absolute()
    existing = folder
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
    except OSError as exc:  # a name longer than the file system allows (ENAMETOOLONG), ...
        raise UsageError(f"--out {text}: cannot be a folder here ({exc.strerror or exc})") from None
    if not existing.is_dir():
        what = "exists and is not a folder" if existing == folder else f"{existing} is not a folder"
        raise UsageError(f"--out {text}: {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out {text}: {existing} is not writable")
    try:  # os.access says yes to root everywhere, also on /proc and read-only mounts: try it
        tempfile.TemporaryDirectory(dir=existing, prefix=".tppbench-probe-").cleanup()
    except OSError as exc:
        raise UsageError(f"--out {text}: cannot create anything in {existing} ({exc.strerror or exc})") from None
