"""The Intel XPU backend (`torch.xpu`, torch 2.13), next to bench.backend's CPU and CUDA/ROCm ones:
the second module that branches on device type. Written against the device-generic API where it
serves (`torch.Event(enable_timing=True)` on the device's current stream for sample timing,
`torch.xpu.synchronize`, `mem_get_info`), with the CUDA backend's sizes and budgets. XPU has no
telemetry provider here: telemetry is `none`, with the reason. Not run on hardware (docs/gpu.md)."""

from __future__ import annotations

import contextlib
import time
from typing import Any, ContextManager

import torch

from bench.sizing import flush_buffer_bytes

_MIB = 1 << 20


class XpuBackend:
    kind = "xpu"

    def __init__(self, index: int, xpu: Any = None, tables: tuple[Any, Any] | None = None) -> None:
        """`tables`: the CUDA backend's (budget, sizes) functions, which XPU shares (given by
        bench.backend.make_backend, so this module does not import it back)."""
        self.xpu = torch.xpu if xpu is None else xpu
        self._tables = tables
        self.device_index = index
        self.device = torch.device("xpu", index)
        self.properties = self.xpu.get_device_properties(index)
        self._flush_buffer: torch.Tensor | None = None

    @property
    def clock_name(self) -> str:
        return "xpu_event"

    def selected(self) -> ContextManager[None]:
        return self.xpu.device(self.device_index) if hasattr(self.xpu, "device") else contextlib.nullcontext()

    def synchronize(self) -> None:
        self.xpu.synchronize(self.device_index)

    def now(self) -> float:
        return time.perf_counter()

    def start_sample(self) -> tuple[Any, Any]:
        start, end = torch.Event(self.device, enable_timing=True), torch.Event(self.device, enable_timing=True)
        start.record(self.xpu.current_stream(self.device_index))
        return start, end

    def stop_sample(self, token: tuple[Any, Any]) -> float:
        start, end = token
        end.record(self.xpu.current_stream(self.device_index))
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    def queue_spin(self, cycles: int) -> None:
        return None  # no spin kernel on XPU: the launch gap stays in the region (docs/gpu.md)

    def cache_bytes(self) -> int:
        """torch's `last_level_cache_size` (torch 2.13's _XpuDeviceProperties), else the 256 MiB floor."""
        return int(getattr(self.properties, "last_level_cache_size", 0) or 256 * _MIB)

    def flush_bytes(self) -> int:
        return flush_buffer_bytes(self.cache_bytes(), 256 * _MIB, None)

    def flush_cache(self) -> None:
        if self._flush_buffer is None:
            self._flush_buffer = torch.empty(self.flush_bytes(), dtype=torch.uint8, device=self.device)
        self._flush_buffer.zero_()

    def total_memory_bytes(self) -> int:
        return int(self.properties.total_memory)

    def free_memory_bytes(self) -> int:
        free, _total = self.xpu.mem_get_info(self.device_index)
        return int(free)

    def matmul_edge_cap(self, precision: str) -> int | None:
        return None

    def budget(self, mode: str):
        if self._tables is None:
            raise RuntimeError("XpuBackend needs the CUDA backend's tables (bench.backend.make_backend)")
        return self._tables[0](self, mode)

    def sizes(self, mode: str):
        if self._tables is None:
            raise RuntimeError("XpuBackend needs the CUDA backend's tables (bench.backend.make_backend)")
        return self._tables[1](self, mode)

    def fp8_dtype(self) -> torch.dtype:
        return torch.float8_e4m3fn

    def precision_unsupported(self, precision: str) -> str | None:
        if precision in ("tf32", "fp8", "int8", "fp4"):
            return f"{precision} matmul is not implemented for Intel XPU in this tppbench version"
        return None
