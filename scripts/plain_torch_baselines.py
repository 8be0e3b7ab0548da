"""Plain-torch measurements of every operation tppbench times: the "B" side of the fidelity check.

Written on purpose WITHOUT importing anything from `bench` (no Backend, no bench.timing, no kernel
module): each operation is built here from torch alone, on the same sizes and in the same operand
layouts as the harness, and timed the simplest honest way:

- GPU: CUDA events around a loop of many calls on the current stream (the loop keeps the GPU
  busy, so the host's launch time of the first call is spread over the loop); matmul flushes the
  L2 the same way the harness does (a >= 256 MiB buffer zeroed) before each call, outside the
  timed interval, with one event pair per call; pageable host copies are timed on the host clock
  around synchronised copies; the bidirectional copies run on two streams held behind one spin.
- CPU: perf_counter around a loop of calls (matmul: cache flushed by writing a 64 MiB buffer
  before each timed call).

`plain_rate(benchmark, variant, precision, params, device)` returns work per second in the
harness's units (flop/s, op/s, byte/s; same counting conventions), or raises `Unsupported`.
Used by scripts/fidelity.py; `python scripts/plain_torch_baselines.py` prints one bf16 figure.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

MIB = 1 << 20
TARGET_S = 0.25  # time spent in timed calls per measurement
MIN_CALLS, MAX_CALLS = 5, 500


class Unsupported(Exception):
    """This operation cannot run here (a precision the device lacks, one GPU for a peer copy)."""


def _cuda(device: torch.device) -> bool:
    return device.type == "cuda"


def _sync(device: torch.device) -> None:
    if _cuda(device):
        torch.cuda.synchronize(device)


def _flusher(device: torch.device) -> Callable[[], None]:
    if _cuda(device):
        l2 = int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0) or 50 * MIB)
        buf = torch.empty(max(256 * MIB, 2 * l2), dtype=torch.uint8, device=device)
    else:
        buf = torch.empty(64 * MIB, dtype=torch.uint8)

    def flush() -> None:
        buf.fill_(1)
    return flush


def _calls_for(fn: Callable[[], object], device: torch.device) -> int:
    """How many calls fill TARGET_S, from 3 warm-up calls (the first left out)."""
    fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(2):
        fn()
    _sync(device)
    per_call = max((time.perf_counter() - start) / 2, 1e-7)
    return max(MIN_CALLS, min(MAX_CALLS, int(TARGET_S / per_call)))


def seconds_per_call_loop(fn: Callable[[], object], device: torch.device) -> float:
    """Events (or perf_counter) around one loop of many calls."""
    calls = _calls_for(fn, device)
    if _cuda(device):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / calls
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def seconds_per_call_flushed(fn: Callable[[], object], device: torch.device) -> float:
    """Median over calls, each preceded by a cache flush outside its own timed interval."""
    flush = _flusher(device)
    calls = _calls_for(fn, device)
    times = []
    for _ in range(calls):
        flush()
        if _cuda(device):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def seconds_host_clock(fn: Callable[[], object], device: torch.device) -> float:
    calls = _calls_for(fn, device)
    times = []
    for _ in range(calls):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ------------------------------------------------------------------------------------- matmul

_FLOAT = {"fp64": torch.float64, "fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16,
          "bf16": torch.bfloat16}


def matmul_rate(precision: str, m: int, n: int, k: int, device: torch.device) -> float:
    if precision == "tf32" and not _cuda(device):
        raise Unsupported("tf32 is a CUDA mode")
    if precision not in _FLOAT and precision not in ("fp8", "int8"):
        raise Unsupported(f"no plain {precision} matmul")
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    try:
        if precision in _FLOAT:
            a = torch.randn(m, k, device=device).to(_FLOAT[precision])
            b = torch.randn(k, n, device=device).to(_FLOAT[precision])
            c = torch.empty(m, n, device=device, dtype=_FLOAT[precision])
            fn: Callable[[], object] = lambda: torch.matmul(a, b, out=c)
        elif precision == "fp8":
            a = torch.randn(m, k, device=device).to(torch.float8_e4m3fn)
            b = torch.randn(n, k, device=device).to(torch.float8_e4m3fn).t()  # column-major
            one = torch.tensor(1.0, device=device)
            c = torch.empty(m, n, device=device, dtype=torch.bfloat16)
            fn = lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16,
                                          use_fast_accum=False, out=c)
        else:
            a = torch.randint(-127, 128, (m, k), device=device, dtype=torch.int8)
            b = torch.randint(-127, 128, (n, k), device=device, dtype=torch.int8).t()  # column-major
            c = torch.empty(m, n, device=device, dtype=torch.int32)
            fn = lambda: torch._int_mm(a, b, out=c)
        return 2.0 * m * n * k / seconds_per_call_flushed(fn, device)
    finally:
        torch.set_float32_matmul_precision(previous)


# ------------------------------------------------------------------------------ device memory

def memory_rate(variant: str, size: int, device: torch.device) -> float:
    elements = size // 4
    x, y, z = (torch.rand(elements, device=device) for _ in range(3))
    ops = {
        "copy": (lambda: y.copy_(x), 2),
        "read": (lambda: torch.sum(x), 1),
        "write": (lambda: x.fill_(3.0), 1),
        "triad": (lambda: torch.add(y, z, alpha=3.0, out=x), 3),
    }
    fn, factor = ops[variant]
    return factor * elements * 4 / seconds_per_call_loop(fn, device)


# ---------------------------------------------------------------------------------- host link

def hostlink_rate(variant: str, size: int, device: torch.device) -> float:
    if not _cuda(device):
        raise Unsupported("no host link on the CPU")
    pinned = "pinned" in variant
    host = torch.randint(0, 256, (size,), dtype=torch.uint8).pin_memory() if pinned else torch.randint(
        0, 256, (size,), dtype=torch.uint8)
    host_out = torch.empty(size, dtype=torch.uint8, pin_memory=pinned)
    dev = torch.randint(0, 256, (size,), dtype=torch.uint8, device=device)
    dev_out = torch.empty(size, dtype=torch.uint8, device=device)
    if variant in ("h2d_pinned", "h2d_pinned_all_gpus"):
        return size / seconds_per_call_loop(lambda: dev_out.copy_(host, non_blocking=True), device)
    if variant == "d2h_pinned":
        return size / seconds_per_call_loop(lambda: host_out.copy_(dev, non_blocking=True), device)
    if variant == "h2d_pageable":
        return size / seconds_host_clock(lambda: dev_out.copy_(host), device)
    if variant == "d2h_pageable":
        return size / seconds_host_clock(lambda: host_out.copy_(dev), device)
    if variant == "bidirectional_pinned":
        return 2.0 * size / _two_streams(lambda: dev_out.copy_(host, non_blocking=True),
                                         lambda: host_out.copy_(dev, non_blocking=True), device)
    raise Unsupported(f"no plain hostlink {variant}")


def _two_streams(first: Callable[[], object], second: Callable[[], object], device: torch.device,
                 other_device: torch.device | None = None) -> float:
    """Seconds per iteration of both copies on two streams (the second on `other_device`'s, when
    given), started together behind one spin."""
    main, other = torch.cuda.current_stream(device), torch.cuda.Stream(device=other_device or device)
    iterations = 20
    for _ in range(2):
        first(), second()
    torch.cuda.synchronize(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(2_000_000)
    start.record(main)
    other.wait_event(start)
    for _ in range(iterations):
        with torch.cuda.stream(other):
            second()
        first()
    main.wait_stream(other)
    end.record(main)
    end.synchronize()
    return start.elapsed_time(end) / 1e3 / iterations


# -------------------------------------------------------------------------------- peer copies

def p2p_rate(variant: str, src: int, dst: int, size: int) -> float:
    if torch.cuda.device_count() < 2:
        raise Unsupported("peer copies need two GPUs")
    a = torch.randint(0, 256, (size,), dtype=torch.uint8, device=f"cuda:{src}")
    b = torch.empty(size, dtype=torch.uint8, device=f"cuda:{dst}")
    with torch.cuda.device(src):
        if variant == "unidirectional":
            return size / seconds_per_call_loop(lambda: b.copy_(a, non_blocking=True), torch.device("cuda", src))
        back_src = torch.randint(0, 256, (size,), dtype=torch.uint8, device=f"cuda:{dst}")
        back_dst = torch.empty(size, dtype=torch.uint8, device=f"cuda:{src}")
        return 2.0 * size / concurrent_peer_copies(lambda: b.copy_(a, non_blocking=True),
                                                   lambda: back_dst.copy_(back_src, non_blocking=True), src, dst)


def concurrent_peer_copies(forward: Callable[[], object], backward: Callable[[], object], src: int, dst: int,
                           iterations: int = 20) -> float:
    """Seconds per iteration of src->dst and dst->src copies that really overlap.

    torch's device-to-device copy runs on the source device's current stream and makes a two-way
    barrier with the destination device's current stream (aten/src/ATen/native/cuda/Copy.cu). With
    one shared stream per device the two directions wait on each other and alternate. So each
    direction gets its own stream on BOTH devices, made current on both for its copy: its barrier
    meets only its own idle stream, never the other direction's."""
    dev = {src: torch.device("cuda", src), dst: torch.device("cuda", dst)}
    fwd = {g: torch.cuda.Stream(device=dev[g]) for g in (src, dst)}
    bwd = {g: torch.cuda.Stream(device=dev[g]) for g in (src, dst)}

    def run(copy: Callable[[], object], streams: dict[int, torch.cuda.Stream]) -> None:
        with torch.cuda.stream(streams[src]), torch.cuda.stream(streams[dst]):
            copy()

    for _ in range(2):
        run(forward, fwd), run(backward, bwd)
    torch.cuda.synchronize(dev[src]), torch.cuda.synchronize(dev[dst])
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with torch.cuda.stream(fwd[src]):
        torch.cuda._sleep(2_000_000)
        start.record(fwd[src])
    for stream in (fwd[dst], bwd[src], bwd[dst]):
        stream.wait_event(start)
    for _ in range(iterations):
        run(forward, fwd)
        run(backward, bwd)
    for stream in (fwd[dst], bwd[src], bwd[dst]):
        fwd[src].wait_stream(stream)
    end.record(fwd[src])
    end.synchronize()
    return start.elapsed_time(end) / 1e3 / iterations


