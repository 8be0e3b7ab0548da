"""Case sizes from static facts only: the mode, the device's last-level cache and its total memory.

A case's size is part of its key (`memory/copy/bytes=268435456`), and keys are what `compare` and
`fleet` align across runs and hosts. So nothing that moves between runs may feed a size: free
memory least of all (two smoke runs a minute apart once got 2937061376 and 3030384640 bytes).

- Buffer sizes sit on a grid of power-of-two MiB, so two hosts of the same model get the same keys.
- A buffer that should exceed the cache `CACHE_MULTIPLE` times but is held below that by the
  mode's cap or the device's total memory is still measured, and flagged `BELOW_CACHE_FLAG`, so
  nobody takes a cache figure for a DRAM figure.
- Whether the chosen size fits is decided when the case runs, against the memory free then: a
  case that does not fit is skipped with the reason (needed vs free), never resized.

Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from results.analysis.stats import BELOW_CACHE_FLAG  # noqa: F401 - the flag's one definition (a file-format value)

MIB = 1 << 20
CACHE_MULTIPLE = 8  # STREAM asks for at least 4x the caches; 8x leaves room for a VM's noisy neighbours
# The most of a device's total memory that one memory case's buffers may use (triad has three).
TOTAL_MEMORY_FRACTION_PER_BUFFER = 8


def pow2_mib_at_least(n_bytes: int) -> int:
    """The smallest power-of-two number of MiB holding `n_bytes` (at least 1 MiB)."""
    size = MIB
    while size < n_bytes:
        size <<= 1
    return size


def pow2_mib_at_most(n_bytes: int) -> int:
    """The largest power-of-two number of MiB not above `n_bytes` (1 MiB when below that)."""
    size = MIB
    while size << 1 <= n_bytes:
        size <<= 1
    return size


@dataclass(frozen=True)
class BufferSize:
    """One memory case's per-buffer size and how it relates to the cache it must defeat."""

    bytes_per_buffer: int
    cache_bytes: int
    wanted_bytes: int  # the grid size CACHE_MULTIPLE x the cache (or the mode's minimum) asks for
    limited_by: str | None  # "mode cap" or "total memory" when bytes_per_buffer < wanted_bytes

    @property
    def below_cache_multiple(self) -> bool:
        return self.cache_bytes > 0 and self.bytes_per_buffer < CACHE_MULTIPLE * self.cache_bytes

    @property
    def cache_multiple(self) -> float:
        return self.bytes_per_buffer / self.cache_bytes if self.cache_bytes else float("inf")


def memory_buffer_size(mode_min_bytes: int, mode_max_bytes: int | None, cache_bytes: int,
                       total_memory_bytes: int) -> BufferSize:
    """The mode's minimum, raised to CACHE_MULTIPLE x the cache, on the power-of-two MiB grid; then
    held to the mode's cap and to 1/TOTAL_MEMORY_FRACTION_PER_BUFFER of the total memory."""
    wanted = pow2_mib_at_least(max(mode_min_bytes, CACHE_MULTIPLE * cache_bytes))
    size, limited_by = wanted, None
    if mode_max_bytes is not None and size > mode_max_bytes:
        size, limited_by = pow2_mib_at_most(mode_max_bytes), "mode cap"
    by_total = pow2_mib_at_most(total_memory_bytes // TOTAL_MEMORY_FRACTION_PER_BUFFER)
    if size > by_total:
        size, limited_by = by_total, "total memory"
    return BufferSize(size, cache_bytes, wanted, limited_by)


def flush_buffer_bytes(cache_bytes: int, floor_bytes: int, cap_bytes: int | None) -> int:
    """The cache-flush buffer: 2x the cache on the grid, at least `floor_bytes`, at most `cap_bytes`."""
    size = pow2_mib_at_least(max(2 * cache_bytes, floor_bytes))
    return min(size, pow2_mib_at_most(cap_bytes)) if cap_bytes is not None else size


def does_not_fit(need_bytes: int, free_bytes: int, what: str = "this case") -> str | None:
    """The skip reason when `need_bytes` exceed the memory free now, else None."""
    if need_bytes <= free_bytes:
        return None
    return (f"does not fit: {what} needs {need_bytes / 1e9:.2f} GB of memory and "
            f"{free_bytes / 1e9:.2f} GB is free now (sizes follow the device, not free memory, "
            "so the case is skipped rather than resized)")


def below_cache_note(size: BufferSize) -> str:
    return (f"buffers of {size.bytes_per_buffer / MIB:.0f} MiB are {size.cache_multiple:.1f}x the "
            f"{size.cache_bytes / MIB:.0f} MiB cache (below {CACHE_MULTIPLE}x, held by the "
            f"{size.limited_by}): the rate may include cache hits")
