"""The one error family the CLI turns into a one-line message and an exit code."""

from __future__ import annotations

from results.terminal import printable


class TppbenchError(Exception):
    """A user-facing failure: the CLI prints `tppbench: error: <message>` and exits `exit_code`."""

    exit_code = 1


class UsageError(TppbenchError):
    """Bad options or arguments (argparse-level problems found after parsing)."""

    exit_code = 2


class ResultFileError(TppbenchError):
    """A result file that cannot be read, parsed or validated. The message names the file."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(printable(f"{self.path}: {problem}"))  # file names and values may hold ESC
