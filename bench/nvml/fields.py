"""The DeviceInfo fields NVML gives (the probe's NVML half), a MIG instance recorded as the instance,
and the driver version. First answer wins; a refused query becomes the field's reason."""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any, Callable

from bench.nvml.session import NVML, error_text

# nvmlDeviceGetNvLinkVersion returns an nvmlNvlinkVersion_t enum value, not the NVLink generation
# (NVML_NVLINK_VERSION_4_0 == 6 on H100). Decoded here; the raw value is kept as "nvml_version".
_NVLINK_VERSION_NAMES = {1: "1.0", 2: "2.0", 3: "2.2", 4: "3.0", 5: "3.1", 6: "4.0", 7: "5.0", 8: "6.0"}


class FieldReader:
    """First source that answers wins; a field nobody answered keeps every source's reason."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.reasons: dict[str, list[str]] = {}

    def read(self, field: str, fn: Callable[[], Any], prefix: str = "NVML") -> None:
        if field in self.values:
            return
        try:
            value = fn()
        except Exception as exc:
            self.miss(field, f"{prefix}: {error_text(exc)}")
            return
        if value is None:
            self.miss(field, f"{prefix}: no value")
            return
        self.values[field] = value

    def miss(self, field: str, reason: str) -> None:
        reasons = self.reasons.setdefault(field, [])
        if field not in self.values and reason not in reasons:
            reasons.append(reason)

    def unavailable(self) -> dict[str, str]:
        return {f: "; ".join(r) for f, r in self.reasons.items() if f not in self.values}


def nvml_text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def mode_text(pair: Any) -> str:
    """[current, pending] enable state -> 'enabled', or 'enabled (pending: disabled)'."""
    current, pending = (pair[0], pair[1]) if isinstance(pair, (list, tuple)) else (pair, pair)
    name = {0: "disabled", 1: "enabled"}
    text = name.get(current, str(current))
    return text if pending == current else f"{text} (pending: {name.get(pending, str(pending))})"


MIG_PROFILE = re.compile(r"MIG (\d+g\.\d+gb)")


def mig_parent(nvml: ModuleType, h: Any) -> Any | None:
    """The parent GPU's handle when `h` is a MIG device handle, else None."""
    try:
        if not int(nvml.nvmlDeviceIsMigDeviceHandle(h)):
            return None
        return nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(h)
    except Exception:
        return None


def mig_mode_text(nvml: ModuleType, h: Any, parent: Any) -> str:
    """The record's mig_mode for a MIG instance: "enabled; instance <MIG uuid>, profile <1g.10gb>,
    parent <GPU uuid>" (results.files.mig reads it back)."""
    name = nvml_text(nvml.nvmlDeviceGetName(h))
    match = MIG_PROFILE.search(name)
    return (f"enabled; instance {nvml_text(nvml.nvmlDeviceGetUUID(h))}, profile "
            f"{match.group(1) if match else 'unknown'}, parent {nvml_text(nvml.nvmlDeviceGetUUID(parent))}")


def read_mig_instance(fields: FieldReader, nvml: ModuleType, h: Any, parent: Any) -> None:
    """A MIG instance: its own name and UUID and the mig_mode that says so; every other field from
    the parent GPU (the same board: PCI ids, clocks, links, power limit). SM count and memory stay
    torch's (the slice's)."""
    fields.read("name", lambda: nvml_text(nvml.nvmlDeviceGetName(h)))
    fields.read("uuid", lambda: nvml_text(nvml.nvmlDeviceGetUUID(h)))
    fields.read("mig_mode", lambda: mig_mode_text(nvml, h, parent))
    read_device_fields(fields, nvml, parent)  # first answer wins: name, uuid, mig_mode and torch's stay


