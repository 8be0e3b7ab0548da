"""`tppbench` sub-commands. Thin: parse -> call -> render -> exit code.

Each sub-command lives in its own module exposing `register(subparsers)`, which adds a parser
and sets `handler` (a callable taking the parsed args and returning an exit code). Handlers
import heavy modules (torch, pandas, matplotlib) lazily, so `tppbench rules` never loads torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn, Sequence

from results.errors import TppbenchError
from results.terminal import printable

COMMAND_MODULES = (
    "bench.commands.run",
    "bench.commands.show",
    "results.commands.export_control",
    "results.commands.analysis_commands",
    "results.index.command",
    "results.importers.command",
    "results.commands.verify",
)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line (no usage dump) and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {printable(message)}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="tppbench",
        description="Measure GPU throughput and bandwidth; compare them with export-control thresholds.",
    )
    from bench import __version__

    parser.add_argument("--version", action="version", version=f"tppbench {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        # Ctrl-C while the parser imports the command modules is an interruption too, not a traceback.
        args = build_parser().parse_args(argv)
        # The command line as given (main's argv or sys.argv): `run` re-starts itself as local ranks
        # with it, so an in-process main(["run", ...]) on a multi-GPU host works as the CLI does.
        args.command_argv = list(sys.argv[1:] if argv is None else argv)
        return int(args.handler(args) or 0)
    except TppbenchError as exc:
        print(f"tppbench: error: {printable(exc)}", file=sys.stderr)  # one line, no escapes
        return exc.exit_code
    except KeyboardInterrupt:
        print("tppbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
