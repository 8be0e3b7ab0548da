"""`tppbench index PATH... --index DIR`: build or update a fleet index without printing tables."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from results.commands.argtypes import bounded

workers_type = bounded(int, at_least=1, expected="a whole number >= 1")


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the commands that read (and may index) result files: `index` and `fleet`."""
    parser.add_argument("--strict", action="store_true", help="a bad result file is fatal (default: skip it)")
    parser.add_argument("--workers", type=workers_type, default=None, metavar="N",
                        help="worker processes that parse result files in a large update (default: one per CPU)")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "index",
        help="build or update a fleet index (Parquet, partitioned by month and device model)",
        description="Bring the index folder DIR up to date with the result files under PATH (files, "
        "folders, globs): new or changed files are parsed (in worker processes for a large update), rows of "
        "indexed files "
        "deleted from the disk are dropped, everything else (files indexed from other paths too) is left "
        "as it is. A bad file is named, recorded as "
        "skipped and not read again until it changes. Result files are only read, never modified.",
    )
    p.add_argument("paths", metavar="PATH", nargs="+", help="result files, folders or globs")
    p.add_argument("--index", metavar="DIR", required=True, help="the index folder (created if missing)")
    add_build_arguments(p)
    p.set_defaults(handler=run_index)


def run_index(args: argparse.Namespace) -> int:
    summary = update_index(args)
    print(f"index {args.index}: {summary.describe()}")
    return 0


def update_index(args: argparse.Namespace) -> Any:
    from results.index.build import update

    return update(args.index, args.paths, strict=args.strict, on_problem=print_skipped, workers=args.workers)


def print_skipped(problem: Any) -> None:
    """A bad result file named on stderr (a LoadProblem prints terminal-safe); the command goes on."""
    print(f"tppbench: skipped {problem}", file=sys.stderr)
