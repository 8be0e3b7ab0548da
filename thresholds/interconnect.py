"""Interconnect bandwidth, and DRAM + interconnect: the two metrics of the GAIN AI Act's and the AI
OVERWATCH Act's "advanced integrated circuit" (../shared/reference/regulations-2026.md R20, R21),
kept apart from the 2022 rule's aggregate I/O (io_bidirectional_gbs, which adds the host link).

The bills' own definition of "interconnect bandwidth" was not seen (the survey quotes only the
thresholds), so the reading here is marked reconstructed [R]: the chip-to-chip links a part
declares (NVLink and NVLink bridges, AMD Infinity Fabric / xGMI, a part's integrated Ethernet
scale-up ports), bidirectional, without the host PCIe link. Measured: this GPU with every peer at
once (p2p/all_peers), a lower bound of the peak. Derived: not computed.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

from thresholds.model import Interval, MetricValue, Part

INTERCONNECT = "interconnect_bandwidth_gbs"
DRAM_PLUS_INTERCONNECT = "dram_plus_interconnect_gbs"
CHIP_TO_CHIP_LINKS = ("nvlink", "nvlink_bridge", "infinity_fabric", "neuronlink", "ici", "hccs", "chip_to_chip", "ethernet")
DEFINITION_NOTE = ("reconstructed [R]: the bills' definition was not seen; chip-to-chip links "
                   f"({', '.join(CHIP_TO_CHIP_LINKS)}), bidirectional, host PCIe not counted")


def declared_interconnect(part: Part, basis: str, origin: str) -> MetricValue:
    if not part.io_gbs:
        return MetricValue(INTERCONNECT, None, basis, missing="link rates not published")
    links = {k: f for k, f in part.io_gbs.items() if k in CHIP_TO_CHIP_LINKS}
    if not links:
        return MetricValue(INTERCONNECT, Interval.point(0.0), basis, tags=("R",),
                           source=f"no chip-to-chip link declared; PCIe not counted ({origin})", note=DEFINITION_NOTE)
    total = Interval(0.0, 0.0)
    for fig in links.values():
        total = total.plus(fig.value)
    tags = tuple(dict.fromkeys([t for f in links.values() for t in f.tags] + ["R"]))
    return MetricValue(INTERCONNECT, total, basis, tags=tags,
                       source=" + ".join(f"{k} {_fmt(f.value)}" for k, f in links.items()) + f" ({origin})",
                       inputs={k: f.value.central for k, f in links.items()}, note=DEFINITION_NOTE)


def measured_interconnect(all_peers_gbs: Iterable[float], basis: str, origin: str) -> MetricValue:
    rates = list(all_peers_gbs)
    if not rates:
        return MetricValue(INTERCONNECT, None, basis,
                           missing="no ok p2p/all_peers record (every peer at once; needs 2+ GPUs)")
    return MetricValue(INTERCONNECT, Interval(max(rates), math.inf), basis, tags=("R",),
                       source=f"p2p/all_peers: this GPU with every peer at once ({origin}); a lower bound",
                       note=DEFINITION_NOTE)


def not_derived(basis: str) -> MetricValue:
    return MetricValue(INTERCONNECT, None, basis, missing="not derived: see the declared or measured basis")


def dram_plus_interconnect(values: Mapping[str, MetricValue], basis: str) -> MetricValue:
    memory, link = values.get("memory_bandwidth_gbs"), values.get(INTERCONNECT)
    if memory is None or link is None or not memory.known or not link.known:
        why = "DRAM bandwidth unknown" if memory is None or not memory.known else "interconnect bandwidth unknown"
        return MetricValue(DRAM_PLUS_INTERCONNECT, None, basis, missing=why)
    tags = tuple(dict.fromkeys((*memory.tags, *link.tags)))
    return MetricValue(DRAM_PLUS_INTERCONNECT, memory.value.plus(link.value), basis, tags=tags,
                       source="DRAM bandwidth + interconnect bandwidth", note=DEFINITION_NOTE)


def _fmt(value: Interval) -> str:
    return f"{value.lo:,.0f}" if value.is_point else f"{value.lo:,.0f}-{value.hi:,.0f}"
