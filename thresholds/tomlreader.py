"""A strict reader for TOML tables (stdlib tomllib): each key is read with its type checked, and
`finish()` rejects any key nobody asked for. Errors are DataFileError naming the file and the key."""

from __future__ import annotations

import codecs
import datetime
import sys
import tomllib
from pathlib import Path
from typing import Any

from results.terminal import short_repr
from results.files.untrusted_file import UnreadableFile, read_untrusted, utf8_text
from thresholds.errors import DataFileError
from thresholds.model import TAGS

MAX_TOML_BYTES = 4 * 1024 * 1024  # the largest shipped file (the NVIDIA catalog) is under 64 KB
_FLOAT_MAX = sys.float_info.max


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
        # abs() <= max float: finite, and an int a float can hold (10**400 would overflow float())
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, f"must be a number, got {_kind(value)}")
        if not abs(value) <= _FLOAT_MAX:
            raise self.fail(name, f"must be a finite number, got {_kind(value)}")
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
        return f"the number {short_repr(value)}"
    if isinstance(value, str):
        return f"the string {short_repr(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def read_toml(path: Path) -> Table:
    """Read one rule, catalog, derivation or spec file: a regular UTF-8 file of at most
    MAX_TOML_BYTES (special files and symlink loops refused before opening), nested at most a few
    hundred levels, with no integer of thousands of digits. Any problem is one DataFileError."""
    try:
        raw = read_untrusted(path, MAX_TOML_BYTES, "a TOML file")
        if raw.startswith(codecs.BOM_UTF8):
            raise UnreadableFile("starts with a byte-order mark (BOM); save it as UTF-8 without one")
        text = utf8_text(raw)
    except UnreadableFile as exc:
        raise DataFileError(path, None, exc.problem) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataFileError(path, None, f"invalid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise DataFileError(path, None, "invalid TOML: arrays or inline tables nested too deeply") from None
    except ValueError as exc:  # int(): a literal over sys.get_int_max_str_digits() digits
        raise DataFileError(path, None, f"invalid TOML: a number is too long to read "
                                        f"({str(exc).split(':')[0]})") from None
    return Table(path, data, "")
