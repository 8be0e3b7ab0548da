"""Three-valued evaluation: boundaries, Note 2, max over precisions, missing inputs, ranges, margins."""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import pytest

from helpers_reference import survey_text

from thresholds.evaluate import all3, any3, compare, evaluate, margin, not3
from thresholds.load import PACKAGE_DIR, load_rules
from thresholds.metrics import declared_metrics, tpp_from_tops
from thresholds.model import Figure, Interval, MetricSet, MetricValue, Part
from results.report.verdict_data import check_subjects

TODAY = datetime.date(2026, 11, 26)
RULES = {r.id: r for r in load_rules(PACKAGE_DIR / "rules")}


def metrics(basis: str = "peak-declared", **values) -> MetricSet:
    out = {}
    for name, value in values.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = Interval.point(value)
        elif isinstance(value, tuple):
            value = Interval(*value)
        out[name] = MetricValue(name, value, basis)
    return MetricSet(basis, out)


def part(tops: dict, area: float | None = 800.0, datacenter: bool | None = True, io: dict | None = None) -> Part:
    fig = lambda v: Figure(Interval.point(v), ("I",), "test")  # noqa: E731
    return Part(
        id="t", name="t", vendor="", dense_tops={k: fig(v) for k, v in tops.items()},
        io_gbs={k: fig(v) for k, v in (io or {}).items()},
        datacenter=None if datacenter is None else Figure(datacenter, ("I",), "test"),
        die_area_mm2=None if area is None else fig(area),
    )


def verdict(rule_id: str, ms: MetricSet, near: float = 10.0):
    return evaluate(RULES[rule_id], ms, as_of=TODAY, near_pct=near)


# --------------------------------------------------------------------------- logic


def test_kleene_logic():
    assert all3([True, True]) is True and all3([True, None]) is None and all3([None, False]) is False
    assert any3([False, False]) is False and any3([False, None]) is None and any3([None, True]) is True
    assert not3(None) is None and not3(True) is False
    assert all3([]) is True and any3([]) is False


@pytest.mark.parametrize("value, comparator, threshold, expected", [
    (4800.0, ">=", 4800, True), (4799.99, ">=", 4800, False), (4800.0, ">", 4800, False),
    (4800.0, "<", 4800, False), (4799.0, "<", 4800, True), (4800.0, "<=", 4800, True),
    (1600 / (1600 / 5.92), ">=", 5.92, True),  # float arithmetic: treated as exactly 5.92
    (1600 / (1600 / 5.92), "<", 5.92, False),
    ((4480.0, 6400.0), ">=", 4800, None), ((4480.0, 6400.0), ">=", 4400, True),
    ((4480.0, 6400.0), ">=", 6500, False), ((90.0, math.inf), ">=", 600, None), ((700.0, math.inf), ">=", 600, True),
    (None, ">=", 4800, None), (True, "is", True, True), (False, "is", True, False), (None, "is", False, None),
])
def test_compare(value, comparator, threshold, expected):
    if isinstance(value, float):
        value = Interval.point(value)
    elif isinstance(value, tuple):
        value = Interval(*value)
    assert compare(value, comparator, threshold) is expected


def test_margin_uses_the_bound_nearest_the_threshold():
    assert margin(Interval.point(4992), 4800) == (pytest.approx(4.0), 4992)
    assert margin(Interval(4480, 6400), 4800)[0] == 0.0  # range contains the threshold
    assert margin(Interval(5000, 6400), 4800) == (pytest.approx(100 * 200 / 4800), 5000)
    assert margin(Interval(90, math.inf), 600) == (pytest.approx(-85.0), 90)


# --------------------------------------------------------------------------- 2023 boundaries


