"""A small fake `pynvml` module for tests on machines without an NVIDIA driver.

Only NVML is faked (this machine has no GPU); torch is always the real one. Every function the
fake offers carries the real nvidia-ml-py name and every constant its real value; a test in
test_probe.py checks both against the installed pynvml, so the probe cannot call a made-up name.

A device is a dict from pynvml function name to its answer. An answer may be a value, an
`nvml_error(code)` (raised), a callable (called on every query, e.g. for changing clocks), or a
dict keyed by the query's extra argument (clock type, NVLink index, sensor); a missing key raises
NVMLError_InvalidArgument, a missing function name raises AttributeError like an old pynvml.
"""

from __future__ import annotations

import types
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15

CONSTANTS: dict[str, int] = {
    "NVML_SUCCESS": NVML_SUCCESS,
    "NVML_ERROR_UNINITIALIZED": NVML_ERROR_UNINITIALIZED,
    "NVML_ERROR_INVALID_ARGUMENT": NVML_ERROR_INVALID_ARGUMENT,
    "NVML_ERROR_NOT_SUPPORTED": NVML_ERROR_NOT_SUPPORTED,
    "NVML_ERROR_NO_PERMISSION": NVML_ERROR_NO_PERMISSION,
    "NVML_ERROR_DRIVER_NOT_LOADED": NVML_ERROR_DRIVER_NOT_LOADED,
    "NVML_ERROR_LIBRARY_NOT_FOUND": NVML_ERROR_LIBRARY_NOT_FOUND,
    "NVML_ERROR_FUNCTION_NOT_FOUND": NVML_ERROR_FUNCTION_NOT_FOUND,
    "NVML_ERROR_GPU_IS_LOST": NVML_ERROR_GPU_IS_LOST,
    "NVML_CLOCK_SM": 1,
    "NVML_CLOCK_MEM": 2,
    "NVML_TEMPERATURE_GPU": 0,
    "NVML_FEATURE_DISABLED": 0,
    "NVML_FEATURE_ENABLED": 1,
    "NVML_NVLINK_MAX_LINKS": 36,
    "NVML_NVLINK_VERSION_4_0": 6,
    "NVML_FI_DEV_POWER_INSTANT": 186,
    "NVML_VALUE_TYPE_UNSIGNED_INT": 1,
}
NVML_CLOCK_SM = CONSTANTS["NVML_CLOCK_SM"]
NVML_CLOCK_MEM = CONSTANTS["NVML_CLOCK_MEM"]
NVML_TEMPERATURE_GPU = CONSTANTS["NVML_TEMPERATURE_GPU"]

_TEXT = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
}


class NVMLError(Exception):
    """Like pynvml.NVMLError: NVMLError(code) builds the code's subclass; str() is NVML's text."""

    _by_value: dict[int, type[NVMLError]] = {}

    def __new__(cls, value: int | None = None) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._by_value.get(value, NVMLError)
        obj = Exception.__new__(cls)
        obj.value = value if value is not None else cls._value  # type: ignore[attr-defined]
        return obj

    def __init__(self, value: int | None = None) -> None:
        super().__init__(self.value)

    def __str__(self) -> str:
        return _TEXT.get(self.value, f"NVML Error with code {self.value}")


ERROR_CLASSES: dict[str, type[NVMLError]] = {}
for _code, _name in (
    (NVML_ERROR_UNINITIALIZED, "NVMLError_Uninitialized"),
    (NVML_ERROR_INVALID_ARGUMENT, "NVMLError_InvalidArgument"),
    (NVML_ERROR_NOT_SUPPORTED, "NVMLError_NotSupported"),
    (NVML_ERROR_NO_PERMISSION, "NVMLError_NoPermission"),
    (NVML_ERROR_DRIVER_NOT_LOADED, "NVMLError_DriverNotLoaded"),
    (NVML_ERROR_LIBRARY_NOT_FOUND, "NVMLError_LibraryNotFound"),
    (NVML_ERROR_FUNCTION_NOT_FOUND, "NVMLError_FunctionNotFound"),
    (NVML_ERROR_GPU_IS_LOST, "NVMLError_GpuIsLost"),
):
    _cls = type(_name, (NVMLError,), {"_value": _code})
    NVMLError._by_value[_code] = _cls
    ERROR_CLASSES[_name] = _cls


