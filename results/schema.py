"""The result-file vocabulary: frozen records and their only JSON boundary (to_dict / from_dict).

Every record here is what one `tppbench run` stores. Other tools read these files, so the
top-level names (`schema_version`, `run`, `devices`, `measurements`) and the per-measurement
names are a public contract: change them only with a SCHEMA_VERSION bump and an upgrade step
in `results.store`.

Units are SI base units unless a name says otherwise: seconds (`times_s`), bytes, flop, op;
rates are per second (flop/s, op/s, byte/s).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

SCHEMA_VERSION = 1

STATUSES = ("ok", "skipped", "error")


class SchemaError(ValueError):
    """A dict does not have the shape a record needs; the message names the field."""


@dataclass(frozen=True)
class Stats:
    """Summary of per-sample rates (work_per_call / times_s[i]), in the measurement's rate unit."""

    n: int
    median: float
    mean: float
    min: float
    max: float
    p10: float
    p90: float
    iqr: float
    stdev: float
    cv: float


@dataclass(frozen=True)
class RangeSummary:
    min: float
    mean: float
    max: float


@dataclass(frozen=True)
class Telemetry:
    """What the background NVML sampler saw while one case ran.

    `available` is False (and `reason` says why) when no NVML was there (CPU, CI)."""

    available: bool
    reason: str | None = None
    samples: int = 0
    sm_clock_mhz: RangeSummary | None = None
    mem_clock_mhz: RangeSummary | None = None
    power_w: RangeSummary | None = None
    temperature_c: RangeSummary | None = None
    throttle_reasons_mask: int = 0
    throttle_reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Timing:
    """How the samples were taken (not the samples themselves, which live on Measurement)."""

    clock: str  # "cuda_event" | "perf_counter"
    calls_per_sample: int
    warmup_calls: int
    warmup_s: float
    l2_flushed: bool


@dataclass(frozen=True)
class Measurement:
    key: str
    benchmark: str
    variant: str
    precision: str | None
    params: Mapping[str, Any]
    device_index: int | None
    status: str
    reason: str | None
    unit: str  # work unit: flop | op | byte
    convention: str
    work_per_call: float
    times_s: tuple[float, ...] = ()
    rate: float | None = None
    stats: Stats | None = None
    flags: tuple[str, ...] = ()
    telemetry: Telemetry | None = None
    timing: Timing | None = None
    method_version: int = 1
    host: str | None = None
    rank: int | None = None
    busbw: float | None = None
    busbw_factor: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceInfo:
    """One measured device. A field that could not be read is None, with the reason in `unavailable`."""

    index: int
    backend: str  # "cuda" | "cpu"
    name: str
    host: str | None = None
    pci_device_id: str | None = None  # e.g. "0x2330"
    pci_bus_id: str | None = None
    uuid: str | None = None
    compute_capability: str | None = None  # e.g. "9.0"
    sm_count: int | None = None
    sm_clock_max_mhz: int | None = None
    sm_clock_app_mhz: int | None = None
    mem_clock_max_mhz: int | None = None
    mem_clock_app_mhz: int | None = None
    memory_total_bytes: int | None = None
    memory_bus_width_bits: int | None = None
    l2_cache_bytes: int | None = None
    ecc_mode: str | None = None
    mig_mode: str | None = None
    power_limit_w: float | None = None
    pcie_gen_current: int | None = None
    pcie_gen_max: int | None = None
    pcie_width_current: int | None = None
    pcie_width_max: int | None = None
    nvlink: tuple[Mapping[str, Any], ...] | None = None  # per link: {"link", "state", "version"}
    threads: int | None = None  # CPU backend: torch intra-op threads
    unavailable: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunInfo:
    host: str
    started_utc: str
    finished_utc: str | None
    mode: str
    argv: tuple[str, ...]
    harness_version: str
    git_commit: str | None = None
    label: str | None = None
    suites: tuple[str, ...] = ()
    cpu_model: str | None = None
    os: str | None = None
    python: str | None = None
    torch: str | None = None
    cuda: str | None = None
    driver: str | None = None
    nccl: str | None = None
    backend: str | None = None
    complete: bool = True
    incomplete_reason: str | None = None
    world_size: int = 1
    hosts: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # NCCL_*, CUDA_VISIBLE_DEVICES, ...
    source: str | None = None  # None: measured by `tppbench run`; "imported": `tppbench import`
    imported_from: Mapping[str, Any] = field(default_factory=dict)  # tool, version, file, sha256


@dataclass(frozen=True)
class RunResult:
    run: RunInfo
    devices: tuple[DeviceInfo, ...]
    measurements: tuple[Measurement, ...]
    schema_version: int = SCHEMA_VERSION


# --------------------------------------------------------------------------- JSON boundary


def to_dict(result: RunResult) -> dict[str, Any]:
    """RunResult -> plain JSON-able dict (tuples become lists, nested records become dicts)."""
    return {
        "schema_version": result.schema_version,
        "run": _plain(result.run),
        "devices": [_plain(d) for d in result.devices],
        "measurements": [_plain(m) for m in result.measurements],
    }


