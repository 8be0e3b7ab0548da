"""Every catalog part under every regime, against the reference's classifications and figures
(../shared/reference/regulations.md §7.2-7.3)."""

from __future__ import annotations

import datetime

import pytest

from helpers_reference import survey_text

from thresholds.check import check_subject
from thresholds.load import PACKAGE_DIR, load_catalog, load_rules
from thresholds.subjects import catalog_subject

TODAY = datetime.date(2026, 11, 26)
RULES = load_rules(PACKAGE_DIR / "rules")
DEVICE_REGIMES = ("us-2022-10", "us-2023-10", "us-2026-01")
A, A1, A2, B1, B2 = "3A090.a", "3A090.a.1", "3A090.a.2", "3A090.b.1", "3A090.b.2"
NOT, IND = "not_controlled", "indeterminate"

# id: (2022 outcome/paragraph, 2023 outcome/paragraph, 2023 exemption, inside the 2026 band)
EXPECTED = {
    "a100-sxm": (A, A1, None, True),
    "a100-sxm-40gb": (A, A1, None, True),
    "a100-pcie": (A, A1, None, True),
    "a100-pcie-40gb": (A, A1, None, True),
    "a800-sxm": (NOT, A1, None, True),        # NVLink 400 + PCIe 64 = 464 < 600 in 2022; a.1 from 2023
    "a800-pcie": (NOT, A1, None, True),
    "a800-pcie-40gb": (NOT, A1, None, True),
    "h100-sxm": (A, A1, None, True),
    "h100-pcie": (A, A1, None, True),
    "h800-sxm": (NOT, A1, None, True),        # 400 + 128 = 528 < 600
    "h800-pcie": (NOT, A1, None, True),
    "h20": (NOT, NOT, None, True),            # below every 3A090 band
    "l20": (NOT, NOT, None, True),            # PD 3.14 just below b.2's 3.2
    "l40s": (NOT, A1, None, True),            # 2022: I/O 64
    "l4": (NOT, A2, None, True),              # density
    "rtx-4090": (NOT, A1, None, True),        # non-datacenter a.1: NAC
    "rtx-4090-d": (NOT, NOT, "Note 2 to 3A090", True),
    "h200": (A, A1, None, True),              # inside the 2026 band
    "b200": (A, A1, None, False),             # outside: TPP 36,000, DRAM 7.7-8 TB/s
    "mi250x": (A, A1, None, True),
    "mi300x": (A, A1, None, True),            # 20,919 < 21,000
    "mi308x": (IND, IND, None, None),         # specs unpublished
    "gaudi2": (A, A1, None, True),
    "gaudi3": (A, A1, None, False),           # TPP 29,360 >= 21,000
    "ascend-910b": (IND, A2, None, True),     # FP16 280-400: TPP 4,480-6,400 straddles 4,800; PD >= 6.7
    # parts added for fleets (issue 10)
    "v100-sxm2": (NOT, NOT, None, True),      # TPP 2,000: below 2,400 and PD 2.45 below 3.2
    "v100-pcie": (NOT, NOT, None, True),
    "t4": (NOT, NOT, None, True),             # TPP 1,040
    "a10": (NOT, NOT, None, True),            # TPP 2,000, PD 3.18 just below b.2's 3.2
    "a30": (NOT, IND, None, None),            # tensor rates not sourced: TPP unknown (2022: I/O 64 < 600 decides)
    "a40": (NOT, B2, None, True),             # TPP 2,395.2 < 2,400 (not b.1), PD 3.81 -> b.2
    "l2": (NOT, NOT, None, True),             # gap fill: TPP 1,545.6 via TF32 < 1,600 (regulations-2026.md §2.5)
    "l40": (NOT, B1, None, True),             # TPP 2,896.8, PD 4.76
    "rtx-6000-ada": (NOT, A1, None, True),    # gap fill: TPP 5,828 via FP8 728.5 [I] (a.1, NAC: not datacenter); PCIe 64
    "h100-nvl": (A, A1, None, True),
    "h200-nvl": (A, A1, None, True),
    "gh200": (IND, IND, None, None),          # figures not sourced
    "b100": (A, A1, None, False),             # DRAM 8,000 >= 6,500
    "b300": (A, A1, None, False),             # TPP 56,000 from FP4
    "rtx-5090": (NOT, A1, None, True),        # TPP 6,704 >= 4,800 (non-datacenter a.1: NAC)
    "rtx-5090-d": (NOT, NOT, "Note 2 to 3A090", True),     # cut to TPP 4,750
    "rtx-5090-d-v2": (NOT, NOT, "Note 2 to 3A090", True),  # and DRAM 1,792 -> 1,344
    "mi210": (NOT, B1, None, True),           # TPP 2,896, PD 3.67
    "mi325x": (A, A1, None, True),            # named in the 2026 rule: inside the band
    "mi355x": (A, A1, None, False),
    "gaudi2-hl225b": (NOT, A1, None, True),   # 21 ports: 525 + 64 = 589 < 600 in 2022
    "trainium2": (A, A1, None, False),        # TPP 21,344 with TF32 = 32 bits: just outside the band
    "trainium3": (A, A1, None, False),        # 21,472 likewise (regulations-2026.md §0 item 5)
    "gb200": (A, A1, None, False),            # TPP 40,000 at every precision from FP4 to TF32
    "gb300": (A, A1, None, False),            # TPP 60,000 from FP4
    "rtx-pro-6000": (NOT, A1, None, True),    # TPP 8,000; PCIe only: I/O 128 < 600 in 2022
    "mi350x": (IND, A1, None, False),         # 55,350 via FP6; Infinity Fabric rate not found
    "ascend-910c": (A, A1, None, True),       # TPP 12,800, PD 9.6; HCCS 784 >= 600
    "ascend-950pr": (A, A1, None, True),      # TPP 8,000
    "ascend-950dt": (A, A1, None, True),
    "tpu-v5e": (NOT, IND, None, True),        # TPP 3,152: 3A090.b needs the unpublished die area
    "tpu-v5p": (IND, A1, None, True),         # 2022: I/O not published (ICI direction not stated)
    "tpu-v6e": (A, A1, None, True),           # TPP 14,688; ICI 800 >= 600
    "tpu7x": (A, A1, None, False),            # TPP 36,912; DRAM 7,200-7,400
    # no figure found: undecided everywhere, never guessed (regulations-2026.md §2 "n/f")
    "b30a": (IND, IND, None, None), "h20e": (IND, IND, None, None), "ascend-910d": (IND, IND, None, None),
    "cambricon-590": (IND, IND, None, None), "hygon-dcu": (IND, IND, None, None),
    "kunlunxin-p800": (IND, IND, None, None),
    "t-head-ppu": (IND, IND, None, None),      # interconnect 700 and 96 GB only: no compute figure
    # the rest of the survey's list (regulations-2026.md §2.1-2.4), ranges where its sources disagree
    "rtx-pro-6000d": (IND, IND, None, True),  # TPP 2,324 or 6,638 (§3.4): straddles 2,400 and 4,800
    "rubin-r200": (A, A1, None, False),       # TPP 100,000-200,000 (dense or sparse NVFP4)
    "mi455x": (A, A1, None, False),           # 80,000-160,000; HBM4 19,600 GB/s
    "ascend-960": (A, A1, None, None),        # 16,000-32,000 straddles 21,000; bandwidth n/f
    "ascend-970": (A, A1, None, False),       # 32,000; 14,400 GB/s
    "maia-200": (A, A1, None, False),         # at least 40,000 (published lower bounds)
}

