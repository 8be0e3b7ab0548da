"""Metrics on the peak-derived basis: from a probe's DeviceInfo and the cited tables in
devices/derivation.toml (ops per clock per SM, NVLink per-link and PCIe per-lane rates, memory
transfers per clock)."""

from __future__ import annotations

import math

from results.files.mig import mig_instance
from results.files.schema import DeviceInfo
from thresholds.interconnect import DRAM_PLUS_INTERCONNECT, INTERCONNECT, dram_plus_interconnect, not_derived
from thresholds.metrics import datacenter_metric, fmt_interval, tpp_from_tops
from thresholds.model import (
    PRECISION_BITS, DerivationTables, DeviceFacts, Interval, MetricSet, MetricValue, Part,
)

DERIVED = "peak-derived"
# Derived TPP further than this from the declared figure is called out as not applicable.
AGREEMENT_PCT = 10.0


def derived_metrics(
    device: DeviceInfo, tables: DerivationTables, part: Part | None, declared: MetricSet | None
) -> tuple[MetricSet, DeviceFacts]:
    values: dict[str, MetricValue] = {}
    notes: list[str] = []
    facts = DeviceFacts()
    arch = tables.architectures.get(device.compute_capability or "")
    missing = _missing_for_tpp(device, arch is not None)
    if missing:
        values["tpp"] = MetricValue("tpp", None, DERIVED, missing=missing)
    else:
        clock_hz = device.sm_clock_max_mhz * 1e6
        tops = {
            p: Interval.point(device.sm_count * clock_hz * ops / 1e12)
            for p, ops in arch.ops_per_clock_per_sm.items()
        }
        result = tpp_from_tops(tops)
        winner = _reference_precision(result.winners, declared)
        note, agrees = _compare_with_declared(result.tpp.lo, winner, device, arch, declared)
        ops = int(arch.ops_per_clock_per_sm[winner])
        source = (f"{device.sm_count} SMs x {device.sm_clock_max_mhz:,} MHz (max SM clock, NVML) x "
                  f"{ops:,} {winner} op/clk/SM = {tops[winner].lo:,.1f} TOPS x {PRECISION_BITS[winner]} "
                  f"(compute capability {arch.compute_capability} table; ties: {', '.join(result.winners)})")
        inputs = {"sm_count": device.sm_count, "sm_clock_max_mhz": device.sm_clock_max_mhz,
                  "compute_capability": arch.compute_capability, "precisions": list(result.winners),
                  "ops_per_clock_per_sm": dict(arch.ops_per_clock_per_sm), "table_source": arch.source,
                  "derived_tpp": round(result.tpp.lo, 4)}
        if note:
            notes.append(note)
        if not agrees:
            # A part rate-limited below its architecture (H20, H800 FP64): the architecture table
            # does not describe it, and a verdict on that number would be wrong, not just loose.
            values["tpp"] = MetricValue(
                "tpp", None, DERIVED, tags=arch.tags, inputs=inputs, note=note,
                missing=(f"derived TPP {result.tpp.lo:,.0f} ({source}) disagrees with the declared figure "
                         f"by more than {AGREEMENT_PCT:g}%: not used"))
            values["performance_density"] = MetricValue(
                "performance_density", None, DERIVED, missing="derived TPP not used (see TPP)")
        else:
            values["tpp"] = MetricValue("tpp", result.tpp, DERIVED, source=source, tags=arch.tags,
                                        inputs=inputs, note=note)
        facts = DeviceFacts(
            sm_count=device.sm_count, clock_mhz=float(device.sm_clock_max_mhz),
            clock_source="max SM clock (NVML)", peak_ops_per_s=result.ops_per_s,
            peak_ops_precision=result.ops_precision,
        )
        area = part.die_area_mm2 if part else None
        if not agrees:
            pass  # performance density set above: unknown
        elif area is not None:
            values["performance_density"] = MetricValue(
                "performance_density", result.tpp.divided_by(area.value), DERIVED,
                source=f"derived TPP / {fmt_interval(area.value)} mm2 declared die area ({area.source})",
                tags=tuple(dict.fromkeys(arch.tags + area.tags)),
            )
        else:
            values["performance_density"] = MetricValue(
                "performance_density", None, DERIVED,
                missing="no applicable die area (not a catalog part, or unpublished)")
    if "performance_density" not in values:
        values["performance_density"] = MetricValue(
            "performance_density", None, DERIVED, missing="derived TPP unknown")
    values["io_bidirectional_gbs"] = _io(device, tables)
    values[INTERCONNECT] = not_derived(DERIVED)
    values["memory_bandwidth_gbs"] = _memory(device, tables)
    values[DRAM_PLUS_INTERCONNECT] = dram_plus_interconnect(values, DERIVED)
    values["datacenter"] = datacenter_metric(part, DERIVED, "catalog")
    return MetricSet(DERIVED, values, tuple(notes)), facts


