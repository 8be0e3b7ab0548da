"""The device seam: with bench.xpu_backend (Intel XPU), the only module that branches on device type.

A Backend gives the timing loop and the kernels what differs between a CUDA GPU and the CPU
fallback: device placement, synchronisation, a sample timer (CUDA events or perf_counter), the
cache flush, the memory available for buffers, per-mode budgets, and which precisions can run.
Kernels are written once against `backend.device`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, ContextManager, Protocol

import torch

from bench.modes import MODES  # noqa: F401 - re-exported
from bench.host_facts import (cgroup_memory_limit_bytes as _cgroup_memory_limit_bytes,  # noqa: F401
                               cpu_llc_bytes as _cpu_llc_bytes, host_free_memory_bytes,
                               meminfo_bytes as _meminfo_bytes)
from bench.sizing import flush_buffer_bytes


@dataclass(frozen=True)
class Budget:
    """Time budgets for one case, in seconds (do_bench style: budgets, not counts)."""

    warmup_s: float  # per-case warm-up
    measure_s: float  # target time spent in timed samples
    max_case_s: float  # hard cap on one case's warm-up + samples, whatever a call costs
    min_samples: int
    max_samples: int
    min_sample_s: float  # a sample batches calls until it lasts at least this long


@dataclass(frozen=True)
class ModeSizes:
    matmul_mnk: int  # reference shape edge (m = n = k)
    sweep_shapes: tuple[tuple[int, int, int], ...]  # full-mode shape sweep (m, n, k)
    memory_bytes: int  # per-buffer minimum; raised to 8x the cache on a power-of-two MiB grid (bench.sizing)
    hostlink_bytes: int
    global_warmup_s: float  # once per device before the first case (steady clocks)
    memory_max_bytes: int | None = None  # per-buffer cap (one torch call's cost); below 8x cache is flagged


class Backend(Protocol):
    kind: str
    device: torch.device
    device_index: int | None

    def selected(self) -> ContextManager[None]: ...
    def synchronize(self) -> None: ...
    def now(self) -> float: ...
    def start_sample(self) -> Any: ...
    def stop_sample(self, token: Any) -> float: ...
    def flush_cache(self) -> None: ...
    def queue_spin(self, cycles: int) -> None: ...
    def cache_bytes(self) -> int: ...
    def flush_bytes(self) -> int: ...
    def total_memory_bytes(self) -> int: ...
    def free_memory_bytes(self) -> int: ...
    def matmul_edge_cap(self, precision: str) -> int | None: ...
    def budget(self, mode: str) -> Budget: ...
    def sizes(self, mode: str) -> ModeSizes: ...
    def precision_unsupported(self, precision: str) -> str | None: ...
    def fp8_dtype(self) -> torch.dtype: ...
    @property
    def clock_name(self) -> str: ...


# Curated full-mode sweeps: square shapes around the reference plus mamf-finder's published best
# shapes for H100/H200/B200 (benchmark-anchors.md section 3), so "achievable" is a real search.
_CUDA_SWEEP = (
    (4096, 4096, 4096),
    (6144, 6144, 6144),
    (12288, 12288, 12288),
    (16384, 16384, 16384),
    (2048, 2048, 13312),
    (1024, 9216, 14336),
    (1280, 4096, 12032),
    (15360, 4096, 3072),
    (8192, 8192, 16384),  # the best int8 shape measured on an H100 SXM5 (issue 8)
)
_CPU_SWEEP = ((256, 256, 256), (512, 512, 512), (1024, 1024, 2048), (2048, 2048, 2048))
# The lab procedure's mode (results/verification/procedures/lab.toml, not a --mode choice): quick
# budgets with a short achievable-max sweep, so the whole procedure stays bounded in time.
_CPU_LAB_SWEEP = ((512, 512, 512), (1024, 1024, 2048))
_CUDA_LAB_SWEEP = ((4096, 4096, 4096), (16384, 16384, 16384), (2048, 2048, 13312), (1024, 9216, 14336))

_MIB = 1 << 20

# Precisions the CPU backend has no native kernel for: torch emulates them (measured on 2-core VMs:
# fp16 1-3 GFLOP/s; fp8 49 MFLOP/s on a current Xeon, where one 1024^3 call took 43 s). Their
# shapes are scaled down until m*n*k <= edge^3 -- a rule of backend and dtype, never of timing, so
# the keys stay the same from run to run -- and one call stays well under a second or two.
CPU_EMULATED_MATMUL_EDGE = {"fp16": 256, "fp8": 256}
# The CPU cache flush writes 2x the LLC, but at most this much per sample: a larger flush would cost
# more than the samples it separates (on a 480 MiB-LLC VM, 1 GiB per sample). Recorded per case.
_CPU_FLUSH_CAP = 64 * _MIB


class CpuBackend:
    """CPU fallback: host timer around each sample, LLC flushed by writing a large buffer."""

    kind = "cpu"
    device_index = None

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self._flush_buffer: torch.Tensor | None = None

    @property
    def clock_name(self) -> str:
        return "perf_counter"

    def selected(self) -> ContextManager[None]:
        return contextlib.nullcontext()

    def synchronize(self) -> None:
        return None

    def now(self) -> float:
        return time.perf_counter()

    def start_sample(self) -> float:
        return time.perf_counter()

    def stop_sample(self, token: float) -> float:
        return time.perf_counter() - token

    def cache_bytes(self) -> int:
        return _cpu_llc_bytes()

    def flush_bytes(self) -> int:
        return flush_buffer_bytes(self.cache_bytes(), _MIB, _CPU_FLUSH_CAP)

    def flush_cache(self) -> None:
        if self._flush_buffer is None:
            self._flush_buffer = torch.empty(self.flush_bytes(), dtype=torch.uint8)
        self._flush_buffer.fill_(1)

    def queue_spin(self, cycles: int) -> None:
        return None  # the host clock starts when the host starts the call: no launch gap to hide

    def total_memory_bytes(self) -> int:
        """MemTotal, or the cgroup's memory limit where that is lower (a container's static size)."""
        total = _meminfo_bytes("MemTotal:") or 16 << 30
        limit = _cgroup_memory_limit_bytes()
        return min(total, limit) if limit else total

    def free_memory_bytes(self) -> int:
        return host_free_memory_bytes()

    def matmul_edge_cap(self, precision: str) -> int | None:
        return CPU_EMULATED_MATMUL_EDGE.get(precision)

    def fp8_dtype(self) -> torch.dtype:
        return torch.float8_e4m3fn

    def budget(self, mode: str) -> Budget:
        return {
            "smoke": Budget(0.02, 0.10, 1.0, 3, 30, 1e-3),
            "quick": Budget(0.10, 0.50, 4.0, 5, 200, 2e-3),
            "lab": Budget(0.10, 0.50, 4.0, 5, 200, 2e-3),
            "full": Budget(0.50, 2.00, 15.0, 10, 1000, 2e-3),
        }[mode]

    def sizes(self, mode: str) -> ModeSizes:
        return {
            # Smoke and quick cap a buffer at 256 MiB: one torch.rand or float64 check of it takes
            # about 0.6-0.8 s on 2 cores, so no call runs past ~2 s and Ctrl-C is answered at once.
            "smoke": ModeSizes(256, (), 16 * _MIB, 64 * _MIB, 0.0, 256 * _MIB),
            "quick": ModeSizes(1024, (), 64 * _MIB, 256 * _MIB, 0.0, 256 * _MIB),
            "lab": ModeSizes(1024, _CPU_LAB_SWEEP, 64 * _MIB, 256 * _MIB, 0.0, 256 * _MIB),
            "full": ModeSizes(1024, _CPU_SWEEP, 256 * _MIB, 512 * _MIB, 0.0, None),
        }[mode]

    def precision_unsupported(self, precision: str) -> str | None:
        if precision == "tf32":
            return "TF32 is a CUDA tensor-core mode; the CPU backend has no TF32 matmul"
        if precision == "fp4":
            return "fp4 matmul needs a CUDA device of compute capability 10.0 or newer"
        return None


class CudaBackend:
    """One CUDA device: per-sample CUDA events on this device's current stream, 256 MiB L2 flush.

    Constructing one does not change torch's current device (several are made at planning);
    the runner makes the device current with `selected()` while its cases run, so work that uses
    the current device or stream (events, `torch.cuda.Stream()`, `torch.cuda._sleep`) lands on it.

    Every `torch.cuda` call goes through `self.cuda` (torch.cuda itself): the CPU tests of the CUDA
    control flow pass a recording stand-in there (tests/fake_cuda.py)."""

    kind = "cuda"

    def __init__(self, index: int, cuda: Any = None, hip_version: str | None = None) -> None:
        self.cuda = torch.cuda if cuda is None else cuda
        self.device_index = index
        self.device = torch.device("cuda", index)
        self.properties = self.cuda.get_device_properties(self.device)
        self._flush_buffer: torch.Tensor | None = None
        self._spin_scale: float | None = None
        # A ROCm build maps torch.cuda to HIP: its major.minor are not CUDA compute capabilities
        # (gfx942 reports 9.4, gfx90a 9.0), so the gates below read the gfx architecture instead.
        self.hip_version = hip_version if hip_version is not None else getattr(torch.version, "hip", None)
        self.gfx_arch = (str(getattr(self.properties, "gcnArchName", "") or "").split(":")[0] or None
                         if self.hip_version else None)

    @property
    def clock_name(self) -> str:
        return "cuda_event"

    def selected(self) -> ContextManager[None]:
        return self.cuda.device(self.device)

    def synchronize(self) -> None:
        self.cuda.synchronize(self.device)

    def now(self) -> float:
        return time.perf_counter()

    def start_sample(self) -> tuple[Any, Any]:
        start = self.cuda.Event(enable_timing=True)
        end = self.cuda.Event(enable_timing=True)
        start.record(self.cuda.current_stream(self.device))  # this GPU's stream, whatever is current
        return start, end

    def stop_sample(self, token: tuple[Any, Any]) -> float:
        start, end = token
        end.record(self.cuda.current_stream(self.device))
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    def queue_spin(self, cycles: int) -> None:
        """A spin kernel on this GPU's current stream (the stream the sample's events use). `cycles`
        are SM cycles at SPIN_REFERENCE_HZ; on ROCm `_sleep` counts the clock64 timer instead, so
        the count is scaled by a once-measured rate (`spin_scale`)."""
        with self.cuda.stream(self.cuda.current_stream(self.device)):
            self.cuda._sleep(max(1, int(cycles * self.spin_scale())))

    def spin_scale(self) -> float:
        """1.0 on CUDA; on ROCm the timer's measured rate / SPIN_REFERENCE_HZ (events around a spin)."""
        if self._spin_scale is None:
            self._spin_scale = 1.0
            if self.hip_version:
                start, end = self.cuda.Event(enable_timing=True), self.cuda.Event(enable_timing=True)
                stream = self.cuda.current_stream(self.device)
                start.record(stream)
                with self.cuda.stream(stream):
                    self.cuda._sleep(SPIN_CALIBRATION_CYCLES)
                end.record(stream)
                end.synchronize()
                seconds = start.elapsed_time(end) / 1e3
                if seconds > 0:
                    self._spin_scale = (SPIN_CALIBRATION_CYCLES / seconds) / SPIN_REFERENCE_HZ
        return self._spin_scale

    def cache_bytes(self) -> int:
        return int(getattr(self.properties, "L2_cache_size", 0) or 50 * _MIB)

    def largest_cache_bytes(self) -> int:
        """The largest on-package cache: the L2, or on CDNA 3/4 (gfx942, gfx950) the 256 MB Infinity
        Cache, which torch does not report (its L2_cache_size is one XCD's 4 MB)."""
        return max(self.cache_bytes(), ROCM_INFINITY_CACHE_BYTES.get(self.gfx_arch or "", 0))

    def flush_bytes(self) -> int:
        # triton.testing.do_bench / mamf-finder: a 256 MiB buffer, or 2x a larger cache.
        return flush_buffer_bytes(self.largest_cache_bytes(), 256 * _MIB, None)

    def flush_cache(self) -> None:
        if self._flush_buffer is None:
            self._flush_buffer = torch.empty(self.flush_bytes(), dtype=torch.uint8, device=self.device)
        self._flush_buffer.zero_()

    def total_memory_bytes(self) -> int:
        return int(self.properties.total_memory)

    def matmul_edge_cap(self, precision: str) -> int | None:
        return None

    def free_memory_bytes(self) -> int:
        """Free device memory plus what this process's caching allocator holds without using it
        (reserved minus allocated): earlier cases' blocks are free for the next one."""
        free, _total = self.cuda.mem_get_info(self.device)
        cached = self.cuda.memory_reserved(self.device) - self.cuda.memory_allocated(self.device)
        return int(free) + max(int(cached), 0)

    def budget(self, mode: str) -> Budget:
        return {
            "smoke": Budget(0.02, 0.05, 0.5, 3, 20, 1e-4),
            "quick": Budget(0.05, 0.25, 2.0, 10, 200, 1e-4),
            "lab": Budget(0.05, 0.25, 2.0, 10, 200, 1e-4),
            "full": Budget(0.25, 1.00, 10.0, 30, 2000, 1e-4),
        }[mode]

    def sizes(self, mode: str) -> ModeSizes:
        return {
            "smoke": ModeSizes(2048, (), 256 * _MIB, 64 * _MIB, 0.0, 512 * _MIB),
            "quick": ModeSizes(8192, (), 1024 * _MIB, 256 * _MIB, 2.0, 4096 * _MIB),
            "lab": ModeSizes(8192, _CUDA_LAB_SWEEP, 1024 * _MIB, 256 * _MIB, 5.0, 4096 * _MIB),
            "full": ModeSizes(8192, _CUDA_SWEEP, 2048 * _MIB, 512 * _MIB, 10.0, 8192 * _MIB),
        }[mode]

    def fp8_dtype(self) -> torch.dtype:
        """The fp8 (e4m3) format this device computes in: OCP e4m3fn on CUDA and gfx950; gfx942
        (MI300X/MI325X) has its own e4m3fnuz (max 240), not the OCP one."""
        return ROCM_FP8_DTYPES.get(self.gfx_arch or "", torch.float8_e4m3fn) if self.hip_version else torch.float8_e4m3fn

    def precision_unsupported(self, precision: str) -> str | None:
        if self.hip_version:
            return self._rocm_precision_unsupported(precision)
        major, minor = self.properties.major, self.properties.minor
        if precision == "fp8" and (major, minor) < (8, 9):
            return f"fp8 matmul needs compute capability 8.9 or newer; this device is {major}.{minor}"
        if precision == "fp4":
            if major < 10:
                return f"fp4 matmul needs compute capability 10.0 or newer; this device is {major}.{minor}"
            return "fp4 (block-scaled) matmul is not implemented in this tppbench version"
        if precision in ("bf16", "tf32") and major < 8:
            return f"{precision} matmul needs compute capability 8.0 or newer; this device is {major}.{minor}"
        return None


    def _rocm_precision_unsupported(self, precision: str) -> str | None:
        arch = self.gfx_arch or "an unknown gfx architecture"
        if precision == "fp8" and self.gfx_arch not in ROCM_FP8_DTYPES:
            return (f"fp8 matmul on ROCm needs gfx942 (e4m3fnuz) or gfx950 (e4m3fn); this device is {arch} "
                    f"(HIP {self.hip_version})")
        if precision == "tf32":
            return f"TF32 is a CUDA tensor-core mode; ROCm's xf32 is not measured by this version ({arch})"
        if precision == "fp4":
            return f"fp4 matmul is not implemented for ROCm in this tppbench version ({arch})"
        return None