@pytest.mark.parametrize("tpp, pd, datacenter, outcome, paragraph", [
    (4800, 1.0, True, "controlled", "3A090.a.1"),          # TPP exactly 4800
    (4799.9, 1.0, True, "not_controlled", None),
    (1600, 5.92, True, "controlled", "3A090.a.2"),         # TPP 1600 with PD exactly 5.92
    (1600, 5.9199, True, "controlled", "3A090.b.2"),       # just below 5.92 -> b.2 (PD >= 3.2)
    (1599.9, 5.92, True, "not_controlled", None),
    (1600, 3.2, True, "controlled", "3A090.b.2"),          # PD exactly 3.2
    (1600, 3.1999, True, "not_controlled", None),
    (2400, 1.6, True, "controlled", "3A090.b.1"),          # TPP 2400 and PD exactly 1.6
    (2399.9, 1.6, True, "not_controlled", None),
    (2400, 1.5999, True, "not_controlled", None),
    (4799, 5.91, True, "controlled", "3A090.b.1"),         # b.1 upper edges
    (4800, 5.91, True, "controlled", "3A090.a.1"),
    (2368, 2.91, True, "not_controlled", None),            # H20
    (1912, 3.14, True, "not_controlled", None),            # L20
])
def test_2023_boundaries(tpp, pd, datacenter, outcome, paragraph):
    v = verdict("us-2023-10", metrics(tpp=tpp, performance_density=pd, datacenter=datacenter))
    assert (v.outcome, v.paragraph) == (outcome, paragraph)


def test_2023_boundary_through_spec_files(tmp_path):
    """TPP 1600 and PD exactly 5.92 reached through a spec file's arithmetic (die area 1600/5.92)."""
    spec = tmp_path / "edge.toml"
    spec.write_text(f'name = "edge"\ndatacenter = true\ndie_area_mm2 = {1600 / 5.92!r}\n[dense_tops]\nfp16 = 100.0\n')
    doc = check_subjects([str(spec)], rules="us-2023-10")
    (v,) = doc["subjects"][0]["verdicts"]
    assert (v["outcome"], v["paragraph"]) == ("controlled", "3A090.a.2")
    assert v["nearest"]["margin_pct"] == 0.0 and v["near_limit"] is True


# --------------------------------------------------------------------------- Note 2


@pytest.mark.parametrize("tpp, pd, datacenter, outcome, paragraph, exemption", [
    (4707.2, 7.74, False, "not_controlled", None, "Note 2 to 3A090"),  # RTX 4090 D
    (4707.2, 7.74, True, "controlled", "3A090.a.2", None),             # same part marketed for datacenters
    (5284.8, 8.69, False, "controlled", "3A090.a.1", None),            # RTX 4090: Note 2 needs TPP < 4800
    (4800, 8.69, False, "controlled", "3A090.a.1", None),
    (3000, 4.0, False, "not_controlled", None, "Note 2 to 3A090"),     # would be b.1/b.2 in a datacenter
    (3000, 4.0, None, "indeterminate", None, None),                    # datacenter design unknown: undecided
    (5000, None, None, "controlled", "3A090.a.1", None),               # TPP >= 4800: Note 2 cannot apply
])
def test_note_2(tpp, pd, datacenter, outcome, paragraph, exemption):
    values = {"tpp": tpp, "datacenter": datacenter}
    if pd is not None:
        values["performance_density"] = pd
    v = verdict("us-2023-10", metrics(**values))
    assert (v.outcome, v.paragraph, v.exemption) == (outcome, paragraph, exemption)
    if exemption:
        assert "Note 2" in v.reason and "not designed or marketed for datacenters" in v.reason


def test_nac_licence_note_for_consumer_part_over_4800():
    v = verdict("us-2023-10", metrics(tpp=5284.8, performance_density=8.69, datacenter=False))
    assert any("License Exception NAC" in n and "not designed or marketed" in n for n in v.licence_notes)
    assert any("ACA" in n for n in v.licence_notes)  # since 4 Apr 2024
    before = evaluate(RULES["us-2023-10"], metrics(tpp=5284.8, performance_density=8.69, datacenter=False),
                      as_of=datetime.date(2024, 1, 1))
    assert not any("ACA" in n for n in before.licence_notes)


