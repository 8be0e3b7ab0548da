"""A GPU's identity as a test lab records it (the lab procedure's first item): serial number, board
part number, VBIOS and InfoROM versions, UUID, PCI device and subsystem ids, driver, ECC and MIG
modes, power limits (default and enforced), max and application clocks, total memory.

Every field is there: a query NVML refuses as not supported reads "Not Supported" (as nvidia-smi
prints it); any other refusal reads "unavailable: <NVML's text>". Nothing raises."""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from bench.nvml.fields import mode_text, nvml_text
from bench.nvml.session import error_text

NOT_SUPPORTED = "Not Supported"
IDENTITY_FIELDS = (
    "serial", "board_part_number", "vbios_version", "inforom_image_version", "uuid",
    "pci_device_id", "pci_subsystem_id", "pci_bus_id", "driver_version", "ecc_mode", "mig_mode",
    "power_limit_default_w", "power_limit_enforced_w", "sm_clock_max_mhz", "mem_clock_max_mhz",
    "sm_clock_app_mhz", "mem_clock_app_mhz", "memory_total_bytes",
)


def _ask(fn: Callable[[], Any]) -> Any:
    try:
        value = fn()
    except Exception as exc:
        text = error_text(exc)
        return NOT_SUPPORTED if text == NOT_SUPPORTED else f"unavailable: {text}"
    return NOT_SUPPORTED if value is None else value


def read_identity(nvml: ModuleType, h: Any) -> dict[str, Any]:
    """The identity of the GPU behind NVML handle `h` (of the whole GPU, for a MIG instance pass
    its parent's handle: a MIG slice has no serial of its own)."""
    sm, mem = nvml.NVML_CLOCK_SM, nvml.NVML_CLOCK_MEM
    pci = _ask(lambda: nvml.nvmlDeviceGetPciInfo(h))
    pci_ok = not isinstance(pci, str)
    identity = {
        "serial": _ask(lambda: nvml_text(nvml.nvmlDeviceGetSerial(h))),
        "board_part_number": _ask(lambda: nvml_text(nvml.nvmlDeviceGetBoardPartNumber(h))),
        "vbios_version": _ask(lambda: nvml_text(nvml.nvmlDeviceGetVbiosVersion(h))),
        "inforom_image_version": _ask(lambda: nvml_text(nvml.nvmlDeviceGetInforomImageVersion(h))),
        "uuid": _ask(lambda: nvml_text(nvml.nvmlDeviceGetUUID(h))),
        # pciDeviceId is device << 16 | vendor; pciSubSystemId is subsystem device << 16 | subsystem vendor
        "pci_device_id": "0x%08x" % int(pci.pciDeviceId) if pci_ok else pci,
        "pci_subsystem_id": _ask(lambda: "0x%08x" % int(pci.pciSubSystemId)) if pci_ok else pci,
        "pci_bus_id": nvml_text(pci.busId) if pci_ok else pci,
        "driver_version": _ask(lambda: nvml_text(nvml.nvmlSystemGetDriverVersion())),
        "ecc_mode": _ask(lambda: mode_text(nvml.nvmlDeviceGetEccMode(h))),
        "mig_mode": _ask(lambda: mode_text(nvml.nvmlDeviceGetMigMode(h))),
        "power_limit_default_w": _ask(lambda: nvml.nvmlDeviceGetPowerManagementDefaultLimit(h) / 1000.0),
        "power_limit_enforced_w": _ask(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0),
        "sm_clock_max_mhz": _ask(lambda: int(nvml.nvmlDeviceGetMaxClockInfo(h, sm))),
        "mem_clock_max_mhz": _ask(lambda: int(nvml.nvmlDeviceGetMaxClockInfo(h, mem))),
        "sm_clock_app_mhz": _ask(lambda: int(nvml.nvmlDeviceGetApplicationsClock(h, sm))),
        "mem_clock_app_mhz": _ask(lambda: int(nvml.nvmlDeviceGetApplicationsClock(h, mem))),
        "memory_total_bytes": _ask(lambda: int(nvml.nvmlDeviceGetMemoryInfo(h).total)),
        "source": "NVML",
    }
    return identity


def unavailable_identity(reason: str) -> dict[str, Any]:
    """Every identity field when NVML itself is unavailable (no driver, no pynvml)."""
    return {**{name: f"unavailable: {reason}" for name in IDENTITY_FIELDS}, "source": "none"}
