"""All NVML reading: the one place that imports pynvml and calls it. A lazily initialised NVML
session shared by the probe, the telemetry sampler, host-link placement and peer-link paths; the
mapping from torch's `cuda:N` to NVML's device handle; the device fields the probe records; the
per-sample readers of telemetry; CPU affinity and NUMA node; the NVLink/PCIe path between two GPUs.

NVML numbers GPUs in PCI order and ignores CUDA_VISIBLE_DEVICES, so the handle of torch's
`cuda:N` is found by the device's UUID (or PCI bus id) from torch, then by CUDA_VISIBLE_DEVICES,
and only then by the bare index.
"""

from __future__ import annotations

import atexit
import os
import re
import threading
from types import ModuleType
from typing import Any, Callable

class NvmlUnavailable(RuntimeError):
    """NVML cannot be used at all; str() is the reason, e.g. 'NVML unavailable: ...'."""


class NvmlSession:
    """The one place that imports pynvml: initialises NVML once, resolves device handles, shuts down.

    A failure to import or initialise is remembered until `shutdown()`, so a run without NVML pays
    for the attempt once. Thread-safe; NVML calls themselves are thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._module: ModuleType | None = None
        self._failure: str | None = None
        self._handles: dict[int, Any] = {}
        self._atexit_registered = False

    def module(self) -> ModuleType:
        """The initialised pynvml module; raises NvmlUnavailable with the reason otherwise."""
        with self._lock:
            if self._module is not None:
                return self._module
            if self._failure is not None:
                raise NvmlUnavailable(self._failure)
            try:
                import pynvml  # noqa: PLC0415 - lazy on purpose: NVML is optional
            except Exception as exc:  # ImportError, or a broken install
                self._failure = f"NVML unavailable: pynvml not importable ({exc})"
                raise NvmlUnavailable(self._failure) from None
            try:
                pynvml.nvmlInit()
            except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
                self._failure = f"NVML unavailable: nvmlInit failed: {error_text(exc)}"
                raise NvmlUnavailable(self._failure) from None
            self._module = pynvml
            if not self._atexit_registered:
                atexit.register(self.shutdown)
                self._atexit_registered = True
            return pynvml

    def handle(self, cuda_index: int, torch_props: Any = None) -> Any:
        """NVML handle of torch's `cuda:<cuda_index>` (cached); raises NvmlUnavailable."""
        nvml = self.module()
        with self._lock:
            if cuda_index in self._handles:
                return self._handles[cuda_index]
        if torch_props is None:
            torch_props, _ = torch_cuda_props(cuda_index)
        try:
            handle = resolve_handle(nvml, cuda_index, torch_props)
        except Exception as exc:
            raise NvmlUnavailable(
                f"NVML: no device handle for cuda:{cuda_index}: {error_text(exc)}"
            ) from None
        with self._lock:
            self._handles[cuda_index] = handle
        return handle

    def shutdown(self) -> None:
        """nvmlShutdown if initialised; forgets cached handles and failures. Never raises."""
        with self._lock:
            module, self._module = self._module, None
            self._failure = None
            self._handles.clear()
        if module is not None:
            try:
                module.nvmlShutdown()
            except Exception:
                pass


NVML = NvmlSession()


def nvml_shutdown() -> None:
    """Release NVML now (the session also registers this at exit; a multi-rank process that leaves
    with os._exit skips it, and the process exit frees NVML)."""
    NVML.shutdown()


def error_text(exc: BaseException) -> str:
    """An exception's message; NVMLError's str() is its NVML text, e.g. 'Not Supported'."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    if hasattr(exc, "value") and text:
        return text  # NVMLError and its subclasses
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def resolve_handle(nvml: ModuleType, cuda_index: int, torch_props: Any) -> Any:
    """NVML's handle of torch's cuda:<index>, by identity only: torch's UUID, then its PCI bus id,
    then a UUID named in CUDA_VISIBLE_DEVICES. A CUDA index is used as an NVML index only under
    CUDA_DEVICE_ORDER=PCI_BUS_ID: otherwise CUDA numbers GPUs fastest first and NVML in PCI order,
    so the guess could attach another GPU's telemetry and CPU affinity. Raises when nothing maps."""
    uuid = torch_uuid(torch_props)
    # Under MIG, CUDA's UUID is the compute instance's: NVML knows it as MIG-<uuid>, not GPU-<uuid>
    # (the PCI lookup below would return the parent GPU, pairing its name with the slice's SMs).
    mig = f"MIG-{uuid[4:]}" if uuid is not None and uuid.startswith("GPU-") else None
    lookups = ((uuid, "nvmlDeviceGetHandleByUUID"), (mig, "nvmlDeviceGetHandleByUUID"),
               (torch_pci_bus_id(torch_props), "nvmlDeviceGetHandleByPciBusId"))
    for key, function in lookups:
        if key is not None:
            try:
                return getattr(nvml, function)(key)
            except Exception:
                pass
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    entry = visible[cuda_index] if cuda_index < len(visible) else None
    if entry is not None and entry.startswith(("GPU-", "MIG-")):
        return nvml.nvmlDeviceGetHandleByUUID(entry)
    if os.environ.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID":  # CUDA order is PCI order: indices agree
        return nvml.nvmlDeviceGetHandleByIndex(int(entry) if entry is not None and entry.isdigit() else cuda_index)
    raise LookupError("torch gave no UUID or PCI bus id that NVML knows, and CUDA's device order is not "
                      "PCI order (CUDA_DEVICE_ORDER=PCI_BUS_ID is not set): not guessing by index")