def test_nac_licence_note_for_b_paragraphs_in_datacenters():
    v = verdict("us-2023-10", metrics(tpp=3000, performance_density=4.0, datacenter=True))
    assert v.paragraph == "3A090.b.1"
    assert any("yes for 3A090.b" in n for n in v.licence_notes)


# --------------------------------------------------------------------------- max over precisions


@pytest.mark.parametrize("tops, tpp, winner", [
    ({"fp16": 100.0, "int8": 700.0}, 5600.0, ("int8",)),              # integer wins
    ({"bf16": 1000.0, "fp8": 1000.0, "fp4": 9000.0}, 36000.0, ("fp4",)),  # fp4 wins
    ({"fp16": 300.0, "int4": 1300.0}, 5200.0, ("int4",)),
    ({"bf16": 1835.0, "fp8": 1835.0}, 29360.0, ("bf16",)),            # Gaudi 3: FP8 at the BF16 rate
    ({"fp16": 312.0, "int8": 624.0}, 4992.0, ("fp16", "int8")),       # ties are all reported
])
def test_tpp_is_max_over_precisions(tops, tpp, winner):
    result = tpp_from_tops({k: Interval.point(v) for k, v in tops.items()})
    assert result.tpp.lo == pytest.approx(tpp) and result.winners == winner


def test_int_or_fp4_winning_changes_the_classification():
    # fp16 alone: 250 x 16 = 4,000 -> not a.1 (PD 5 -> b.1); int8 at 700 -> 5,600 -> a.1
    fp_only, _ = declared_metrics(part({"fp16": 250.0}, area=800.0), "test")
    with_int, _ = declared_metrics(part({"fp16": 250.0, "int8": 700.0}, area=800.0), "test")
    with_fp4, _ = declared_metrics(part({"fp16": 250.0, "fp4": 1250.0}, area=800.0), "test")
    assert verdict("us-2023-10", fp_only).paragraph == "3A090.b.1"
    assert verdict("us-2023-10", with_int).paragraph == "3A090.a.1"
    assert verdict("us-2023-10", with_fp4).paragraph == "3A090.a.1"


def test_tpp_tied_with_a_recalled_figure_is_not_unverified():
    """A100: TPP 4,992 is reached by fp16 [V] and by INT4 [R] alike; only an all-[R] maximum is unverified."""
    fig = lambda v, tags: Figure(Interval.point(v), tags, "test")  # noqa: E731
    mixed = Part(id="m", name="m", vendor="", datacenter=None, io_gbs={}, die_area_mm2=fig(826.0, ("V",)),
                 dense_tops={"fp16": fig(312.0, ("V",)), "int4": fig(1248.0, ("R",))})
    ms, _ = declared_metrics(mixed, "test")
    assert ms.get("tpp").tags == ("V",) and ms.get("performance_density").tags == ("V",)
    recalled = Part(id="r", name="r", vendor="", datacenter=None, io_gbs={},
                    dense_tops={"fp16": fig(312.0, ("V", "R")), "int4": fig(1248.0, ("R",))})
    ms, _ = declared_metrics(recalled, "test")
    assert "R" in ms.get("tpp").tags


# --------------------------------------------------------------------------- missing inputs


@pytest.mark.parametrize("tops, datacenter, outcome, paragraph", [
    ({"fp8": 700.0}, True, "controlled", "3A090.a.1"),      # TPP 5,600: PD does not decide
    ({"fp8": 250.0}, True, "indeterminate", None),          # TPP 2,000: a.2/b.2 hinge on PD
    ({"fp8": 150.0}, True, "not_controlled", None),         # TPP 1,200: below every band anyway
    ({"fp8": 500.0}, False, "not_controlled", None),        # TPP 4,000, consumer: Note 2 decides
])
def test_missing_die_area_is_indeterminate_only_where_pd_decides(tops, datacenter, outcome, paragraph):
    ms, _ = declared_metrics(part(tops, area=None, datacenter=datacenter), "test")
    assert ms.get("performance_density").value is None
    v = verdict("us-2023-10", ms)
    assert (v.outcome, v.paragraph) == (outcome, paragraph)
    if outcome == "indeterminate":
        assert "PD unknown" in v.reason and "die area" in v.reason
        assert set(v.paragraphs_undecided) == {"3A090.a.2", "3A090.b.2"}  # b.1 fails on TPP < 2400