def from_dict(data: Any) -> RunResult:
    """Plain dict -> RunResult; raises SchemaError naming the first bad field."""
    if not isinstance(data, dict):
        raise SchemaError(f"top level must be an object, got {type(data).__name__}")
    for name in ("schema_version", "run", "devices", "measurements"):
        if name not in data:
            raise SchemaError(f"missing top-level field '{name}'")
    if not isinstance(data["devices"], list):
        raise SchemaError("'devices' must be a list")
    if not isinstance(data["measurements"], list):
        raise SchemaError("'measurements' must be a list")
    run = _build(RunInfo, data["run"], "run")
    devices = tuple(_build(DeviceInfo, d, f"devices[{i}]") for i, d in enumerate(data["devices"]))
    measurements = tuple(
        _build(Measurement, m, f"measurements[{i}]") for i, m in enumerate(data["measurements"])
    )
    for i, m in enumerate(measurements):
        if m.status not in STATUSES:
            raise SchemaError(f"measurements[{i}].status must be one of {STATUSES}, got {m.status!r}")
        if m.status == "ok" and m.rate is None:
            raise SchemaError(f"measurements[{i}] has status ok but no rate")
    return RunResult(
        run=run, devices=devices, measurements=measurements, schema_version=data["schema_version"]
    )


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# Nested record types per (record, field): used by _build to rebuild dataclasses from dicts.
_NESTED: dict[tuple[type, str], type] = {
    (Measurement, "stats"): Stats,
    (Measurement, "telemetry"): Telemetry,
    (Measurement, "timing"): Timing,
    (Telemetry, "sm_clock_mhz"): RangeSummary,
    (Telemetry, "mem_clock_mhz"): RangeSummary,
    (Telemetry, "power_w"): RangeSummary,
    (Telemetry, "temperature_c"): RangeSummary,
}

# Expected JSON types by field name (a name means the same thing in every record that has it).
# None is accepted wherever the dataclass default allows it; a missing required field is caught
# separately.
_FLOAT_FIELDS = {
    "work_per_call", "rate", "busbw", "busbw_factor", "median", "mean", "min", "max", "p10",
    "p90", "iqr", "stdev", "cv", "warmup_s", "power_limit_w",
}
_INT_FIELDS = {
    "n", "samples", "calls_per_sample", "warmup_calls", "world_size", "schema_version",
    "device_index", "rank", "index", "method_version", "throttle_reasons_mask", "threads",
    "sm_count", "sm_clock_max_mhz", "sm_clock_app_mhz", "mem_clock_max_mhz", "mem_clock_app_mhz",
    "memory_total_bytes", "memory_bus_width_bits", "l2_cache_bytes", "pcie_gen_current",
    "pcie_gen_max", "pcie_width_current", "pcie_width_max",
}
_BOOL_FIELDS = {"complete", "available", "l2_flushed"}
_STR_FIELDS = {
    "source",
    "key", "benchmark", "variant", "status", "unit", "convention", "host", "name", "backend",
    "mode", "started_utc", "finished_utc", "harness_version", "clock", "precision", "reason",
    "incomplete_reason", "label", "git_commit", "cpu_model", "os", "python", "torch", "cuda",
    "driver", "nccl", "pci_device_id", "pci_bus_id", "uuid", "compute_capability", "ecc_mode",
    "mig_mode",
}
_STR_LIST_FIELDS = {"flags", "argv", "suites", "hosts", "throttle_reasons"}


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise SchemaError(f"{where} must be an object, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise SchemaError(f"{where} has unknown field '{unknown[0]}'")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SchemaError(f"{where} is missing field '{name}'")
            continue
        value = raw[name]
        path = f"{where}.{name}"
        nested = _NESTED.get((cls, name))
        if nested is not None and value is not None:
            value = _build(nested, value, path)
        elif value is not None:
            value = _check_scalar(name, value, path)
        if isinstance(value, list):
            value = tuple(
                dict(v) if isinstance(v, dict) else v for v in value
            )
        kwargs[name] = value
    return cls(**kwargs)


def _check_scalar(name: str, value: Any, path: str) -> Any:
    if name in _FLOAT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(f"{path} must be a number, got {type(value).__name__}")
        return float(value)
    if name in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(f"{path} must be an integer, got {type(value).__name__}")
    if name in _BOOL_FIELDS and not isinstance(value, bool):
        raise SchemaError(f"{path} must be true or false, got {type(value).__name__}")
    if name in _STR_FIELDS and not isinstance(value, str):
        raise SchemaError(f"{path} must be a string, got {type(value).__name__}")
    if name in _STR_LIST_FIELDS and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise SchemaError(f"{path} must be a list of strings")
    if name == "times_s":
        if not isinstance(value, list) or not all(
            isinstance(t, (int, float)) and not isinstance(t, bool) for t in value
        ):
            raise SchemaError(f"{path} must be a list of numbers")
        return [float(t) for t in value]
    if name in ("params", "extra", "unavailable", "env", "imported_from") and not isinstance(value, dict):
        raise SchemaError(f"{path} must be an object, got {type(value).__name__}")
    if name in ("flags", "argv", "suites", "hosts", "throttle_reasons", "nvlink") and not isinstance(
        value, list
    ):
        raise SchemaError(f"{path} must be a list, got {type(value).__name__}")
    return value