def nvml_error(code: int) -> NVMLError:
    return NVMLError(code)


NOT_SUPPORTED = nvml_error(NVML_ERROR_NOT_SUPPORTED)

# Functions taking (handle, *extra); answers come from the device dict.
DEVICE_FUNCTIONS = (
    "nvmlDeviceGetName", "nvmlDeviceGetPciInfo", "nvmlDeviceGetUUID",
    "nvmlDeviceGetCudaComputeCapability", "nvmlDeviceGetMaxClockInfo",
    "nvmlDeviceGetApplicationsClock", "nvmlDeviceGetClockInfo", "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetMemoryBusWidth", "nvmlDeviceGetEccMode", "nvmlDeviceGetMigMode",
    "nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetPowerManagementLimit",
    "nvmlDeviceGetCurrPcieLinkGeneration", "nvmlDeviceGetMaxPcieLinkGeneration",
    "nvmlDeviceGetCurrPcieLinkWidth", "nvmlDeviceGetMaxPcieLinkWidth",
    "nvmlDeviceGetNvLinkState", "nvmlDeviceGetNvLinkVersion", "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetTemperature", "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetCurrentClocksThrottleReasons", "nvmlDeviceGetCpuAffinity", "nvmlDeviceGetNumaNodeId",
    "nvmlDeviceGetFieldValues", "nvmlDeviceIsMigDeviceHandle", "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
    # the lab procedure's identity (bench.nvml.identity)
    "nvmlDeviceGetSerial", "nvmlDeviceGetBoardPartNumber", "nvmlDeviceGetVbiosVersion",
    "nvmlDeviceGetInforomImageVersion", "nvmlDeviceGetPowerManagementDefaultLimit",
    # energy per case (bench.energy)
    "nvmlDeviceGetTotalEnergyConsumption",
)
MODULE_FUNCTIONS = (
    "nvmlInit", "nvmlShutdown", "nvmlSystemGetDriverVersion", "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex", "nvmlDeviceGetHandleByUUID", "nvmlDeviceGetHandleByPciBusId",
)


class FakeHandle:
    def __init__(self, nvml_index: int, answers: dict[str, Any]) -> None:
        self.nvml_index = nvml_index
        self.answers = answers


def _answer(handle: FakeHandle, name: str, args: tuple[Any, ...]) -> Any:
    value = handle.answers[name]
    for arg in args:
        if isinstance(value, dict):
            if arg not in value:
                raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
            value = value[arg]
    if callable(value) and not isinstance(value, BaseException):
        value = value()
    if isinstance(value, NVMLError):
        raise NVMLError(value.value)  # a fresh exception per query, as the real module raises
    if isinstance(value, BaseException):
        raise value
    return value


