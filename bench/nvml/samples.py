"""What NVML is read for while cases run, and for host-link placement: clocks, power (instant where
the driver has it), temperature, clock-event reasons; CPU affinity, PCI bus id and NUMA node."""

from __future__ import annotations

from typing import Any, Callable

from bench.nvml.fields import nvml_text
from bench.nvml.session import NVML

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
        return nvml_text(NVML.module().nvmlDeviceGetPciInfo(NVML.handle(cuda_index)).busId)
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


# --------------------------------------------------------------------------- clock-event residency

# Cumulative nanoseconds in each limiting state (nvml.h NVML_FI_DEV_CLOCKS_EVENT_REASON_*; the
# deprecated nvmlDeviceGetViolationStatus is not used). Differenced over a case's window.
RESIDENCY_FIELDS = {"sw_power_cap": 74, "sync_boost": 76, "sw_thermal_slowdown": 269,
                    "hw_thermal_slowdown": 270, "hw_power_brake_slowdown": 271}


def residency_reader(nvml: Any, h: Any) -> Callable[[], dict[str, float]]:
    """A reader of the residency counters this driver answers (ns), each field on its own."""

    def read() -> dict[str, float]:
        out = {}
        for name, field in RESIDENCY_FIELDS.items():
            try:
                out[name] = field_value(nvml, h, field)
            except Exception:
                continue
        return out

    return read


# --------------------------------------------------------------------------- soak windows

def window_reader(cuda_index: int) -> tuple[Any, str | None]:
    """(a snapshot function, or None, and why not): clocks, power, temperature, clock-event mask and
    the energy counter (J) of torch's cuda:<index>, each read once per soak window."""
    from bench.nvml.session import NvmlUnavailable

    try:
        nvml = NVML.module()
        h = NVML.handle(cuda_index)
    except NvmlUnavailable as exc:
        return None, str(exc)
    readers, read_reasons, power_source = sample_readers(nvml, h)
    energy = getattr(nvml, "nvmlDeviceGetTotalEnergyConsumption", None)

    def snapshot() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, read in readers.items():
            try:
                out[name] = read()
            except Exception:
                pass
        try:
            out["clock_event_reasons"] = read_reasons()
        except Exception:
            pass
        if energy is not None:
            try:
                out["energy_counter_j"] = energy(h) / 1000.0
            except Exception:
                pass
        return out

    return snapshot, power_source