# id: (TPP, PD, 2022 I/O, DRAM) as in the reference's §7.2 table (ranges as (lo, hi); None = n/p)
FIGURES = {
    "a100-sxm": (4992, 6.04, 664, 2039), "a800-sxm": (4992, 6.04, 464, 2039),
    "h100-sxm": (15832, 19.45, 1028, 3350), "h100-pcie": (12104, 14.87, 728, 2000),
    "h800-sxm": (15832, 19.45, 528, 3350), "h800-pcie": (12104, 14.87, 528, 2000),
    "h20": (2368, 2.91, 1028, 4000), "l40s": (5864, 9.64, 64, 864), "l4": (1940, 6.59, 64, 300),
    "rtx-4090": (5284.8, 8.69, 64, 1008), "rtx-4090-d": (4707.2, 7.74, 64, 1008),
    "h200": (15832, 19.45, 1028, 4800), "b200": (36000, (22.11, 22.5), 1928, (7700, 8000)),
    "mi250x": (6128, 3.88, 864, 3277), "mi300x": (20919.2, (8.72, 20.57), 1024, 5300),
    "gaudi2": ((6920, 7200), None, 664, 2460), "gaudi3": ((26848, 29360), None, 1328, 3700),
    "ascend-910b": ((4480, 6400), (6.73, 9.62), None, (800, 1600)),
    "l20": (1913.6, 3.14, 64, 864),  # reference 1,912 from FP8; FP32 59.8 x 32 = 1,913.6 is the max
}


