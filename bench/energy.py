"""Energy counters differenced over a case: NVML's total energy (mJ since the driver loaded, Volta
and newer), or on the CPU the Linux powercap RAPL package zones (µJ, wrapping at
max_energy_range_uj). Torch-free; nothing raises.

A counter that is unsupported, goes backwards (a driver reload) or cannot be read leaves the
energy unavailable with the reason. The window is the case's whole run (warm-up included), so
the average power is energy / window and the energy per operation is the median rate / that
power: the steady-state figure, not the joules of the timed samples alone (docs/method.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

POWERCAP = Path("/sys/class/powercap")
NVML_ENERGY_SOURCE = "nvmlDeviceGetTotalEnergyConsumption (mJ since driver load)"


@dataclass(frozen=True)
class EnergyReading:
    energy_j: float | None
    window_s: float | None
    source: str | None
    reason: str | None = None  # why energy_j is None


class EnergyWindow:
    """read() at start, finish() at stop. `read_j` returns one counter (J) or one per zone; `wrap_j`
    is each counter's range where it wraps (a zone's delta is undone by its own range)."""

    def __init__(self, read_j: Callable[[], float | list[float]] | None, source: str | None,
                 reason: str | None = None, wrap_j: list[float] | None = None) -> None:
        self._read, self.source, self._reason, self._wrap = read_j, source, reason, wrap_j
        self._start: float | list[float] | None = None
        self._t0 = time.perf_counter()
        if read_j is not None:
            try:
                self._start = read_j()
            except Exception as exc:
                self._reason = f"energy counter unreadable: {type(exc).__name__}: {exc}"

    def finish(self) -> EnergyReading:
        window = time.perf_counter() - self._t0
        if self._read is None or self._start is None:
            return EnergyReading(None, None, self.source, self._reason or "no energy counter")
        try:
            end = self._read()
        except Exception as exc:
            return EnergyReading(None, None, self.source, f"energy counter unreadable: {type(exc).__name__}: {exc}")
        starts = self._start if isinstance(self._start, list) else [self._start]
        ends = end if isinstance(end, list) else [end]
        total = 0.0
        for i, (a, b) in enumerate(zip(starts, ends)):
            delta = b - a
            if delta < 0 and self._wrap and self._wrap[i]:
                delta += self._wrap[i]  # the counter wrapped once (RAPL: every few minutes on a busy package)
            if delta < 0:
                return EnergyReading(None, None, self.source,
                                     f"energy counter went backwards ({a:.3f} -> {b:.3f} J: a driver reload?)")
            total += delta
        return EnergyReading(total, window, self.source)


def nvml_energy_window(nvml: Any, handle: Any) -> EnergyWindow:
    fn = getattr(nvml, "nvmlDeviceGetTotalEnergyConsumption", None)
    if fn is None:
        return EnergyWindow(None, None, "pynvml has no nvmlDeviceGetTotalEnergyConsumption")
    try:
        fn(handle)
    except Exception as exc:
        text = str(exc) or type(exc).__name__
        return EnergyWindow(None, NVML_ENERGY_SOURCE, f"NVML: {text} (the energy counter needs Volta or newer)")
    return EnergyWindow(lambda: fn(handle) / 1000.0, NVML_ENERGY_SOURCE)


def rapl_counters(root: Path = POWERCAP) -> tuple[Callable[[], list[float]] | None, str, list[float] | None]:
    """(a reader of the RAPL package zones' counters in J, or None; the source, or why there is
    none; each zone's wrap in J). The package zones are intel-rapl:N whose name starts with
    "package" (AMD's powercap driver uses the same names). energy_uj may need root on newer kernels."""
    zones = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1) if root.is_dir() else []
    packages = [z for z in zones if _text(z / "name").startswith("package")]
    if not packages:
        why = f"no RAPL package zone under {root}" if root.is_dir() else f"no {root} (no RAPL powercap interface)"
        return None, f"CPU backend: {why}", None
    try:
        wrap = [int(_text(z / "max_energy_range_uj")) / 1e6 for z in packages]
    except ValueError:
        wrap = None

    def read() -> list[float]:
        return [int((z / "energy_uj").read_text()) / 1e6 for z in packages]

    return read, f"RAPL powercap {', '.join(z.name for z in packages)} (energy_uj)", wrap


def rapl_energy_window(root: Path = POWERCAP) -> EnergyWindow:
    read, source, wrap = rapl_counters(root)
    if read is None:
        return EnergyWindow(None, None, source)
    return EnergyWindow(read, source, wrap_j=wrap)


def _text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""
