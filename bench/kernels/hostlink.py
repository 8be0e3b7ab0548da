"""Host link (PCIe/C2C) bandwidth: host->device and device->host, pinned and pageable, and
simultaneous bidirectional traffic on two streams started together.

Conventions: one-direction cases count the bytes copied once; the bidirectional case counts the
sum of both directions (the buffer size each way, twice). Pinned cases are timed with CUDA
events; pageable copies are staged by the driver on the host, so they are timed on the host
clock around a synchronised copy (as bandwidthTest did). The bidirectional case holds both
streams behind a spin kernel until both copies are queued, then times start-to-last-finish.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from bench.backend import Backend
from bench.measurement import measured, not_run
from bench.registry import Case, register
from bench.timing import SPIN_BEFORE_TWO_STREAMS_CYCLES, measure

METHOD_VERSION = 1

VARIANTS = {
    "h2d_pinned": "bytes copied host->device once per call (pinned host buffer)",
    "d2h_pinned": "bytes copied device->host once per call (pinned host buffer)",
    "h2d_pageable": "bytes copied host->device once per call (pageable host buffer; host-clock timed)",
    "d2h_pageable": "bytes copied device->host once per call (pageable host buffer; host-clock timed)",
    "bidirectional_pinned": "sum of both directions: buffer bytes each way, started together on two streams",
}


class HostLinkBenchmark:
    name = "hostlink"

    def cases(self, backend: Backend, mode: str) -> list[Case]:
        size = backend.sizes(mode).hostlink_bytes
        return [Case("hostlink", v, {"bytes": size}) for v in VARIANTS]

    def run(self, case: Case, backend: Backend, mode: str):
        if backend.kind != "cuda":
            return not_run(case, backend.device_index, "skipped",
                           "no host link: the CPU backend has no separate device memory",
                           unit="byte", convention=VARIANTS[case.variant])
        size = int(case.params["bytes"])
        pinned = case.variant.endswith("pinned")
        gen = torch.Generator(device=backend.device)
        gen.manual_seed(size)
        device_src = torch.randint(0, 256, (size,), dtype=torch.uint8, device=backend.device, generator=gen)
        host_src = device_src.cpu().pin_memory() if pinned else device_src.cpu()
        host_dst = torch.empty(size, dtype=torch.uint8, pin_memory=pinned)
        device_dst = torch.empty(size, dtype=torch.uint8, device=backend.device)
        work = float(size)
        clock = None
        fn: Callable[[], object]
        if case.variant == "h2d_pinned":
            fn = lambda: device_dst.copy_(host_src, non_blocking=True)
        elif case.variant == "d2h_pinned":
            fn = lambda: host_dst.copy_(device_src, non_blocking=True)
        elif case.variant in ("h2d_pageable", "d2h_pageable"):
            copy = (lambda: device_dst.copy_(host_src)) if case.variant.startswith("h2d") else (
                lambda: host_dst.copy_(device_src))
            fn, clock = _host_timed(copy, backend), "perf_counter"
        else:
            fn, clock = _bidirectional(device_dst, host_src, host_dst, device_src), "cuda_event"
            work = 2.0 * size
        times_s, timing = measure(fn, backend, backend.budget(mode), flush_cache=False,
                                  self_timed_clock=clock)
        backend.synchronize()
        problem = _verify(case.variant, host_src, device_dst, device_src, host_dst)
        return measured(case, backend.device_index, times_s=times_s, timing=timing,
                        work_per_call=work, unit="byte", convention=VARIANTS[case.variant],
                        method_version=METHOD_VERSION, check_error=problem,
                        extra={"pinned": pinned})


def _host_timed(copy: Callable[[], object], backend: Backend) -> Callable[[], float]:
    def fn() -> float:
        backend.synchronize()
        start = time.perf_counter()
        copy()
        backend.synchronize()
        return time.perf_counter() - start
    return fn


def _bidirectional(device_dst, host_src, host_dst, device_src) -> Callable[[], float]:
    """Both streams belong to the buffers' GPU (not whichever device happens to be current): the
    copies run on the stream that is current *for that GPU*, so each copy is issued inside its
    stream's context."""
    device = device_dst.device
    main = torch.cuda.current_stream(device)
    other = torch.cuda.Stream(device=device)

    def fn() -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(main):
            torch.cuda._sleep(SPIN_BEFORE_TWO_STREAMS_CYCLES)  # holds the main stream until both copies are queued
        start.record(main)
        other.wait_event(start)
        with torch.cuda.stream(other):
            host_dst.copy_(device_src, non_blocking=True)
        with torch.cuda.stream(main):
            device_dst.copy_(host_src, non_blocking=True)
        main.wait_stream(other)
        end.record(main)
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    return fn


def _verify(variant, host_src, device_dst, device_src, host_dst) -> str | None:
    if variant.startswith("h2d") or variant.startswith("bidirectional"):
        if not torch.equal(device_dst.cpu(), host_src):
            return "device buffer differs from the host source after host->device copies"
    if variant.startswith("d2h") or variant.startswith("bidirectional"):
        if not torch.equal(host_dst, device_src.cpu()):
            return "host buffer differs from the device source after device->host copies"
    return None


register(HostLinkBenchmark())
