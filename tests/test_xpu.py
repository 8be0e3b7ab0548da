"""Intel XPU selection and the XPU backend's control flow, on this CPU machine: `torch.xpu` is
replaced by a small stand-in (no XPU here); torch itself is real. docs/gpu.md lists what only an
XPU can confirm."""

from __future__ import annotations

import contextlib
import types

import pytest
import torch

from bench import backend as backend_module
from bench.probe import probe_xpu_device
from bench.telemetry import XPU_TELEMETRY_REASON, TelemetrySampler
from bench.xpu_backend import XpuBackend
from results.errors import UsageError


class FakeXpu:
    """The torch.xpu surface XpuBackend uses. Property names are torch 2.13's _XpuDeviceProperties
    (torch/_C/__init__.pyi); the values are made up for a Max 1550-like device. The mamf-finder
    XPU log the issue names (stas00/ml-engineering PR 107) was not found in the stored sources."""

    def __init__(self, available: bool = True) -> None:
        self.available, self.calls = available, []

    def is_available(self) -> bool:
        return self.available

    def device_count(self) -> int:
        return 1 if self.available else 0

    def get_device_properties(self, index):
        return types.SimpleNamespace(name="Intel(R) Data Center GPU Max 1550", total_memory=68_719_476_736,
                                     gpu_eu_count=448, max_compute_units=448, driver_version="1.3.27642",
                                     platform_name="Intel(R) Level-Zero", device_id=0x0BD5,
                                     last_level_cache_size=408 << 20)

    def synchronize(self, index=None) -> None:
        self.calls.append(("synchronize", index))

    def mem_get_info(self, index=None):
        return 60 << 30, 64 << 30

    def current_stream(self, index=None):
        return None

    @contextlib.contextmanager
    def device(self, index):
        self.calls.append(("device", index))
        yield


def test_auto_selects_xpu_only_without_cuda(monkeypatch):
    monkeypatch.setattr(torch, "xpu", FakeXpu(), raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    kind, note = backend_module.resolve_device("auto")
    assert kind == "xpu" and "Intel XPU" in note
    assert backend_module.resolve_device("xpu") == ("xpu", None)
    monkeypatch.setattr(torch, "xpu", FakeXpu(available=False), raising=False)
    assert backend_module.resolve_device("auto")[0] == "cpu"
    with pytest.raises(UsageError, match="no Intel XPU"):
        backend_module.resolve_device("xpu")


def test_xpu_backend_uses_the_device_generic_api_and_cuda_budgets():
    xpu = FakeXpu()
    b = XpuBackend(0, xpu=xpu, tables=(backend_module.CudaBackend.budget, backend_module.CudaBackend.sizes))
    assert b.device == torch.device("xpu", 0) and b.clock_name == "xpu_event"
    assert b.total_memory_bytes() == 68_719_476_736 and b.free_memory_bytes() == 60 << 30
    assert b.cache_bytes() == 408 << 20 and b.flush_bytes() == 1024 << 20  # 2 x the LLC, on the power-of-two MiB grid
    assert b.sizes("quick") == backend_module.CudaBackend.sizes(b, "quick")
    b.synchronize()
    assert xpu.calls == [("synchronize", 0)]
    assert "not implemented for Intel XPU" in b.precision_unsupported("fp8") and b.precision_unsupported("bf16") is None


def test_xpu_device_probe_and_telemetry_say_none():
    info = probe_xpu_device(0, FakeXpu())
    assert info.backend == "xpu" and info.name == "Intel(R) Data Center GPU Max 1550"
    assert info.memory_total_bytes == 68_719_476_736 and info.identity["gpu_eu_count"] == 448
    assert info.pci_device_id == "0x0bd58086"  # device << 16 | Intel's vendor id, as the catalog matcher reads it
    with TelemetrySampler(0, backend="xpu") as sampler:
        pass
    assert not sampler.telemetry.available and sampler.telemetry.reason == XPU_TELEMETRY_REASON
