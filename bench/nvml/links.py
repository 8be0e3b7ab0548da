"""The path between two GPUs as NVML sees it: NVLink P2P status, else the PCIe topology level."""

from __future__ import annotations

from typing import Any

from bench.nvml.session import error_text

# nvidia-smi topo's legend for nvmlDeviceGetTopologyCommonAncestor levels.
TOPOLOGY = {
    0: "same board",
    10: "PIX: through one PCIe switch",
    20: "PXB: through several PCIe switches",
    30: "PHB: through a PCIe host bridge",
    40: "NODE: across host bridges in one NUMA node",
    50: "SYS: across NUMA nodes",
}


def link_path(nvml: Any, handle_a: Any, handle_b: Any) -> tuple[str, str | None]:
    """("nvlink" | "pcie (<topology level>)" | "unknown", reason) from an initialised pynvml."""
    reasons = []
    try:
        status = nvml.nvmlDeviceGetP2PStatus(handle_a, handle_b, nvml.NVML_P2P_CAPS_INDEX_NVLINK)
        if status == nvml.NVML_P2P_STATUS_OK:
            return "nvlink", None
    except Exception as exc:  # noqa: BLE001 - NVML "Not Supported" is a recorded value
        reasons.append(f"NVLink P2P status: {error_text(exc)}")
    try:
        level = int(nvml.nvmlDeviceGetTopologyCommonAncestor(handle_a, handle_b))
    except Exception as exc:  # noqa: BLE001
        reasons.append(f"topology: {error_text(exc)}")
        return "unknown", "; ".join(reasons)
    return f"pcie ({TOPOLOGY.get(level, f'level {level}')})", None
