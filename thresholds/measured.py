"""Metrics on the measured basis: from the ok records of a result file, for one device.

- TPP: the achieved matmul rate x bit length, max over precisions (max rate per precision over the
  reference and sweep shapes), with its ratio to the peak of the same precision.
- memory bandwidth: max over the memory variants (copy/read/write/triad).
- I/O: the p2p `aggregate_io` record (peers + host link) when present; otherwise the host link's
  `bidirectional_pinned` rate: the whole I/O when the device reports no NVLink, else only a lower
  bound (so an I/O threshold it does not reach stays indeterminate, never false).
"""

from __future__ import annotations

import math
from typing import Iterable

from results.files.schema import DeviceInfo, Measurement, RunResult
from results.analysis.stats import BELOW_CACHE_FLAG
from thresholds.interconnect import DRAM_PLUS_INTERCONNECT, INTERCONNECT, dram_plus_interconnect, measured_interconnect
from thresholds.datasheet import above_peak_text, datasheet_peak_per_s, is_above_peak
from thresholds.metrics import datacenter_metric, fmt_interval, tpp_from_tops, tpp_source
from thresholds.model import PRECISION_BITS, DeviceFacts, Interval, MetricSet, MetricValue, Part

MEASURED = "measured"
CAVEAT = ("measured basis: the rules are written on theoretical peak figures and a measured value is "
          "only a lower bound of the peak, so a measured value below a threshold never by itself makes "
          "a part uncontrolled (those clauses stay undecided)")


def _ok(result: RunResult, device: DeviceInfo, benchmark: str) -> Iterable[Measurement]:
    single = len(result.devices) == 1
    for m in result.measurements:
        if m.benchmark != benchmark or m.status != "ok" or m.rate is None:
            continue
        if m.host is not None and device.host is not None and m.host != device.host:
            continue  # a multi-host file: same index, another host's GPU
        if m.device_index == device.index or (m.device_index is None and single):
            yield m


def measured_rates(result: RunResult, device: DeviceInfo) -> dict[str, float]:
    """Max achieved matmul rate (flop/s or op/s) per precision for this device."""
    best: dict[str, float] = {}
    for m in _ok(result, device, "matmul"):
        if m.precision in PRECISION_BITS:
            best[m.precision] = max(best.get(m.precision, 0.0), float(m.rate))
    return best


def measured_metrics(
    result: RunResult, device: DeviceInfo, part: Part | None, peak: MetricSet | None, origin: str
) -> tuple[MetricSet | None, DeviceFacts]:
    """None when the file holds no ok matmul, memory, hostlink or p2p record for the device."""
    values: dict[str, MetricValue] = {}
    warnings: list[str] = []
    facts = DeviceFacts()
    rates = measured_rates(result, device)
    tops = {p: Interval.point(r / 1e12) for p, r in rates.items()}
    tpp = tpp_from_tops(tops)
    if tpp is None:
        values["tpp"] = MetricValue("tpp", None, MEASURED, missing="no ok matmul record")
        values["performance_density"] = MetricValue(
            "performance_density", None, MEASURED, missing="measured TPP unknown")
    else:
        ratio_text, ratios = _ratios(tops, part, peak)
        above = [p for p, r in ratios.items() if is_above_peak(r)]
        warnings.extend(above_peak_text(p, ratios[p], part.id) for p in above)
        values["tpp"] = MetricValue(
            "tpp", tpp.tpp, MEASURED,
            source=f"achieved matmul {tpp_source(tpp, tops)} ({origin}){ratio_text}",
            inputs={"precisions": list(tpp.winners), "ratio_to_peak": ratios, "above_peak": above},
            note=CAVEAT,
        )
        area = part.die_area_mm2 if part else None
        values["performance_density"] = (
            MetricValue("performance_density", tpp.tpp.divided_by(area.value), MEASURED,
                        source=f"measured TPP / {fmt_interval(area.value)} mm2 declared die area",
                        tags=area.tags, note=CAVEAT)
            if area is not None
            else MetricValue("performance_density", None, MEASURED,
                             missing="no applicable die area (not a catalog part, or unpublished)")
        )
        facts = DeviceFacts(measured_ops_per_s=tpp.ops_per_s.lo, measured_ops_precision=tpp.ops_precision)
    mem = [m for m in _ok(result, device, "memory")]
    if mem:
        top = max(mem, key=lambda m: m.rate)
        peak_per_s = datasheet_peak_per_s(top, part) if part is not None else None
        inputs: dict = {}
        ratio_text = ""
        if peak_per_s:
            ratio = round(top.rate / peak_per_s, 4)
            above = is_above_peak(ratio)
            inputs = {"ratio_to_peak": ratio, "above_peak": above}
            ratio_text = f"; {ratio * 100:.0f}% of declared" + (" (ABOVE PEAK)" if above else "")
            if above:
                warnings.append(above_peak_text(f"memory/{top.variant}", ratio, part.id))
        if BELOW_CACHE_FLAG in top.flags:
            ratio_text += "; buffers below 8x the cache: may be a cache figure, not DRAM"
            warnings.append(f"memory/{top.variant}: buffers below 8x the last-level cache "
                            "(the mode's cap or the total memory held them): the rate may include cache hits")
        values["memory_bandwidth_gbs"] = MetricValue(
            "memory_bandwidth_gbs", Interval.point(top.rate / 1e9), MEASURED,
            source=f"memory/{top.variant}, best of {len(mem)} ok record(s) ({origin}){ratio_text}",
            inputs=inputs, note=CAVEAT,
        )
    else:
        values["memory_bandwidth_gbs"] = MetricValue(
            "memory_bandwidth_gbs", None, MEASURED, missing="no ok memory record")
    values["io_bidirectional_gbs"] = _io(result, device, origin)
    values[INTERCONNECT] = measured_interconnect(
        (m.rate / 1e9 for m in _ok(result, device, "p2p") if m.variant == "all_peers"), MEASURED, origin)
    values[DRAM_PLUS_INTERCONNECT] = dram_plus_interconnect(values, MEASURED)
    values["datacenter"] = datacenter_metric(part, MEASURED, "catalog")
    soak = soak_notes(result, device)
    if not soak and not any(v.known for k, v in values.items() if k != "datacenter"):
        return None, facts
    return MetricSet(MEASURED, values, (CAVEAT, *warnings, *soak)), facts