def test_the_google_tpus_stand_in_the_reference_and_give_its_tpp():
    """regulations-2026.md §2.4 (Google's docs, tagged P): TPP 3,152 / 7,344 / 14,688 / 36,912."""

    from thresholds.metrics import declared_metrics

    parts = {p.id: p for p in load_catalog(PACKAGE_DIR / "devices")}
    for part_id, tpp in (("tpu-v5e", 3152), ("tpu-v5p", 7344), ("tpu-v6e", 14688), ("tpu7x", 36912)):
        assert declared_metrics(parts[part_id], "catalog")[0].get("tpp").value.lo == pytest.approx(tpp), part_id
    text = survey_text()
    if text is not None:
        for row in ("| **Google TPU v5e** | BF16 **197**; INT8 **393** | n/f | 16 GB HBM2, **819 GB/s** | ICI **400** bidirectional per chip (4 ports) | **3,152** |",
                    "| **TPU v5p** | BF16 **459**; FP8 459 (no FP8 speed-up); INT8 n/f | n/f | 95 GB HBM2e, **2,765 GB/s** |",
                    "| **TPU v6e (Trillium)** | BF16 **918**; INT8 **1,836** | n/f | 32 GB, **1,638 GB/s** | ICI **800** bidirectional; host PCIe Gen5 | **14,688** |",
                    "| **TPU7x (Ironwood)** | BF16 **2,307**; FP8 **4,614** | n/f | 192 GiB HBM3e; bandwidth 7.37 TB/s (S; 7.2 and 7.4 also printed) | ICI 1,200 bidirectional (4 links, 9.6 Tbps) (S) | **36,912** |"):
            assert row in text, row


@pytest.mark.parametrize("part_id", ["b30a", "h20e", "ascend-910d", "cambricon-590", "hygon-dcu", "kunlunxin-p800"])
def test_parts_with_no_figure_found_are_undecided_with_the_reason(part_id):
    part = next(p for p in load_catalog(PACKAGE_DIR / "devices") if p.id == part_id)
    assert not part.dense_tops and part.memory_bandwidth_gbs is None and part.gaps
    assert any("not found" in gap for gap in part.gaps)
    checked = check_subject(catalog_subject(part), RULES, TODAY, 10.0)
    device = [v for v in checked.verdicts if v.applicable and v.rule_set in DEVICE_REGIMES + ("us-2026-232",)]
    assert device and all(v.outcome == "indeterminate" for v in device)
    assert all("unknown" in v.reason or "undecided" in v.reason for v in device)


def test_catalog_has_every_reference_part():
    ids = {p.id for p in load_catalog(PACKAGE_DIR / "devices")}
    assert set(EXPECTED) == ids
    assert len(ids) >= 45


def _checked(part_id: str):
    part = next(p for p in load_catalog(PACKAGE_DIR / "devices") if p.id == part_id)
    return check_subject(catalog_subject(part), RULES, TODAY, 10.0)


