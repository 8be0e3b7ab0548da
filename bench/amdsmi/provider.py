"""amdsmi (PyPI `amdsmi`, or the copy ROCm installs in /opt/rocm/share/amd_smi) for AMD GPUs.

Facts it follows (../shared/reference/next-capabilities.md §2.1-2.2):
- units differ from NVML's: power in W, power caps in µW, energy as `energy_accumulator` ×
  `counter_resolution` µJ (older bindings call the accumulator `power`), temperatures in m°C or °C
  depending on the binding's version: read as °C when the value is plausible as °C (< 200), else
  divided by 1000, and the raw value is kept in the reason where it was converted;
- unsupported values come back as the string "N/A"; the odd die of an MI250 reports no power;
- the HIP device index is not the PCI order: a handle is found by the BDF (or UUID) torch reports
  for the device, never by position;
- importing the PyPI package without ROCm fails (amdsmi 7.0.2 raises KeyError 'libamd_smi.so' at
  import, not ImportError), and amdsmi_init fails without the driver: either leaves telemetry
  unavailable with the reason. Nothing here raises to the caller except AmdsmiUnavailable."""

from __future__ import annotations

import importlib
from typing import Any, Callable

from bench.energy import EnergyWindow

NOT_SUPPORTED = "Not Supported"
AMDSMI_ENERGY_SOURCE = "amdsmi_get_energy_count: energy_accumulator x counter_resolution (µJ)"
POWER_SOURCES = (("current_socket_power", "amdsmi current_socket_power (W)"),
                 ("average_socket_power", "amdsmi average_socket_power (W)"))


class AmdsmiUnavailable(Exception):
    """amdsmi cannot be used here: not importable, no ROCm library, amdsmi_init failed, or the
    device cannot be mapped to a handle. The message is the reason."""


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _Session:
    def __init__(self) -> None:
        self._module: Any = None
        self._failed: str | None = None

    def module(self) -> Any:
        if self._failed:
            raise AmdsmiUnavailable(self._failed)
        if self._module is None:
            try:
                mod = importlib.import_module("amdsmi")
            except Exception as exc:  # ImportError, or KeyError 'libamd_smi.so' from the PyPI wheel
                self._failed = f"amdsmi unavailable: not importable ({_text(exc)})"
                raise AmdsmiUnavailable(self._failed) from None
            try:
                mod.amdsmi_init(mod.AmdSmiInitFlags.INIT_AMD_GPUS)
            except Exception as exc:
                self._failed = f"amdsmi unavailable: amdsmi_init failed ({_text(exc)})"
                raise AmdsmiUnavailable(self._failed) from None
            self._module = mod
        return self._module

    def handle(self, bdf: str | None, uuid: str | None) -> Any:
        """The handle whose BDF (or UUID) is torch's for the device; never by position."""
        mod = self.module()
        handles = list(mod.amdsmi_get_processor_handles())
        want_bdf = _norm_bdf(bdf)
        for h in handles:
            try:
                if want_bdf and _norm_bdf(str(mod.amdsmi_get_gpu_device_bdf(h))) == want_bdf:
                    return h
            except Exception:
                continue
        if uuid:
            for h in handles:
                try:
                    if str(mod.amdsmi_get_gpu_device_uuid(h)).lower().removeprefix("gpu-") == uuid.lower().removeprefix("gpu-"):
                        return h
                except Exception:
                    continue
        raise AmdsmiUnavailable(f"amdsmi: no handle with BDF {bdf or '?'} or UUID {uuid or '?'} among "
                                f"{len(handles)} (the HIP index is not the PCI order, so none is guessed)")

    def shutdown(self) -> None:
        if self._module is not None:
            try:
                self._module.amdsmi_shut_down()
            except Exception:
                pass
        self._module, self._failed = None, None


AMDSMI = _Session()


def _norm_bdf(text: str | None) -> str | None:
    """'0000:05:00.0' and '00000000:05:00.0' alike -> '0000:05:00.0'."""
    if not text:
        return None
    parts = text.strip().lower().split(":")
    if len(parts) == 3:
        return f"{int(parts[0], 16):04x}:{parts[1]}:{parts[2]}"
    return text.strip().lower()