def torch_cuda_props(index: int) -> tuple[Any, str | None]:
    """(torch.cuda device properties, None) or (None, reason)."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None, "torch: CUDA not available"
        return torch.cuda.get_device_properties(index), None
    except Exception as exc:
        return None, f"torch: {error_text(exc)}"


def torch_uuid(props: Any) -> str | None:
    raw = getattr(props, "uuid", None) if props is not None else None
    if raw is None:
        return None
    text = str(raw).strip()
    if not text:
        return None
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def torch_pci_bus_id(props: Any) -> str | None:
    # torch's pci_device_id is the PCI slot number (cudaDeviceProp.pciDeviceID), not a product id.
    parts = [getattr(props, n, None) for n in ("pci_domain_id", "pci_bus_id", "pci_device_id")]
    if props is None or not all(isinstance(p, int) for p in parts):
        return None
    return "%08X:%02X:%02X.0" % tuple(parts)


# --------------------------------------------------------------------------- device fields (the probe)

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


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _mode(pair: Any) -> str:
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
    name = _text(nvml.nvmlDeviceGetName(h))
    match = MIG_PROFILE.search(name)
    return (f"enabled; instance {_text(nvml.nvmlDeviceGetUUID(h))}, profile "
            f"{match.group(1) if match else 'unknown'}, parent {_text(nvml.nvmlDeviceGetUUID(parent))}")


def read_mig_instance(fields: FieldReader, nvml: ModuleType, h: Any, parent: Any) -> None:
    """A MIG instance: its own name and UUID and the mig_mode that says so; every other field from
    the parent GPU (the same board: PCI ids, clocks, links, power limit). SM count and memory stay
    torch's (the slice's)."""
    fields.read("name", lambda: _text(nvml.nvmlDeviceGetName(h)))
    fields.read("uuid", lambda: _text(nvml.nvmlDeviceGetUUID(h)))
    fields.read("mig_mode", lambda: mig_mode_text(nvml, h, parent))
    read_device_fields(fields, nvml, parent)  # first answer wins: name, uuid, mig_mode and torch's stay


def read_device_fields(fields: FieldReader, nvml: ModuleType, h: Any) -> None:
    """Every DeviceInfo field NVML gives, into `fields` (first answer wins; errors become reasons)."""
    sm, mem = nvml.NVML_CLOCK_SM, nvml.NVML_CLOCK_MEM
    fields.read("name", lambda: _text(nvml.nvmlDeviceGetName(h)))
    pci = _Once(lambda: nvml.nvmlDeviceGetPciInfo(h))
    fields.read("pci_device_id", lambda: "0x%04x" % ((int(pci().pciDeviceId) >> 16) & 0xFFFF))
    fields.read("pci_bus_id", lambda: _text(pci().busId))
    fields.read("uuid", lambda: _text(nvml.nvmlDeviceGetUUID(h)))
    fields.read("compute_capability",
                lambda: "%d.%d" % tuple(nvml.nvmlDeviceGetCudaComputeCapability(h)))
    fields.read("sm_clock_max_mhz", lambda: int(nvml.nvmlDeviceGetMaxClockInfo(h, sm)))
    fields.read("sm_clock_app_mhz", lambda: int(nvml.nvmlDeviceGetApplicationsClock(h, sm)))
    fields.read("mem_clock_max_mhz", lambda: int(nvml.nvmlDeviceGetMaxClockInfo(h, mem)))
    fields.read("mem_clock_app_mhz", lambda: int(nvml.nvmlDeviceGetApplicationsClock(h, mem)))
    fields.read("memory_total_bytes", lambda: int(nvml.nvmlDeviceGetMemoryInfo(h).total))
    fields.read("memory_bus_width_bits", lambda: int(nvml.nvmlDeviceGetMemoryBusWidth(h)))
    fields.read("ecc_mode", lambda: _mode(nvml.nvmlDeviceGetEccMode(h)))
    fields.read("mig_mode", lambda: _mode(nvml.nvmlDeviceGetMigMode(h)))
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
        return _text(NVML.module().nvmlSystemGetDriverVersion())
    except Exception:
        return None


# --------------------------------------------------------------------------- peer links (p2p)

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


# --------------------------------------------------------------------------- telemetry samples

NVML_ERROR_FUNCTION_NOT_FOUND = 13  # NVML_ERROR_FUNCTION_NOT_FOUND: an older driver lacks the entry point


def sample_readers(nvml: Any, h: Any) -> tuple[dict[str, Callable[[], float]], Callable[[], int], str]:
    """The telemetry sampler's per-sample NVML reads of one device: clocks, power, temperature,
    the clock-event (throttle) reasons mask (the newer entry point first, the older after), and
    which power reading is used (instant or the 1-second average)."""
    sm, mem = nvml.NVML_CLOCK_SM, nvml.NVML_CLOCK_MEM
    power, power_source = power_reader(nvml, h)
    readers: dict[str, Callable[[], float]] = {
        "sm_clock_mhz": lambda: float(nvml.nvmlDeviceGetClockInfo(h, sm)),
        "mem_clock_mhz": lambda: float(nvml.nvmlDeviceGetClockInfo(h, mem)),
        "power_w": power,
        "temperature_c": lambda: float(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
    }
    events = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
    throttle = getattr(nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None)

    def read_reasons() -> int:
        nonlocal events
        if events is not None:
            try:
                return int(events(h))
            except Exception as exc:  # an older driver lacks the newer entry point
                if getattr(exc, "value", None) != NVML_ERROR_FUNCTION_NOT_FOUND or throttle is None:
                    raise
                events = None
        if throttle is None:
            raise AttributeError("pynvml has no clock-event reasons query")
        return int(throttle(h))

    return readers, read_reasons, power_source


_VALUE_FIELDS = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")  # by nvmlValueType_t
POWER_AVERAGE_SOURCE = ("nvmlDeviceGetPowerUsage: a 1-second average on Ampere (except GA100) and newer, "
                        "instantaneous on GA100 and older")
POWER_INSTANT_SOURCE = "instant: nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_INSTANT)"


def field_value(nvml: Any, h: Any, field_id: int) -> float:
    """One NVML field value as a number; raises when the call or the field's own return fails."""
    value = nvml.nvmlDeviceGetFieldValues(h, [field_id])[0]
    if int(value.nvmlReturn) != 0:
        raise RuntimeError(f"NVML field {field_id}: return code {int(value.nvmlReturn)}")
    return float(getattr(value.value, _VALUE_FIELDS[int(value.valueType)]))