# -------------------------------------------------------------------------------- collectives

def collective_rate(op: str, size: int, device: torch.device) -> float:
    """algbw = S / t in a world of one (the process group the caller started): S bytes of float32
    per call, as nccl-tests counts S for each operation."""
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_world_size() != 1:
        raise Unsupported("the plain collective loop runs in an initialised world of one")
    x = torch.rand(size // 4, device=device)
    y = torch.empty_like(x)
    # torch >= 2.12 names them *_single (the *_tensor names warn on every call)
    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
    ops: dict[str, Callable[[], object]] = {
        "all_reduce": lambda: dist.all_reduce(x),
        "broadcast": lambda: dist.broadcast(x, src=0),
        "all_gather": lambda: gather(y, x),
        "reduce_scatter": lambda: scatter(y, x),
        "all_to_all": lambda: dist.all_to_all_single(y, x),
    }
    return size / seconds_per_call_loop(ops[op], device)


def plain_rate(benchmark: str, variant: str, precision: str | None, params: dict, device: torch.device) -> float:
    if benchmark == "matmul":
        return matmul_rate(precision or "", int(params["m"]), int(params["n"]), int(params["k"]), device)
    if benchmark == "memory":
        return memory_rate(variant, int(params["bytes"]), device)
    if benchmark == "hostlink":
        return hostlink_rate(variant, int(params["bytes"]), device)
    if benchmark == "p2p":
        return p2p_rate(variant, int(params["src"]), int(params["dst"]), int(params["bytes"]))
    if benchmark == "collectives":
        return collective_rate(variant, int(params["bytes"]), device)
    raise Unsupported(f"no plain loop for {benchmark}")


if __name__ == "__main__":
    where = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    edge = 8192 if _cuda(where) else 1024
    print(f"bf16 {edge}^3 on {where}: {matmul_rate('bf16', edge, edge, edge, where) / 1e12:.4g} TFLOP/s")
