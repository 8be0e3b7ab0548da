"""What is being measured: per-device facts (DeviceInfo) and per-run host facts, from torch and NVML.

NVML is optional. `pynvml` (nvidia-ml-py) is imported lazily, only by `bench.nvml`'s session, which
`bench.telemetry` shares. Nothing here raises because NVML is missing or a query is refused:

- a query NVML answers with "Not Supported" (or any other NVML error) leaves that field None and
  records `unavailable[field] = "NVML: Not Supported"` (the error's text);
- no NVML at all (pynvml not importable, libnvidia-ml not found, nvmlInit failing) leaves every
  NVML-only field None with `"NVML unavailable: <why>"`.

Sources per field: torch first for what the CUDA runtime itself sees (compute capability, SM
count, memory size (a MIG slice's size under MIG), L2 size); NVML first for everything else (name,
UUID and PCI bus id fall back to torch). Where both sources fail, both reasons are kept.

The NVML handle of CUDA device `index` is found by the device's UUID (or PCI bus id) from torch,
then by CUDA_VISIBLE_DEVICES, and only then by the bare index: NVML numbers GPUs in PCI order and
ignores CUDA_VISIBLE_DEVICES, so the bare index can name a different GPU than torch's `cuda:index`.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from bench.nvml import (  # noqa: F401 - NVML, NvmlSession, nvml_shutdown re-exported
    NVML,
    NvmlSession,
    NvmlUnavailable,
    error_text,
    nvml_shutdown,
    torch_cuda_props,
    torch_pci_bus_id,
    torch_uuid,
)
from results.schema import DeviceInfo

# DeviceInfo fields that describe a GPU (everything but identity, host and CPU threads).
GPU_FIELDS = (
    "pci_device_id", "pci_bus_id", "uuid", "compute_capability", "sm_count",
    "sm_clock_max_mhz", "sm_clock_app_mhz", "mem_clock_max_mhz", "mem_clock_app_mhz",
    "memory_total_bytes", "memory_bus_width_bits", "l2_cache_bytes", "ecc_mode", "mig_mode",
    "power_limit_w", "pcie_gen_current", "pcie_gen_max", "pcie_width_current", "pcie_width_max",
    "nvlink",
)
# GPU fields only torch can give (NVML has no SM count or L2 size).
_TORCH_ONLY = ("sm_count", "l2_cache_bytes")

# nvmlDeviceGetNvLinkVersion returns an nvmlNvlinkVersion_t enum value, not the NVLink generation
# (NVML_NVLINK_VERSION_4_0 == 6 on H100). Decoded here; the raw value is kept as "nvml_version".
_NVLINK_VERSION_NAMES = {1: "1.0", 2: "2.0", 3: "2.2", 4: "3.0", 5: "3.1", 6: "4.0", 7: "5.0", 8: "6.0"}

_ENV_PREFIXES = ("NCCL_", "TORCH_", "PYTORCH_", "CUBLAS_", "CUDNN_")
_ENV_NAMES = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "CUDA_LAUNCH_BLOCKING",
              "NVIDIA_TF32_OVERRIDE", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# --------------------------------------------------------------------------- field collection


class _Fields:
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


def _read_torch(fields: _Fields, props: Any, reason: str | None) -> None:
    torch_fields = ("compute_capability", "sm_count", "memory_total_bytes", "l2_cache_bytes")
    if props is None:
        for f in torch_fields:
            fields.miss(f, reason or "torch: no device properties")
        return
    fields.read("compute_capability", lambda: f"{props.major}.{props.minor}", "torch")
    fields.read("sm_count", lambda: int(props.multi_processor_count), "torch")
    fields.read("memory_total_bytes", lambda: int(props.total_memory), "torch")
    fields.read("l2_cache_bytes", lambda: int(props.L2_cache_size), "torch")


def _read_torch_fallbacks(fields: _Fields, props: Any) -> None:
    """Fields NVML answers first; torch fills them in when NVML could not."""
    if props is None:
        return
    fields.read("name", lambda: str(props.name), "torch")
    fields.read("uuid", lambda: torch_uuid(props), "torch")
    fields.read("pci_bus_id", lambda: torch_pci_bus_id(props), "torch")


def _read_nvml(fields: _Fields, nvml: ModuleType, h: Any) -> None:
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


# --------------------------------------------------------------------------- public probes


def probe_cuda_device(index: int, torch_props: Any = None) -> DeviceInfo:
    """Everything torch and NVML can tell about `cuda:<index>`; never raises.

    `torch_props` is `torch.cuda.get_device_properties(index)` when the caller has it already."""
    props, torch_reason = (torch_props, None) if torch_props is not None else torch_cuda_props(index)
    fields = _Fields()
    _read_torch(fields, props, torch_reason)
    try:
        nvml = NVML.module()
        handle = NVML.handle(index, props)
    except NvmlUnavailable as exc:
        for f in ("name", *GPU_FIELDS):
            if f not in _TORCH_ONLY:
                fields.miss(f, str(exc))
    else:
        _read_nvml(fields, nvml, handle)
    _read_torch_fallbacks(fields, props)
    name = fields.values.pop("name", None) or f"cuda:{index}"
    unavailable = fields.unavailable()
    unavailable.pop("name", None)
    return DeviceInfo(
        index=index, backend="cuda", name=name, host=host_name(), unavailable=unavailable,
        **{f: fields.values.get(f) for f in GPU_FIELDS},
    )


def probe_cpu_device() -> DeviceInfo:
    """The CPU as a device: model name and torch's intra-op thread count; GPU fields None."""
    import torch

    return DeviceInfo(
        index=0, backend="cpu", name=cpu_model() or platform.machine() or "cpu",
        host=host_name(), threads=torch.get_num_threads(),
        unavailable={f: "CPU backend" for f in GPU_FIELDS},
    )


