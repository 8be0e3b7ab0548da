"""Build or update an index from result files: only new or changed files are parsed.

A file is unchanged when its path, size and mtime match the index (then it is not even opened);
a file whose size or mtime changed is read and hashed, and parsed only when its sha256 differs
from the recorded one. Rows of vanished or changed files are removed by rewriting only the part
files that held them; new rows go to one new part per partition; every other part is left as it
is. Parsing runs in worker processes (spawned, `workers` of them), a bounded number of chunks in
flight, so memory does not grow with the number of files. A bad file is reported, recorded as
skipped with its problem (not read again until it changes), or fatal with `strict`.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from results.files import store
from results.errors import ResultFileError
from results.analysis.frame import LoadProblem
from results.index import layout, tables
from results.index.parse import ChunkResult, FileOutcome, FileTask, parse_chunk

CHUNK_FILES = 200  # files per worker task
# fewer files to parse than this: no worker processes (on 2 cores, starting them costs more than
# they save: 1,000 new files took 1.05 s in-process, 1.65 s with 2 workers; 3,000: 2.0-2.6 s vs 2.6-2.7 s)
IN_PROCESS_BELOW = 3000
ROW_GROUP_ROWS = 131_072  # rows buffered per partition before they are written as a row group
MAX_BUFFERED_ROWS = 524_288  # across partitions; beyond it the largest buffer is written
MAX_PARTS_PER_PARTITION = 8  # beyond it the smallest parts of a partition are merged (compaction)
COMPRESSION = "zstd"
UNREADABLE = (-1, -1)  # the fingerprint of a name that cannot be stat'ed (a broken link)


@dataclass(frozen=True)
class UpdateSummary:
    files: int  # result files in the index now (indexed + skipped)
    skipped: int  # of which recorded as bad
    measurements: int  # measurement rows in the index now
    parts: int  # part files in the index now
    added: int  # new files parsed
    changed: int  # files whose content changed (re-parsed)
    touched: int  # size/mtime changed but same content: not parsed again
    removed: int  # indexed files gone from the disk: their rows dropped
    unchanged: int  # not opened at all
    parts_written: int
    parts_rewritten: int  # older parts rewritten (rows of changed/removed files, or compaction)
    problems: tuple[LoadProblem, ...]  # bad files found this time
    seconds: float
    committed: bool  # False: nothing changed, nothing written

    def describe(self) -> str:
        return (f"{self.files - self.skipped} result files indexed ({self.measurements} measurements in "
                f"{self.parts} parts), {self.skipped} bad files recorded as skipped; this update: "
                f"{self.added} new, {self.changed} changed, {self.removed} removed, "
                f"{self.unchanged + self.touched} unchanged; {self.parts_written} parts written, "
                f"{self.parts_rewritten} rewritten; {self.seconds:.1f} s")


def update(
    folder: str | os.PathLike[str],
    paths: Iterable[str | os.PathLike[str]],
    *,
    strict: bool = False,
    on_problem: Callable[[LoadProblem], None] | None = None,
    workers: int | None = None,
) -> UpdateSummary:
    """Add the result files under `paths` to the index in `folder`, re-parse the ones that changed,
    and drop the rows of indexed files that no longer exist. Files indexed from other paths in
    earlier calls stay: an update with one new folder adds it, it does not shrink the index to it."""
    started = time.perf_counter()
    folder = Path(folder)
    layout.open_for_update(folder)  # refuses foreign or damaged folders before anything is written
    with layout.locked(folder):
        old = layout.open_for_update(folder)
        return _update(folder, old, list(paths), strict, on_problem, workers, started)


def _update(folder: Path, old: layout.Manifest, paths: list, strict: bool,
            on_problem: Callable[[LoadProblem], None] | None, workers: int | None,
            started: float) -> UpdateSummary:
    current = _fingerprints(paths, folder)
    old_files = _read_files_table(folder, old)
    known = dict(zip(old_files["path"].to_pylist(),
                     zip(old_files["size_bytes"].to_pylist(), old_files["mtime_ns"].to_pylist())))
    changed_paths, unchanged = [], 0
    for path, fingerprint in current.items():
        if known.get(path) == fingerprint:
            unchanged += 1
        else:
            changed_paths.append(path)
    if strict:
        _refuse_recorded_bad(old_files, current)
    hashes = _recorded(old_files, "sha256", [p for p in changed_paths if p in known])
    tasks = [FileTask(p, *current[p], hashes.get(p)) for p in changed_paths]
    vanished = {p for p in set(known) - set(current) if not os.path.lexists(p)}
    if not tasks and not vanished:
        return _summary(old, old_files, added=0, changed=0, touched=0, removed=0, unchanged=unchanged,
                        written=0, rewritten=0, problems=(), started=started, committed=False)

    generation = old.generation + 1
    writer = _PartWriter(folder, generation)
    new_files: list[pa.Table] = []  # FILES rows of what was parsed, one compact table per chunk
    same: dict[str, FileOutcome] = {}  # re-fingerprinted, content unchanged
    reparsed: set[str] = set()
    problems: list[LoadProblem] = []
    try:
        for chunk in _parse(tasks, workers):
            for outcome in chunk.files:
                if outcome.status == "skipped":
                    if strict:
                        raise ResultFileError(outcome.path, outcome.problem or "unreadable")
                    problems.append(LoadProblem(outcome.path, outcome.problem or "unreadable"))
                    if on_problem is not None:
                        on_problem(problems[-1])
            for partition, rows in chunk.rows.items():
                writer.add(partition, rows)
            new_files.append(_new_file_rows(chunk.files, writer))
            same.update((o.path, o) for o in chunk.files if o.status == "same")
            reparsed.update(o.path for o in chunk.files if o.status != "same")
            del chunk
        dropped = vanished | (reparsed & set(known))
        rewrite = _parts_of(old_files, dropped) | _compaction(old, writer.partitions())
        for name in sorted(rewrite):
            try:
                writer.fold(name, dropped)
            except (pa.ArrowException, OSError) as exc:
                raise layout.damaged(folder, f"{name} unreadable: {str(exc).splitlines()[0]}") from None
        new_parts = writer.close()
    except BaseException:
        writer.abort()
        raise

    remap = {name: writer.part_for(_partition_of(name)) for name in rewrite}
    files_table = _files_table(old_files, same, dropped, remap, new_files)
    files_name = layout.files_table_name(generation)
    (folder / layout.FILES_DIR).mkdir(exist_ok=True)
    pq.write_table(files_table, folder / files_name, compression=COMPRESSION)
    parts = {n: p for n, p in old.parts.items() if n not in rewrite}
    parts.update({p.path: p for p in new_parts})
    manifest = layout.Manifest(generation, files_name, (folder / files_name).stat().st_size, parts,
                               tuple(dict.fromkeys([*old.roots, *(str(p) for p in paths)])))
    layout.commit(folder, manifest)
    added = sum(1 for p in reparsed if p not in known)
    return _summary(manifest, files_table, added=added, changed=len(reparsed) - added,
                    touched=len(same), removed=len(vanished), unchanged=unchanged,
                    written=len(new_parts), rewritten=len(rewrite), problems=tuple(problems),
                    started=started, committed=True)


def _summary(manifest: layout.Manifest, files: pa.Table, *, added: int, changed: int, touched: int,
             removed: int, unchanged: int, written: int, rewritten: int,
             problems: tuple[LoadProblem, ...], started: float, committed: bool) -> UpdateSummary:
    skipped = pc.sum(pc.equal(files["status"], "skipped")).as_py() or 0
    return UpdateSummary(files.num_rows, skipped, sum(p.rows for p in manifest.parts.values()),
                         len(manifest.parts), added, changed, touched, removed, unchanged, written,
                         rewritten, problems, time.perf_counter() - started, committed)


def _read_files_table(folder: Path, manifest: layout.Manifest) -> pa.Table:
    if not manifest.files_table:
        return tables.FILES.empty_table()
    try:
        # ParquetFile, not pq.read_table: that imports pyarrow.dataset, and with it pandas (0.4 s)
        return pq.ParquetFile(folder / manifest.files_table).read().cast(tables.FILES)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise layout.damaged(folder, f"{manifest.files_table} unreadable: {str(exc).splitlines()[0]}") from None


def _fingerprints(paths: list, index_folder: Path) -> dict[str, tuple[int, int]]:
    """abspath -> (size, mtime_ns) of every result file under `paths` (the index's own files
    excluded). A name that cannot be stat'ed (a broken link) gets (-1, -1): the parse step records
    it as skipped with the loader's problem, as `fleet` without an index skips it."""
    inside = os.path.abspath(index_folder) + os.sep
    found: dict[str, tuple[int, int]] = {}
    for path in paths:
        text = str(path)
        try:  # from an absolute root every name found is absolute and normal: no abspath per file
            names = list(store.discover_names([os.path.abspath(text)]))
        except ResultFileError as exc:
            raise ResultFileError(text, exc.problem) from None
        for name in names:
            if name in found or name.startswith(inside):
                continue
            try:
                st = os.stat(name)
            except OSError:
                found[name] = UNREADABLE
                continue
            found[name] = (st.st_size, st.st_mtime_ns)
    return found


