"""Where the measuring process runs on the host: CPU sets and NUMA nodes.

- Host-link cases run on the CPUs local to the measured GPU (NVML's CPU affinity for the device),
  so a dual-socket node's far-socket GPUs are not read low because the scheduler put the process
  on the other socket. Pinned buffers are allocated after the binding, so the kernel's first-touch
  policy places them on that node too. The record keeps the CPU set and NUMA node used (or why
  none could be used).
- On the CPU backend, N concurrent ranks split the CPUs into N disjoint, contiguous slices: each
  rank is "one device" (a slice of cores sharing the socket's memory bandwidth and power, as GPUs
  of one node share theirs).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

from bench.nvml import NvmlUnavailable, cpu_affinity_mask, error_text, gpu_pci_bus_id, numa_node

SYSFS_PCI = "/sys/bus/pci/devices"

_BITS = 64  # NVML returns the CPU mask as an array of 64-bit words


@dataclass(frozen=True)
class Placement:
    """The CPUs (and NUMA node) a case ran on, or why it ran where the scheduler put it."""

    cpus: tuple[int, ...] | None
    numa_node: int | None  # the NUMA node of the GPU's PCI device (sysfs): where host buffers should live
    reason: str | None = None  # set when no binding was made
    gpu_memory_numa_node: int | None = None  # NVML's: only where GPUs are NUMA nodes (Grace: the HBM node)
    numa_node_source: str | None = None  # "sysfs <path>", or why none was read

    def as_extra(self) -> dict[str, object]:
        extra: dict[str, object] = {"cpu_set": format_cpu_set(self.cpus) if self.cpus else None,
                                    "numa_node": self.numa_node, "placement_note": self.reason}
        if self.numa_node_source is not None:
            extra["numa_node_source"] = self.numa_node_source
        if self.gpu_memory_numa_node is not None:
            extra["gpu_memory_numa_node"] = self.gpu_memory_numa_node
        return extra


def sysfs_bus_id(bus_id: str) -> str:
    """NVML's "00000000:1B:00.0" -> sysfs's "0000:1b:00.0" (4-digit domain, lower case)."""
    domain, _, rest = bus_id.strip().partition(":")
    return f"{int(domain, 16):04x}:{rest.lower()}" if rest else bus_id.lower()


def pci_numa_node(bus_id: str | None, sysfs_root: str | None = None) -> tuple[int | None, str]:
    """(the NUMA node of a PCI device from sysfs, where it came from or why not); -1 means none."""
    if not bus_id:
        return None, "no PCI bus id for the GPU"
    path = os.path.join(sysfs_root or SYSFS_PCI, sysfs_bus_id(bus_id), "numa_node")
    try:
        with open(path, encoding="ascii") as handle:
            node = int(handle.read().strip())
    except (OSError, ValueError) as exc:
        return None, f"{path}: {getattr(exc, 'strerror', None) or exc}"
    return (node if node >= 0 else None), f"sysfs {path}" + ("" if node >= 0 else " (-1: no NUMA affinity)")


def format_cpu_set(cpus: Sequence[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> "0-2,5,7-8" (the kernel's cpulist format)."""
    parts: list[str] = []
    ordered = sorted(set(cpus))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def cpus_from_mask(words: Sequence[int]) -> tuple[int, ...]:
    """NVML's affinity mask (64-bit words, word 0 = CPUs 0-63) -> CPU numbers."""
    return tuple(w * _BITS + b for w, word in enumerate(words) for b in range(_BITS) if (int(word) >> b) & 1)


def cpu_slice(rank: int, ranks: int, cpus: Sequence[int]) -> tuple[int, ...]:
    """The rank-th of `ranks` disjoint contiguous slices of `cpus` (every rank gets at least one
    CPU when there are enough; with fewer CPUs than ranks, ranks share round-robin)."""
    ordered = sorted(cpus)
    if len(ordered) < ranks:
        return (ordered[rank % len(ordered)],)
    start = rank * len(ordered) // ranks
    stop = (rank + 1) * len(ordered) // ranks
    return tuple(ordered[start:stop])


def bind_cpu_slice(rank: int, ranks: int) -> tuple[int, ...]:
    """Bind this process to its `cpu_slice` of the CPUs it may use now; returns that slice."""
    mine = cpu_slice(rank, ranks, sorted(os.sched_getaffinity(0)))
    os.sched_setaffinity(0, mine)
    return mine


def current_cpu_set() -> str:
    """The CPUs this process may run on now, in cpulist format."""
    return format_cpu_set(sorted(os.sched_getaffinity(0)))


def gpu_local_placement(cuda_index: int) -> Placement:
    """The CPUs NVML says are local to torch's cuda:<index>, restricted to the CPUs this process may
    use, and the GPU's NUMA node. A Placement with `cpus=None` and the reason when NVML cannot say."""
    try:
        words = ((os.cpu_count() or 1) + _BITS - 1) // _BITS
        local = cpus_from_mask(cpu_affinity_mask(cuda_index, words))
    except NvmlUnavailable as exc:
        return Placement(None, None, f"not bound to the GPU's CPUs: {exc}")
    except Exception as exc:  # Not Supported, an old pynvml without the call, ...
        return Placement(None, None, f"not bound to the GPU's CPUs: NVML CPU affinity: {error_text(exc)}")
    allowed = set(os.sched_getaffinity(0))
    usable = tuple(c for c in local if c in allowed)
    numa, source = pci_numa_node(gpu_pci_bus_id(cuda_index))
    nodes = {"gpu_memory_numa_node": numa_node(cuda_index), "numa_node_source": source}
    if not usable:
        return Placement(None, numa, "not bound: none of the GPU's local CPUs "
                                     f"({format_cpu_set(local) or 'none'}) is allowed to this process", **nodes)
    return Placement(usable, numa, **nodes)


@contextlib.contextmanager
def bound(placement: Placement) -> Iterator[Placement]:
    """Run the block on `placement.cpus` (when there are any), then restore the previous set."""
    if not placement.cpus:
        yield placement
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, placement.cpus)
    try:
        yield placement
    finally:
        os.sched_setaffinity(0, previous)


def pages_by_node(address: int, maps: str = "/proc/self/maps", numa_maps: str = "/proc/self/numa_maps"
                  ) -> dict[str, int] | None:
    """Where the pages of the mapping holding `address` are: {"N0": pages, ...} from
    /proc/self/numa_maps (Linux; None where it cannot be read or the address is in no mapping)."""
    try:
        with open(maps, encoding="ascii") as handle:
            start = next((int(line.split("-", 1)[0], 16) for line in handle
                          if int(line.split("-", 1)[0], 16) <= address < int(line.split()[0].split("-")[1], 16)),
                         None)
        if start is None:
            return None
        with open(numa_maps, encoding="ascii") as handle:
            for line in handle:
                fields = line.split()
                if fields and int(fields[0], 16) == start:
                    return {f.split("=")[0]: int(f.split("=")[1]) for f in fields[2:]
                            if f[:1] == "N" and "=" in f and f[1:].split("=")[0].isdigit()}
    except (OSError, ValueError, IndexError):
        return None
    return None
