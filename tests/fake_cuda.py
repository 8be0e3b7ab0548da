"""A recording stand-in for the few `torch.cuda` objects the timing code touches.

This machine has no GPU, so the CUDA control flow of `CudaBackend` and `bench.timing` (which
stream an event is recorded on, what is queued before the start event, where the host waits,
which device is current) is checked against this fake: every call is appended to `log` as a
`Call(what, device, stream)` where `device` is the device current at the call and `stream` the
stream involved (named "<device>/default" or "<device>/side<N>"). Time is a synthetic clock `t`
(seconds) that the test's "kernel" advances; an event records `t` when recorded.

It checks ordering and placement only: what a real GPU does with that order (e.g. that a spin
kernel really hides the launch gap) is for the GPU tests and `scripts/gpu-check.sh`.
"""

from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass
from typing import Iterator

import torch


@dataclass(frozen=True)
class Call:
    what: str  # "record", "event_synchronize", "synchronize", "spin", "flush", "call", ...
    device: int  # the current device when the call was made
    stream: str | None = None  # the stream it concerns ("1/default")
    detail: object = None


class FakeStream:
    def __init__(self, device: int, name: str) -> None:
        self.device = torch.device("cuda", device)
        self.index = device
        self.name = f"{device}/{name}"


class FakeEvent:
    def __init__(self, cuda: FakeCuda, enable_timing: bool) -> None:
        self.cuda = cuda
        self.enable_timing = enable_timing
        self.t: float | None = None
        self.stream: FakeStream | None = None

    def record(self, stream: FakeStream | None = None) -> None:
        stream = stream or self.cuda.current_stream()
        self.t, self.stream = self.cuda.t, stream
        self.cuda.note("record", stream, detail=id(self))

    def synchronize(self) -> None:
        self.cuda.note("event_synchronize", self.stream, detail=id(self))

    def query(self) -> bool:
        return True

    def elapsed_time(self, end: FakeEvent) -> float:
        assert self.t is not None and end.t is not None, "elapsed_time on an event never recorded"
        assert self.stream is not None and end.stream is not None
        assert self.stream.index == end.stream.index, "events of two devices compared"
        return (end.t - self.t) * 1e3  # milliseconds, as torch.cuda.Event


class FakeCuda:
    """Stands in for `torch.cuda` inside `CudaBackend(index, cuda=FakeCuda())`."""

    def __init__(self, device_count: int = 2, *, free_bytes: int = 80 << 30, reserved_bytes: int = 0,
                 allocated_bytes: int = 0) -> None:
        self.count = device_count
        self.log: list[Call] = []
        self.t = 0.0
        self.current_device = 0
        self._current_stream = {i: FakeStream(i, "default") for i in range(device_count)}
        self._side = 0
        self.free_bytes = free_bytes
        self.reserved_bytes = reserved_bytes
        self.allocated_bytes = allocated_bytes

    # ---------------------------------------------------------------- recording
    def note(self, what: str, stream: FakeStream | None = None, detail: object = None) -> None:
        self.log.append(Call(what, self.current_device, stream.name if stream else None, detail))

    def whats(self) -> list[str]:
        return [c.what for c in self.log]

    # ---------------------------------------------------------------- the torch.cuda surface
    def _index(self, device: object) -> int:
        if device is None:
            return self.current_device
        if isinstance(device, int):
            return device
        index = torch.device(device).index
        return self.current_device if index is None else index

    def get_device_properties(self, device: object) -> types.SimpleNamespace:
        return types.SimpleNamespace(name="Fake H100", major=9, minor=0, L2_cache_size=50 << 20,
                                     multi_processor_count=132, total_memory=80 << 30)

    @contextlib.contextmanager
    def device(self, device: object) -> Iterator[None]:
        previous, self.current_device = self.current_device, self._index(device)
        try:
            yield
        finally:
            self.current_device = previous

    def synchronize(self, device: object = None) -> None:
        self.log.append(Call("synchronize", self.current_device, None, self._index(device)))

    def current_stream(self, device: object = None) -> FakeStream:
        return self._current_stream[self._index(device)]

    def Stream(self, device: object = None) -> FakeStream:  # noqa: N802 - torch's name
        self._side += 1
        return FakeStream(self._index(device), f"side{self._side}")

    @contextlib.contextmanager
    def stream(self, stream: FakeStream) -> Iterator[None]:
        """Like torch.cuda.stream: the stream's device is current inside, and the stream is
        that device's current stream."""
        previous_device = self.current_device
        previous_stream = self._current_stream[stream.index]
        self.current_device = stream.index
        self._current_stream[stream.index] = stream
        try:
            yield
        finally:
            self._current_stream[stream.index] = previous_stream
            self.current_device = previous_device

    def Event(self, enable_timing: bool = False) -> FakeEvent:  # noqa: N802 - torch's name
        return FakeEvent(self, enable_timing)

    def _sleep(self, cycles: int) -> None:
        self.note("spin", self.current_stream(), detail=cycles)

    def mem_get_info(self, device: object = None) -> tuple[int, int]:
        return self.free_bytes, 80 << 30

    def memory_reserved(self, device: object = None) -> int:
        return self.reserved_bytes

    def memory_allocated(self, device: object = None) -> int:
        return self.allocated_bytes


class RecordingFlush:
    """Stands in for CudaBackend's L2-flush buffer (a device tensor): `zero_()` is logged on the
    device's current stream."""

    def __init__(self, cuda: FakeCuda) -> None:
        self.cuda = cuda

    def zero_(self) -> None:
        self.cuda.note("flush", self.cuda.current_stream())