def soak_notes(result: RunResult, device: DeviceInfo) -> list[str]:
    """Measured-burst and measured-sustained TPP side by side, per soaked precision."""
    out = []
    for m in _ok(result, device, "soak"):
        burst, steady = m.extra.get("burst_rate"), m.extra.get("steady_rate")
        bits = PRECISION_BITS.get(m.precision or "")
        if not (isinstance(burst, float) and isinstance(steady, float) and bits):
            continue
        ratio = m.extra.get("sustained_ratio")
        seconds = sum(w.get("seconds", 0.0) for w in m.extra.get("windows", ()) if isinstance(w, dict))
        out.append(f"soak {m.precision}: measured-burst TPP {burst / 1e12 * bits:,.4g}, measured-sustained TPP "
                   f"{steady / 1e12 * bits:,.4g} (sustained/burst {ratio:.3f} over {seconds:.0f} s"
                   + ("; interrupted" if "interrupted" in m.flags else "") + ")")
    return out


def _ratios(tops: dict[str, Interval], part: Part | None, peak: MetricSet | None) -> tuple[str, dict]:
    """Measured rate / peak rate of the same precision (declared when the part is known)."""
    if part is None or not part.dense_tops:
        return "", {}
    ratios = {}
    for p, measured in tops.items():
        fig = part.dense_tops.get(p)
        if fig is not None and isinstance(fig.value, Interval) and fig.value.central > 0:
            ratios[p] = round(measured.lo / fig.value.central, 4)
    if not ratios:
        return "", {}
    text = ", ".join(f"{p} {r * 100:.0f}%" + (" (ABOVE PEAK)" if is_above_peak(r) else "")
                     for p, r in ratios.items())
    return f"; of declared peak: {text}", ratios


def _io(result: RunResult, device: DeviceInfo, origin: str) -> MetricValue:
    agg = [m for m in _ok(result, device, "p2p") if m.variant == "aggregate_io"]
    if agg:
        top = max(agg, key=lambda m: m.rate)
        imported = top.extra.get("imported") if isinstance(top.extra, dict) else None
        if "host_link_missing" in top.flags and imported:
            return MetricValue(
                "io_bidirectional_gbs", Interval(top.rate / 1e9, math.inf), MEASURED,
                source=(f"p2p/aggregate_io ({origin}), imported from {imported.get('tool')} output: the largest "
                        "of its measured peer figures, host link not added; a lower bound"),
                note="lower bound: peer links without the host link",
            )
        if "lower_bound" in top.flags:
            why = top.extra.get("lower_bound_reason") if isinstance(top.extra, dict) else None
            return MetricValue(
                "io_bidirectional_gbs", Interval(top.rate / 1e9, math.inf), MEASURED,
                source=f"p2p/aggregate_io ({origin}): {why or 'a lower bound'}",
                note="lower bound: no concurrent all-peers figure, or links that may be shared",
            )
        if "host_link_missing" in top.flags:
            return MetricValue(
                "io_bidirectional_gbs", Interval(top.rate / 1e9, math.inf), MEASURED,
                source=(f"p2p/aggregate_io ({origin}): measured peer links only, the host link was not "
                        "measured in this run (add the hostlink suite); a lower bound"),
                note="lower bound: peer links without the host link",
            )
        return MetricValue(
            "io_bidirectional_gbs", Interval.point(top.rate / 1e9), MEASURED,
            source=(f"p2p/aggregate_io ({origin}): every peer at once (p2p/all_peers) + host link, "
                    "bidirectional"),
            note=CAVEAT,
        )
    host = [m for m in _ok(result, device, "hostlink") if m.variant == "bidirectional_pinned"]
    if not host:
        return MetricValue("io_bidirectional_gbs", None, MEASURED,
                           missing="no ok p2p aggregate_io or hostlink bidirectional_pinned record")
    rate = max(m.rate for m in host) / 1e9
    active = [l for l in (device.nvlink or ()) if l.get("state") == "active"]
    no_nvlink = device.backend != "cuda" or (device.nvlink is not None and not active) or (
        device.nvlink is None and "not supported" in device.unavailable.get("nvlink", "").lower())
    if no_nvlink:
        return MetricValue(
            "io_bidirectional_gbs", Interval.point(rate), MEASURED,
            source=f"hostlink/bidirectional_pinned ({origin}); no active NVLink, so the host link is all the I/O",
            note=CAVEAT,
        )
    return MetricValue(
        "io_bidirectional_gbs", Interval(rate, math.inf), MEASURED,
        source=(f"hostlink/bidirectional_pinned ({origin}): host link only, peer links not measured "
                f"(run the p2p suite); a lower bound"),
        note="lower bound: covers the host link only",
    )