def test_missing_io_is_indeterminate_for_2022_never_false():
    ms, _ = declared_metrics(part({"fp8": 700.0}), "test")
    assert verdict("us-2022-10", ms).outcome == "indeterminate"
    ms, _ = declared_metrics(part({"fp8": 500.0}), "test")
    assert verdict("us-2022-10", ms).outcome == "not_controlled"  # TPP 4,000 < 4,800 decides


def test_io_exactly_600_is_controlled_in_2022():
    ms, _ = declared_metrics(part({"fp16": 312.0}, io={"nvlink": 536.0, "pcie": 64.0}), "test")
    v = verdict("us-2022-10", ms)
    assert (v.outcome, v.paragraph) == ("controlled", "3A090.a")
    assert "I/O 600 >= 600 GB/s" in v.reason


# --------------------------------------------------------------------------- nearest and near_limit


def test_nearest_and_near_limit():
    v = verdict("us-2022-10", metrics(tpp=4992.0, io_bidirectional_gbs=464.0, datacenter=True))
    assert v.outcome == "not_controlled"
    assert (v.nearest.metric, v.nearest.threshold, round(v.nearest.margin_pct, 2)) == ("tpp", 4800.0, 4.0)
    assert v.near_limit is True
    assert verdict("us-2022-10", metrics(tpp=4992.0, io_bidirectional_gbs=464.0), near=3.0).near_limit is False
    far = verdict("us-2023-10", metrics(tpp=15832.0, performance_density=19.45, datacenter=True))
    assert far.near_limit is False and far.nearest.metric == "performance_density"


def test_reason_wording():
    v = verdict("us-2023-10", metrics(tpp=4992.0, performance_density=6.04, datacenter=True))
    assert v.reason.startswith("TPP 4,992 >= 4,800 -> 3A090.a.1")
    low = verdict("us-2023-10", metrics(tpp=2368.0, performance_density=2.91, datacenter=True))
    assert "3A090.b.1: TPP 2,368 < 2,400" in low.reason and low.reason.endswith("no paragraph met")


# --------------------------------------------------------------------------- other regimes


@pytest.mark.parametrize("tpp, dram, met", [
    (15832, 4800, True), (20999, 6499, True), (21000, 4800, False), (15832, 6500, False),
    (36000, (7700, 8000), False), (15832, None, None),
])
def test_2026_band(tpp, dram, met):
    values = {"tpp": tpp}
    if dram is not None:
        values["memory_bandwidth_gbs"] = dram
    v = verdict("us-2026-01", metrics(**values))
    assert v.met is met and v.effect == "band"
    assert v.outcome == ("indeterminate" if met is None else "not_controlled")  # a band, not a classification


def test_hbm_rule_is_not_applicable_to_a_gpu_package():
    v = verdict("us-2024-12", metrics(tpp=15832.0, memory_bandwidth_gbs=3350.0))
    assert v.applicable is False and v.outcome == "not_controlled" and v.paragraph is None
    assert "HBM" in v.reason and "co-packaged" in v.reason


def test_cluster_regimes_have_no_device_threshold_but_evaluate_clusters():
    dev = verdict("us-eo14110", metrics(tpp=15832.0))
    assert dev.applicable is False and "whatif" in dev.reason
    cluster = evaluate(RULES["us-eo14110"], metrics(aggregate_ops_per_s=1e20), as_of=TODAY, scope="cluster")
    assert cluster.met is None  # compute reached; networking not given -> undecided
    nprm = evaluate(RULES["us-2024-09-nprm"], metrics(aggregate_ops_per_s=1e20, network_gbit_s=400.0),
                    as_of=TODAY, scope="cluster")
    assert nprm.met is False  # the NPRM needs more than 1e20
    nprm = evaluate(RULES["us-2024-09-nprm"], metrics(aggregate_ops_per_s=1.01e20, network_gbit_s=400.0),
                    as_of=TODAY, scope="cluster")
    assert nprm.met is True and nprm.paragraph == "702.7 computing cluster"


