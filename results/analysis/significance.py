"""Is the difference between two sets of per-sample rates real? Pure; scipy imported lazily.

With enough samples on both sides: a two-sided Mann-Whitney U test (no normality assumption,
robust to the long tails benchmark samples have). With fewer: do the 95 % confidence intervals
of the two means overlap (a conservative test: non-overlap implies significance)? With a single
sample (or none) on a side nothing can be said, and the answer is "not significant".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from results.files.schema import Stats

MIN_SAMPLES_MWU = 6  # with 6 vs 6 the smallest two-sided exact p is 0.002; 3 vs 3 can't reach 0.05
DEFAULT_ALPHA = 0.05

METHODS = ("mann-whitney-u", "ci-overlap", "none")


@dataclass(frozen=True)
class Significance:
    method: str  # one of METHODS
    significant: bool
    p_value: float | None  # Mann-Whitney U only
    detail: str  # one phrase in words, e.g. "p=0.0012, n=30 vs 30"


@dataclass(frozen=True)
class _Summary:
    n: int
    mean: float
    stdev: float


def assess(
    baseline_rates: Sequence[float],
    current_rates: Sequence[float],
    *,
    baseline_stats: Stats | None = None,
    current_stats: Stats | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> Significance:
    """Compare two samples of rates. `*_stats` stand in when raw samples are absent."""
    nb, nc = len(baseline_rates), len(current_rates)
    if nb >= MIN_SAMPLES_MWU and nc >= MIN_SAMPLES_MWU:
        return _mann_whitney(baseline_rates, current_rates, alpha)
    base = _summary(baseline_rates, baseline_stats)
    cur = _summary(current_rates, current_stats)
    if base is None or cur is None:
        return Significance("none", False, None, "too few samples for a test")
    return _ci_overlap(base, cur)


def _mann_whitney(base: Sequence[float], cur: Sequence[float], alpha: float) -> Significance:
    from scipy.stats import mannwhitneyu

    if len(set(base)) == 1 and set(base) == set(cur):
        return Significance("mann-whitney-u", False, 1.0, f"identical samples, n={len(base)} vs {len(cur)}")
    p = float(mannwhitneyu(cur, base, alternative="two-sided").pvalue)
    if p != p:  # NaN (degenerate input): no evidence of a difference
        p = 1.0
    return Significance(
        "mann-whitney-u", p < alpha, p, f"p={p:.2g}, n={len(base)} vs {len(cur)}"
    )


def _summary(rates: Sequence[float], stats: Stats | None) -> _Summary | None:
    if len(rates) >= 2:
        n = len(rates)
        mean = sum(rates) / n
        stdev = math.sqrt(sum((r - mean) ** 2 for r in rates) / (n - 1))
        return _Summary(n, mean, stdev)
    if stats is not None and stats.n >= 2:
        return _Summary(stats.n, stats.mean, stats.stdev)
    return None


def _ci_overlap(base: _Summary, cur: _Summary) -> Significance:
    from scipy.stats import t

    def interval(s: _Summary) -> tuple[float, float]:
        half = float(t.ppf(0.975, s.n - 1)) * s.stdev / math.sqrt(s.n)
        return s.mean - half, s.mean + half

    b_lo, b_hi = interval(base)
    c_lo, c_hi = interval(cur)
    overlap = b_lo <= c_hi and c_lo <= b_hi
    words = "95% CIs overlap" if overlap else "95% CIs disjoint"
    return Significance("ci-overlap", not overlap, None, f"{words}, n={base.n} vs {cur.n}")
