"""DRAM capacity, verified (the lab procedure's capacity item): allocate device memory in chunks
until the allocator refuses (a GPU) or up to a fixed bound (the CPU), write a pattern into every
word, read every word back, and record the bytes verified usable and what was not.

Pattern: word j of chunk i holds (j * K + i) mod 2^64 (K odd, so no two words of a chunk agree and
a chunk mapped twice or a stuck address bit shows). Chunks shrink from `chunk_bytes` to 1/4 and 1/16
of it when the allocator refuses, so the fill gets within chunk/16 of what it will give. The last
(smallest) chunk is released before the check to give the comparison its workspace (one block of
`_BLOCK_WORDS` words): it is not counted. Verified bytes are the chunks whose every word read back.

Record: benchmark "capacity", variant "verified"; the figure is `extra.verified_bytes` (the rate is
the fill-and-check throughput, bytes written and read per second, so the record has samples like
every other). `extra` also keeps the device's total and free memory before the fill and the bytes
not verified (kept by the driver, the context, other buffers and the check's workspace).
"""

from __future__ import annotations

from typing import Any

import torch

from bench.backend import Backend
from bench.measurement import measured, not_run
from bench.registry import Case, register
from results.files.schema import Timing

_MIB = 1 << 20
GPU_CHUNK_BYTES = 1024 * _MIB
CPU_BOUND_BYTES = 256 * _MIB  # the host's RAM is not the unit under test: a fixed, bounded check
CPU_CHUNK_BYTES = 64 * _MIB
_K = 0x9E3779B97F4A7C15 - (1 << 64)  # odd; as a signed int64 (torch has no uint64 arithmetic)
_BLOCK_WORDS = 1 << 20  # 8 MiB of expected values at a time
CONVENTION = "capacity: bytes written and read back once (2 x verified bytes per sample)"
METHOD_VERSION = 1


def _fill(t: torch.Tensor, chunk_index: int) -> None:
    torch.arange(t.numel(), dtype=torch.int64, device=t.device, out=t)
    t.mul_(_K).add_(chunk_index)


def _mismatches(t: torch.Tensor, chunk_index: int) -> int:
    bad = 0
    for start in range(0, t.numel(), _BLOCK_WORDS):
        stop = min(start + _BLOCK_WORDS, t.numel())
        expected = torch.arange(start, stop, dtype=torch.int64, device=t.device).mul_(_K).add_(chunk_index)
        bad += int((t[start:stop] != expected).sum().item())
    return bad


def _allocate(words: int, device: torch.device) -> torch.Tensor | None:
    try:
        return torch.empty(words, dtype=torch.int64, device=device)
    except (torch.OutOfMemoryError, MemoryError, RuntimeError):
        return None


class CapacityBenchmark:
    name = "capacity"

    def cases(self, backend: Backend, mode: str) -> list[Case]:
        if backend.kind == "cpu":
            return [Case("capacity", "verified", {"chunk_bytes": CPU_CHUNK_BYTES, "bound_bytes": CPU_BOUND_BYTES})]
        return [Case("capacity", "verified", {"chunk_bytes": GPU_CHUNK_BYTES, "bound_bytes": 0})]

    def run(self, case: Case, backend: Backend, mode: str):
        chunk = int(case.params["chunk_bytes"])
        bound = int(case.params["bound_bytes"])  # 0: until the allocator refuses
        if bound and bound + 2 * _BLOCK_WORDS * 8 > backend.free_memory_bytes():
            return not_run(case, backend.device_index, "skipped",
                           f"needs {bound / 1e9:.2f} GB for the bounded check; "
                           f"{backend.free_memory_bytes() / 1e9:.2f} GB is free", unit="byte", convention=CONVENTION)
        total = backend.total_memory_bytes()
        before = _release_cached(backend)
        free_before = backend.free_memory_bytes()
        chunks: list[torch.Tensor] = []
        sizes = [chunk, chunk // 4, chunk // 16]
        step, allocated, stop_reason = 0, 0, None
        start = backend.now()
        while step < len(sizes):
            size = sizes[step] if not bound else min(sizes[step], bound - allocated)
            if bound and size <= 0:
                stop_reason = f"the bound of {bound / _MIB:.0f} MiB"
                break
            t = _allocate(size // 8, backend.device)
            if t is None:  # the allocator refused: try a smaller chunk
                stop_reason = f"the allocator refused a {sizes[step] / _MIB:.0f} MiB chunk"
                step += 1
                continue
            _fill(t, len(chunks))
            chunks.append(t)
            allocated += t.numel() * 8
        released = 0
        if not bound and chunks:  # make room for the comparison's workspace
            released = chunks.pop().numel() * 8
        backend.synchronize()
        bad = {i: n for i, t in enumerate(chunks) if (n := _mismatches(t, i))}
        backend.synchronize()
        elapsed = backend.now() - start
        verified = sum(t.numel() * 8 for i, t in enumerate(chunks) if i not in bad)
        del chunks
        _release_cached(backend)
        extra: dict[str, Any] = {
            "verified_bytes": verified, "total_bytes": total, "free_bytes_before": free_before,
            "not_verified_bytes": max(total - verified, 0), "released_for_check_bytes": released,
            "stop_reason": stop_reason, "bounded": bool(bound), "pattern": "word j of chunk i = (j * 0x9E3779B97F4A7C15 + i) mod 2^64",
        }
        if before:
            extra["cached_bytes_released_before"] = before
        if bound:
            extra["bound_reason"] = "the CPU backend checks a fixed size: the host's RAM is not the unit under test"
        problem = (f"{sum(bad.values())} word(s) read back wrong in chunk(s) {sorted(bad)}" if bad else None)
        if verified == 0 and problem is None:
            return not_run(case, backend.device_index, "error", f"no memory could be verified ({stop_reason})",
                           unit="byte", convention=CONVENTION)
        timing = Timing(clock="perf_counter", calls_per_sample=1, warmup_calls=0, warmup_s=0.0, l2_flushed=False)
        return measured(case, backend.device_index, times_s=(max(elapsed, 1e-9),), timing=timing,
                        work_per_call=float(2 * (verified or 1)), unit="byte", convention=CONVENTION,
                        method_version=METHOD_VERSION, check_error=problem, extra=extra)


def _release_cached(backend: Backend) -> int:
    """Give the caching allocator's idle blocks (and the backend's flush buffer) back before the
    fill, so they count as free; returns the bytes the allocator held idle."""
    backend._flush_buffer = None  # type: ignore[attr-defined]  # re-made by the next case that flushes
    if backend.kind != "cuda":
        return 0
    cuda = backend.cuda  # type: ignore[attr-defined]
    idle = int(cuda.memory_reserved(backend.device)) - int(cuda.memory_allocated(backend.device))
    cuda.empty_cache()
    return max(idle, 0)


register(CapacityBenchmark())