def _number(value: Any, what: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{what}: {value!r}" + (" (the odd GCD of an MI250 reports no power)" if value == "N/A" and "power" in what else ""))


def celsius(raw: float) -> float:
    """amdsmi temperature as °C: bindings >= 26.x return °C, older ones m°C (plausibility rule)."""
    return raw / 1000.0 if raw >= 200 else raw


def amdsmi_sample_readers(mod: Any, h: Any) -> tuple[dict[str, Callable[[], float]], None, str | None]:
    """Per-sample readers (clocks, power, temperature); no clock-event mask (amdsmi's throttle
    status has no bit-for-bit match to NVML's reasons) and the power reading used."""
    clk = mod.AmdSmiClkType
    power_key, power_source = _power_key(mod, h)
    readers: dict[str, Callable[[], float]] = {
        "sm_clock_mhz": lambda: _number(mod.amdsmi_get_clock_info(h, clk.GFX).get("clk"), "GFX clock"),
        "mem_clock_mhz": lambda: _number(mod.amdsmi_get_clock_info(h, clk.MEM).get("clk"), "MEM clock"),
        "temperature_c": lambda: celsius(_number(mod.amdsmi_get_temp_metric(
            h, mod.AmdSmiTemperatureType.HOTSPOT, mod.AmdSmiTemperatureMetric.CURRENT), "hotspot temperature")),
    }
    if power_key is not None:
        readers["power_w"] = lambda: _number(mod.amdsmi_get_power_info(h).get(power_key), power_key)
    return readers, None, power_source


def _power_key(mod: Any, h: Any) -> tuple[str | None, str | None]:
    try:
        info = mod.amdsmi_get_power_info(h)
    except Exception:
        return None, None
    for key, source in POWER_SOURCES:
        if isinstance(info.get(key), (int, float)):
            return key, source
    return None, None


def amdsmi_energy_window(mod: Any, h: Any) -> EnergyWindow:
    def read() -> float:
        e = mod.amdsmi_get_energy_count(h)
        acc = e.get("energy_accumulator", e.get("power"))  # older bindings: "power"
        return _number(acc, "energy_accumulator") * _number(e.get("counter_resolution"), "counter_resolution") / 1e6

    try:
        read()
    except Exception as exc:
        return EnergyWindow(None, AMDSMI_ENERGY_SOURCE, f"amdsmi: {_text(exc)}")
    return EnergyWindow(read, AMDSMI_ENERGY_SOURCE)


def _ask(fn: Callable[[], Any]) -> Any:
    try:
        value = fn()
    except Exception as exc:
        return f"unavailable: {_text(exc)}"
    return NOT_SUPPORTED if value in (None, "N/A", "") else value


def amdsmi_identity(mod: Any, h: Any) -> dict[str, Any]:
    """The lab procedure's identity fields from amdsmi (names as bench.nvml.identity's)."""
    board = _ask(lambda: mod.amdsmi_get_gpu_board_info(h))
    asic = _ask(lambda: mod.amdsmi_get_gpu_asic_info(h))
    cap = _ask(lambda: mod.amdsmi_get_power_cap_info(h))
    clk = mod.AmdSmiClkType

    def key(table: Any, name: str, scale: float | None = None) -> Any:
        if not isinstance(table, dict):
            return table
        value = table.get(name)
        if value in (None, "N/A", ""):
            return NOT_SUPPORTED
        return value / scale if scale and isinstance(value, (int, float)) else value

    def pci_id() -> str:
        return "0x%04x%04x" % (int(str(asic["device_id"]), 16), int(str(asic["vendor_id"]), 16))

    return {
        "serial": key(board, "product_serial"),
        "board_part_number": key(board, "model_number"),
        "product_name": key(board, "product_name"),
        "vbios_version": _ask(lambda: mod.amdsmi_get_gpu_vbios_info(h)["version"]),
        "inforom_image_version": NOT_SUPPORTED,  # an NVIDIA concept
        "uuid": _ask(lambda: mod.amdsmi_get_gpu_device_uuid(h)),
        "pci_device_id": _ask(pci_id) if isinstance(asic, dict) else asic,
        "pci_subsystem_id": key(asic, "subsystem_id"),
        "pci_bus_id": _ask(lambda: mod.amdsmi_get_gpu_device_bdf(h)),
        "driver_version": _ask(lambda: mod.amdsmi_get_gpu_driver_info(h)["driver_version"]),
        "ecc_mode": NOT_SUPPORTED,
        "mig_mode": _ask(lambda: f"compute partition {mod.amdsmi_get_gpu_compute_partition(h)}"),
        "power_limit_default_w": key(cap, "default_power_cap", 1e6),  # µW
        "power_limit_enforced_w": key(cap, "power_cap", 1e6),
        "sm_clock_max_mhz": _ask(lambda: mod.amdsmi_get_clock_info(h, clk.GFX)["max_clk"]),
        "mem_clock_max_mhz": _ask(lambda: mod.amdsmi_get_clock_info(h, clk.MEM)["max_clk"]),
        "sm_clock_app_mhz": NOT_SUPPORTED,
        "mem_clock_app_mhz": NOT_SUPPORTED,
        "memory_total_bytes": _ask(lambda: int(mod.amdsmi_get_gpu_memory_total(h, mod.AmdSmiMemoryType.VRAM))),
        "market_name": key(asic, "market_name"),
        "gfx_target": key(asic, "target_graphics_version"),
        "source": "amdsmi",
    }
