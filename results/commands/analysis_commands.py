"""`tppbench compare`, `tppbench fleet` and `tppbench report`: parse -> call -> render -> exit code.

Handlers import their modules (pandas, matplotlib, scipy) lazily, so other sub-commands never
load them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from results.commands.argtypes import bounded, iso_date
from results.analysis.compare import CHANGES  # light: no pandas, scipy or matplotlib at import
from results.commands.sources import add_index_arguments  # light: argparse and the error classes
from results.files.outputs import check_output, write_atomically  # re-exported: light, os and pathlib

EXIT_FAIL_ON = 3  # compare --fail-on matched at least one row


def register(subparsers: Any) -> None:
    _register_compare(subparsers)
    _register_fleet(subparsers)
    _register_report(subparsers)


# --------------------------------------------------------------------------- option types


_factor = bounded(float, above=1.0, expected="a finite number greater than 1")
_probability = bounded(float, above=0.0, below=1.0, expected="a number between 0 and 1")
_positive = bounded(float, above=0.0, expected="a positive number")
_count = bounded(int, at_least=0, expected="a whole number >= 0")


def _changes(text: str) -> tuple[str, ...]:
    wanted = tuple(part.strip() for part in text.split(",") if part.strip())
    bad = [w for w in wanted if w not in CHANGES]
    if bad or not wanted:
        raise argparse.ArgumentTypeError(
            f"unknown classification {', '.join(bad) or repr(text)} (choose from {', '.join(CHANGES)})"
        )
    return wanted


# --------------------------------------------------------------------------- compare


def _register_compare(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare result files case by case (ratio of medians + significance)",
        description="Align CURRENT runs with BASE by case key and classify each case: improved, "
        "regressed, unchanged, noisy, new, missing, incomparable. BASE may be a result file, "
        "ref:auto (the committed reference for the CURRENT device model) or ref:NAME.",
    )
    p.add_argument("base", metavar="BASE", help="result file, ref:auto or ref:NAME")
    p.add_argument("current", metavar="CURRENT", nargs="*",
                   help="result files, folders or globs (or --index DIR with a selection)")
    p.add_argument("--factor", type=_factor, default=1.05,
                   help="ratio of medians that counts as a change (default 1.05 = 5%%)")
    p.add_argument("--alpha", type=_probability, default=0.05,
                   help="significance level of the test on raw samples (default 0.05)")
    p.add_argument("--fail-on", type=_changes, default=(), metavar="CHANGE[,CHANGE]",
                   help=f"exit {EXIT_FAIL_ON} if any case is classified so (e.g. regressed)")
    p.add_argument("--reference-dir", metavar="DIR",
                   help="folder of reference result files for ref:* (default $TPPBENCH_REFERENCE_DIR "
                   "or the package's results/reference/)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the comparison as JSON")
    fmt.add_argument("--markdown", action="store_true", help="print Markdown (for pull requests)")
    add_index_arguments(p)
    p.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from results.analysis import baseline
    from results.files import store
    from results.analysis.compare import Named, compare
    from results.render import markdown, text

    from results.commands.sources import input_paths

    currents = [Named(p, store.load(p)) for p in input_paths(args, args.current, "compare")]
    base = baseline.resolve(args.base, currents, baseline.reference_dir(args.reference_dir))
    comparison = compare(base, currents, factor=args.factor, alpha=args.alpha)
    if args.json:
        sys.stdout.write(json.dumps(comparison.to_dict(), indent=1, allow_nan=False) + "\n")
    elif args.markdown:
        sys.stdout.write(markdown.comparison(comparison))
    else:
        sys.stdout.write(text.comparison(comparison))
    return EXIT_FAIL_ON if args.fail_on and comparison.any_of(args.fail_on) else 0


# --------------------------------------------------------------------------- fleet


def _register_fleet(subparsers: Any) -> None:
    from results.index.command import add_build_arguments

    p = subparsers.add_parser(
        "fleet",
        help="statistics and outliers over many result files (hosts, GPUs, runs)",
        description="Load every result file under PATH (files, folders, globs) into one table, one "
        "row per measurement; print per-metric statistics per device model, outlier GPUs and "
        "hosts, and the slowest GPU of each host. Files are only read, never modified. With "
        "--index DIR the PATHs are indexed first (only new or changed files are parsed) and the "
        "tables are SQL over the index; without PATHs the index is queried as it is.",
    )
    p.add_argument("paths", metavar="PATH", nargs="*", help="result files, folders or globs")
    p.add_argument("--outliers", choices=("robust-z", "pct-below"), default="robust-z",
                   help="outlier rule: robust z-score (default) or percent below the fleet median")
    p.add_argument("--threshold", type=_positive, default=None,
                   help="outlier threshold: |z| for robust-z (default 3.5), percent for pct-below "
                   "(default 10)")
    p.add_argument("--csv", metavar="FILE", help="write the per-measurement table as CSV")
    p.add_argument("--parquet", metavar="FILE",
                   help="write the per-measurement table as Parquet (needs pyarrow: tppbench[parquet])")
    p.add_argument("--top", type=_count, default=20, metavar="N",
                   help="rows shown per outlier / slowest-GPU table (default 20)")
    add_index_arguments(p, builds=True)
    add_build_arguments(p)
    p.set_defaults(handler=run_fleet)


def run_fleet(args: argparse.Namespace) -> int:
    if args.parquet and not _has_module("pyarrow"):
        from results.errors import UsageError

        raise UsageError("--parquet needs pyarrow: pip install 'tppbench[parquet]' (or use --csv)")
    from results.errors import TppbenchError
    from results.analysis.fleet import DEFAULT_THRESHOLD, OutlierRule
    from results.index.command import print_skipped
    from results.render import text
    from results.commands.sources import selection_of, source_of

    for target in (args.csv, args.parquet):  # a bad output path fails before minutes of loading
        if target:
            check_output(target)

    selection_of(args)  # a selection without --index is refused before any loading
    if args.index and args.paths:
        from results.index.command import update_index

        print(f"index {args.index}: {update_index(args).describe()}")
    source = source_of(args, args.paths, strict=args.strict, on_problem=print_skipped)
    try:
        threshold = args.threshold if args.threshold is not None else DEFAULT_THRESHOLD[args.outliers]
        tables = source.fleet(OutlierRule(args.outliers, threshold), shown=args.top)
        if tables.files_read == 0:
            raise TppbenchError(f"no readable result files in {source.describe()}")
        for target in (args.csv, args.parquet):
            if target:
                source.check_output(target)
        sys.stdout.write(text.fleet(tables.analysis, tables.files_read, tables.skipped, top=args.top))
        for target, file_format in ((args.csv, "csv"), (args.parquet, "parquet")):
            if target:
                print(f"wrote {source.export(target, file_format)}")
    finally:
        source.close()
    return 0


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# --------------------------------------------------------------------------- report


def _register_report(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="one self-contained HTML (or Markdown) report: threshold map, peaks, bandwidth, verdicts",
        description="Write one self-contained HTML file (figures inline, no network access, opens "
        "offline) with the TPP/performance-density map and the 2023 3A090 regions, measured versus "
        "datasheet peak, bandwidth, verdicts per regime and telemetry/context. --markdown prints a "
        "text variant instead.",
    )
    p.add_argument("files", metavar="FILE", nargs="*",
                   help="result files, folders or globs (or --index DIR with a selection)")
    p.add_argument("-o", "--output", metavar="OUT", help="where to write the report (required for HTML)")
    p.add_argument("--markdown", action="store_true",
                   help="Markdown instead of HTML (to stdout, or to -o OUT)")
    p.add_argument("--rules", metavar="IDS",
                   help="regimes: default those in force on --as-of; 'all'; or comma-separated ids")
    p.add_argument("--as-of", type=iso_date, metavar="DATE", help="date for regimes in force (default today)")
    p.add_argument("--near-pct", type=_positive, default=10.0,
                   help="a verdict within this percent of a threshold is 'near limit' (default 10)")
    p.add_argument("--title", help="report title (default 'tppbench report')")
    add_index_arguments(p)
    p.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace) -> int:
    from results.errors import UsageError

    if not args.markdown and not args.output:
        raise UsageError("report: -o OUT is required for the HTML report (or use --markdown)")
    from results.report import page as report
    from results.commands.sources import input_paths

    paths = input_paths(args, args.files, "report")
    if args.output:
        check_output(args.output, paths)
    data = report.build(paths, rules=args.rules, as_of=args.as_of, near_pct=args.near_pct,
                        title=args.title)
    if args.markdown:
        from results.render import markdown

        text = markdown.report(data)
        if not args.output:
            sys.stdout.write(text)
            return 0
    else:
        from results.render import html

        text = html.render(data, html.figures_for(data))
    path = write_atomically(args.output, lambda h: h.write(text.encode("utf-8")))
    print(f"wrote {path}")
    return 0