def probe_host() -> dict[str, Any]:
    """Run-level facts, keyed by `results.schema.RunInfo` field names; never raises."""
    import torch

    import bench

    return {
        "host": host_name(),
        "cpu_model": cpu_model(),
        "os": _os_text(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "driver": _driver_version(),
        "nccl": _nccl_version(torch),
        "harness_version": bench.__version__,
        "git_commit": git_commit(Path(bench.__file__).resolve().parent.parent),
        "env": {k: v for k, v in sorted(os.environ.items())
                if k.startswith(_ENV_PREFIXES) or k in _ENV_NAMES},
    }


def cpu_model() -> str | None:
    """CPU model from /proc/cpuinfo ('model name'; ARM: implementer/part), else platform."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in info:
            info[key.strip()] = value.strip()
    for key in ("model name", "Model", "Hardware", "cpu model"):
        if info.get(key):
            return info[key]
    if "CPU part" in info:
        return (f"{platform.machine()} (implementer {info.get('CPU implementer', '?')}, "
                f"part {info['CPU part']})")
    return platform.processor() or platform.machine() or None


def git_commit(repo_dir: Path) -> str | None:
    """HEAD of `repo_dir` if it is the top of a git checkout (not merely inside one), else None."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo_dir), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2:
        return None
    top, head = lines
    try:
        if Path(top).resolve() != Path(repo_dir).resolve():
            return None  # e.g. an installed copy inside some other repository's venv
    except OSError:
        return None
    return head if len(head) == 40 else None


def host_name() -> str:
    """This host's name (the same string in DeviceInfo, RunInfo and distributed error messages)."""
    return socket.gethostname() or platform.node() or "unknown"


def _os_text() -> str:
    pretty = None
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                pretty = line.partition("=")[2].strip().strip('"')
    except OSError:
        pass
    return f"{pretty}; {platform.platform()}" if pretty else platform.platform()


def _driver_version() -> str | None:
    try:
        return _text(NVML.module().nvmlSystemGetDriverVersion())
    except Exception:
        return None


def _nccl_version(torch: Any) -> str | None:
    if torch.version.cuda is None:
        return None
    try:
        version = torch.cuda.nccl.version()
    except Exception:
        return None
    if isinstance(version, tuple):
        return ".".join(str(v) for v in version)
    if isinstance(version, int):  # old torch: NCCL_VERSION_CODE
        if version >= 10000:
            return f"{version // 10000}.{version // 100 % 100}.{version % 100}"
        return f"{version // 1000}.{version // 100 % 10}.{version % 100}"
    return str(version)