@pytest.mark.parametrize("part_id", sorted(EXPECTED))
def test_classification_under_every_regime(part_id):
    y2022, y2023, exemption, band = EXPECTED[part_id]
    verdicts = {v.rule_set: v for v in _checked(part_id).verdicts}
    assert set(verdicts) == {r.id for r in RULES}
    for want, got in ((y2022, verdicts["us-2022-10"]), (y2023, verdicts["us-2023-10"])):
        if want in (NOT, IND):
            assert (got.outcome, got.paragraph) == (want, None), got.reason
        else:
            assert (got.outcome, got.paragraph) == ("controlled", want), got.reason
    assert verdicts["us-2023-10"].exemption == exemption
    assert verdicts["us-2026-01"].met is band
    # 3A090.c covers HBM stacks, never a GPU package
    assert verdicts["us-2024-12"].applicable is False and verdicts["us-2024-12"].outcome == NOT
    for rule_id in ("us-eo14110", "us-2024-09-nprm", "us-2025-01-diffusion", "eu-ai-act-51", "us-outbound-850"):
        assert verdicts[rule_id].applicable is False and verdicts[rule_id].outcome == NOT
    for v in verdicts.values():
        assert v.outcome in ("controlled", "not_controlled", "indeterminate")
        assert v.basis == "peak-declared" and v.reason


def _close(got, want, rel=0.002):
    if want is None:
        return got is None
    if got is None:
        return False
    if isinstance(want, tuple):
        return abs(got.lo - want[0]) <= rel * want[0] + 0.006 and abs(got.hi - want[1]) <= rel * want[1] + 0.006
    return got.is_point and abs(got.lo - want) <= rel * want + 0.006


@pytest.mark.parametrize("part_id", sorted(FIGURES))
def test_figures_match_the_reference_table(part_id):
    tpp, pd, io, dram = FIGURES[part_id]
    m = catalog_subject(next(p for p in load_catalog(PACKAGE_DIR / "devices") if p.id == part_id)).primary
    assert _close(m.get("tpp").value, tpp), m.get("tpp").value
    assert _close(m.get("performance_density").value, pd), m.get("performance_density").value
    assert _close(m.get("io_bidirectional_gbs").value, io), m.get("io_bidirectional_gbs").value
    assert _close(m.get("memory_bandwidth_gbs").value, dram), m.get("memory_bandwidth_gbs").value


def test_licence_notes_follow_the_datacenter_flag():
    rtx = {v.rule_set: v for v in _checked("rtx-4090").verdicts}["us-2023-10"]
    assert any("NAC: yes for 3A090.a if the item is not designed" in n for n in rtx.licence_notes)
    h100 = {v.rule_set: v for v in _checked("h100-sxm").verdicts}["us-2023-10"]
    assert not any("NAC: yes" in n for n in h100.licence_notes)
    assert any("D:1, D:4 or D:5" in n for n in h100.licence_notes)


def test_near_limits_in_the_catalog():
    by = {v.rule_set: v for v in _checked("l20").verdicts}
    assert by["us-2023-10"].near_limit and by["us-2023-10"].nearest.threshold == 3.2  # PD 3.14 vs 3.2
    by = {v.rule_set: v for v in _checked("mi300x").verdicts}
    assert by["us-2026-01"].near_limit and by["us-2026-01"].nearest.threshold == 21000
    by = {v.rule_set: v for v in _checked("rtx-4090-d").verdicts}
    assert round(by["us-2023-10"].nearest.margin_pct, 1) == -1.9  # 4,707.2 vs 4,800


def test_ranges_decide_only_when_the_whole_range_agrees():
    by = {v.rule_set: v for v in _checked("ascend-910b").verdicts}
    v = by["us-2023-10"]
    assert "3A090.a.1" in v.paragraphs_undecided  # 4,480-6,400 straddles 4,800
    assert v.paragraph == "3A090.a.2"  # but PD 6.73-9.62 >= 5.92 with TPP >= 1,600 decides
    assert by["us-2022-10"].outcome == IND  # I/O unpublished


def test_fp6_counts_six_bits_and_mi355x_runs_it_at_the_fp4_rate():
    """regulations-2026.md C4: CDNA 4 runs MXFP6 at the MXFP4 rate; with fp6 = 6 bits the MI355X's
    TPP is 10,066.3 x 6 = 60,398 (it was 40,266 from FP4/FP8/FP16). Classification unchanged."""

    from thresholds.load import PACKAGE_DIR, load_catalog
    from thresholds.metrics import declared_metrics
    from thresholds.model import PRECISION_BITS

    assert PRECISION_BITS["fp6"] == 6
    part = next(p for p in load_catalog(PACKAGE_DIR / "devices") if p.id == "mi355x")
    tpp = declared_metrics(part, "catalog")[0].get("tpp")
    assert tpp.value.lo == pytest.approx(10066.3 * 6) and tpp.inputs["precisions"] == ["fp6"]
    text = survey_text()
    if text is not None:
        assert "CDNA 4 runs **MXFP6 at the MXFP4 rate**" in text and "With FP6 = 10,066.3: **TPP 60,398**" in text


