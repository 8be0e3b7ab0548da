"""The host's memory and cache facts the backends size from: MemTotal and MemAvailable
(/proc/meminfo), a cgroup's memory limit, the CPU's last-level cache (sysfs). Torch-free."""

from __future__ import annotations

import os

MIB = 1 << 20


def host_free_memory_bytes() -> int:
    """The host's available memory now (MemAvailable): for fit checks at run time, never for sizes."""
    return meminfo_bytes("MemAvailable:") or 4 << 30


def meminfo_bytes(field: str) -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def cgroup_memory_limit_bytes() -> int | None:
    """cgroup v2 memory.max or v1 memory.limit_in_bytes; None when unlimited or unreadable."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as handle:
                text = handle.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return None


def cpu_llc_bytes() -> int:
    base = "/sys/devices/system/cpu/cpu0/cache"
    best = 0
    try:
        for entry in os.listdir(base):
            try:
                with open(os.path.join(base, entry, "size"), encoding="ascii") as handle:
                    text = handle.read().strip()
            except OSError:
                continue
            scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            digits = text[:-1] if text[-1:] in "KMG" else text
            if digits.isdigit():
                best = max(best, int(digits) * scale)
    except OSError:
        pass
    return best or 32 * MIB

