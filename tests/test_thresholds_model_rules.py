"""The model-scope regimes added from the 2026 survey (regulations-2026.md R24-R26): each clause
evaluated on both sides of its threshold, and their dates as `history` and `whatif` show them."""

from __future__ import annotations

import datetime

import pytest

from helpers_reference import survey_text

from thresholds.evaluate import evaluate
from thresholds.load import PACKAGE_DIR, load_rules
from thresholds.model import Interval, MetricSet, MetricValue

RULES = {r.id: r for r in load_rules(PACKAGE_DIR / "rules")}
AFTER = datetime.date(2027, 6, 1)


def _model(**values: float) -> MetricSet:
    return MetricSet("peak-declared", {k: MetricValue(k, Interval.point(v), "peak-declared", tags=("I",))
                                       for k, v in values.items()})


@pytest.mark.parametrize("rule_id, ops, met", [
    ("us-ca-sb53", 1e26, False), ("us-ca-sb53", 1.0001e26, True),
    ("eu-ai-act-gpai-guidelines", 1e23, False), ("eu-ai-act-gpai-guidelines", 2e23, True),
])
def test_one_clause_model_rules_are_strict_at_their_threshold(rule_id, ops, met):
    """Reporting and presumption rules are informational: `met`, never "controlled"."""
    verdict = evaluate(RULES[rule_id], _model(training_ops=ops), as_of=AFTER, scope="model")
    assert verdict.applicable and verdict.met is met and verdict.outcome != "controlled", verdict.reason


@pytest.mark.parametrize("ops, cost, met", [
    (2e26, 2e8, True),      # both clauses
    (2e26, 1e8, False),     # cost exactly $100 M: "exceeds" is strict
    (1e26, 2e8, False),     # operations exactly 10^26: "greater than"
    (5e25, 5e8, False),
])
def test_new_york_raise_needs_both_compute_and_cost(ops, cost, met):
    verdict = evaluate(RULES["us-ny-raise"], _model(training_ops=ops, training_compute_cost_usd=cost),
                       as_of=AFTER, scope="model")
    assert verdict.met is met, verdict.reason


def test_new_york_raise_without_the_cost_is_undecided_not_guessed():
    verdict = evaluate(RULES["us-ny-raise"], _model(training_ops=2e26), as_of=AFTER, scope="model")
    assert verdict.met is None and verdict.outcome == "indeterminate"


@pytest.mark.parametrize("rule_id, start, status", [
    ("us-ca-sb53", "2026-01-01", "in force"), ("us-ny-raise", "2027-01-01", "in force"),
    ("eu-ai-act-gpai-guidelines", "2025-08-02", "in force"),
])
def test_dates_and_status(rule_id, start, status):
    rule = RULES[rule_id]
    assert rule.effective_from.isoformat() == start and rule.status == status
    assert not rule.in_force_on(datetime.date.fromisoformat(start) - datetime.timedelta(days=1))
    assert rule.in_force_on(datetime.date.fromisoformat(start))


def test_figures_stand_in_the_survey():
    text = survey_text()
    if text is None:
        pytest.skip("../shared/reference/regulations-2026.md not beside the checkout")
    for words in ("frontier model: training compute **> 10^26** integer or FP operations",
                  "frontier model: **> 10^26** operations **and compute cost > $100 M**",
                  "indicative GPAI criterion: training compute **> 10^23 FLOP**",
                  "one outlet prints 10^22 (informedclearly)"):
        assert words in text, words


def test_whatif_names_a_law_not_yet_in_effect_with_its_date(capsys):
    from bench.cli import main

    assert main(["whatif", "h100-sxm", "--count", "1000"]) == 0  # whatif judges as of today
    out = capsys.readouterr().out
    raise_state = "in force from 2027-01-01" if datetime.date.today() < datetime.date(2027, 1, 1) else "in force"
    assert f"us-ny-raise § 1420(6) frontier model ({raise_state})" in out
    assert "us-ca-sb53 frontier model (in force)" in out
    assert "eu-ai-act-gpai-guidelines indicative GPAI criterion (in force)" in out