def read_device_fields(fields: FieldReader, nvml: ModuleType, h: Any) -> None:
    """Every DeviceInfo field NVML gives, into `fields` (first answer wins; errors become reasons)."""
    sm, mem = nvml.NVML_CLOCK_SM, nvml.NVML_CLOCK_MEM
    fields.read("name", lambda: nvml_text(nvml.nvmlDeviceGetName(h)))
    pci = _Once(lambda: nvml.nvmlDeviceGetPciInfo(h))
    fields.read("pci_device_id", lambda: "0x%04x" % ((int(pci().pciDeviceId) >> 16) & 0xFFFF))
    fields.read("pci_bus_id", lambda: nvml_text(pci().busId))
    fields.read("uuid", lambda: nvml_text(nvml.nvmlDeviceGetUUID(h)))
    fields.read("compute_capability",
                lambda: "%d.%d" % tuple(nvml.nvmlDeviceGetCudaComputeCapability(h)))
    fields.read("sm_clock_max_mhz", lambda: int(nvml.nvmlDeviceGetMaxClockInfo(h, sm)))
    fields.read("sm_clock_app_mhz", lambda: int(nvml.nvmlDeviceGetApplicationsClock(h, sm)))
    fields.read("mem_clock_max_mhz", lambda: int(nvml.nvmlDeviceGetMaxClockInfo(h, mem)))
    fields.read("mem_clock_app_mhz", lambda: int(nvml.nvmlDeviceGetApplicationsClock(h, mem)))
    fields.read("memory_total_bytes", lambda: int(nvml.nvmlDeviceGetMemoryInfo(h).total))
    fields.read("memory_bus_width_bits", lambda: int(nvml.nvmlDeviceGetMemoryBusWidth(h)))
    fields.read("ecc_mode", lambda: mode_text(nvml.nvmlDeviceGetEccMode(h)))
    fields.read("mig_mode", lambda: mode_text(nvml.nvmlDeviceGetMigMode(h)))
    fields.read("power_limit_w", lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0)
    fields.read("power_limit_w", lambda: nvml.nvmlDeviceGetPowerManagementLimit(h) / 1000.0)
    fields.read("pcie_gen_current", lambda: int(nvml.nvmlDeviceGetCurrPcieLinkGeneration(h)))
    fields.read("pcie_gen_max", lambda: int(nvml.nvmlDeviceGetMaxPcieLinkGeneration(h)))
    fields.read("pcie_width_current", lambda: int(nvml.nvmlDeviceGetCurrPcieLinkWidth(h)))
    fields.read("pcie_width_max", lambda: int(nvml.nvmlDeviceGetMaxPcieLinkWidth(h)))
    links, why = _nvlinks(nvml, h)
    if links:
        fields.values.setdefault("nvlink", links)
    else:
        fields.miss("nvlink", why)


class _Once:
    """Call a query once and reuse its result (or re-raise its error) for several fields."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._fn, self._done, self._value, self._error = fn, False, None, None

    def __call__(self) -> Any:
        if not self._done:
            self._done = True
            try:
                self._value = self._fn()
            except Exception as exc:
                self._error = exc
        if self._error is not None:
            raise self._error
        return self._value


def _nvlinks(nvml: ModuleType, h: Any) -> tuple[tuple[dict[str, Any], ...], str]:
    """Links that answer nvmlDeviceGetNvLinkState; if none does, () and the first link's reason."""
    links: list[dict[str, Any]] = []
    first_error: str | None = None
    for link in range(int(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18))):
        try:
            state = nvml.nvmlDeviceGetNvLinkState(h, link)
        except Exception as exc:
            first_error = first_error or error_text(exc)
            continue
        try:
            raw_version: int | None = int(nvml.nvmlDeviceGetNvLinkVersion(h, link))
        except Exception:
            raw_version = None
        name = _NVLINK_VERSION_NAMES.get(raw_version) if raw_version is not None else None
        links.append({
            "link": link,
            "state": "active" if state == getattr(nvml, "NVML_FEATURE_ENABLED", 1) else "inactive",
            "version": int(name.split(".")[0]) if name else None,
            "version_name": name,
            "nvml_version": raw_version,
        })
    return tuple(links), f"NVML: {first_error or 'no NVLink reported'}"


def driver_version() -> str | None:
    try:
        return nvml_text(NVML.module().nvmlSystemGetDriverVersion())
    except Exception:
        return None
