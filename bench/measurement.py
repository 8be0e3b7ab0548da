"""Turning a case's raw samples (or its failure) into a Measurement record."""

from __future__ import annotations

from typing import Any, Mapping

from bench.registry import Case
from results.files.schema import Measurement, Timing
from results.analysis.stats import noise_flags, rates_from_times, summarize


def measured(
    case: Case,
    device_index: int | None,
    *,
    times_s: tuple[float, ...],
    timing: Timing,
    work_per_call: float,
    unit: str,
    convention: str,
    method_version: int = 1,
    check_error: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Measurement:
    """An ok measurement, or status=error when the correctness check failed (samples are kept)."""
    rates = rates_from_times(work_per_call, times_s)
    stats = summarize(rates) if rates else None
    base = dict(
        key=case.key, benchmark=case.benchmark, variant=case.variant, precision=case.precision,
        params=dict(case.params), device_index=device_index, unit=unit, convention=convention,
        work_per_call=float(work_per_call), times_s=tuple(times_s), timing=timing,
        method_version=method_version, extra=dict(extra or {}),
    )
    if check_error is not None:
        return Measurement(status="error", reason=f"correctness check failed: {check_error}",
                           stats=stats, **base)
    if stats is None:
        return Measurement(status="error", reason="no valid samples", **base)
    return Measurement(status="ok", reason=None, rate=stats.median, stats=stats,
                       flags=noise_flags(stats), **base)


def not_run(
    case: Case, device_index: int | None, status: str, reason: str, *, unit: str, convention: str = ""
) -> Measurement:
    """A skipped or failed case: kept in the file with its reason, never dropped."""
    return Measurement(
        key=case.key, benchmark=case.benchmark, variant=case.variant, precision=case.precision,
        params=dict(case.params), device_index=device_index, status=status, reason=reason,
        unit=unit, convention=convention, work_per_call=0.0,
    )
