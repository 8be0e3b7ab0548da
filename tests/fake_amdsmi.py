"""A small fake `amdsmi` module (this machine has no AMD GPU and no ROCm). Every function and
enum it offers carries the real PyPI amdsmi 7.0.2 name; test_amdsmi.py checks them against the
real package's source (amdsmi_interface.py, parsed, since the real package cannot even be
imported without libamd_smi.so). Values have the shapes and units the real bindings return:
power W, caps µW, energy accumulator x resolution µJ, temperature in m°C (older) or °C (newer).
What only the fake has checked is listed in docs/gpu.md."""

from __future__ import annotations

import enum
import types
from typing import Any


class AmdSmiInitFlags(enum.IntEnum):
    INIT_ALL_PROCESSORS = 0xFFFFFFFF
    INIT_AMD_GPUS = 2


class AmdSmiClkType(enum.IntEnum):
    SYS = 0
    GFX = 0
    MEM = 4


class AmdSmiTemperatureType(enum.IntEnum):
    EDGE = 0
    HOTSPOT = 1


class AmdSmiTemperatureMetric(enum.IntEnum):
    CURRENT = 0


class AmdSmiMemoryType(enum.IntEnum):
    VRAM = 0


class AmdSmiLibraryException(Exception):
    def __init__(self, code: int = 2) -> None:
        super().__init__(f"Error code:\n\t{code} | AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported")
        self.err_code = code

    def get_error_code(self) -> int:
        return self.err_code


FUNCTIONS = (
    "amdsmi_init", "amdsmi_shut_down", "amdsmi_get_processor_handles", "amdsmi_get_gpu_device_bdf",
    "amdsmi_get_gpu_device_uuid", "amdsmi_get_gpu_board_info", "amdsmi_get_gpu_asic_info",
    "amdsmi_get_power_info", "amdsmi_get_power_cap_info", "amdsmi_get_energy_count",
    "amdsmi_get_temp_metric", "amdsmi_get_clock_info", "amdsmi_get_gpu_vbios_info",
    "amdsmi_get_gpu_driver_info", "amdsmi_get_gpu_compute_partition", "amdsmi_get_gpu_memory_total",
)
ENUMS = ("AmdSmiInitFlags", "AmdSmiClkType", "AmdSmiTemperatureType", "AmdSmiTemperatureMetric",
         "AmdSmiMemoryType", "AmdSmiLibraryException")


def mi300x(bdf: str, serial: str, **overrides: Any) -> dict[str, Any]:
    """One MI300X OAM as amdsmi describes it (made-up serial; shapes per amdsmi_interface.py)."""
    d: dict[str, Any] = {
        "bdf": bdf, "uuid": f"a3ff74a1-0000-1000-80b7-{serial[-12:].rjust(12, '0')}",
        "board": {"model_number": "102-G30211-00", "product_serial": serial, "fru_id": "N/A",
                  "product_name": "AMD Instinct MI300X OAM", "manufacturer_name": "AMD"},
        "asic": {"market_name": "AMD Instinct MI300X", "vendor_id": "0x1002", "vendor_name": "AMD",
                 "subvendor_id": "0x1002", "device_id": "0x74a1", "rev_id": "0x00", "asic_serial": "0xA1B2C3D4",
                 "oam_id": 0, "num_compute_units": 304, "target_graphics_version": "gfx942", "subsystem_id": "0x74a1"},
        "power": {"socket_power": 512, "current_socket_power": 512, "average_socket_power": 498,
                  "gfx_voltage": 840, "soc_voltage": 790, "mem_voltage": 1100, "power_limit": 750},
        "cap": {"power_cap": 750_000_000, "default_power_cap": 750_000_000, "dpm_cap": 0,
                "min_power_cap": 0, "max_power_cap": 750_000_000},
        "energy": [{"energy_accumulator": 1_000_000, "counter_resolution": 15.259, "timestamp": 1}],
        "temp": 61_000,  # m°C as older bindings give it
        "clock": {AmdSmiClkType.GFX: {"clk": 2100, "min_clk": 500, "max_clk": 2100, "clk_locked": False,
                                      "clk_deep_sleep": False},
                  AmdSmiClkType.MEM: {"clk": 1300, "min_clk": 900, "max_clk": 1300, "clk_locked": False,
                                      "clk_deep_sleep": False}},
        "vbios": {"name": "AMD MI300X", "build_date": "2024/01/01", "part_number": "113-M3000100-102",
                  "version": "022.040.003.043.000001"},
        "driver": {"driver_name": "amdgpu", "driver_version": "6.8.5", "driver_date": "2015/01/01"},
        "partition": "SPX", "vram": 205_822_885_888,
    }
    d.update(overrides)
    return d


def make_amdsmi(devices: list[dict[str, Any]], *, init_error: BaseException | None = None) -> types.ModuleType:
    mod = types.ModuleType("amdsmi")
    for name in ENUMS:
        setattr(mod, name, globals()[name])
    mod.calls = {}  # type: ignore[attr-defined]
    handles = [types.SimpleNamespace(device=d) for d in devices]

    def count(name: str) -> None:
        mod.calls[name] = mod.calls.get(name, 0) + 1

    def answer(value: Any) -> Any:
        if isinstance(value, BaseException):
            raise value
        return value() if callable(value) else value

    def init(flag: Any = None) -> None:
        count("amdsmi_init")
        if init_error is not None:
            raise init_error

    def energy(h: Any) -> dict:
        seq = h.device["energy"]
        value = seq.pop(0) if len(seq) > 1 else seq[0]
        return answer(value)

    table = {
        "amdsmi_init": init,
        "amdsmi_shut_down": lambda: count("amdsmi_shut_down"),
        "amdsmi_get_processor_handles": lambda: list(handles),
        "amdsmi_get_gpu_device_bdf": lambda h: answer(h.device["bdf"]),
        "amdsmi_get_gpu_device_uuid": lambda h: answer(h.device["uuid"]),
        "amdsmi_get_gpu_board_info": lambda h: answer(h.device["board"]),
        "amdsmi_get_gpu_asic_info": lambda h: answer(h.device["asic"]),
        "amdsmi_get_power_info": lambda h: answer(h.device["power"]),
        "amdsmi_get_power_cap_info": lambda h: answer(h.device["cap"]),
        "amdsmi_get_energy_count": energy,
        "amdsmi_get_temp_metric": lambda h, kind, metric: answer(h.device["temp"]),
        "amdsmi_get_clock_info": lambda h, kind: answer(h.device["clock"][kind]),
        "amdsmi_get_gpu_vbios_info": lambda h: answer(h.device["vbios"]),
        "amdsmi_get_gpu_driver_info": lambda h: answer(h.device["driver"]),
        "amdsmi_get_gpu_compute_partition": lambda h: answer(h.device["partition"]),
        "amdsmi_get_gpu_memory_total": lambda h, kind: answer(h.device["vram"]),
    }
    assert set(table) == set(FUNCTIONS)
    for name, fn in table.items():
        setattr(mod, name, fn)
    return mod
