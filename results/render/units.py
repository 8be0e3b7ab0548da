"""Human-readable rates: SI prefixes on flop/s, op/s and byte/s (GB = 1e9 bytes)."""

from __future__ import annotations

import math

_PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
_NAMES = {"flop/s": "FLOP/s", "op/s": "OP/s", "byte/s": "B/s"}


def human_rate(rate: float | None, rate_unit: str) -> str:
    """`776.4 TFLOP/s`, `55.2 GB/s`, `-` for no value."""
    if rate is None or not math.isfinite(rate):
        return "-"
    name = _NAMES.get(rate_unit, rate_unit)
    for scale, prefix in _PREFIXES:
        if abs(rate) >= scale:
            return f"{rate / scale:.4g} {prefix}{name}"
    return f"{rate:.3g} {name}"


def scaled(rate_unit: str, values: list[float]) -> tuple[float, str]:
    """One divisor and unit label for plotting several values together (by their maximum)."""
    name = _NAMES.get(rate_unit, rate_unit)
    top = max((abs(v) for v in values if v is not None and math.isfinite(v)), default=0.0)
    for scale, prefix in _PREFIXES:
        if top >= scale:
            return scale, f"{prefix}{name}"
    return 1.0, name


def ratio_text(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.3f}"


def percent(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}%"


def interval_text(lo: float, hi: float) -> str:
    """A half-open band [lo, hi) in words: `>= 2400 and < 4800`, `>= 4800`, `any`."""
    if hi == float("inf"):
        return f">= {lo:g}" if lo > 0 else "any"
    return f">= {lo:g} and < {hi:g}" if lo > 0 else f"< {hi:g}"