def _recorded(files: pa.Table, column: str, paths: list[str]) -> dict[str, object]:
    """path -> `column` for the given paths (a few: the changed files)."""
    if not paths:
        return {}
    chosen = files.filter(pc.is_in(files["path"], value_set=pa.array(paths, pa.string())))
    return dict(zip(chosen["path"].to_pylist(), chosen[column].to_pylist()))


def _refuse_recorded_bad(files: pa.Table, current: dict[str, tuple[int, int]]) -> None:
    """--strict: a file recorded as bad that is still there, unchanged, is fatal."""
    bad = files.filter(pc.equal(files["status"], "skipped"))
    for path, size, mtime_ns, problem in zip(*(bad[c].to_pylist() for c in ("path", "size_bytes", "mtime_ns", "problem"))):
        if current.get(path) == (size, mtime_ns):
            raise ResultFileError(path, problem or "recorded as bad in the index")


def _parse(tasks: list[FileTask], workers: int | None) -> Iterator[ChunkResult]:
    chunks = [tasks[i:i + CHUNK_FILES] for i in range(0, len(tasks), CHUNK_FILES)]
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(tasks) < IN_PROCESS_BELOW:
        for chunk in chunks:
            yield parse_chunk(chunk)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process that has Arrow threads
    with futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: set[futures.Future] = set()
        queue = iter(chunks)
        try:
            for chunk in queue:  # at most 2 chunks per worker in flight: memory stays bounded
                pending.add(pool.submit(parse_chunk, chunk))
                if len(pending) >= 2 * workers:
                    done, pending = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
            for future in futures.as_completed(pending):
                yield future.result()
        finally:
            for future in pending:
                future.cancel()


