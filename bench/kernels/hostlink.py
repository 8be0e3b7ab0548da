"""Host link (PCIe/C2C) bandwidth: host->device and device->host, pinned and pageable, and
simultaneous bidirectional traffic on two streams started together.

Conventions: one-direction cases count the bytes copied once; the bidirectional case counts the
sum of both directions (the buffer size each way, twice). Pinned cases are timed with CUDA
events; pageable copies are staged by the driver on the host, so they are timed on the host
clock around a synchronised copy (as bandwidthTest did). The bidirectional case holds both
streams behind a spin kernel until both copies are queued, then times start-to-last-finish.

Every case runs on the CPUs local to the measured GPU (NVML's CPU affinity, `bench.placement`),
with its pinned buffers allocated after the binding; the record keeps `cpu_set` and `numa_node`.

`h2d_pinned_all_gpus` is `h2d_pinned` measured on every selected GPU at the same time (one rank per
GPU, started together): each GPU's record is its own rate under that load, and `derive` adds
`h2d_pinned_all_gpus_total` per host = the sum of those medians -- the host-to-device bandwidth the
node's PCIe switches and CPU sockets give all GPUs at once -- with how well the GPUs' measuring
windows overlapped (`window_overlap`, flagged `partial_overlap` under 0.9). It is planned only when
several GPUs are measured at once (not with --sequential or one GPU).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Sequence

import torch

from bench.backend import Backend, host_free_memory_bytes
from bench.measurement import measured, not_run
from bench.sizing import does_not_fit
from bench.placement import Placement, bound, gpu_local_placement, pages_by_node
from results.files.schema import Measurement
from bench.registry import Case, register
from bench.timing import SPIN_BEFORE_TWO_STREAMS_CYCLES, measure

METHOD_VERSION = 1

VARIANTS = {
    "h2d_pinned": "bytes copied host->device once per call (pinned host buffer)",
    "h2d_pinned_all_gpus": ("bytes copied host->device once per call (pinned host buffer) while every "
                            "selected GPU of the host copies at the same time"),
    "d2h_pinned": "bytes copied device->host once per call (pinned host buffer)",
    "h2d_pageable": "bytes copied host->device once per call (pageable host buffer; host-clock timed)",
    "d2h_pageable": "bytes copied device->host once per call (pageable host buffer; host-clock timed)",
    "bidirectional_pinned": "sum of both directions: buffer bytes each way, started together on two streams",
}


ALL_GPUS = "h2d_pinned_all_gpus"
TOTAL = "h2d_pinned_all_gpus_total"
TOTAL_CONVENTION = ("sum over the host's GPUs of their h2d_pinned_all_gpus medians, measured at the "
                    "same time")
MIN_OVERLAP = 0.9


class HostLinkBenchmark:
    name = "hostlink"
    concurrent_variants = (ALL_GPUS,)  # cases that only make sense with every GPU measuring at once

    def cases(self, backend: Backend, mode: str) -> list[Case]:
        size = backend.sizes(mode).hostlink_bytes
        return [Case("hostlink", v, {"bytes": size}) for v in VARIANTS]

    def run(self, case: Case, backend: Backend, mode: str):
        if backend.kind != "cuda":
            return not_run(case, backend.device_index, "skipped",
                           "no host link: the CPU backend has no separate device memory",
                           unit="byte", convention=VARIANTS[case.variant])
        size = int(case.params["bytes"])
        problem = (does_not_fit(2 * size, backend.free_memory_bytes(), "two device buffers")
                   or does_not_fit(2 * size, host_free_memory_bytes(), "two host buffers"))
        if problem is not None:  # sizes follow the mode, never free memory (bench/sizing.py)
            return not_run(case, backend.device_index, "skipped", problem, unit="byte",
                           convention=VARIANTS[case.variant])
        placement = gpu_local_placement(int(backend.device_index or 0))
        with bound(placement):
            return self._measure(case, backend, mode, placement)

    def _measure(self, case: Case, backend: Backend, mode: str, placement: Placement):
        size = int(case.params["bytes"])
        pinned = "pinned" in case.variant
        gen = torch.Generator(device=backend.device)
        gen.manual_seed(size)
        device_src = torch.randint(0, 256, (size,), dtype=torch.uint8, device=backend.device, generator=gen)
        pool = release_pinned_pool() if pinned else None  # fresh pages, placed under this binding
        host_src = device_src.cpu().pin_memory() if pinned else device_src.cpu()
        host_dst = torch.empty(size, dtype=torch.uint8, pin_memory=pinned)
        host_pages = {"host_src": pages_by_node(host_src.data_ptr()), "host_dst": pages_by_node(host_dst.data_ptr())}
        device_dst = torch.empty(size, dtype=torch.uint8, device=backend.device)
        work = float(size)
        clock = None
        fn: Callable[[], object]
        if case.variant in ("h2d_pinned", ALL_GPUS):
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
        window_start_s = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the host
        times_s, timing = measure(fn, backend, backend.budget(mode), flush_cache=False,
                                  self_timed_clock=clock)
        backend.synchronize()
        window = {"window_monotonic_s": [window_start_s, time.monotonic()]} if case.variant == ALL_GPUS else {}
        problem = _verify(case.variant, host_src, device_dst, device_src, host_dst)
        return measured(case, backend.device_index, times_s=times_s, timing=timing,
                        work_per_call=work, unit="byte", convention=VARIANTS[case.variant],
                        method_version=METHOD_VERSION, check_error=problem,
                        extra={"pinned": pinned, **placement.as_extra(), **window,
                               "pinned_pool": pool, "host_pages_by_numa_node": host_pages})

    def derive(self, measurements: Sequence[Measurement], run_host: str) -> list[Measurement]:
        return all_gpus_totals(measurements, run_host)


def release_pinned_pool() -> str:
    """Return the pinned caching host allocator's free blocks to the OS before a case allocates.

    The allocator keeps freed pinned blocks by power-of-two size and hands them out again, so in a
    single-process run GPU k > 0 would get the blocks first allocated under GPU 0's CPU binding
    (its NUMA node), while its record claimed its own. Emptied here (outside timing), the case's
    buffers are new pages, allocated under this GPU's binding. Says what was done."""
    empty = getattr(torch._C, "_host_emptyCache", None)
    if empty is None:
        return "not emptied: this torch has no torch._C._host_emptyCache (a CPU build)"
    empty()
    return "emptied before allocating: fresh pinned pages under this GPU's CPU binding"


