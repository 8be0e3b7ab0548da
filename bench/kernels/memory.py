"""Device-memory bandwidth: copy, read, write, triad on float32 buffers >= 8x the last-level cache.

Buffer sizes come from the mode and the device's static facts only (bench.sizing): 8x the cache on
a power-of-two MiB grid, held to the mode's cap and the total memory. A size held below 8x the
cache is measured and flagged `below_8x_cache`; a size that does not fit in the memory free when
the case runs is skipped with the reason, never resized.

Byte counting (stated in each record's `convention`):
  copy   dst.copy_(src)             bytes read + bytes written = 2 x buffer
  read   torch.sum(src)             bytes read = 1 x buffer
  write  dst.fill_(v)               bytes written = 1 x buffer
  triad  a = b + s*c (torch.add)    2 reads + 1 write = 3 x buffer
Buffers exceed the cache 8x, so the cache is not flushed between samples.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch

from bench.backend import Backend
from bench.measurement import measured, not_run
from bench.registry import Case, register
from bench.sizing import BELOW_CACHE_FLAG, BufferSize, below_cache_note, does_not_fit, memory_buffer_size
from bench.timing import measure

METHOD_VERSION = 1
_FLOAT_BYTES = 4
# Working room beside the buffers: the float64 check of `read` sums in chunks of this many elements.
_CHECK_CHUNK = 1 << 22

# variant -> (buffers used, bytes moved per buffer byte, convention)
VARIANTS = {
    "copy": (2, 2, "bytes read + bytes written (2 x buffer) per call"),
    "read": (1, 1, "bytes read (1 x buffer) per call; output is one scalar"),
    "write": (1, 1, "bytes written (1 x buffer) per call"),
    "triad": (3, 3, "bytes read from 2 buffers + bytes written to 1 (3 x buffer) per call"),
}


def buffer_size(backend: Backend, mode: str) -> BufferSize:
    """Per-buffer size from the mode, the cache and the total memory: never from free memory."""
    sizes = backend.sizes(mode)
    return memory_buffer_size(sizes.memory_bytes, sizes.memory_max_bytes, backend.cache_bytes(),
                              backend.total_memory_bytes())


def buffer_bytes(backend: Backend, mode: str) -> int:
    return buffer_size(backend, mode).bytes_per_buffer


def _check(variant: str, bufs: list[torch.Tensor], scalar: float, result: torch.Tensor | None) -> str | None:
    if variant == "copy":
        return None if torch.equal(bufs[0], bufs[1]) else "destination differs from source after copy"
    if variant == "read":
        expected = sum(float(torch.sum(chunk, dtype=torch.float64)) for chunk in bufs[0].split(_CHECK_CHUNK))
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
        problem = does_not_fit(n_buffers * size + _CHECK_CHUNK * 8, backend.free_memory_bytes(),
                               f"{n_buffers} buffer(s) of {size / (1 << 20):.0f} MiB")
        if problem is not None:
            return not_run(case, backend.device_index, "skipped", problem, unit="byte", convention=convention)
        plan = buffer_size(backend, mode)
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
        actual = dataclasses.replace(plan, bytes_per_buffer=size, limited_by=plan.limited_by or "case's size")
        below = actual.below_cache_multiple
        extra: dict[str, object] = {"buffers": n_buffers, "cache_bytes": actual.cache_bytes}
        if actual.cache_bytes:
            extra["cache_multiple"] = round(actual.cache_multiple, 3)
        if below:
            extra["below_cache_note"] = below_cache_note(actual)
        record = measured(
            case, backend.device_index, times_s=times_s, timing=timing,
            work_per_call=float(factor * elements * _FLOAT_BYTES), unit="byte",
            convention=convention, method_version=METHOD_VERSION, check_error=problem,
            extra=extra,
        )
        return dataclasses.replace(record, flags=(*record.flags, BELOW_CACHE_FLAG)) if below else record


register(MemoryBenchmark())
