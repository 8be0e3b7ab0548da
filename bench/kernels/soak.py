"""Sustained load (`--suite soak`): one compute-bound matmul per precision (default bf16, the
mode's reference shape, random normal inputs: zero inputs overstate a power-capped GPU by ~15 %)
held for `--soak-seconds` (default 120) on every selected device at once.

Per window of about 1 s: the rate (CUDA events around a fixed batch of calls sized from the
warm-up), and, where NVML is there, SM and memory clocks, power, temperature, the clock-event
mask and the energy counter's delta. `times_s` holds one sample per window (mean seconds per call
in it; `timing.calls_per_sample` calls each); `extra.windows` the per-window telemetry.
Derived: `burst_rate` (median of the windows in the first 3 s), `steady_rate` (median of the last
half), `sustained_ratio` = steady / burst, and over the steady windows the energy and op per J.
SIGTERM or Ctrl-C during a soak keeps the windows measured so far (the record is flagged
`interrupted` and the run is marked incomplete)."""

from __future__ import annotations

import math
import statistics
from typing import Any

from bench.backend import Backend
from bench.energy import rapl_counters
from bench.kernels.matmul import KERNELS, float32_mode, make_operands
from bench.measurement import measured, not_run
from bench.registry import Case, register
from results.files.schema import Timing

DEFAULT_SECONDS = 120.0
DEFAULT_PRECISIONS = ("bf16",)
WINDOW_S = 1.0
BURST_S = 3.0
CONVENTION = "2*m*n*k operations per call, held for the soak's duration; one sample per ~1 s window"
METHOD_VERSION = 1


class SoakBenchmark:
    name = "soak"
    concurrent = True  # every selected device at once: a node's GPUs heat each other
    takes_settings = True

    def cases(self, backend: Backend, mode: str, settings: dict[str, Any] | None = None) -> list[Case]:
        settings = settings or {}
        seconds = float(settings.get("soak_seconds") or DEFAULT_SECONDS)
        edge = backend.sizes(mode).matmul_mnk
        out = []
        for precision in settings.get("soak_precisions") or DEFAULT_PRECISIONS:
            cap = backend.matmul_edge_cap(precision)
            e = min(edge, cap) if cap else edge
            out.append(Case("soak", "matmul", {"m": e, "n": e, "k": e, "seconds": seconds}, precision))
        return out

    def run(self, case: Case, backend: Backend, mode: str):
        precision = case.precision or ""
        unit = "op" if precision == "int8" else "flop"
        reason = backend.precision_unsupported(precision) or (None if precision in KERNELS else
                                                              f"no {precision} matmul kernel")
        if reason is not None:
            return not_run(case, backend.device_index, "skipped", reason, unit=unit, convention=CONVENTION)
        m, n, k = (int(case.params[x]) for x in ("m", "n", "k"))
        seconds = float(case.params["seconds"])
        kernel = KERNELS[precision]
        snapshot = _snapshot_fn(backend)
        windows: list[dict[str, Any]] = []
        times: list[float] = []
        with float32_mode(precision):
            ops = make_operands(precision, m, n, k, backend.device, seed=m * 31 + n * 7 + k,
                                fp8_dtype=backend.fp8_dtype())
            batch = _batch_size(lambda: kernel(ops), backend)
            start = backend.now()
            previous = snapshot()
            from bench.distributed import current

            session = current()  # a rank: react to SIGTERM at every window, not only between cases
            try:
                # stop before a window that would run past the duration by more than half of one
                while backend.now() - start + (windows[-1]["seconds"] / 2 if windows else 0.0) < seconds:
                    token = backend.start_sample()
                    for _ in range(batch):
                        kernel(ops)
                    elapsed = backend.stop_sample(token)
                    now = snapshot()
                    times.append(elapsed / batch)
                    windows.append(_window(backend.now() - start, elapsed, batch, 2.0 * m * n * k, previous, now))
                    previous = now
                    if session is not None:
                        session.alive()
            except BaseException as exc:  # SIGTERM / Ctrl-C: keep what was measured, then stop the run
                if windows:
                    exc.partial_measurement = self._record(  # type: ignore[attr-defined]
                        case, backend, unit, times, batch, windows, m, n, k, interrupted=True)
                raise
        return self._record(case, backend, unit, times, batch, windows, m, n, k, interrupted=False)

    def _record(self, case, backend, unit, times, batch, windows, m, n, k, interrupted: bool):
        timing = Timing(clock=backend.clock_name, calls_per_sample=batch, warmup_calls=batch,
                        warmup_s=0.0, l2_flushed=False)
        extra = {"windows": windows, **derived(windows)}
        record = measured(case, backend.device_index, times_s=tuple(times), timing=timing,
                          work_per_call=2.0 * m * n * k, unit=unit, convention=CONVENTION,
                          method_version=METHOD_VERSION, extra=extra)
        if interrupted:
            import dataclasses

            record = dataclasses.replace(record, flags=(*record.flags, "interrupted"))
        return record