def test_the_tf32_convention_is_explicit_switchable_and_shown_where_it_decides():
    """regulations-2026.md §0 item 5: Trainium2 (667 TFLOPS for BF16/FP16/TF32) is TPP 21,344 with
    TF32 as 32 bits and 10,672 at the 16-bit rate; Trainium3 21,472 and 20,136 (FP8): each on
    either side of the 2026 band's 21,000. Both outcomes are shown, whichever convention leads."""
    from thresholds.check import run_check

    for part_id, tpp32, tpp16 in (("trainium2", 21344.0, 10672.0), ("trainium3", 21472.0, 20136.0)):
        (default,) = run_check([part_id], "us-2026-01", TODAY, 10.0)
        (band,) = default.verdicts
        assert default.subject.primary.get("tpp").value.lo == pytest.approx(tpp32)
        assert band.met is False and any("TF32 convention decides this" in n and "inside" in n for n in band.notes)
        (switched,) = run_check([part_id], "us-2026-01", TODAY, 10.0, tf32_bits=16)
        (band16,) = switched.verdicts
        assert switched.subject.primary.get("tpp").value.lo == pytest.approx(tpp16)
        assert band16.met is True and any("counted as 32 bits" in n and "outside" in n for n in band16.notes)
    (h100,) = run_check(["h100-sxm"], "us-2026-01", TODAY, 10.0)  # TPP from FP8: no note
    assert not any("TF32" in n for v in h100.verdicts for n in v.notes)


def test_trainium_figures_stand_in_the_reference():
    text = survey_text(required=True)
    assert ("| **AWS Trainium2** | FP8 **1,299**; BF16/FP16/**TF32 667**; FP32 181 | n/f | 96 GiB, **2,900 GB/s** | "
            "NeuronLink-v3 **1,280** per chip | **21,344 with TF32 = 32 bits; 10,672 without** |") in text
    assert ("MXFP8 = MXFP4 **2,517**; BF16/FP16/**TF32 671**; FP32 183 | n/f | 144 GiB HBM3E, **4,900 GB/s** | "
            "NeuronLink-v4 **2,560** per device (AWS docs copy) or 2,000 (awesomeagents) | "
            "**21,472 with TF32 = 32 bits; 20,136 (FP8) without** |") in text


def test_conflicts_are_resolved_with_both_sources_named():
    """regulations-2026.md §3.1 C1-C3 (B300 FP4, HBM, TF32: ranges naming both), C5 (L20's 59.8 is
    TF32 tensor, not FP32) and the C6 gap fill (B200 FP32 75)."""

    from thresholds.metrics import declared_metrics
    from thresholds.model import Interval

    parts = {p.id: p for p in load_catalog(PACKAGE_DIR / "devices")}
    b300 = parts["b300"]
    assert b300.dense_tops["fp4"].value == Interval(13125.0, 14000.0)
    assert "glennklockwood" in b300.dense_tops["fp4"].source and "tracker" in b300.dense_tops["fp4"].source
    assert b300.dense_tops["tf32"].value == Interval(1100.0, 1125.0)
    assert b300.memory_bandwidth_gbs.value == Interval(7700.0, 8000.0)
    assert declared_metrics(b300, "catalog")[0].get("tpp").value == Interval(52500.0, 56000.0)
    l20 = parts["l20"]
    assert "fp32" not in l20.dense_tops and l20.dense_tops["tf32"].value == Interval.point(59.8)
    assert declared_metrics(l20, "catalog")[0].get("tpp").value.lo == pytest.approx(1913.6)
    assert parts["b200"].dense_tops["fp32"].value == Interval.point(75.0)
    text = survey_text()
    if text is not None:
        for words in ("**13,125**: HGX B300 datasheet 105 PF dense ÷ 8", "**8,000 GB/s** (glennklockwood",
                      "**1,125** (HGX B300 18 PF sparse TF32 ÷ 8 ÷ 2; glennklockwood)",
                      "gives **59.8 as \"TF32 Tensor\"**", "published: **75 TFLOPS** (HGX B200)"):
            assert words in text, words


