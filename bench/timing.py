"""The timing loop: warm-up and sample counts from time budgets, never fixed counts.

measure(fn, backend, budget) -> (times_s, Timing). No statistics, no printing.

1. Warm-up: call fn until `warmup_s` has passed (at least twice), synchronising, on the host
   clock; this also estimates the cost of one call. The FIRST call (lazy module loading, cuBLASLt
   heuristics, allocator growth) is left out of that estimate and of the time spent, so a slow
   first call cannot starve a case of samples; only a first call that alone takes half the case
   cap ends the warm-up (it is then all there is to go by).
2. Plan: batch calls per sample so one sample lasts >= `min_sample_s` (short kernels), then as
   many samples as fit in `measure_s`, clamped to [min_samples, max_samples] -- but never more
   than fit in `max_case_s`, so a pathologically slow path (fp16 matmul on a CPU is ~400x slower
   than bf16) cannot blow the run's budget.
3. Samples: `start_timed_region` (below), run the batch, stop; record seconds per call.

The timed region holds device work only (the launch-gap rule). On a GPU an event recorded on an
idle stream fires at once, so the host's time to dispatch the sample's first call would land
inside the region (a single 1 GiB read reads 3-6 % low that way). So before every start event the
cache flush (when asked) and then a short spin kernel (`SPIN_BEFORE_START_CYCLES`) are queued on
the measured device's stream: the GPU is still busy with them when the host has queued the call,
and the start event fires just before the call starts. Functions that time themselves (several
streams, `self_timed_clock`) follow the same rule with `SPIN_BEFORE_START_CYCLES` or a longer
spin of their own. No host synchronisation happens between the start and the end event.
"""

from __future__ import annotations

import math
from typing import Callable

from bench.backend import Backend, Budget
from results.files.schema import Timing

# ~125-180 us at 1.4-2 GHz SM clocks: far longer than the host needs to queue one call (5-50 us),
# short enough to cost at most ~40 ms over a case's 200 samples.
SPIN_BEFORE_START_CYCLES = 250_000
# ~1 ms: regions that start copies on two streams (bidirectional host link and peer copies) hold
# both behind this longer spin until both copies are queued.
SPIN_BEFORE_TWO_STREAMS_CYCLES = 2_000_000


def start_timed_region(backend: Backend, flush_cache: bool) -> object:
    """The launch-gap rule, once: flush (outside the region), spin, then the start event."""
    if flush_cache:
        backend.flush_cache()
    backend.queue_spin(SPIN_BEFORE_START_CYCLES)
    return backend.start_sample()


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
    warmup_calls, warmup_elapsed_s, per_call_s, spent_s = _warm_up(fn, backend, budget)
    calls_per_sample, samples = plan_samples(per_call_s, budget, spent_s=spent_s)
    if self_timed_clock is not None:
        calls_per_sample = 1
    times_s: list[float] = []
    for _ in range(samples):
        if self_timed_clock is not None:
            if flush_cache:
                backend.flush_cache()
            times_s.append(float(fn()))  # type: ignore[arg-type]
            continue
        token = start_timed_region(backend, flush_cache)
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


def _warm_up(fn: Callable[[], object], backend: Backend, budget: Budget) -> tuple[int, float, float, float]:
    """(calls, seconds in all, estimated seconds per call, seconds that count against the cap):
    the estimate and the count leave the first call out whenever a later call was made."""
    backend.synchronize()
    start = backend.now()
    fn()
    backend.synchronize()
    first_s = backend.now() - start
    if first_s >= budget.max_case_s / 2:
        return 1, first_s, max(first_s, 1e-9), first_s
    calls = 1
    after_first = backend.now()
    while True:
        fn()
        backend.synchronize()
        calls += 1
        steady_s = backend.now() - after_first
        if steady_s >= budget.warmup_s or steady_s >= budget.max_case_s / 2:
            return calls, first_s + steady_s, max(steady_s / (calls - 1), 1e-9), steady_s


def plan_samples(per_call_s: float, budget: Budget, spent_s: float = 0.0) -> tuple[int, int]:
    """(calls per sample, number of samples) for a call that costs `per_call_s`."""
    calls_per_sample = max(1, math.ceil(budget.min_sample_s / per_call_s))
    sample_s = calls_per_sample * per_call_s
    wanted = int(budget.measure_s / sample_s)
    samples = min(max(wanted, budget.min_samples), budget.max_samples)
    room_s = max(budget.max_case_s - spent_s, 0.0)
    affordable = int(room_s / sample_s)
    return calls_per_sample, max(1, min(samples, affordable))
