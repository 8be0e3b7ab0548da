"""Distribution-free confidence bounds of a median from raw samples (order statistics).

For n samples sorted x(1) <= ... <= x(n), the one-sided upper bound of the median at confidence c
is x(u) with u the smallest rank for which P(Binomial(n, 1/2) <= u - 1) >= c: the median lies below
x(u) with probability at least c, whatever the distribution. With too few samples (n = 1 to 4 at
c = 0.95) no rank reaches c and the bound is the largest sample (stated as such). The lower bound
mirrors it. `verify` compares the upper bound with the declaration (docs/verification.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class MedianBounds:
    n: int
    median: float
    lower: float
    upper: float
    confidence: float
    exact: bool  # False: too few samples for the confidence; the bounds are the extreme samples


def _rank(n: int, confidence: float) -> int | None:
    """Smallest u (1-based) with P(B <= u - 1) >= confidence, B ~ Binomial(n, 1/2)."""
    total, cumulative = 2 ** n, 0
    for u in range(1, n + 1):
        cumulative += math.comb(n, u - 1)
        if cumulative / total >= confidence:
            return u
    return None


def median_bounds(samples: Sequence[float], confidence: float) -> MedianBounds:
    xs = sorted(samples)
    n = len(xs)
    if n == 0:
        raise ValueError("no samples")
    mid = n // 2
    median = xs[mid] if n % 2 else (xs[mid - 1] + xs[mid]) / 2
    u = _rank(n, confidence) if n <= 1000 else None
    if u is None and n > 1000:  # normal approximation of the binomial for large n
        z = {0.9: 1.2816, 0.95: 1.6449, 0.99: 2.3263}.get(round(confidence, 2), 1.6449)
        u = min(n, math.ceil(n / 2 + z * math.sqrt(n) / 2 + 0.5))
    if u is None:
        return MedianBounds(n, median, xs[0], xs[-1], confidence, exact=False)
    return MedianBounds(n, median, xs[n - u], xs[u - 1], confidence, exact=True)
