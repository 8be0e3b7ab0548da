"""The TF32 bit-length convention, explicit and switchable.

TPP counts a rate times the bit length of its operation; TF32's bit length is not settled by any
BIS text found (reference §9.2; regulations-2026.md §0 item 5). tppbench counts it as 32 bits (its
storage width: PRECISION_BITS). The other reading counts it at the 16-bit rate. Usually nothing
turns on it; for parts whose TPP comes from TF32 it can: AWS Trainium2 (667 TFLOPS for
BF16/FP16/TF32 alike) is TPP 21,344 one way and 10,672 the other, on either side of the 2026 China
band's 21,000. Wherever the other convention changes a declared verdict, `check` says so beside it.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from thresholds.metrics import DECLARED, tpp_from_tops
from thresholds.model import PRECISION_BITS, Interval, MetricSet

DEFAULT_TF32_BITS = PRECISION_BITS["tf32"]  # 32
TF32_CONVENTIONS = {32: "TF32 counted as 32 bits", 16: "TF32 counted at the 16-bit rate"}


def bits_with_tf32(tf32_bits: int) -> Mapping[str, int]:
    if tf32_bits not in TF32_CONVENTIONS:
        raise ValueError(f"TF32 bit length {tf32_bits}: expected one of {sorted(TF32_CONVENTIONS)}")
    return {**PRECISION_BITS, "tf32": tf32_bits}


def under_convention(metrics: MetricSet, tf32_bits: int) -> MetricSet | None:
    """The declared metric set with TPP (and performance density) recomputed under `tf32_bits`;
    None where nothing changes (another basis, no TF32 rate, or the same TPP either way)."""
    tpp = metrics.values.get("tpp")
    if metrics.basis != DECLARED or tpp is None or not tpp.known:
        return None
    tops = {p: Interval(lo, hi) for p, (lo, hi) in (tpp.inputs.get("tops") or {}).items()}
    if "tf32" not in tops:
        return None
    result = tpp_from_tops(tops, bits_with_tf32(tf32_bits))
    if result is None or result.tpp == tpp.value:
        return None
    bits = bits_with_tf32(tf32_bits)
    source = " = ".join(f"{p} {tops[p].lo:,.1f} TOPS x {bits[p]}" for p in result.winners)
    values = dict(metrics.values)
    values["tpp"] = dataclasses.replace(
        tpp, value=result.tpp, source=f"{source} ({TF32_CONVENTIONS[tf32_bits]})",
        inputs={**tpp.inputs, "precisions": list(result.winners), "tf32_bits": tf32_bits})
    pd = values.get("performance_density")
    area = pd.inputs.get("die_area_mm2") if pd is not None and pd.known else None
    if area is not None:
        lo, hi = (area, area) if isinstance(area, (int, float)) else area
        values["performance_density"] = dataclasses.replace(pd, value=result.tpp.divided_by(Interval(lo, hi)))
    return MetricSet(metrics.basis, values, metrics.notes)


def other_convention(tf32_bits: int) -> int:
    return 16 if tf32_bits == 32 else 32


def difference_note(primary, alternative, alt_metrics: MetricSet, alt_bits: int) -> str | None:
    """A note when the other convention gives another outcome, else None."""
    same = (primary.outcome, primary.met, primary.paragraph) == (alternative.outcome, alternative.met,
                                                                 alternative.paragraph)
    if same:
        return None
    return f"TF32 convention decides this: with {TF32_CONVENTIONS[alt_bits]}: {alternative.reason}"


