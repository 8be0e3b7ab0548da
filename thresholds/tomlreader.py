"""A strict reader for TOML tables (stdlib tomllib): each key is read with its type checked, and
`finish()` rejects any key nobody asked for. Errors are DataFileError naming the file and the key."""

from __future__ import annotations

import datetime
import math
import tomllib
from pathlib import Path
from typing import Any

from thresholds.errors import DataFileError
from thresholds.model import TAGS


class Table:
    """A TOML table read key by key; `finish()` rejects any key nobody asked for."""

    def __init__(self, path: Path, data: Any, where: str) -> None:
        self.path, self.where = path, where
        if not isinstance(data, dict):
            raise DataFileError(path, where or None, f"must be a table, got {_kind(data)}")
        self.data: dict[str, Any] = data
        self.known: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str, problem: str) -> DataFileError:
        return DataFileError(self.path, self.key(name), problem)

    def get(self, name: str, required: bool) -> Any:
        self.known.add(name)
        if name not in self.data:
            if required:
                raise DataFileError(self.path, self.where or None, f"missing key '{name}'")
            return None
        return self.data[name]

    def string(self, name: str, required: bool = True) -> str | None:
        value = self.get(name, required)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise self.fail(name, f"must be a non-empty string, got {_kind(value)}")
        return value

    def number(self, name: str, required: bool = True, minimum: float | None = None,
               maximum: float | None = None) -> float | None:
        value = self.get(name, required)
        if value is None:
            return None
        return self.check_number(name, value, minimum, maximum)

    def check_number(self, name: str, value: Any, minimum: float | None = None,
                     maximum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(name, f"must be a number, got {_kind(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(name, f"must be >= {minimum:g}, got {value!r}")
        if maximum is not None and value > maximum:
            raise self.fail(name, f"must be <= {maximum:g}, got {value!r} (out of any plausible range)")
        return float(value)

    def boolean(self, name: str, required: bool = True) -> bool | None:
        value = self.get(name, required)
        if value is not None and not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, got {_kind(value)}")
        return value

    def date(self, name: str, required: bool = True) -> datetime.date | None:
        value = self.get(name, required)
        if value is None:
            return None
        if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
            raise self.fail(name, f"must be a TOML date (YYYY-MM-DD, no quotes), got {_kind(value)}")
        return value

    def strings(self, name: str, required: bool = False) -> tuple[str, ...]:
        value = self.get(name, required)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(name, "must be a list of non-empty strings")
        return tuple(value)

    def choice(self, name: str, allowed: tuple[str, ...] | frozenset[str], required: bool = True) -> str | None:
        value = self.string(name, required)
        if value is not None and value not in allowed:
            raise self.fail(name, f"unknown value {value!r} (expected one of: {', '.join(sorted(allowed))})")
        return value

    def tags(self, name: str, required: bool = True) -> tuple[str, ...]:
        value = self.string(name, required)
        if value is None:
            return ()
        tags = tuple(t.strip() for t in value.split("/"))
        for tag in tags:
            if tag not in TAGS:
                raise self.fail(name, f"unknown confidence tag {tag!r} (expected {'/'.join(TAGS)}, e.g. \"V/R\")")
        return tags

    def table(self, name: str, required: bool = False) -> "Table | None":
        value = self.get(name, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(name, f"must be a table, got {_kind(value)}")
        return Table(self.path, value, self.key(name))

    def tables(self, name: str, required: bool = False) -> list["Table"]:
        value = self.get(name, required)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(name, f"must be an array of tables ([[{name}]]), got {_kind(value)}")
        return [Table(self.path, item, f"{self.key(name)}[{i}]") for i, item in enumerate(value)]

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.known)
        if unknown:
            allowed = ", ".join(sorted(self.known))
            raise self.fail(unknown[0], f"unknown key '{unknown[0]}' (allowed here: {allowed})")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def read_toml(path: Path) -> Table:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise DataFileError(path, None, "no such file") from None
    except IsADirectoryError:
        raise DataFileError(path, None, "is a folder, not a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(path, None, f"invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(path, None, f"cannot read: {exc}") from None
    return Table(path, data, "")