def make_pynvml(
    devices: list[dict[str, Any]],
    *,
    init_error: BaseException | None = None,
    driver: str = "550.54.15",
) -> types.ModuleType:
    """A fresh fake `pynvml` module; `calls` on it counts each function's calls."""
    mod = types.ModuleType("pynvml")
    mod.__dict__.update(CONSTANTS)
    mod.NVMLError = NVMLError
    mod.__dict__.update(ERROR_CLASSES)
    mod.calls = {}  # type: ignore[attr-defined]
    handles = [FakeHandle(i, d) for i, d in enumerate(devices)]
    mod.handles = handles  # type: ignore[attr-defined]  # a MIG instance's answers may name its parent
    state = {"initialised": False}

    def count(name: str) -> None:
        mod.calls[name] = mod.calls.get(name, 0) + 1

    def nvmlInit() -> None:
        count("nvmlInit")
        if init_error is not None:
            raise init_error
        state["initialised"] = True

    def nvmlShutdown() -> None:
        count("nvmlShutdown")
        state["initialised"] = False

    def need_init() -> None:
        if not state["initialised"]:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)

    def nvmlSystemGetDriverVersion() -> str:
        need_init()
        return driver

    def nvmlDeviceGetCount() -> int:
        need_init()
        return len(handles)

    def nvmlDeviceGetHandleByIndex(index: int) -> FakeHandle:
        need_init()
        count("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(handles):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return handles[index]

    def by_key(key_name: str, key: Any) -> FakeHandle:
        need_init()
        for h in handles:
            try:
                if _answer(h, key_name, ()) == key:
                    return h
            except Exception:
                continue
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)

    def nvmlDeviceGetHandleByUUID(uuid: str) -> FakeHandle:
        count("nvmlDeviceGetHandleByUUID")
        return by_key("nvmlDeviceGetUUID", uuid)

    def nvmlDeviceGetHandleByPciBusId(bus_id: str) -> FakeHandle:
        count("nvmlDeviceGetHandleByPciBusId")
        need_init()
        for h in handles:
            info = h.answers.get("nvmlDeviceGetPciInfo")
            if info is not None and not isinstance(info, BaseException):
                if info.busId.decode().lower() == bus_id.lower():
                    return h
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)

    for fn in (nvmlInit, nvmlShutdown, nvmlSystemGetDriverVersion, nvmlDeviceGetCount,
               nvmlDeviceGetHandleByIndex, nvmlDeviceGetHandleByUUID, nvmlDeviceGetHandleByPciBusId):
        setattr(mod, fn.__name__, fn)

    def device_function(name: str) -> Any:
        def call(handle: FakeHandle, *args: Any) -> Any:
            need_init()
            count(name)
            if name not in handle.answers:
                raise AttributeError(f"fake device has no answer for {name}")
            if name == "nvmlDeviceGetFieldValues":
                return _field_values(handle.answers[name], args[0])
            return _answer(handle, name, args)

        call.__name__ = name
        return call

    for name in DEVICE_FUNCTIONS:
        setattr(mod, name, device_function(name))
    return mod


def _field_values(answers: Any, field_ids: list[int]) -> list[types.SimpleNamespace]:
    """Like pynvml's array of c_nvmlFieldValue_t: per field its own nvmlReturn, valueType and value.
    `answers` maps field id -> an unsigned int (valueType 1), or an NVMLError for that field; a
    whole-call NVMLError (an old driver) raises."""
    if isinstance(answers, BaseException):
        raise NVMLError(answers.value) if isinstance(answers, NVMLError) else answers
    out = []
    for field in field_ids:
        answer = answers.get(field, NOT_SUPPORTED)
        if callable(answer) and not isinstance(answer, BaseException):
            answer = answer()
        failed = isinstance(answer, NVMLError)
        out.append(types.SimpleNamespace(fieldId=field, scopeId=0, timestamp=0, latencyUsec=0,
                                         valueType=1, nvmlReturn=answer.value if failed else NVML_SUCCESS,
                                         value=types.SimpleNamespace(uiVal=0 if failed else int(answer))))
    return out


def mig_instance_answers(parent_index: int, mig_uuid: str, name: str, module_ref: list) -> dict[str, Any]:
    """A MIG device handle as NVML answers it: its own name and MIG UUID, is-MIG true, the parent
    handle on request, and Not Supported for the clocks and power a MIG handle does not expose."""
    return {
        "nvmlDeviceGetName": name, "nvmlDeviceGetUUID": mig_uuid, "nvmlDeviceIsMigDeviceHandle": 1,
        "nvmlDeviceGetDeviceHandleFromMigDeviceHandle": lambda: module_ref[0].handles[parent_index],
        "nvmlDeviceGetMaxClockInfo": NOT_SUPPORTED, "nvmlDeviceGetClockInfo": NOT_SUPPORTED,
        "nvmlDeviceGetPowerUsage": NOT_SUPPORTED,
    }


