"""The timing loop against a fake backend with a synthetic clock: deterministic budgets."""

from __future__ import annotations

import pytest

from bench.backend import Budget
from bench.timing import measure, plan_samples


class SyntheticClockBackend:
    """Only the seam the timing loop uses; time advances only when the fake kernel runs."""

    kind = "fake"
    clock_name = "synthetic"

    def __init__(self) -> None:
        self.t = 0.0
        self.flushes = 0
        self.syncs = 0

    def synchronize(self) -> None:
        self.syncs += 1

    def now(self) -> float:
        return self.t

    def start_sample(self) -> float:
        return self.t

    def stop_sample(self, token: float) -> float:
        return self.t - token

    def flush_cache(self) -> None:
        self.flushes += 1

    def queue_spin(self, cycles: int) -> None:
        self.spins = getattr(self, "spins", 0) + 1


def kernel(backend: SyntheticClockBackend, cost_s: float):
    calls = []

    def fn() -> None:
        backend.t += cost_s
        calls.append(1)
    return fn, calls


# Binary fractions keep the synthetic clock exact.
BUDGET = Budget(warmup_s=0.125, measure_s=1.0, max_case_s=5.0, min_samples=5, max_samples=100,
                min_sample_s=2**-10)


def test_budget_drives_warmup_and_sample_count():
    backend = SyntheticClockBackend()
    fn, calls = kernel(backend, 2**-7)
    times, timing = measure(fn, backend, BUDGET, flush_cache=True)
    assert timing.warmup_calls == 17  # the first call, then 16 x 7.8 ms reach the 125 ms warm-up budget
    assert timing.calls_per_sample == 1  # 7.8 ms already exceeds min_sample_s
    assert len(times) == 100  # 1 s of samples would be 128, capped by max_samples
    assert all(t == 2**-7 for t in times)
    assert backend.flushes == len(times)  # one flush per sample, outside the timed region
    assert len(calls) == timing.warmup_calls + len(times)


def test_short_kernels_are_batched_per_sample():
    backend = SyntheticClockBackend()
    fn, _ = kernel(backend, 2**-17)
    times, timing = measure(fn, backend, BUDGET, flush_cache=False)
    assert timing.calls_per_sample == 128  # 128 x 7.6 us = the ~1 ms minimum sample
    assert times[0] == pytest.approx(2**-17)  # reported per call, not per sample
    assert backend.flushes == 0


def test_slow_call_cannot_blow_the_case_cap():
    backend = SyntheticClockBackend()
    fn, calls = kernel(backend, 2.0)  # one call costs 2 s; min_samples would need 10 s
    times, timing = measure(fn, backend, BUDGET, flush_cache=False)
    assert timing.warmup_calls == 2  # the first call is never the only estimate when a second fits
    assert len(times) == 1  # (5 s cap - 2 s of steady warm-up) / 2 s per call
    assert backend.t <= 2.0 + BUDGET.max_case_s  # the cap bounds everything after the first call


def test_first_call_longer_than_half_the_cap_ends_the_warm_up():
    backend = SyntheticClockBackend()
    fn, calls = kernel(backend, 3.0)
    times, timing = measure(fn, backend, BUDGET, flush_cache=False)
    assert timing.warmup_calls == 1 and len(times) == 1
    assert backend.t == 6.0


def test_slow_first_call_is_left_out_of_the_estimate():
    """Lazy loading or cuBLASLt's heuristics make the first call slow: the case still gets the
    samples its steady per-call cost affords, and the estimate is the steady cost."""
    plain = SyntheticClockBackend()
    fn, _ = kernel(plain, 2**-5)
    plain_times, plain_timing = measure(fn, plain, BUDGET, flush_cache=False)

    slow_first = SyntheticClockBackend()
    costs = iter([2.25] + [2**-5] * 10_000)

    def fn_slow() -> None:
        slow_first.t += next(costs)

    times, timing = measure(fn_slow, slow_first, BUDGET, flush_cache=False)
    assert len(times) == len(plain_times) == 32  # 1 s of 31 ms samples; not starved by the 2.25 s call
    assert set(times) == {2**-5}
    assert timing.warmup_calls == plain_timing.warmup_calls == 5  # the first call, then the budget
    assert timing.warmup_s == 2.25 + 4 * 2**-5


def test_every_sample_spins_before_its_start_event():
    backend = SyntheticClockBackend()
    fn, _ = kernel(backend, 2**-7)
    times, _ = measure(fn, backend, BUDGET, flush_cache=True)
    assert backend.spins == len(times)


def test_min_samples_when_affordable():
    backend = SyntheticClockBackend()
    fn, _ = kernel(backend, 0.3)
    times, _ = measure(fn, backend, BUDGET, flush_cache=False)
    assert len(times) == 5  # measure_s allows 3, min_samples asks 5, the cap allows 15


def test_self_timed_function_reports_its_own_seconds():
    backend = SyntheticClockBackend()

    def fn() -> float:
        backend.t += 0.02
        return 0.015  # e.g. events around concurrent streams, excluding a spin kernel

    times, timing = measure(fn, backend, BUDGET, flush_cache=False, self_timed_clock="cuda_event")
    assert set(times) == {0.015}
    assert timing.clock == "cuda_event" and timing.calls_per_sample == 1


@pytest.mark.parametrize("per_call", [1e-7, 1e-4, 0.01, 0.5, 3.0, 30.0])
def test_plan_never_exceeds_cap(per_call):
    calls, samples = plan_samples(per_call, BUDGET, spent_s=per_call)
    assert calls >= 1 and samples >= 1
    if per_call < BUDGET.max_case_s / 2:
        assert per_call * calls * samples <= BUDGET.max_case_s