# The fp8 e4m3 format per ROCm gfx architecture (triton-lang/triton PR 7186: "gfx942 has its own
# FP8 variants, not the OCP ones ... starting gfx950, we switch to OCP FP8").
ROCM_FP8_DTYPES = {"gfx942": torch.float8_e4m3fnuz, "gfx950": torch.float8_e4m3fn}
# MI300X/MI325X (gfx942) and MI350/MI355X (gfx950): 256 MB AMD Infinity Cache (next-capabilities.md §2)
ROCM_INFINITY_CACHE_BYTES = {"gfx942": 256 * _MIB, "gfx950": 256 * _MIB}
SPIN_REFERENCE_HZ = 1.8e9  # the SM clock bench.timing's spin counts assume (CUDA: _sleep counts SM cycles)
SPIN_CALIBRATION_CYCLES = 10_000_000


def xpu_available() -> bool:
    xpu = getattr(torch, "xpu", None)
    try:
        return bool(xpu is not None and xpu.is_available())
    except Exception:
        return False


def resolve_device(requested: str) -> tuple[str, str | None]:
    """Map --device auto|cuda|xpu|cpu to a backend kind, with the one-line note `auto` prints."""
    if requested == "cpu":
        return "cpu", None
    if requested == "xpu":
        if not xpu_available():
            from results.errors import UsageError

            raise UsageError(f"--device xpu: no Intel XPU is available to torch (torch {torch.__version__})")
        return "xpu", None
    available = torch.cuda.is_available()
    if requested == "cuda":
        if not available:
            from results.errors import UsageError

            raise UsageError("--device cuda: no CUDA device is available to torch "
                             f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'})")
        return "cuda", None
    if available:
        return "cuda", f"device auto: using CUDA ({torch.cuda.device_count()} visible GPU(s))"
    if requested == "auto" and xpu_available():
        return "xpu", f"device auto: using Intel XPU ({torch.xpu.device_count()} visible device(s))"
    return "cpu", "device auto: no CUDA device visible to torch; using the CPU fallback"


def make_backend(kind: str, index: int = 0) -> Backend:
    if kind == "xpu":
        from bench.xpu_backend import XpuBackend

        return XpuBackend(index, tables=(CudaBackend.budget, CudaBackend.sizes))
    return CudaBackend(index) if kind == "cuda" else CpuBackend()
