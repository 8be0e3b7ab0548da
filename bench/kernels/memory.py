"""Device-memory bandwidth: copy, read, write, triad on float32 buffers >= 8x the last-level cache.

Byte counting (stated in each record's `convention`):
  copy   dst.copy_(src)             bytes read + bytes written = 2 x buffer
  read   torch.sum(src)             bytes read = 1 x buffer
  write  dst.fill_(v)               bytes written = 1 x buffer
  triad  a = b + s*c (torch.add)    2 reads + 1 write = 3 x buffer
Buffers exceed the cache 8x, so the cache is not flushed between samples.
"""

from __future__ import annotations

from typing import Callable

import torch

from bench.backend import Backend
from bench.measurement import measured
from bench.registry import Case, register
from bench.timing import measure

METHOD_VERSION = 1
CACHE_MULTIPLE = 8
_FLOAT_BYTES = 4

# variant -> (buffers used, bytes moved per buffer byte, convention)
VARIANTS = {
    "copy": (2, 2, "bytes read + bytes written (2 x buffer) per call"),
    "read": (1, 1, "bytes read (1 x buffer) per call; output is one scalar"),
    "write": (1, 1, "bytes written (1 x buffer) per call"),
    "triad": (3, 3, "bytes read from 2 buffers + bytes written to 1 (3 x buffer) per call"),
}


def buffer_bytes(backend: Backend, mode: str) -> int:
    """Per-buffer size: the mode's size, at least 8x the cache, at most 1/8 of free memory."""
    wanted = max(backend.sizes(mode).memory_bytes, CACHE_MULTIPLE * backend.cache_bytes())
    cap = backend.free_memory_bytes() // 8
    size = min(wanted, cap)
    return size - size % (1 << 20) if size > (1 << 20) else size


def _check(variant: str, bufs: list[torch.Tensor], scalar: float, result: torch.Tensor | None) -> str | None:
    if variant == "copy":
        return None if torch.equal(bufs[0], bufs[1]) else "destination differs from source after copy"
    if variant == "read":
        expected = float(bufs[0].to(torch.float64).sum())
        got = float(result) if result is not None else float("nan")
        rel = abs(got - expected) / max(abs(expected), 1e-30)
        return None if rel < 1e-3 else f"sum {got:.6g} differs from float64 sum {expected:.6g} (rel {rel:.2g})"
    if variant == "write":
        ok = bool((bufs[0] == scalar).all())
        return None if ok else "buffer not fully written"
    if variant == "triad":
        a, b, c = bufs
        probe = slice(0, min(a.numel(), 1 << 20))
        ref = b[probe].to(torch.float64) + scalar * c[probe].to(torch.float64)
        err = float((a[probe].to(torch.float64) - ref).abs().max())
        return None if err <= 1e-5 * float(ref.abs().max()) else f"triad max error {err:.3g}"
    return f"unknown variant {variant}"


class MemoryBenchmark:
    name = "memory"
    concurrent = True  # shares no resource with other GPUs: measured on all selected GPUs at once

    def cases(self, backend: Backend, mode: str) -> list[Case]:
        size = buffer_bytes(backend, mode)
        return [Case("memory", v, {"bytes": size}) for v in VARIANTS]

    def run(self, case: Case, backend: Backend, mode: str):
        n_buffers, factor, convention = VARIANTS[case.variant]
        size = int(case.params["bytes"])
        elements = size // _FLOAT_BYTES
        gen = torch.Generator(device=backend.device)
        gen.manual_seed(elements)
        bufs = [torch.rand(elements, generator=gen, device=backend.device) for _ in range(n_buffers)]
        scalar = 3.0
        box: dict[str, torch.Tensor] = {}
        fn: Callable[[], object]
        if case.variant == "copy":
            fn = lambda: bufs[1].copy_(bufs[0])
        elif case.variant == "read":
            def fn() -> None:
                box["sum"] = torch.sum(bufs[0])
        elif case.variant == "write":
            fn = lambda: bufs[0].fill_(scalar)
        else:
            fn = lambda: torch.add(bufs[1], bufs[2], alpha=scalar, out=bufs[0])
        times_s, timing = measure(fn, backend, backend.budget(mode), flush_cache=False)
        backend.synchronize()
        problem = _check(case.variant, bufs, scalar, box.get("sum"))
        return measured(
            case, backend.device_index, times_s=times_s, timing=timing,
            work_per_call=float(factor * elements * _FLOAT_BYTES), unit="byte",
            convention=convention, method_version=METHOD_VERSION, check_error=problem,
            extra={"buffers": n_buffers, "cache_bytes": backend.cache_bytes()},
        )


register(MemoryBenchmark())
