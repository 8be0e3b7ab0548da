"""Clocks, power, temperature and clock-event (throttle) reasons sampled while one case runs.

    with TelemetrySampler(device_index) as sampler:
        run_the_case()
    telemetry = sampler.telemetry            # results.schema.Telemetry

A daemon thread reads NVML every `interval_s` (default 0.05 s, ~20 Hz; each NVML call releases the
GIL). One sample is always taken at start and one at stop, so even a case shorter than the
interval has data. Without NVML, or on the CPU backend, the result is
`Telemetry(available=False, reason=...)` and no thread is started.

Summaries (min/mean/max) cover the *busy* samples, those whose clock-event reasons do not include
gpu_idle, when there is at least one: the start sample often lands on an idle GPU whose clocks
have dropped, and it is not what the case ran at. `samples` counts every sample, and the reasons
mask is the OR over every sample, idle ones included.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from bench.energy import EnergyWindow, nvml_energy_window, rapl_energy_window
from bench.nvml import (NVML, NVML_ERROR_FUNCTION_NOT_FOUND, NvmlSession, NvmlUnavailable, error_text,
                        sample_readers)
from bench.nvml.samples import residency_reader

XPU_TELEMETRY_REASON = "Intel XPU: no telemetry provider in this tppbench version (telemetry none)"
from results.files.schema import RangeSummary, Telemetry

# NVML clock-event reason bits (nvmlClocksEventReason*; the same bits as the older ThrottleReason*).
REASON_BITS: tuple[tuple[str, int], ...] = (
    ("gpu_idle", 0x1),
    ("applications_clocks_setting", 0x2),
    ("sw_power_cap", 0x4),
    ("hw_slowdown", 0x8),
    ("sync_boost", 0x10),
    ("sw_thermal_slowdown", 0x20),
    ("hw_thermal_slowdown", 0x40),
    ("hw_power_brake_slowdown", 0x80),
    ("display_clock_setting", 0x100),
)
GPU_IDLE = 0x1
# Power or thermal caps: sw_power_cap, hw_slowdown, sw/hw thermal slowdown, power brake.
CAP_REASONS_MASK = 0x4 | 0x8 | 0x20 | 0x40 | 0x80
# A case whose mean SM clock is under this fraction of the maximum SM clock is flagged.
SM_CLOCK_FRACTION = 0.9

_NVML_ERROR_NOT_SUPPORTED = 3


def decode_reasons(mask: int) -> tuple[str, ...]:
    """Names of the set bits, in bit order; an unknown bit reads 'unknown_0x200'."""
    names = [name for name, bit in REASON_BITS if mask & bit]
    known = 0
    for _, bit in REASON_BITS:
        known |= bit
    rest, bit = mask & ~known, 1
    while rest:
        if rest & bit:
            names.append(f"unknown_{bit:#x}")
            rest &= ~bit
        bit <<= 1
    return tuple(names)


POWER_CAP_MASK = 0x4  # sw_power_cap: the board held to its power limit, expected under dense GEMMs
POWER_CAPPED_FLAG = "power_capped"
THROTTLED_FLAG = "throttled"


def throttle_flags(telemetry: Telemetry | None, sm_clock_max_mhz: float | None) -> tuple[str, ...]:
    """Flags by cause. `power_capped`: the case ran at the board's power limit (sw_power_cap), which
    an H100/H200 reaches under nearly every dense matmul at 700 W -- expected, and it explains a
    lower clock. `throttled`: a problem -- hardware slowdown, thermal slowdown, power brake, or a
    mean SM clock under 90 % of `sm_clock_max_mhz` that no power cap explains.

    The mean clock, not the minimum: the minimum catches the clock ramp at the start of every case
    and would flag nearly all of them. The clock test is skipped when the only reason NVML ever gave
    was gpu_idle: then nothing but idleness held the clock down (copy-engine-only work such as
    host<->device transfers can leave the SMs idle throughout)."""
    if telemetry is None or not telemetry.available:
        return ()
    mask = telemetry.throttle_reasons_mask
    flags = [POWER_CAPPED_FLAG] if mask & POWER_CAP_MASK else []
    if mask & (CAP_REASONS_MASK & ~POWER_CAP_MASK):
        return (*flags, THROTTLED_FLAG)
    clock = telemetry.sm_clock_mhz
    if flags or mask == GPU_IDLE or clock is None or not sm_clock_max_mhz:
        return tuple(flags)
    return (THROTTLED_FLAG,) if clock.mean < SM_CLOCK_FRACTION * sm_clock_max_mhz else ()


class TelemetrySampler:
    """Samples one CUDA device's NVML telemetry in a daemon thread between start() and stop()."""

    def __init__(
        self,
        device_index: int | None,
        interval_s: float = 0.05,
        *,
        backend: str = "cuda",
        session: NvmlSession | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.device_index = device_index
        self.interval_s = interval_s
        self._backend = backend
        self._session = session or NVML
        self._readers: dict[str, Callable[[], float]] = {}
        self.power_source: str | None = None  # which NVML power reading the samples are
        self._read_reasons: Callable[[], int] | None = None
        self._samples: list[tuple[dict[str, float], int | None]] = []
        self._errors: dict[str, str] = {}
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False
        self._energy: EnergyWindow | None = None
        self._early: Telemetry | None = None  # no NVML sampling: settled at start, energy added at stop
        self._residency_read: Callable[[], dict[str, float]] | None = None
        self._residency_start: dict[str, float] = {}
        self.residency_s: dict[str, float] = {}  # seconds in each limiting state over the case (NVML)
        self.telemetry: Telemetry | None = None

    def __enter__(self) -> TelemetrySampler:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Take the first sample and start the thread; with no NVML, settle the result instead."""
        if self._started:
            raise RuntimeError("TelemetrySampler is single-use: start() was already called")
        self._started = True
        if self._backend != "cuda":
            reason = (XPU_TELEMETRY_REASON if self._backend == "xpu"
                      else f"{self._backend.upper()} backend: no NVML telemetry")
            self._early = Telemetry(available=False, reason=reason)
            self._energy = rapl_energy_window() if self._backend == "cpu" else None
            return
        if self.device_index is None:  # the runner's CPU backend has no device index
            self._early = Telemetry(available=False, reason="CPU backend: no NVML telemetry")
            self._energy = rapl_energy_window()
            return
        if self._rocm():
            return
        try:
            nvml = self._session.module()
            handle = self._session.handle(self.device_index)
        except NvmlUnavailable as exc:
            self._early = Telemetry(available=False, reason=str(exc))
            return
        self._energy = nvml_energy_window(nvml, handle)
        self._residency_read = residency_reader(nvml, handle)
        self._residency_start = self._residency_read()
        self._bind(nvml, handle)
        self._sample()
        self._thread = threading.Thread(
            target=self._loop, name=f"tppbench-telemetry-{self.device_index}", daemon=True
        )
        self._thread.start()

    def _rocm(self) -> bool:
        """On a ROCm build: the amdsmi provider (or unavailable with its reason). True when handled."""
        import torch

        if not getattr(torch.version, "hip", None):
            return False
        from bench.amdsmi import AMDSMI, AmdsmiUnavailable, amdsmi_energy_window, amdsmi_sample_readers
        from bench.nvml import torch_cuda_props, torch_pci_bus_id, torch_uuid

        props, _ = torch_cuda_props(self.device_index)
        try:
            mod = AMDSMI.module()
            handle = AMDSMI.handle(torch_pci_bus_id(props), torch_uuid(props))
        except AmdsmiUnavailable as exc:
            self._early = Telemetry(available=False, reason=str(exc))
            return True
        self._readers, self._read_reasons, self.power_source = amdsmi_sample_readers(mod, handle)
        self._errors["throttle_reasons"] = ("amdsmi: its throttle status has no bit-for-bit match to NVML's "
                                            "clock-event reasons (not recorded)")
        self._energy = amdsmi_energy_window(mod, handle)
        self._sample()
        self._thread = threading.Thread(target=self._loop, name=f"tppbench-telemetry-{self.device_index}", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> Telemetry:
        """Stop the thread, take the last sample, and return (and keep) the summary."""
        if self.telemetry is not None:
            return self.telemetry
        if not self._started:
            raise RuntimeError("TelemetrySampler.stop() before start()")
        if self._early is not None:
            self.telemetry = self._with_energy(self._early)
            return self.telemetry
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 10 * self.interval_s))
        self._sample()
        if self._residency_read is not None:
            end = self._residency_read()
            self.residency_s = {k: (end[k] - v) / 1e9 for k, v in self._residency_start.items()
                                if k in end and end[k] >= v}
        self.telemetry = self._with_energy(self._summarize())
        return self.telemetry

    def _with_energy(self, telemetry: Telemetry) -> Telemetry:
        import dataclasses

        power = self.power_source if telemetry.power_w is not None else None
        if self._energy is None:
            return dataclasses.replace(telemetry, power_source=power, energy_reason="no energy counter (no NVML)")
        e = self._energy.finish()
        return dataclasses.replace(telemetry, energy_j=e.energy_j, energy_window_s=e.window_s,
                                   energy_source=e.source, energy_reason=e.reason, power_source=power)

    # ------------------------------------------------------------------ sampling

    def _bind(self, nvml: Any, h: Any) -> None:
        self._readers, self._read_reasons, self.power_source = sample_readers(nvml, h)

    def _loop(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            try:
                self._sample()
            except Exception as exc:  # a bug here must not kill the thread silently mid-case
                self._errors["sampler"] = error_text(exc)

    def _sample(self) -> None:
        values: dict[str, float] = {}
        for name, read in list(self._readers.items()):
            try:
                values[name] = read()
            except Exception as exc:
                self._errors[name] = f"NVML: {error_text(exc)}"
                if _permanent(exc):
                    self._readers.pop(name, None)  # "Not Supported" will not change mid-run
        reasons: int | None = None
        if self._read_reasons is not None:
            try:
                reasons = self._read_reasons()
            except Exception as exc:
                self._errors["throttle_reasons"] = f"NVML: {error_text(exc)}"
                if _permanent(exc):
                    self._read_reasons = None
        if values or reasons is not None:
            self._samples.append((values, reasons))

    def _summarize(self) -> Telemetry:
        samples = list(self._samples)
        if not samples:
            why = "; ".join(f"{k}: {v}" for k, v in sorted(self._errors.items())) or "no samples"
            return Telemetry(available=False, reason=f"no NVML sample succeeded ({why})")
        busy = [s for s in samples if s[1] is None or not s[1] & GPU_IDLE] or samples
        summaries = {name: _range([v[name] for v, _ in busy if name in v])
                     for name in ("sm_clock_mhz", "mem_clock_mhz", "power_w", "temperature_c")}
        mask = 0
        for _, reasons in samples:
            mask |= reasons or 0
        missing = [name for name, s in summaries.items() if s is None]
        if not any(r is not None for _, r in samples):
            missing.append("throttle_reasons")
        reason = None
        if missing:
            reason = "not read: " + ", ".join(
                f"{name} ({self._errors.get(name, 'no value')})" for name in missing
            )
        return Telemetry(
            available=True, reason=reason, samples=len(samples),
            throttle_reasons_mask=mask, throttle_reasons=decode_reasons(mask), **summaries,
        )


def _range(values: list[float]) -> RangeSummary | None:
    if not values:
        return None
    return RangeSummary(min=min(values), mean=sum(values) / len(values), max=max(values))


def _permanent(exc: BaseException) -> bool:
    if isinstance(exc, AttributeError):
        return True
    return getattr(exc, "value", None) in (_NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_FUNCTION_NOT_FOUND)
