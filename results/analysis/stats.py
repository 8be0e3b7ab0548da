"""Pure statistics over raw samples: quantiles, spread, noise flags. No torch, no printing."""

from __future__ import annotations

import math
from typing import Sequence

from results.files.schema import Stats

# A memory record whose buffers were held below 8x the last-level cache (bench.sizing): its rate
# may include cache hits, so it is not taken for a DRAM figure without saying so.
BELOW_CACHE_FLAG = "below_8x_cache"
NOISY_IQR_OVER_MEDIAN = 0.10  # torch.utils.benchmark's "could indicate system fluctuation"


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of an already sorted sequence."""
    if not sorted_values:
        raise ValueError("quantile of no values")
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = math.ceil(pos)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def summarize(values: Sequence[float]) -> Stats:
    """Median-centred summary of samples (at least one)."""
    ordered = sorted(values)
    n = len(ordered)
    mean = sum(ordered) / n
    stdev = math.sqrt(sum((v - mean) ** 2 for v in ordered) / (n - 1)) if n > 1 else 0.0
    median = quantile(ordered, 0.5)
    return Stats(
        n=n,
        median=median,
        mean=mean,
        min=ordered[0],
        max=ordered[-1],
        p10=quantile(ordered, 0.10),
        p90=quantile(ordered, 0.90),
        iqr=quantile(ordered, 0.75) - quantile(ordered, 0.25),
        stdev=stdev,
        cv=stdev / mean if mean else 0.0,
    )


def rates_from_times(work_per_call: float, times_s: Sequence[float]) -> list[float]:
    """Per-sample rates (work per second) from seconds per call."""
    return [work_per_call / t for t in times_s if t > 0]


def noise_flags(stats: Stats) -> tuple[str, ...]:
    """`noisy` when IQR/median exceeds 10 %."""
    if stats.median > 0 and stats.iqr / stats.median > NOISY_IQR_OVER_MEDIAN:
        return ("noisy",)
    return ()
