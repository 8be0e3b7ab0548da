"""Worker side of an index update: one chunk of result files -> rows, in a worker process.

Each file goes through the one parsing boundary of the loader (`results.store.read_bytes` +
`parse_bytes`), so the index refuses exactly what `load` refuses, with the same messages. A file
whose content hash equals the one recorded in the index is not parsed again (its rows are kept).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from results.files import store
from results.errors import ResultFileError
from results.index import tables


@dataclass(frozen=True)
class FileTask:
    path: str
    size_bytes: int
    mtime_ns: int
    known_sha256: str | None  # recorded in the index for this path, None when new


@dataclass(frozen=True)
class FileOutcome:
    path: str
    size_bytes: int
    mtime_ns: int
    sha256: str
    status: str  # indexed | skipped | same (content unchanged since it was indexed)
    problem: str | None
    result_fields: tuple | None  # the FILES row less its parts (None unless indexed)
    partitions: tuple[str, ...]  # partitions its rows went to


@dataclass(frozen=True)
class ChunkResult:
    files: tuple[FileOutcome, ...]
    rows: dict  # partition -> pa.Table of MEASUREMENTS rows


def parse_chunk(tasks: list[FileTask]) -> ChunkResult:
    outcomes: list[FileOutcome] = []
    grouped: dict[str, list[tuple]] = {}
    for task in tasks:
        try:
            raw = store.read_bytes(task.path)
        except ResultFileError as exc:
            outcomes.append(FileOutcome(task.path, task.size_bytes, task.mtime_ns, "", "skipped",
                                        exc.problem, None, ()))
            continue
        digest = hashlib.sha256(raw).hexdigest()
        if digest == task.known_sha256:
            outcomes.append(FileOutcome(task.path, task.size_bytes, task.mtime_ns, digest, "same", None, None, ()))
            continue
        try:
            result = store.parse_bytes(raw, task.path, records=False)  # rows only read attributes
        except ResultFileError as exc:
            outcomes.append(FileOutcome(task.path, task.size_bytes, task.mtime_ns, digest, "skipped",
                                        exc.problem, None, ()))
            continue
        del raw
        per_partition = tables.measurement_rows(result, task.path)
        for name, part_rows in per_partition.items():
            grouped.setdefault(name, []).extend(part_rows)
        row = tables.file_row(result, task.path, task.size_bytes, task.mtime_ns, digest, None, ())
        outcomes.append(FileOutcome(task.path, task.size_bytes, task.mtime_ns, digest, "indexed", None,
                                    row[:-1], tuple(sorted(per_partition))))
    return ChunkResult(tuple(outcomes),
                       {name: tables.table(tables.MEASUREMENTS, r) for name, r in grouped.items()})
