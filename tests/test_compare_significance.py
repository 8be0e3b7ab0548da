"""The significance test behind `compare`: which test runs, and properties of the classification."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")  # a GPU host may lack it (scripts/gpu-check.sh collects every module)

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "data" / "results"))
import synth  # noqa: E402

from results.analysis.compare import Named, compare  # noqa: E402
from results.analysis.significance import MIN_SAMPLES_MWU, assess  # noqa: E402
from results.analysis.stats import summarize  # noqa: E402


def samples(seed: int, centre: float, cv: float, n: int) -> list[float]:
    rng = random.Random(seed)
    return [centre * (1 + rng.gauss(0, cv)) for _ in range(n)]


def test_mann_whitney_with_enough_samples():
    sig = assess(samples(1, 100, 0.01, 30), samples(2, 90, 0.01, 30))
    assert sig.method == "mann-whitney-u" and sig.significant and sig.p_value < 1e-6


def test_mann_whitney_not_significant_for_same_distribution():
    sig = assess(samples(1, 100, 0.05, 30), samples(2, 100, 0.05, 30))
    assert sig.method == "mann-whitney-u" and not sig.significant


def test_ci_overlap_below_the_sample_threshold():
    n = MIN_SAMPLES_MWU - 1
    tight = assess(samples(1, 100, 0.001, n), samples(2, 80, 0.001, n))
    assert tight.method == "ci-overlap" and tight.significant and tight.p_value is None
    loose = assess(samples(1, 100, 0.2, n), samples(2, 90, 0.2, n))
    assert loose.method == "ci-overlap" and not loose.significant


def test_one_sample_is_never_significant():
    sig = assess([100.0], [50.0])
    assert sig.method == "none" and not sig.significant


def test_stats_stand_in_for_missing_samples():
    base = summarize(samples(1, 100, 0.001, 20))
    cur = summarize(samples(2, 80, 0.001, 20))
    sig = assess([], [], baseline_stats=base, current_stats=cur)
    assert sig.method == "ci-overlap" and sig.significant


def test_identical_constant_samples():
    sig = assess([5.0] * 10, [5.0] * 10)
    assert not sig.significant


@settings(max_examples=40, deadline=None)
@given(
    scale=st.floats(min_value=0.5, max_value=2.0),
    cv=st.sampled_from([0.001, 0.01, 0.1]),
    n=st.sampled_from([2, 3, 10, 30]),
    factor=st.sampled_from([1.02, 1.05, 1.2]),
    seed=st.integers(0, 1000),
)
def test_classification_properties(scale, cv, n, factor, seed):
    case = synth._case("bf16")
    rng = random.Random(seed)
    base = synth.run("synthetic-a", [synth.measurement(rng, case, 7e14, cv=cv, n=n)])
    cur = synth.run("synthetic-b", [synth.measurement(rng, case, 7e14 * scale, cv=cv, n=n)])
    (row,) = compare(Named("a", base), [Named("b", cur)], factor=factor).rows
    assert row.ratio is not None
    within = 1 / factor <= row.ratio <= factor
    assert (row.change == "unchanged") == within
    if row.change == "improved":
        assert row.ratio > factor
    if row.change == "regressed":
        assert row.ratio < 1 / factor
    assert row.change in {"unchanged", "improved", "regressed", "noisy"}
