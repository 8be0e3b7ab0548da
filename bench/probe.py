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
from typing import Any

from bench.nvml import (  # noqa: F401 - NVML, NvmlSession, nvml_shutdown re-exported
    NVML,
    FieldReader,
    NvmlSession,
    NvmlUnavailable,
    driver_version,
    error_text,
    nvml_shutdown,
    mig_parent,
    read_device_fields,
    read_mig_instance,
    torch_cuda_props,
    torch_pci_bus_id,
    torch_uuid,
)
from bench.identity import cpu_identity
from bench.nvml.identity import read_identity, unavailable_identity
from results.files.schema import DeviceInfo

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

_ENV_PREFIXES = ("NCCL_", "TORCH_", "PYTORCH_", "CUBLAS_", "CUDNN_")
_ENV_NAMES = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER",
              "CUDA_LAUNCH_BLOCKING",
              "NVIDIA_TF32_OVERRIDE", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _read_torch(fields: FieldReader, props: Any, reason: str | None) -> None:
    torch_fields = ("compute_capability", "sm_count", "memory_total_bytes", "l2_cache_bytes")
    if props is None:
        for f in torch_fields:
            fields.miss(f, reason or "torch: no device properties")
        return
    fields.read("compute_capability", lambda: compute_capability(props), "torch")
    fields.read("sm_count", lambda: int(props.multi_processor_count), "torch")
    fields.read("memory_total_bytes", lambda: int(props.total_memory), "torch")
    fields.read("l2_cache_bytes", lambda: int(props.L2_cache_size), "torch")


def compute_capability(props: Any, hip_version: str | None = None) -> str:
    """CUDA's major.minor; on ROCm the gfx architecture (gcnArchName, e.g. "gfx942:sramecc+:xnack-"),
    since HIP's major.minor (9.4 for gfx942) is not a CUDA compute capability and would match the
    wrong derivation row."""
    import torch

    hip = hip_version if hip_version is not None else getattr(torch.version, "hip", None)
    arch = getattr(props, "gcnArchName", None)
    return str(arch) if hip and arch else f"{props.major}.{props.minor}"


def _read_torch_fallbacks(fields: FieldReader, props: Any) -> None:
    """Fields NVML answers first; torch fills them in when NVML could not."""
    if props is None:
        return
    fields.read("name", lambda: str(props.name), "torch")
    fields.read("uuid", lambda: torch_uuid(props), "torch")
    fields.read("pci_bus_id", lambda: torch_pci_bus_id(props), "torch")


# --------------------------------------------------------------------------- public probes


def probe_cuda_device(index: int, torch_props: Any = None) -> DeviceInfo:
    """Everything torch and NVML can tell about `cuda:<index>`; never raises.

    `torch_props` is `torch.cuda.get_device_properties(index)` when the caller has it already."""
    props, torch_reason = (torch_props, None) if torch_props is not None else torch_cuda_props(index)
    fields = FieldReader()
    _read_torch(fields, props, torch_reason)
    if hip_version():
        return _probe_rocm_device(index, props, fields)
    try:
        nvml = NVML.module()
        handle = NVML.handle(index, props)
    except NvmlUnavailable as exc:
        for f in ("name", *GPU_FIELDS):
            if f not in _TORCH_ONLY:
                fields.miss(f, str(exc))
        identity = unavailable_identity(str(exc))
    else:
        parent = mig_parent(nvml, handle)
        if parent is not None:  # a MIG instance: recorded as the instance, not as its parent GPU
            read_mig_instance(fields, nvml, handle, parent)
        else:
            read_device_fields(fields, nvml, handle)
        identity = read_identity(nvml, parent if parent is not None else handle)
    _read_torch_fallbacks(fields, props)
    name = fields.values.pop("name", None) or f"cuda:{index}"
    unavailable = fields.unavailable()
    unavailable.pop("name", None)
    return DeviceInfo(
        index=index, backend="cuda", name=name, host=host_name(), unavailable=unavailable,
        identity=identity, **{f: fields.values.get(f) for f in GPU_FIELDS},
    )


