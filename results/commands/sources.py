"""Where `fleet`, `compare` and `report` get their results: result files on disk, or a fleet
index (`results.index`) narrowed by a selection. The commands ask a source; they don't know which.

    FileSource   PATHs (files, folders, globs), read with the validating loader on every call
    IndexSource  an index folder (see `tppbench index`), read through SQL; a Selection narrows
                 it to one host, a device model, a date range
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from results.commands.argtypes import iso_date
from results.errors import ResultFileError, TppbenchError, UsageError

if TYPE_CHECKING:
    from results.analysis.fleet import OutlierRule
    from results.analysis.frame import LoadProblem
    from results.index.queries import Selection


@dataclass(frozen=True)
class FleetTables:
    analysis: Any  # FleetAnalysis (files) or IndexFleetAnalysis (index): the same tables and counts
    files_read: int
    skipped: int


def add_index_arguments(parser: argparse.ArgumentParser, *, builds: bool = False) -> None:
    """--index DIR and the selection options (host, model, date range)."""
    help_index = ("fleet index folder: PATHs (if any) are indexed into it first, only new or changed "
                  "files parsed; the tables come from SQL over it" if builds else
                  "read the result files recorded in this fleet index (see `tppbench index`)")
    parser.add_argument("--index", metavar="DIR", help=help_index)
    group = parser.add_argument_group("selection (with --index)")
    group.add_argument("--host", help="only this host")
    group.add_argument("--model", help="only device models whose name contains this (any case)")
    group.add_argument("--since", type=iso_date, metavar="DATE", help="only runs started on or after DATE (UTC)")
    group.add_argument("--until", type=iso_date, metavar="DATE", help="only runs started on or before DATE (UTC)")


def selection_of(args: argparse.Namespace) -> "Selection":
    from results.index.queries import Selection

    selection = Selection(args.host, args.model, args.since, args.until)
    if not args.index and not selection.is_everything():
        raise UsageError("--host, --model, --since and --until select from an index: give --index DIR")
    if selection.since and selection.until and selection.since > selection.until:
        raise UsageError(f"--since {selection.since} is after --until {selection.until}")
    return selection


class FileSource:
    def __init__(self, paths: Sequence[str], *, strict: bool = False,
                 on_problem: Callable[["LoadProblem"], None] | None = None) -> None:
        self.paths = list(paths)
        self.strict = strict
        self.on_problem = on_problem
        self._analysis: Any = None
        self._inputs: set[str] = set()

    def describe(self) -> str:
        return " ".join(self.paths)

    def result_paths(self) -> list[str]:
        from results.files import store

        return [str(p) for p in store.discover(self.paths)]  # Path-normalised, as load_frame names them

    def fleet(self, rule: "OutlierRule", shown: int | None = None) -> FleetTables:
        from results.analysis.fleet import analyze
        from results.analysis.frame import load_frame

        loaded = load_frame(self.paths, strict=self.strict, on_problem=self.on_problem)
        self._inputs = set(loaded.frame["source"].unique())
        self._analysis = analyze(loaded.frame, rule) if loaded.files_read else None
        return FleetTables(self._analysis, loaded.files_read, len(loaded.problems))

    def check_output(self, target: str) -> None:
        from results.files.outputs import check_output

        check_output(target, self._inputs)

    def export(self, target: str, file_format: str) -> Path:
        from results.files.outputs import write_atomically

        rows = self._analysis.rows
        if file_format == "csv":
            return write_atomically(target, lambda h: rows.to_csv(h, index=False))
        return write_atomically(target, lambda h: rows.to_parquet(h, index=False))

    def close(self) -> None:
        pass


class IndexSource:
    def __init__(self, folder: str, selection: "Selection", *, strict: bool = False) -> None:
        from results.index.queries import IndexReader

        self.folder = folder
        self.reader = IndexReader(folder, selection)
        self.strict = strict
        self._rule: "OutlierRule | None" = None

    def describe(self) -> str:
        selection = self.reader.selection
        return f"index {self.folder}" + ("" if selection.is_everything() else f" ({selection.describe()})")

    def result_paths(self) -> list[str]:
        return self.reader.result_paths()

    def fleet(self, rule: "OutlierRule", shown: int | None = None) -> FleetTables:
        """`shown`: rows of the slowest-GPU table the caller will show (the rest is only counted)."""
        if self.strict:
            bad = self.reader.first_skipped()
            if bad:
                raise ResultFileError(bad[0], bad[1] or "recorded as bad in the index")
        self._rule = rule
        analysis = self.reader.fleet(rule, shown)
        return FleetTables(analysis, analysis.files_read, analysis.skipped)

    def check_output(self, target: str) -> None:
        from results.files.outputs import check_output

        resolved = os.path.abspath(check_output(target))
        inside = os.path.abspath(self.folder) + os.sep
        if resolved.startswith(inside) or self.reader.records(resolved):
            raise UsageError(f"{target}: is inside the index or one of its result files; those are never overwritten")

    def export(self, target: str, file_format: str) -> Path:
        from results.files.outputs import check_output

        assert self._rule is not None, "fleet() first"
        return self.reader.export(self._rule, check_output(target), file_format)

    def close(self) -> None:
        self.reader.close()


def source_of(args: argparse.Namespace, paths: Sequence[str], *, strict: bool = False,
              on_problem: Callable[["LoadProblem"], None] | None = None) -> FileSource | IndexSource:
    """The source the options name: the index (with its selection), else the PATHs."""
    selection = selection_of(args)
    if args.index:
        return IndexSource(args.index, selection, strict=strict)
    if not paths:
        raise UsageError("give result files, folders or globs (or --index DIR)")
    return FileSource(paths, strict=strict, on_problem=on_problem)



def input_paths(args: argparse.Namespace, given: Sequence[str], what: str) -> list[str]:
    """The result files `compare` or `report` reads: the given files, folders and globs, or the
    files an index holds for the selection (--index DIR --host ... --since ...)."""
    if args.index and given:
        raise UsageError("give result files or --index DIR, not both")
    source = source_of(args, given)
    try:
        paths = source.result_paths()
    finally:
        source.close()
    if not paths:
        raise TppbenchError(f"no result files (*.json) in {source.describe()}: nothing to {what}")
    return paths
