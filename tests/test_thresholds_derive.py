"""The peak-derived tables (thresholds/devices/derivation.toml) against the catalog's datasheet
figures, and the derived I/O and memory arithmetic from DeviceInfo fields."""

from __future__ import annotations

import math

import pytest

from results.files.schema import DeviceInfo
from thresholds.model import PRECISION_BITS
from thresholds.derived import derived_metrics
from thresholds.load import PACKAGE_DIR, load_catalog, load_derivation

TABLES = load_derivation(PACKAGE_DIR / "devices")
PARTS = {p.id: p for p in load_catalog(PACKAGE_DIR / "devices")}
CHECKS = [(a.compute_capability, c, p) for a in TABLES.architectures.values() for c in a.checks for p in c.precisions]


@pytest.mark.parametrize("cc, check, precision", CHECKS,
                         ids=[f"{cc}-{c.part}-{p}" for cc, c, p in CHECKS])
def test_ops_per_clock_reproduce_the_datasheet(cc, check, precision):
    """SMs x clock x dense op/clk/SM = the catalog's dense TOPS, within 1%."""
    ops = TABLES.architectures[cc].ops_per_clock_per_sm[precision]
    derived = check.sm_count * check.clock_mhz * 1e6 * ops / 1e12
    declared = PARTS[check.part].dense_tops[precision].value.central
    assert derived == pytest.approx(declared, rel=0.01)


def test_every_architecture_is_cross_checked():
    for arch in TABLES.architectures.values():
        assert arch.checks, arch.compute_capability
        checked = {p for c in arch.checks for p in c.precisions}
        ops = arch.ops_per_clock_per_sm
        top = max(ops[p] * PRECISION_BITS[p] for p in ops)
        deciding = {p for p in ops if ops[p] * PRECISION_BITS[p] == top}  # the derived TPP's precisions
        assert len(checked) >= 2 and deciding & checked, arch.compute_capability
        # the check this test made before 12.0 (FP32 and FP4 only) joined: fp16 and int8 wherever tabled
        assert {"fp16", "int8"} & set(ops) <= checked, arch.compute_capability


def _device(**kw) -> DeviceInfo:
    base = dict(index=0, backend="cuda", name="test", compute_capability="8.0", sm_count=108,
                sm_clock_max_mhz=1410, pcie_gen_max=4, pcie_width_max=16)
    base.update(kw)
    return DeviceInfo(**base)


def test_a100_derived_matches_declared_exactly_at_its_boost_clock():
    ms, facts = derived_metrics(_device(), TABLES, PARTS["a100-sxm"], None)
    assert ms.get("tpp").value.lo == pytest.approx(4992, rel=0.001)
    assert facts.sm_count == 108 and facts.clock_mhz == 1410
    assert ms.get("performance_density").value.lo == pytest.approx(4992 / 826, rel=0.001)


@pytest.mark.parametrize("nvlink, unavailable, lo, hi", [
    (tuple({"link": i, "state": "active", "version": 3} for i in range(12)), {}, 664, 664),
    (tuple({"link": i, "state": "active" if i < 6 else "inactive", "version": 3} for i in range(12)), {}, 364, 364),
    (None, {"nvlink": "NVML: Not Supported"}, 64, 64),              # no NVLink on this part
    (None, {"nvlink": "NVML: Unknown Error"}, 64, math.inf),        # unreadable: only a lower bound
    (({"link": 0, "state": "active", "version": 9},), {}, 64 + 0, math.inf),  # unknown version
])
def test_derived_io(nvlink, unavailable, lo, hi):
    ms, _ = derived_metrics(_device(nvlink=nvlink, unavailable=unavailable), TABLES, None, None)
    value = ms.get("io_bidirectional_gbs").value
    assert (value.lo, value.hi) == (pytest.approx(lo), hi if math.isinf(hi) else pytest.approx(hi))


