"""argparse value types shared by every sub-command: one line per bad value, exit 2."""

from __future__ import annotations

import argparse
import datetime
import math
from typing import Callable


def bounded(
    convert: Callable[[str], float],
    *,
    expected: str,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
) -> Callable[[str], float]:
    """A type that parses with `convert` and requires a finite value within the bounds;
    otherwise argparse reports `expected <expected>, got '<text>'`."""

    def parse(text: str):
        try:
            value = convert(text)
            ok = math.isfinite(value)  # OverflowError: an int too large for a float
        except (ValueError, OverflowError):
            value, ok = math.nan, False
        ok = ok and (above is None or value > above) and (at_least is None or value >= at_least)
        ok = ok and (below is None or value < below)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


def iso_date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-01-31 (YYYY-MM-DD), got {text!r}") from None


def non_empty(expected: str) -> Callable[[str], str]:
    """A type for a text option that must say something: '' or blanks get `expected <expected>`
    (an empty --out would write into the current folder, an empty --only would match nothing)."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return text

    return parse
