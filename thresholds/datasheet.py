"""How far each measurement got towards its part's datasheet peak ("what number should I expect?").

For a device matched to a catalog part: matmul rate / dense peak of that precision, device-memory
rate / peak memory bandwidth, host-link rate / declared PCIe rate (half of it per direction; the
whole of it for the bidirectional case). Anything else, or an unmatched device, has no fraction.

A fraction above ABOVE_PEAK_FRACTION is `above_peak`: a warning, not a success. It is computed
here, at read time from the catalog, so old and imported files get it too.
"""

from __future__ import annotations

from dataclasses import dataclass

from results.files.mig import mig_instance
from results.files.schema import DeviceInfo, Measurement, RunResult
from thresholds.errors import DataFileError
from thresholds.load import load_catalog
from thresholds.match import match_part
from thresholds.model import Figure, Part

_TERA = 1e12
_GIGA = 1e9

# A measured rate more than 5 % above the matched part's datasheet peak cannot be a dense kernel
# on that part at its datasheet clock (timing noise and boost clocks stay within a few percent).
ABOVE_PEAK_FRACTION = 1.05
ABOVE_PEAK_CAUSES = (
    "a misidentified part (the catalog match is wrong)",
    "a sparse or fast-accumulate kernel (the datasheet's dense rate does not describe it)",
    "a wrong counting convention (work per call)",
    "a clock above the datasheet's",
)


def is_above_peak(fraction: float | None) -> bool:
    return fraction is not None and fraction > ABOVE_PEAK_FRACTION


def above_peak_text(what: str, fraction: float, part_id: str) -> str:
    """'above_peak: bf16 289% of the h100-sxm datasheet peak (> 105%): likely ...'."""
    return (f"above_peak: {what} measured {fraction * 100:.0f}% of the {part_id} datasheet peak "
            f"(> {ABOVE_PEAK_FRACTION * 100:.0f}%), not a success; likely causes: "
            + "; ".join(ABOVE_PEAK_CAUSES))


@dataclass(frozen=True)
class PeakFraction:
    fraction: float  # achieved median rate / datasheet peak
    part_id: str

    @property
    def above_peak(self) -> bool:
        return is_above_peak(self.fraction)


def host_scope(m: Measurement) -> bool:
    """A record about the host, not one GPU: no device index, or a host-wide total
    (`hostlink/h2d_pinned_all_gpus_total`, the sum over the host's GPUs). One GPU's datasheet says
    nothing about it."""
    return m.device_index is None or m.variant.endswith("_total")


def datasheet_peak_per_s(m: Measurement, part: Part) -> float | None:
    """The part's declared peak for what `m` measures, in m's rate unit (flop/s, op/s, byte/s);
    None for a host-scope record (a host-wide sum compared with one GPU's link read ~690 %)."""
    if host_scope(m):
        return None
    if m.benchmark == "matmul" and m.precision:
        return _central(part.dense_tops.get(m.precision), _TERA)
    if m.benchmark == "memory":
        return _central(part.memory_bandwidth_gbs, _GIGA)
    if m.benchmark == "hostlink":
        pcie = _central(part.io_gbs.get("pcie"), _GIGA)  # declared bidirectional
        if pcie is None:
            return None
        return pcie if m.variant.startswith("bidirectional") else pcie / 2
    return None


def peak_fractions(result: RunResult) -> dict[int, PeakFraction]:
    """Measurement position in `result.measurements` -> its fraction of the datasheet peak.
    Empty when the catalog cannot be read (a summary must never fail for want of it)."""
    try:
        catalog = load_catalog()
    except DataFileError:
        return {}
    parts = {id(d): match_part(d, catalog)[0] for d in result.devices}
    fractions: dict[int, PeakFraction] = {}
    for position, m in enumerate(result.measurements):
        if m.status != "ok" or not m.rate:
            continue
        device = _device_of(m, result.devices)
        part = parts.get(id(device)) if device is not None else None
        if part is None:
            continue
        peak = datasheet_peak_per_s(m, part)
        slice_ = mig_instance(device)
        if slice_ is not None:  # a MIG instance: its share of the part's compute, nothing else
            share = slice_.compute_share if m.benchmark == "matmul" else None
            peak = peak * share if peak and share else None
        if peak:
            fractions[position] = PeakFraction(m.rate / peak, part.id)
    return fractions


def _device_of(m: Measurement, devices: tuple[DeviceInfo, ...]) -> DeviceInfo | None:
    for d in devices:
        if d.index == (m.device_index or 0) and (m.host is None or d.host is None or d.host == m.host):
            return d
    return None


def _central(figure: Figure | None, scale: float) -> float | None:
    if figure is None or isinstance(figure.value, bool) or figure.value.central <= 0:
        return None
    return figure.value.central * scale