def h100_answers(**overrides: Any) -> dict[str, Any]:
    """An H100 SXM5 80GB as a pass-through VM reports it, except NVLink answers (18 links, 4.0)."""
    answers: dict[str, Any] = {
        "nvmlDeviceGetName": "NVIDIA H100 80GB HBM3",
        "nvmlDeviceGetPciInfo": types.SimpleNamespace(
            pciDeviceId=0x233010DE, pciSubSystemId=0x16C110DE, busId=b"00000000:18:00.0", domain=0,
            bus=0x18, device=0
        ),
        "nvmlDeviceGetUUID": "GPU-6f1d2a44-0000-4a3b-9c1e-1234567890ab",
        "nvmlDeviceGetCudaComputeCapability": (9, 0),
        "nvmlDeviceGetMaxClockInfo": {NVML_CLOCK_SM: 1980, NVML_CLOCK_MEM: 2619},
        "nvmlDeviceGetApplicationsClock": {NVML_CLOCK_SM: 1755, NVML_CLOCK_MEM: 2619},
        "nvmlDeviceGetClockInfo": {NVML_CLOCK_SM: 1980, NVML_CLOCK_MEM: 2619},
        "nvmlDeviceGetMemoryInfo": types.SimpleNamespace(
            total=85_520_809_984, free=84_900_000_000, used=620_809_984
        ),
        "nvmlDeviceGetMemoryBusWidth": 5120,
        "nvmlDeviceGetEccMode": [1, 1],
        "nvmlDeviceGetMigMode": [0, 0],
        "nvmlDeviceGetEnforcedPowerLimit": 700_000,
        "nvmlDeviceGetPowerManagementLimit": 700_000,
        "nvmlDeviceGetCurrPcieLinkGeneration": 5,
        "nvmlDeviceGetMaxPcieLinkGeneration": 5,
        "nvmlDeviceGetCurrPcieLinkWidth": 16,
        "nvmlDeviceGetMaxPcieLinkWidth": 16,
        "nvmlDeviceGetNvLinkState": {i: 1 for i in range(18)},
        "nvmlDeviceGetNvLinkVersion": {i: 6 for i in range(18)},
        "nvmlDeviceGetPowerUsage": 512_345,  # the 1-second average
        "nvmlDeviceGetFieldValues": {186: 498_765},  # NVML_FI_DEV_POWER_INSTANT, mW
        "nvmlDeviceGetTemperature": {NVML_TEMPERATURE_GPU: 41},
        "nvmlDeviceGetCurrentClocksEventReasons": 0,
        "nvmlDeviceGetCurrentClocksThrottleReasons": 0,
        "nvmlDeviceGetCpuAffinity": [0xFF],  # CPUs 0-7 (64-bit words); socket 0 of a small node
        "nvmlDeviceGetNumaNodeId": 0,
        "nvmlDeviceIsMigDeviceHandle": 0,
        # identity (values of the shape NVML returns; this H100 is made up, not a real unit's)
        "nvmlDeviceGetSerial": "1650123456789",
        "nvmlDeviceGetBoardPartNumber": "692-2G520-0200-000",
        "nvmlDeviceGetVbiosVersion": "96.00.74.00.01",
        "nvmlDeviceGetInforomImageVersion": "G520.0200.00.05",
        "nvmlDeviceGetPowerManagementDefaultLimit": 700_000,
        "nvmlDeviceGetTotalEnergyConsumption": NOT_SUPPORTED,  # tests that need it give a counter
    }
    answers.update(overrides)
    return answers


def skip_if_real_nvml_works() -> None:
    """For tests of the real pynvml on a machine without an NVIDIA driver: skip where NVML works."""
    import pytest

    real = pytest.importorskip("pynvml")
    try:
        real.nvmlInit()
    except real.NVMLError:
        return
    real.nvmlShutdown()
    pytest.skip("this machine has an NVIDIA driver")