def hip_version() -> str | None:
    """torch's HIP version on a ROCm build (torch.version.hip), else None."""
    import torch

    return getattr(torch.version, "hip", None) or None


def _probe_rocm_device(index: int, props: Any, fields: FieldReader) -> DeviceInfo:
    """An AMD GPU under ROCm: torch's facts, identity and the PCI id from amdsmi (no NVML)."""
    from bench.amdsmi import AMDSMI, AmdsmiUnavailable, amdsmi_identity

    try:
        handle = AMDSMI.handle(torch_pci_bus_id(props), torch_uuid(props))
        identity = amdsmi_identity(AMDSMI.module(), handle)
    except AmdsmiUnavailable as exc:
        identity = unavailable_identity(str(exc))
    for name in ("pci_device_id", "pci_bus_id", "uuid"):
        value = identity.get(name)
        if isinstance(value, str) and value and not value.startswith("unavailable") and value != "Not Supported":
            fields.values.setdefault(name, value)
    _read_torch_fallbacks(fields, props)
    for f in GPU_FIELDS:
        if f not in fields.values:
            fields.miss(f, "ROCm: not read (no NVML on AMD GPUs; amdsmi gives the identity)")
    name = fields.values.pop("name", None) or f"cuda:{index}"
    unavailable = fields.unavailable()
    unavailable.pop("name", None)
    return DeviceInfo(index=index, backend="cuda", name=name, host=host_name(), unavailable=unavailable,
                      identity=identity, **{f: fields.values.get(f) for f in GPU_FIELDS})


def probe_xpu_device(index: int, xpu: Any = None) -> DeviceInfo:
    """An Intel XPU: what torch.xpu's device properties give; no vendor library is read."""
    import torch

    xpu = xpu if xpu is not None else torch.xpu
    try:
        props = xpu.get_device_properties(index)
    except Exception as exc:
        props, reason = None, f"torch.xpu: {type(exc).__name__}: {exc}"
    else:
        reason = "Intel XPU: not read (no telemetry provider)"
    name = str(getattr(props, "name", "") or f"xpu:{index}")
    total = getattr(props, "total_memory", None)
    why = {f: reason for f in GPU_FIELDS}
    if isinstance(total, int):
        why.pop("memory_total_bytes")
    identity = {"source": "none", "serial": f"unavailable: {reason}",
                **{k: getattr(props, k) for k in ("driver_version", "gpu_eu_count", "max_compute_units",
                                                    "platform_name") if props is not None and hasattr(props, k)}}
    device_id = getattr(props, "device_id", None)
    pci = "0x%04x8086" % device_id if isinstance(device_id, int) else None  # Intel's PCI vendor id
    if pci:
        why.pop("pci_device_id")
    return DeviceInfo(index=index, backend="xpu", name=name, host=host_name(), unavailable=why, identity=identity,
                      memory_total_bytes=total if isinstance(total, int) else None, pci_device_id=pci)


def rocm_version() -> str | None:
    """The ROCm release ($ROCM_PATH or /opt/rocm, .info/version), None where there is none."""
    for root in (os.environ.get("ROCM_PATH"), os.environ.get("ROCM_HOME"), "/opt/rocm"):
        if root:
            try:
                return (Path(root) / ".info" / "version").read_text().strip() or None
            except OSError:
                continue
    return None


def probe_cpu_device() -> DeviceInfo:
    """The CPU as a device: model name and torch's intra-op thread count; GPU fields None."""
    import torch

    return DeviceInfo(
        index=0, backend="cpu", name=cpu_model() or platform.machine() or "cpu",
        host=host_name(), threads=torch.get_num_threads(),
        unavailable={f: "CPU backend" for f in GPU_FIELDS}, identity=cpu_identity(),
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
        "hip": getattr(torch.version, "hip", None) or None,
        "rocm": rocm_version() if getattr(torch.version, "hip", None) else None,
        "driver": driver_version(),
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