def _parts_of(files: pa.Table, paths: set[str]) -> set[str]:
    if not paths or files.num_rows == 0:
        return set()
    chosen = files.filter(pc.is_in(files["path"], value_set=pa.array(sorted(paths), pa.string())))
    return set(pc.list_flatten(chosen["parts"]).to_pylist())


def _partition_of(part_name: str) -> str:
    return part_name.split("/", 1)[1].rsplit("/", 1)[0]


def _compaction(old: layout.Manifest, touched_partitions: Iterable[str]) -> set[str]:
    """Parts to merge into this update's part of a partition that would otherwise hold more than
    MAX_PARTS_PER_PARTITION files: the smallest ones."""
    by_partition: dict[str, list[layout.Part]] = {}
    for part in old.parts.values():
        by_partition.setdefault(_partition_of(part.path), []).append(part)
    merge: set[str] = set()
    for partition in touched_partitions:
        existing = sorted(by_partition.get(partition, []), key=lambda p: p.rows)
        excess = len(existing) + 1 - MAX_PARTS_PER_PARTITION
        if excess > 0:
            merge.update(p.path for p in existing[: excess + 1])
    return merge


def _new_file_rows(outcomes: Iterable[FileOutcome], writer: "_PartWriter") -> pa.Table:
    """FILES rows of the parsed (indexed or skipped) files of one chunk; their rows are already
    in the writer, so the part names are known."""
    rows = []
    for o in outcomes:
        if o.status == "indexed":
            rows.append(o.result_fields + (sorted(writer.part_for(p) for p in o.partitions),))
        elif o.status == "skipped":
            rows.append(tables.file_row(None, o.path, o.size_bytes, o.mtime_ns, o.sha256, o.problem, ()))
    return tables.table(tables.FILES, rows)