def all_gpus_totals(measurements: Sequence[Measurement], run_host: str) -> list[Measurement]:
    """Per host and size: the sum of the h2d_pinned_all_gpus medians of its GPUs (an error record
    naming the GPU when one of them was not measured: no partial sums)."""
    groups: dict[tuple[str, int], list[Measurement]] = {}
    for m in measurements:
        if m.benchmark == "hostlink" and m.variant == ALL_GPUS and m.status != "skipped":
            groups.setdefault((m.host or run_host, int(m.params["bytes"])), []).append(m)
    out = []
    for (host, size), records in groups.items():
        case = Case("hostlink", TOTAL, {"bytes": size, "devices": len(records)})
        template = records[0]
        failed = [m for m in records if m.status != "ok" or m.rate is None]
        if failed:
            reasons = "; ".join(f"GPU {m.device_index}: {m.status}: {m.reason}" for m in failed)
            out.append(dataclasses.replace(
                not_run(case, None, "error", f"a GPU was not measured: {reasons}", unit="byte",
                        convention=TOTAL_CONVENTION), host=template.host, concurrent_devices=len(records)))
            continue
        windows = [m.extra.get("window_monotonic_s") for m in records]
        overlap = _overlap([w for w in windows if w]) if all(windows) else None
        flags = ("partial_overlap",) if overlap is None or overlap < MIN_OVERLAP else ()
        out.append(Measurement(
            key=case.key, benchmark="hostlink", variant=TOTAL, precision=None, params=dict(case.params),
            device_index=None, status="ok", reason=None, unit="byte", convention=TOTAL_CONVENTION,
            work_per_call=0.0, rate=float(sum(m.rate for m in records if m.rate is not None)), flags=flags,
            method_version=METHOD_VERSION, host=template.host, concurrent_devices=len(records),
            extra={"per_gpu": {str(m.device_index if m.device_index is not None else m.rank): m.rate
                               for m in records},
                   "window_overlap": overlap},
        ))
    return out


def _overlap(windows: Sequence[Sequence[float]]) -> float:
    """Time every window shares / time from the first start to the last end (1.0: all at once)."""
    starts, ends = [w[0] for w in windows], [w[1] for w in windows]
    span = max(ends) - min(starts)
    return max(0.0, min(ends) - max(starts)) / span if span > 0 else 1.0


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