def test_measured_basis_never_claims_uncontrolled_by_itself():
    """A measured value is a lower bound of the peak: below a threshold it decides nothing."""
    v = verdict("us-2023-10", metrics("measured", tpp=3000.0, performance_density=1.0, datacenter=True))
    assert v.outcome == "indeterminate" and v.paragraph is None
    assert "lower bound" in v.reason and "decides nothing" in v.reason
    assert "TPP 3,000 undecided against >= 4,800" in v.reason
    # the same numbers on a peak basis do classify
    assert verdict("us-2023-10", metrics(tpp=3000.0, performance_density=1.0, datacenter=True)).outcome == "not_controlled"
    # Note 2 cannot exempt on a measured TPP either: the peak may be >= 4,800
    v = verdict("us-2023-10", metrics("measured", tpp=3000.0, performance_density=8.0, datacenter=False))
    assert v.outcome == "indeterminate" and v.exemption is None


@pytest.mark.parametrize("rule_id, values, outcome, paragraph", [
    ("us-2023-10", dict(tpp=12160.0, performance_density=14.9, datacenter=True), "controlled", "3A090.a.1"),
    ("us-2023-10", dict(tpp=4800.0, datacenter=False), "controlled", "3A090.a.1"),  # at least the threshold
    ("us-2022-10", dict(tpp=4992.0, io_bidirectional_gbs=450.0), "indeterminate", None),  # I/O may reach 600
    ("us-2022-10", dict(tpp=4992.0, io_bidirectional_gbs=600.0), "controlled", "3A090.a"),
])
def test_measured_values_reaching_a_threshold_still_decide(rule_id, values, outcome, paragraph):
    v = verdict(rule_id, metrics("measured", **values))
    assert (v.outcome, v.paragraph) == (outcome, paragraph)


@pytest.mark.parametrize("tpp, dram, met", [
    (15000.0, 3000.0, None),     # below both band limits as measured: the peak may be above them
    (25000.0, 3000.0, False),    # measured TPP already >= 21,000: outside whatever the peak
    (15000.0, 7000.0, False),
])
def test_measured_band_is_undecided_below_its_limits(tpp, dram, met):
    v = verdict("us-2026-01", metrics("measured", tpp=tpp, memory_bandwidth_gbs=dram))
    assert v.met is met and v.outcome == ("indeterminate" if met is None else "not_controlled")


def test_not_in_force_regime_says_so():
    v = verdict("us-2022-10", metrics(tpp=4992.0, io_bidirectional_gbs=664.0))
    assert v.in_force is False and any("superseded since 2023-11-17" in n for n in v.notes)
    assert Path(RULES["us-2022-10"].path).name == "us-2022-10.toml"


# --------------------------------------------------------------------------- Section 232 tariff boxes

# (TPP, DRAM GB/s, inside which box or None). Every bound of both boxes is strict (Annex as quoted,
# regulations-2026.md R7): each edge is tried exactly on it and a hair either side.
BOX_CASES = [
    (15832.0, 4800.0, "Section 232 box 1"),  # the H200 the box was drawn around
    (14000.0, 4800.0, None), (14000.01, 4800.0, "Section 232 box 1"), (13999.99, 4800.0, None),
    (17500.0, 4800.0, None), (17499.99, 4800.0, "Section 232 box 1"), (17500.01, 4800.0, None),
    (15832.0, 4500.0, None), (15832.0, 4500.01, "Section 232 box 1"), (15832.0, 4499.99, None),
    (15832.0, 5000.0, None), (15832.0, 4999.99, "Section 232 box 1"), (15832.0, 5000.01, None),
    (20919.2, 6000.0, "Section 232 box 2"),  # MI325X-class
    (20800.0, 6000.0, None), (20800.01, 6000.0, "Section 232 box 2"), (20799.99, 6000.0, None),
    (21100.0, 6000.0, None), (21099.99, 6000.0, "Section 232 box 2"), (21100.01, 6000.0, None),
    (20919.2, 5800.0, None), (20919.2, 5800.01, "Section 232 box 2"), (20919.2, 5799.99, None),
    (20919.2, 6200.0, None), (20919.2, 6199.99, "Section 232 box 2"), (20919.2, 6200.01, None),
    (18000.0, 5500.0, None),  # between the boxes
]


