"""The result-file records: frozen dataclasses, one per part of a file, and the schema version.

Every record here is what one `tppbench run` stores; `results.files.schema` is their only JSON
boundary (to_dict / from_dict) and re-exports them. Units are SI base units unless a name says
otherwise: seconds (`times_s`), bytes, flop, op; rates are per second (flop/s, op/s, byte/s).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

SCHEMA_VERSION = 3
# Version 2 added RunInfo.source and .imported_from (`tppbench import`) and
# Measurement.concurrent_devices (GPUs measured at once). Version 3 added RunInfo.procedure (the
# fixed test procedure a run followed: id, version, sha256) and DeviceInfo.identity (the unit's
# serial number, board part number, VBIOS, ... as the lab procedure records them). An older file is
# read as it is (the new fields take their defaults); one that carries a field newer than its
# version is refused, so a reader never guesses which contract a file follows. Readers of an older
# version refuse newer files by their version number, in one line, rather than by an "unknown field".
READABLE_VERSIONS = (1, 2, 3)
FIELDS_NEW_IN: dict[int, dict[str, tuple[str, ...]]] = {
    2: {"run": ("source", "imported_from"), "measurement": ("concurrent_devices",)},
    3: {"run": ("procedure", "hip", "rocm", "scheduler"), "device": ("identity",),
        "telemetry": ("energy_j", "energy_window_s", "energy_source", "energy_reason", "power_source")},
}


def fields_newer_than(version: int, record: str) -> tuple[str, ...]:
    """The fields of `record` ("run", "device", "measurement") a file of `version` may not carry."""
    return tuple(name for v, table in FIELDS_NEW_IN.items() if v > version for name in table.get(record, ()))


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
    # the energy counter differenced over the case's window (bench.energy); None with the reason
    energy_j: float | None = None
    energy_window_s: float | None = None
    energy_source: str | None = None
    energy_reason: str | None = None
    power_source: str | None = None  # which power reading power_w is (instant or 1-second average)


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
    # devices of this host measuring at the same time as this record, itself included (1: alone;
    # None: not known, e.g. files written before tppbench recorded it, or imported results)
    concurrent_devices: int | None = None


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
    # the unit's identity as a test lab records it (bench.identity): serial, board part number,
    # VBIOS, InfoROM, PCI subsystem id, power limits, ...; a value NVML refuses is "Not Supported"
    identity: Mapping[str, Any] = field(default_factory=dict)


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
    hip: str | None = None  # torch.version.hip on a ROCm build
    rocm: str | None = None  # the ROCm release (/opt/rocm/.info/version)
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
    procedure: Mapping[str, Any] = field(default_factory=dict)  # id, version, sha256, file (--procedure)
    # the job scheduler: Slurm's job, array task, step and node; Kubernetes' JOB_COMPLETION_INDEX
    scheduler: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    run: RunInfo
    devices: tuple[DeviceInfo, ...]
    measurements: tuple[Measurement, ...]
    schema_version: int = SCHEMA_VERSION