def _missing_for_tpp(device: DeviceInfo, have_arch: bool) -> str | None:
    if device.backend != "cuda":
        return f"no peak derivation for backend {device.backend!r}"
    for name in ("compute_capability", "sm_count", "sm_clock_max_mhz"):
        if getattr(device, name) is None:
            why = device.unavailable.get(name, "not recorded")
            return f"{name} unknown ({why})"
    for name in ("sm_count", "sm_clock_max_mhz"):
        if not getattr(device, name) > 0:
            return f"{name} {getattr(device, name)!r} in the result file is not a usable value"
    if not have_arch:
        return f"no ops-per-clock table for compute capability {device.compute_capability}"
    return None


def _reference_precision(winners: tuple[str, ...], declared: MetricSet | None) -> str:
    """The winning precision to explain the derivation with: one the datasheet also wins with, the
    narrowest first (fp8 before fp16 before tf32)."""
    ordered = sorted(winners, key=lambda p: PRECISION_BITS[p])
    if declared is not None:
        declared_winners = declared.get("tpp").inputs.get("precisions", ())
        for p in ordered:
            if p in declared_winners:
                return p
    return ordered[0]


def _compare_with_declared(tpp, winner, device, arch, declared) -> tuple[str | None, bool]:
    """(how far the derived TPP is from the declared one and why, whether they agree within
    AGREEMENT_PCT). Without a declared figure there is nothing to disagree with."""
    if declared is None or not declared.get("tpp").known:
        return None, True
    slice_ = mig_instance(device)
    if slice_ is not None:
        return (f"derived TPP {tpp:,.0f} is that of a MIG instance (profile {slice_.profile} of "
                f"{slice_.parent_uuid}: {device.sm_count} SMs), not of the whole part; the part's "
                "figure is the declared one", False)
    declared_tpp = declared.get("tpp").value
    ref = declared_tpp.central
    diff = (tpp - ref) / ref * 100
    ops = arch.ops_per_clock_per_sm[winner]
    implied_mhz = ref / (PRECISION_BITS[winner] * device.sm_count * ops) * 1e12 / 1e6
    text = (f"derived TPP {tpp:,.0f} is {diff:+.1f}% from the declared {ref:,.0f}: it uses the max SM "
            f"clock {device.sm_clock_max_mhz:,} MHz, while the declared {winner} rate "
            f"({ref / PRECISION_BITS[winner]:,.1f} TOPS) implies {implied_mhz:,.0f} MHz "
            f"({device.sm_count} SMs x {int(ops):,} op/clk/SM)")
    if abs(diff) > AGREEMENT_PCT:
        text += (f"; the difference exceeds {AGREEMENT_PCT:g}%: the part is probably rate-limited or "
                 f"cut down below its architecture (e.g. China-specific parts), so the derived basis "
                 f"does not describe it and its TPP is not used; use the declared figure")
        return text, False
    return text + "; datasheets quote tensor rates at a lower boost clock than the maximum", True