@pytest.mark.parametrize("tpp, dram, box", BOX_CASES)
def test_section_232_box_edges(tpp, dram, box):
    v = verdict("us-2026-232", metrics(tpp=tpp, memory_bandwidth_gbs=dram))
    assert v.applicable and v.effect == "duty"
    assert v.met is (box is not None)
    assert (v.paragraphs_met[0] if v.paragraphs_met else None) == box
    assert v.outcome != "controlled"  # a duty, never a control


def test_section_232_is_undecided_without_dram_and_outside_on_a_lower_bound_below_it():
    assert verdict("us-2026-232", metrics(tpp=15832.0)).met is None
    measured = verdict("us-2026-232", metrics("measured", tpp=(15000.0, math.inf), memory_bandwidth_gbs=(4800.0, math.inf)))
    assert measured.met is None  # a lower bound inside a box may be above it: undecided


def test_section_232_rule_data_cites_its_source_and_tags_every_figure():
    rule = RULES["us-2026-232"]
    assert rule.effective_from == datetime.date(2026, 1, 15) and rule.status == "in force"
    assert "14 Jan 2026" in rule.citation and "carmnet" in rule.citation
    assert all("S" in c.tags for p in rule.paragraphs for c in p.clauses)
    text = survey_text()
    if text is not None:
        assert ("(1) TPP > 14,000 and < 17,500 and total DRAM bandwidth > 4,500 and < 5,000 GB/s, or (2) "
                "TPP > 20,800 and < 21,100 and DRAM > 5,800 and < 6,200 GB/s") in text
        assert "25 %** ad valorem on HTSUS 8471.50 / 8471.80 / 8473.30" in text


def test_the_2026_bands_shipment_conditions_are_shown_on_a_part_inside_it():
    """regulations-2026.md C8: the 50 % volume cap and US unit count, no military end use, KYC
    against remote access, and per-shipment US third-party testing, as structured notes."""
    inside = verdict("us-2026-01", metrics(tpp=15832.0, memory_bandwidth_gbs=4800.0))
    assert inside.met is True and len(inside.licence_notes) == 3
    text = " ".join(inside.licence_notes)
    for words in ("50% of the same product shipped to US end users", "how many units have shipped in the US",
                  "military end-use", "remote access", "third-party testing in the United States",
                  "TPP, memory bandwidth, interconnect bandwidth and DRAM capacity"):
        assert words in text, words
    outside = verdict("us-2026-01", metrics(tpp=36000.0, memory_bandwidth_gbs=8000.0))
    assert outside.met is False and outside.licence_notes == ()
    undecided = verdict("us-2026-01", metrics(tpp=15832.0))
    assert undecided.met is None and undecided.licence_notes == ()


@pytest.mark.parametrize("rule_id, identifier", [
    ("us-2025-01-diffusion", "B-337935"), ("us-outbound-850", "P.L. 119-60"), ("us-2023-10", "89 FR 5698"),
    ("us-2023-10", "Ascend 910B, 910C and 910D"), ("us-2026-01", "H.R. 2683"),
])
def test_2025_2026_statuses_are_notes_on_their_regimes(rule_id, identifier):
    """regulations-2026.md R1, R10, R17, R18, R38: instruments with no device or model number are
    status notes on the regime they bear on, each naming the survey's entry."""
    notes = [n.text for n in RULES[rule_id].notes if identifier in n.text]
    assert len(notes) == 1 and "regulations-2026.md R" in notes[0]
    text = survey_text()
    if text is not None:
        assert identifier.replace("Ascend 910B, 910C and 910D", "910D") in text