@pytest.mark.parametrize("part_id, tpp, row", [
    ("gb200", 40000, "| **GB200** (Blackwell in GB200 NVL72, up to 1,200 W) | FP4 10,000; FP8/FP6 5,000; INT8 5,000; FP16/BF16 2,500; TF32 1,250; FP32 80; FP64 40"),
    ("gb300", 60000, "| **GB300** (Blackwell Ultra in GB300 NVL72, 1,400 W) | FP4 15,000; FP8 5,000; INT8 165; FP16/BF16 2,500; TF32 1,250; FP32 80;"),
    ("rtx-pro-6000", 8000, "96 GB GDDR7, 512-bit, 28 Gbps, **1,792 GB/s** | PCIe Gen5 x16 (128); no NVLink | **8,000** (F"),
    ("mi350x", 55350, "| **≈55,350 via FP6** (≈36,900 via FP4) |"),
    ("ascend-910c", 12800, "| FP16 **800** (INT8 n/f) | 2 × 910B compute dies; catalog's 910B die 665.6 → 1,331 mm² [I]; IO dies n/f | HBM2e, **3,200 GB/s**; capacity n/f | **784** (HCCS) | **12,800**; PD ≈ 9.6 [I] |"),
    ("ascend-950pr", 8000, "| FP8/MXFP8/HiF8 **1,000**; MXFP4 **2,000** | n/f | Huawei HBM \"HiBL 1.0\", 128 GB, **1,600 GB/s** | **2,000** (2.5 × 910C) | **8,000** |"),
    ("ascend-950dt", 8000, "\"HiZQ 2.0\", 144 GB, **4,000 GB/s** | 2,000 | **8,000** |"),
    ("rtx-pro-6000d", 2324, "The Register (Sep 2025, per reference §5.2): \"≈581 TFLOPS FP4\" → TPP 2,324 [S]; 156 SMs / 19,968 cores"),
    ("rubin-r200", 100000, "| NVLink 6 **3,600**; NVLink-C2C 1,800 (Vera) | 100,000 if the 50 PF is sparse, 200,000 if dense [R] |"),
    ("mi455x", 80000, "| FP4 40 PF, FP8 20 PF (AMD projection; dense/sparse not stated) | n/f | 432 GB HBM4, **19,600 GB/s** | scale-up 3,600"),
    ("ascend-960", 16000, "| FP8 2,000; FP4 4,000 (reportify) — besthub says FP8 4,000 / FP4 8,000 | n/f | 288 GB; bandwidth n/f | 2,200 | **16,000** (32,000 per besthub) |"),
    ("ascend-970", 32000, "| FP8 4,000; FP4 8,000 | n/f | 288 GB, 14,400 GB/s | 4,000 | **32,000** |"),
    ("maia-200", 40000, "| FP4 > 10,000; FP8 > 5,000 | n/f | 216 GB HBM3e, **7,000 GB/s**; 272 MB SRAM | scale-up 2,800 bidirectional (Ethernet) | **≥ 40,000** |"),
    ("rtx-6000-ada", 5828, "FP8 2,048 × 142 × 2.505 GHz = 728.5 → **TPP ≈ 5,828** [I], consistent with FP32 256 × 142 × 2.505 = 91.06"),
    ("l2", 1545.6, "FP8/INT8 **193**; FP16/BF16 **96.5**; TF32 **48.3**; 24 GB GDDR6, **300 GB/s**; PCIe. TPP 1,544 (1,545.6 via TF32)"),
])
def test_new_parts_give_the_surveys_tpp_and_stand_in_it(part_id, tpp, row):
    from thresholds.metrics import declared_metrics

    part = next(p for p in load_catalog(PACKAGE_DIR / "devices") if p.id == part_id)
    assert declared_metrics(part, "catalog")[0].get("tpp").value.lo == pytest.approx(tpp, rel=1e-4)
    text = survey_text()
    if text is not None:
        assert row in text, row