def _files_table(old: pa.Table, same: dict[str, FileOutcome], dropped: set[str],
                 remap: dict[str, str | None], new_files: list[pa.Table]) -> pa.Table:
    """The new FILES table: old rows kept (parts renamed where they were rewritten), touched
    rows re-fingerprinted, the parsed files' rows; sorted by path."""
    gone = dropped | set(same)
    kept = old.filter(pc.invert(pc.is_in(old["path"], value_set=pa.array(sorted(gone), pa.string())))) if gone else old
    if remap:
        flat = pc.list_flatten(kept["parts"])
        hit = pc.is_in(flat, value_set=pa.array(sorted(remap), pa.string()))
        rows_hit = set(pc.filter(pc.list_parent_indices(kept["parts"]), hit).to_pylist())
    else:
        rows_hit = set()
    edited = kept.take(sorted(rows_hit)).to_pylist() if rows_hit else []
    untouched = kept.filter(pa.array([i not in rows_hit for i in range(kept.num_rows)])) if rows_hit else kept
    touched = (old.filter(pc.is_in(old["path"], value_set=pa.array(sorted(same), pa.string()))).to_pylist()
               if same else [])
    for row in touched:
        row.update(size_bytes=same[row["path"]].size_bytes, mtime_ns=same[row["path"]].mtime_ns)
    rebuilt = []
    for row in edited + touched:
        row["parts"] = sorted({n for p in row["parts"] if (n := remap.get(p, p)) is not None})
        rebuilt.append(tuple(row[f.name] for f in tables.FILES))
    table = pa.concat_tables([untouched, tables.table(tables.FILES, rebuilt), *new_files])
    return table if _sorted_by_path(table) else table.sort_by("path")


def _sorted_by_path(table: pa.Table) -> bool:
    """Whether the rows are in path order already (new files often sort after the indexed ones):
    one vectorised comparison instead of a sort and a copy of the table."""
    paths = table["path"]
    if len(paths) < 2:
        return True
    return bool(pc.all(pc.less_equal(paths.slice(0, len(paths) - 1), paths.slice(1))).as_py())


class _PartWriter:
    """One new part file per partition for this update, written in row groups as rows arrive."""

    def __init__(self, folder: Path, generation: int) -> None:
        self.folder = folder
        self.generation = generation
        self._names: dict[str, str | None] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._buffers: dict[str, list[pa.Table]] = {}
        self._buffered: dict[str, int] = {}
        self._rows: dict[str, int] = {}

    def partitions(self) -> list[str]:
        return list(self._names)

    def part_for(self, partition: str) -> str | None:
        return self._names.get(partition)

    def add(self, partition: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        if self._names.get(partition) is None:
            self._names[partition] = layout.new_part_name(partition, self.generation)
        self._buffers.setdefault(partition, []).append(rows)
        self._buffered[partition] = self._buffered.get(partition, 0) + rows.num_rows
        if self._buffered[partition] >= ROW_GROUP_ROWS:
            self._flush(partition)
        elif sum(self._buffered.values()) >= MAX_BUFFERED_ROWS:
            self._flush(max(self._buffered, key=self._buffered.__getitem__))

    def fold(self, part_name: str, dropped: set[str]) -> None:
        """Move an older part's rows, less those of `dropped` files, into this update's part."""
        drop = pa.array(sorted(dropped), pa.string())
        partition = _partition_of(part_name)
        for batch in pq.ParquetFile(self.folder / part_name).iter_batches(batch_size=ROW_GROUP_ROWS):
            rows = pa.Table.from_batches([batch]).cast(tables.MEASUREMENTS)
            if len(drop):
                rows = rows.filter(pc.invert(pc.is_in(rows["source"], value_set=drop)))
            self.add(partition, rows)
        self._names.setdefault(partition, None)  # every row dropped: the part just goes

    def _flush(self, partition: str) -> None:
        rows = pa.concat_tables(self._buffers.pop(partition))
        self._buffered.pop(partition)
        writer = self._writers.get(partition)
        if writer is None:
            path = self.folder / self._names[partition]
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = self._writers[partition] = pq.ParquetWriter(path, tables.MEASUREMENTS, compression=COMPRESSION)
        writer.write_table(rows, row_group_size=max(rows.num_rows, 1))
        self._rows[partition] = self._rows.get(partition, 0) + rows.num_rows

    def close(self) -> list[layout.Part]:
        for partition in list(self._buffers):
            self._flush(partition)
        for writer in self._writers.values():
            writer.close()
        parts = []
        for partition, name in self._names.items():
            if name is not None and partition in self._writers:
                path = self.folder / name
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
                parts.append(layout.Part(name, path.stat().st_size, self._rows[partition]))
        return parts

    def abort(self) -> None:
        for writer in self._writers.values():
            try:
                writer.close()
            except Exception:
                pass
        for partition, name in self._names.items():
            if name is not None and partition in self._writers:
                (self.folder / name).unlink(missing_ok=True)
