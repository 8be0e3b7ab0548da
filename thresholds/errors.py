"""User-facing failures of thresholds/: one line each, naming the file and the key."""

from __future__ import annotations

from results.errors import TppbenchError, UsageError


class DataFileError(TppbenchError):
    """A rule, catalog, derivation or spec file that cannot be read or does not validate (exit 1)."""

    exit_code = 1

    def __init__(self, path: object, key: str | None, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + problem)


class SubjectError(TppbenchError):
    """A SUBJECT that is not a catalog id, spec file or result file (exit 1)."""

    exit_code = 1


class RuleSelectionError(UsageError):
    """`--rules` names a regime that does not exist (a bad option value: exit 2)."""

    exit_code = 2