def _batch_size(call, backend: Backend) -> int:
    """Calls per ~1 s window, from a timed warm-up of at least one call and 0.2 s."""
    t0 = backend.now()
    call()  # first call: allocations, kernel selection
    backend.synchronize()
    first = backend.now() - t0
    if first >= WINDOW_S:  # one call fills a window already (a slow CPU precision): one per window
        return 1
    calls, t0 = 0, backend.now()
    while calls == 0 or backend.now() - t0 < 0.2:
        call()
        backend.synchronize()
        calls += 1
    per_call = (backend.now() - t0) / calls
    return max(1, int(WINDOW_S / per_call))


def _snapshot_fn(backend: Backend):
    if backend.kind == "cuda":
        from bench.nvml.samples import window_reader

        snap, _ = window_reader(backend.device_index)
        if snap is not None:
            return snap
        return lambda: {}
    read, _, _ = rapl_counters()
    if read is None:  # no energy counter on this CPU: windows carry the rate only
        return lambda: {}

    def cpu_snapshot() -> dict[str, Any]:
        try:
            return {"energy_counter_j": sum(read())}
        except Exception:
            return {}
    return cpu_snapshot


def _window(t_s: float, elapsed: float, calls: int, work: float, before: dict, after: dict) -> dict[str, Any]:
    w: dict[str, Any] = {"t_s": round(t_s, 4), "seconds": elapsed, "calls": calls, "rate": calls * work / elapsed}
    for name in ("sm_clock_mhz", "mem_clock_mhz", "power_w", "temperature_c", "clock_event_reasons"):
        if name in after:
            w[name] = after[name]
    if "energy_counter_j" in before and "energy_counter_j" in after:
        delta = after["energy_counter_j"] - before["energy_counter_j"]
        if delta >= 0:
            w["energy_j"] = delta
    return w


def derived(windows: list[dict[str, Any]]) -> dict[str, Any]:
    if not windows:
        return {}
    burst = [w["rate"] for w in windows if w["t_s"] <= BURST_S] or [windows[0]["rate"]]
    steady_windows = windows[len(windows) // 2:]
    steady = [w["rate"] for w in steady_windows]
    out: dict[str, Any] = {"burst_rate": statistics.median(burst), "steady_rate": statistics.median(steady),
                           "burst_windows": len(burst), "steady_windows": len(steady)}
    out["sustained_ratio"] = out["steady_rate"] / out["burst_rate"] if out["burst_rate"] > 0 else None
    if all("energy_j" in w for w in steady_windows):
        energy = sum(w["energy_j"] for w in steady_windows)
        work = sum(w["rate"] * w["seconds"] for w in steady_windows)
        seconds = sum(w["seconds"] for w in steady_windows)
        if energy > 0 and math.isfinite(energy):
            out.update(steady_energy_j=energy, steady_average_power_w=energy / seconds, steady_op_per_j=work / energy)
    else:
        out["energy_note"] = "no energy counter read in every steady window"
    return out


register(SoakBenchmark())