def power_reader(nvml: Any, h: Any) -> tuple[Callable[[], float], str]:
    """(a reader of the board's power in W, what it reads). nvmlDeviceGetPowerUsage is a trailing
    1-second average on Ampere (except GA100), Hopper and Blackwell, so a 0.3 s case would carry
    its neighbours' power: the instant field value is read where the driver supports it."""
    field = getattr(nvml, "NVML_FI_DEV_POWER_INSTANT", None)
    if field is not None and hasattr(nvml, "nvmlDeviceGetFieldValues"):
        try:
            field_value(nvml, h, field)
        except Exception:  # an older driver, or a board without the field
            pass
        else:
            return (lambda: field_value(nvml, h, field) / 1000.0), POWER_INSTANT_SOURCE
    return (lambda: nvml.nvmlDeviceGetPowerUsage(h) / 1000.0), POWER_AVERAGE_SOURCE


# --------------------------------------------------------------------------- host-link placement

def cpu_affinity_mask(cuda_index: int, words: int) -> Any:
    """nvmlDeviceGetCpuAffinity of torch's cuda:<index>: `words` 64-bit words of CPU bits.
    Raises NvmlUnavailable, or NVML's own error (Not Supported, ...)."""
    return NVML.module().nvmlDeviceGetCpuAffinity(NVML.handle(cuda_index), words)


def gpu_pci_bus_id(cuda_index: int) -> str | None:
    """The GPU's PCI bus id as NVML gives it ("00000000:1B:00.0"), None when it cannot say."""
    try:
        return _text(NVML.module().nvmlDeviceGetPciInfo(NVML.handle(cuda_index)).busId)
    except Exception:
        return None


def numa_node(cuda_index: int) -> int | None:
    """nvmlDeviceGetNumaNodeId: the GPU's own NUMA node, which applies only where GPUs are NUMA
    nodes (Grace: the GPU-memory node; null on x86). None when NVML cannot say or says -1."""
    try:
        node = int(NVML.module().nvmlDeviceGetNumaNodeId(NVML.handle(cuda_index)))
    except Exception:
        return None
    return node if node >= 0 else None
