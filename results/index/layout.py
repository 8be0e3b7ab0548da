"""The index folder on disk and its manifest, the single commit point.

    DIR/tppbench-index.json                     manifest: format marker + version, generation,
                                                the files table and every part (bytes, rows)
    DIR/files/files-<generation>.parquet        one row per result file (fingerprint, status, run)
    DIR/measurements/month=YYYY-MM/model=<slug>/part-<generation>-<id>.parquet
                                                one row per measurement, hive-partitioned

An update writes new part files and a new files table under fresh names, then replaces the
manifest atomically, then deletes what the old manifest listed and the new one does not. A
crash at any point leaves the previous generation intact; unreferenced files are removed by the
next update. Readers use only what the manifest lists, after checking that each file is present
with its recorded size, so a truncated index is an error, never a silently smaller answer. A
folder that is not empty and has no manifest is never written into.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

from results.files.atomic import publish_replace
from results.errors import TppbenchError

MANIFEST = "tppbench-index.json"
FORMAT = "tppbench-fleet-index"
FORMAT_VERSION = 1
FILES_DIR = "files"
MEASUREMENTS_DIR = "measurements"
LOCK = ".tppbench-index.lock"


class IndexFolderError(TppbenchError):
    """An index folder that cannot be used (foreign, damaged, newer format, busy)."""


@dataclass(frozen=True)
class Part:
    path: str  # relative to the index folder
    bytes: int
    rows: int


@dataclass(frozen=True)
class Manifest:
    generation: int = 0
    files_table: str | None = None
    files_table_bytes: int = 0
    parts: Mapping[str, Part] = field(default_factory=dict)
    roots: tuple[str, ...] = ()
    updated_utc: str | None = None

    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "generation": self.generation,
            "updated_utc": self.updated_utc, "roots": list(self.roots),
            "files_table": self.files_table, "files_table_bytes": self.files_table_bytes,
            "parts": {p.path: {"bytes": p.bytes, "rows": p.rows} for p in self.parts.values()},
        }


def damaged(folder: Path, problem: str) -> IndexFolderError:
    return IndexFolderError(f"{folder}: damaged tppbench index ({problem}); it is left as it is: "
                       "move it away or give another --index folder to build a new one")


def _read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise damaged(folder, f"{MANIFEST} unreadable: {exc.__class__.__name__}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise IndexFolderError(f"{folder}: {MANIFEST} is not a tppbench fleet index manifest; "
                          "refusing to use or overwrite this folder")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexFolderError(f"{folder}: index format version {version!r}, this tppbench reads "
                          f"{FORMAT_VERSION}; build a new index in another folder")
    try:
        parts = {
            name: Part(name, int(info["bytes"]), int(info["rows"])) for name, info in data["parts"].items()
        }
        return Manifest(int(data["generation"]), data["files_table"], int(data["files_table_bytes"]),
                        parts, tuple(data.get("roots", ())), data.get("updated_utc"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise damaged(folder, f"{MANIFEST} incomplete: {exc.__class__.__name__} {exc}") from None


def _check_files(folder: Path, manifest: Manifest) -> None:
    expected = dict((p.path, p.bytes) for p in manifest.parts.values())
    if manifest.files_table:
        expected[manifest.files_table] = manifest.files_table_bytes
    for name, size in expected.items():
        try:
            actual = (folder / name).stat().st_size
        except OSError:
            raise damaged(folder, f"{name} is missing") from None
        if actual != size:
            raise damaged(folder, f"{name} has {actual} bytes, the manifest recorded {size}")


def open_existing(folder: str | os.PathLike[str]) -> Manifest:
    """The manifest of a usable index for reading; a one-line error for anything else."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IndexFolderError(f"{folder}: no such index folder (build one with `tppbench index PATH... --index {folder}`)")
    if not (folder / MANIFEST).exists():
        raise IndexFolderError(f"{folder}: not a tppbench index (no {MANIFEST})")
    manifest = _read_manifest(folder)
    _check_files(folder, manifest)
    return manifest


def open_for_update(folder: str | os.PathLike[str]) -> Manifest:
    """The current manifest (generation 0 for a new or empty folder). A non-empty folder without
    a manifest, or a damaged index, is refused: user data is never built over."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise IndexFolderError(f"{folder}: is a file, not an index folder")
    if not folder.exists():
        if not folder.parent.is_dir():
            raise IndexFolderError(f"{folder}: folder {folder.parent} does not exist")
        folder.mkdir()
    if not (folder / MANIFEST).exists():
        others = [p.name for p in folder.iterdir() if p.name != LOCK]
        if others:
            raise IndexFolderError(f"{folder}: not empty and not a tppbench index (no {MANIFEST}); "
                              "refusing to write into it")
        return Manifest()
    manifest = _read_manifest(folder)
    _check_files(folder, manifest)
    return manifest


@contextlib.contextmanager
def locked(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Exclusive use of the index folder for one update; a second update at once is refused."""
    path = Path(folder) / LOCK
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexFolderError(f"{folder}: another tppbench is updating this index") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def new_part_name(partition: str, generation: int) -> str:
    return f"{MEASUREMENTS_DIR}/{partition}/part-{generation:06d}-{uuid.uuid4().hex[:8]}.parquet"


def files_table_name(generation: int) -> str:
    return f"{FILES_DIR}/files-{generation:06d}.parquet"


def commit(folder: str | os.PathLike[str], new: Manifest) -> None:
    """Publish `new` (its files already written), then delete every index file it does not list:
    what only the previous generation referenced and leftovers of interrupted updates."""
    folder = Path(folder)
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    payload = json.dumps({**new.to_dict(), "updated_utc": stamp}, indent=1).encode("utf-8") + b"\n"
    publish_replace(folder / MANIFEST, lambda handle: handle.write(payload))
    remove_unreferenced(folder, new)


def remove_unreferenced(folder: Path, manifest: Manifest) -> None:
    """Delete index files (ours by name and place) that `manifest` does not list; empty folders too."""
    keep = set(manifest.parts) | ({manifest.files_table} if manifest.files_table else set())
    for sub, pattern in ((MEASUREMENTS_DIR, "part-*.parquet"), (FILES_DIR, "files-*.parquet")):
        root = folder / sub
        if not root.is_dir():
            continue
        for path in root.rglob(pattern):
            if path.relative_to(folder).as_posix() not in keep:
                path.unlink(missing_ok=True)
        for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