# --------------------------------------------------------------------------- the 2025-26 bills


@pytest.mark.parametrize("memory, link, label", [
    (1400.0, 0.0, "GAIN (d): DRAM bandwidth"), (1399.99, 0.0, None),
    (100.0, 1100.0, "GAIN (e): interconnect bandwidth"), (100.0, 1099.99, None),
    (1000.0, 700.0, "GAIN (f): DRAM + interconnect"), (1000.0, 699.99, None),
])
def test_the_gain_ai_acts_dram_and_interconnect_clauses(memory, link, label):
    """regulations-2026.md R20: DRAM >= 1,400 GB/s; interconnect >= 1,100 GB/s; their sum >= 1,700."""
    from thresholds.interconnect import dram_plus_interconnect

    ms = metrics(tpp=100.0, performance_density=0.1, memory_bandwidth_gbs=memory, interconnect_bandwidth_gbs=link)
    values = dict(ms.values)
    values["dram_plus_interconnect_gbs"] = dram_plus_interconnect(values, ms.basis)
    v = verdict("us-bill-gain-ai", MetricSet(ms.basis, values))
    assert (v.outcome == "controlled") is (label is not None)
    if label:
        assert label in v.paragraphs_met


def test_interconnect_is_the_chip_to_chip_links_kept_apart_from_the_2022_io_sum():
    from thresholds.load import load_catalog

    parts = {p.id: p for p in load_catalog(PACKAGE_DIR / "devices")}
    a800, _ = declared_metrics(parts["a800-sxm"], "catalog")
    assert a800.get("interconnect_bandwidth_gbs").value == Interval.point(400.0)  # NVLink only
    assert a800.get("io_bidirectional_gbs").value == Interval.point(464.0)  # + PCIe: the 2022 sum
    assert a800.get("dram_plus_interconnect_gbs").value.lo == pytest.approx(2039 + 400)
    assert "R" in a800.get("interconnect_bandwidth_gbs").tags  # the reading is reconstructed
    l4, _ = declared_metrics(parts["l4"], "catalog")
    assert l4.get("interconnect_bandwidth_gbs").value == Interval.point(0.0)  # PCIe only: not counted
    h20 = verdict("us-bill-gain-ai", declared_metrics(parts["h20"], "catalog")[0])
    assert h20.outcome == "controlled" and h20.paragraph == "GAIN (d): DRAM bandwidth"
    assert not RULES["us-bill-gain-ai"].in_force_on(TODAY) and RULES["us-bill-gain-ai"].status == "proposed"


def test_measured_interconnect_is_the_concurrent_all_peers_figure_as_a_lower_bound():
    from thresholds.interconnect import measured_interconnect

    value = measured_interconnect([356.0, 340.0], "measured", "f")
    assert value.value.lo == 356.0 and value.value.hi == math.inf
    assert measured_interconnect([], "measured", "f").missing.startswith("no ok p2p/all_peers record")


def test_the_bills_figures_stand_in_the_reference():
    text = survey_text(required=True)
    assert ("TPP ≥ 4,800; or TPP ≥ 2,400 and PD ≥ 1.6; or TPP ≥ 1,600 and PD ≥ 3.2; or total DRAM bandwidth "
            "≥ 1,400 GB/s; or interconnect bandwidth ≥ 1,100 GB/s; or DRAM + interconnect ≥ 1,700 GB/s") in text
    assert "TPP ≥ 4,800; TPP ≥ 2,400 and PD ≥ 1.6; TPP ≥ 1,600 and PD ≥ 3.2; further (memory-bandwidth) clauses **not seen**" in text