def test_derived_memory_bandwidth():
    ms, _ = derived_metrics(_device(mem_clock_max_mhz=1593, memory_bus_width_bits=5120), TABLES, None, None)
    assert ms.get("memory_bandwidth_gbs").value.lo == pytest.approx(2039, rel=0.001)
    ms, _ = derived_metrics(_device(unavailable={"mem_clock_max_mhz": "NVML: Not Supported"}), TABLES, None, None)
    assert "Not Supported" in ms.get("memory_bandwidth_gbs").missing


def test_missing_probe_fields_are_named():
    ms, _ = derived_metrics(_device(sm_count=None, unavailable={"sm_count": "torch: no property"}), TABLES, None, None)
    assert ms.get("tpp").value is None and "sm_count unknown (torch: no property)" in ms.get("tpp").missing
    ms, _ = derived_metrics(DeviceInfo(index=0, backend="cpu", name="cpu"), TABLES, None, None)
    assert "backend 'cpu'" in ms.get("tpp").missing


# A host of each new compute capability gets a peak-derived TPP from its own probe (issue 10):
# (part, compute capability, SMs, max SM clock MHz, derived TPP = SMs x clock x ops x bits).
NEW_CAPABILITIES = [
    ("v100-pcie", "7.0", 80, 1370, 80 * 1370e6 * 1024 * 16 / 1e12),   # 1,795.6 vs declared 1,792
    ("t4", "7.5", 40, 1590, 40 * 1590e6 * 1024 * 16 / 1e12),          # 1,042.0 vs 1,040
    ("a40", "8.6", 84, 1740, 84 * 1740e6 * 1024 * 16 / 1e12),         # 2,394.6 vs 2,395.2
    ("b200", "10.0", 148, 1856, 148 * 1856e6 * 16384 * 8 / 1e12),     # 36,004 vs 36,000
    ("rtx-5090", "12.0", 170, 2407, 170 * 2407e6 * 4096 * 4 / 1e12),  # 6,704.2 vs 6,704
]


@pytest.mark.parametrize("part_id, cc, sms, mhz, want", NEW_CAPABILITIES)
def test_new_capabilities_derive_a_tpp_that_agrees_with_the_datasheet(part_id, cc, sms, mhz, want):
    from thresholds.derived import derived_metrics
    from thresholds.metrics import declared_metrics

    part = PARTS[part_id]
    declared, _ = declared_metrics(part, "catalog")
    device = _device(compute_capability=cc, sm_count=sms, sm_clock_max_mhz=mhz)
    ms, facts = derived_metrics(device, TABLES, part, declared)
    tpp = ms.get("tpp")
    assert tpp.known and tpp.value.lo == pytest.approx(want, rel=1e-6), tpp.missing
    assert tpp.value.lo == pytest.approx(declared.get("tpp").value.central, rel=0.01)
    assert facts.sm_count == sms


def test_a_mig_instance_is_not_called_a_cut_down_part():
    """Issue 18, defect 10: a 1g slice's derived TPP (16 of 132 SMs) is ~12 % of the declared one,
    which read "probably rate-limited or cut down ... (e.g. China-specific parts)"."""
    from thresholds.derived import derived_metrics
    from thresholds.metrics import declared_metrics

    part = PARTS["h100-sxm"]
    declared, _ = declared_metrics(part, "catalog")
    slice_ = _device(compute_capability="9.0", sm_count=16, sm_clock_max_mhz=1980,
                     mig_mode="enabled; instance MIG-abc, profile 1g.10gb, parent GPU-def")
    ms, _ = derived_metrics(slice_, TABLES, part, declared)
    text = " ".join(filter(None, [ms.get("tpp").note or "", *ms.notes, ms.get("tpp").missing or ""]))
    assert "MIG instance" in text and "1g.10gb" in text
    assert "cut down" not in text and "China-specific" not in text
    whole = _device(compute_capability="9.0", sm_count=16, sm_clock_max_mhz=1980)  # not MIG: as before
    ms, _ = derived_metrics(whole, TABLES, part, declared)
    assert "cut down" in " ".join(filter(None, [ms.get("tpp").note or "", *ms.notes, ms.get("tpp").missing or ""]))
