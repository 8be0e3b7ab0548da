"""`tppbench show FILE...`: print a stored result's summary (the table `run` ends with)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("show", help="print the summary of stored result files")
    parser.add_argument("files", nargs="+", metavar="FILE", help="result file(s)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from results.files.store import load
    from results.render.run_summary import print_summary
    from results.terminal import printable

    results = [(path, load(path)) for path in args.files]  # validate every file before printing
    for path, result in results:
        print(printable(path))  # a file name may hold escapes or undecodable bytes
        print_summary(result, origin=path)
    return 0
