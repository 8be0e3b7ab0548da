"""The timing loop: warm-up and sample counts from time budgets, never fixed counts.

measure(fn, backend, budget) -> (times_s, Timing). No statistics, no printing.

1. Warm-up: call fn until `warmup_s` has passed (at least once), synchronising, on the host
   clock; this also estimates the cost of one call.
2. Plan: batch calls per sample so one sample lasts >= `min_sample_s` (short kernels), then as
   many samples as fit in `measure_s`, clamped to [min_samples, max_samples] -- but never more
   than fit in `max_case_s`, so a pathologically slow path (fp16 matmul on a CPU is ~400x slower
   than bf16) cannot blow the run's budget.
3. Samples: flush the cache outside the timed region (when asked), start the backend's timer
   (CUDA events or perf_counter), run the batch, stop; record seconds per call.
"""

from __future__ import annotations

import math
from typing import Callable

from bench.backend import Backend, Budget
from results.schema import Timing


def measure(
    fn: Callable[[], object],
    backend: Backend,
    budget: Budget,
    *,
    flush_cache: bool,
    self_timed_clock: str | None = None,
) -> tuple[tuple[float, ...], Timing]:
    """Samples of seconds per call. With `self_timed_clock`, fn times itself (it returns the
    seconds its call took, e.g. from its own events around concurrent streams) and every
    sample is one call; the clock name is recorded as given."""
    warmup_calls, warmup_elapsed_s = _warm_up(fn, backend, budget)
    per_call_s = max(warmup_elapsed_s / warmup_calls, 1e-9)
    calls_per_sample, samples = plan_samples(per_call_s, budget, spent_s=warmup_elapsed_s)
    if self_timed_clock is not None:
        calls_per_sample = 1
    times_s: list[float] = []
    for _ in range(samples):
        if flush_cache:
            backend.flush_cache()
        if self_timed_clock is not None:
            times_s.append(float(fn()))  # type: ignore[arg-type]
            continue
        token = backend.start_sample()
        for _ in range(calls_per_sample):
            fn()
        times_s.append(backend.stop_sample(token) / calls_per_sample)
    timing = Timing(
        clock=self_timed_clock or backend.clock_name,
        calls_per_sample=calls_per_sample,
        warmup_calls=warmup_calls,
        warmup_s=warmup_elapsed_s,
        l2_flushed=flush_cache,
    )
    return tuple(times_s), timing


def _warm_up(fn: Callable[[], object], backend: Backend, budget: Budget) -> tuple[int, float]:
    backend.synchronize()
    start = backend.now()
    calls = 0
    while True:
        fn()
        backend.synchronize()
        calls += 1
        elapsed = backend.now() - start
        if elapsed >= budget.warmup_s or elapsed >= budget.max_case_s / 2:
            return calls, elapsed


def plan_samples(per_call_s: float, budget: Budget, spent_s: float = 0.0) -> tuple[int, int]:
    """(calls per sample, number of samples) for a call that costs `per_call_s`."""
    calls_per_sample = max(1, math.ceil(budget.min_sample_s / per_call_s))
    sample_s = calls_per_sample * per_call_s
    wanted = int(budget.measure_s / sample_s)
    samples = min(max(wanted, budget.min_samples), budget.max_samples)
    room_s = max(budget.max_case_s - spent_s, 0.0)
    affordable = int(room_s / sample_s)
    return calls_per_sample, max(1, min(samples, affordable))