def _io(device: DeviceInfo, tables: DerivationTables) -> MetricValue:
    pcie = None
    pcie_text = None
    if device.pcie_gen_max is not None and device.pcie_width_max is not None and device.pcie_width_max > 0:
        lane = tables.pcie_lane_gbs.rates.get(str(device.pcie_gen_max))
        if lane is not None:
            pcie = lane * device.pcie_width_max
            pcie_text = f"PCIe Gen{device.pcie_gen_max} x{device.pcie_width_max} = {pcie:,.0f}"
    if pcie is None:
        return MetricValue("io_bidirectional_gbs", None, DERIVED,
                           missing="PCIe generation/width unknown or no per-lane rate for it")
    links = device.nvlink
    tags = tables.pcie_lane_gbs.tags
    if links is None:
        why = device.unavailable.get("nvlink", "")
        if "not supported" in why.lower() or device.backend != "cuda":
            return MetricValue("io_bidirectional_gbs", Interval.point(pcie), DERIVED,
                               source=f"{pcie_text} (no NVLink: {why or 'none'})", tags=tags)
        return MetricValue(
            "io_bidirectional_gbs", Interval(pcie, math.inf), DERIVED,
            source=f"{pcie_text}; NVLink unreadable ({why or 'unknown'}): at least the PCIe rate",
            tags=tags, note="lower bound: NVLink links could not be read",
        )
    active = [l for l in links if l.get("state") == "active"]
    total, unknown = 0.0, []
    for link in active:
        rate = tables.nvlink_link_gbs.rates.get(str(link.get("version")))
        if rate is None:
            unknown.append(str(link.get("version")))
        else:
            total += rate
    versions = sorted({str(l.get("version")) for l in active})
    nv_text = f"{len(active)} active NVLink{'/'.join(versions) and ' v' + '/'.join(versions)} links = {total:,.0f}"
    if unknown:
        return MetricValue(
            "io_bidirectional_gbs", Interval(pcie + total, math.inf), DERIVED,
            source=f"{pcie_text} + {nv_text}; no per-link rate for NVLink version(s) {', '.join(unknown)}",
            tags=tuple(dict.fromkeys(tags + tables.nvlink_link_gbs.tags)), note="lower bound: unknown NVLink version",
        )
    return MetricValue(
        "io_bidirectional_gbs", Interval.point(pcie + total), DERIVED,
        source=f"{nv_text} + {pcie_text} (per-link and per-lane rates: devices/derivation.toml)",
        tags=tuple(dict.fromkeys(tags + tables.nvlink_link_gbs.tags)),
        inputs={"nvlink_active_links": len(active), "pcie_gen": device.pcie_gen_max,
                "pcie_width": device.pcie_width_max},
    )


def _memory(device: DeviceInfo, tables: DerivationTables) -> MetricValue:
    if device.mem_clock_max_mhz is None or device.memory_bus_width_bits is None:
        name = "mem_clock_max_mhz" if device.mem_clock_max_mhz is None else "memory_bus_width_bits"
        return MetricValue("memory_bandwidth_gbs", None, DERIVED,
                           missing=f"{name} unknown ({device.unavailable.get(name, 'not recorded')})")
    if not (device.mem_clock_max_mhz > 0 and device.memory_bus_width_bits > 0):
        return MetricValue("memory_bandwidth_gbs", None, DERIVED,
                           missing="memory clock or bus width in the result file is not a usable value")
    gbs = device.mem_clock_max_mhz * 1e6 * device.memory_bus_width_bits / 8 * tables.memory_transfers_per_clock / 1e9
    return MetricValue(
        "memory_bandwidth_gbs", Interval.point(gbs), DERIVED,
        source=(f"{device.mem_clock_max_mhz:,} MHz x {device.memory_bus_width_bits:,} bit / 8 x "
                f"{tables.memory_transfers_per_clock:g} transfers/clock"),
        tags=tables.memory_tags,
    )
