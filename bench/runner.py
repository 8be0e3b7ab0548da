"""Selected benchmarks x cases x devices -> Measurements -> RunResult.

One failing case (out of memory, unsupported dtype, kernel error) becomes a status=error record
and the run goes on; Ctrl-C stops the loop and the run is returned marked incomplete, so the
caller can still save everything measured so far.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from bench.backend import Backend, make_backend
from bench.measurement import not_run
from bench.probe import probe_cpu_device, probe_cuda_device, probe_host
from bench.registry import Benchmark, Case, select
from bench.telemetry import TelemetrySampler, throttle_flags
from results.errors import UsageError
from results.schema import DeviceInfo, Measurement, RunInfo, RunResult


@dataclass(frozen=True)
class RunOptions:
    backend_kind: str  # "cuda" | "cpu" (already resolved from --device)
    mode: str
    suites: tuple[str, ...]
    gpus: tuple[int, ...] | None = None  # None: every visible GPU
    only: str | None = None
    label: str | None = None
    argv: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlannedDevice:
    backend: Backend
    info: DeviceInfo
    cases: tuple[tuple[Benchmark, Case], ...]


CaseStarted = Callable[[Case, int | None], None]
CaseDone = Callable[[Measurement], None]


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def device_indices(options: RunOptions) -> list[int | None]:
    if options.backend_kind == "cpu":
        return [None]
    count = torch.cuda.device_count()
    if options.gpus is None:
        return list(range(count))
    missing = [g for g in options.gpus if not 0 <= g < count]
    if missing:
        raise UsageError(f"--gpus: no GPU with index {missing[0]} (visible GPUs: 0..{count - 1})")
    return list(options.gpus)


def plan(options: RunOptions) -> list[PlannedDevice]:
    planned = []
    for index in device_indices(options):
        backend = make_backend(options.backend_kind, index or 0)
        info = probe_cpu_device() if index is None else probe_cuda_device(index)
        cases = tuple(select(options.suites, backend, options.mode, options.only))
        planned.append(PlannedDevice(backend, info, cases))
    if options.only and not any(p.cases for p in planned):
        raise UsageError(f"--only {options.only!r} matches no case of suites {','.join(options.suites)} "
                         "(case keys look like matmul/bf16/m=8192,n=8192,k=8192 or memory/copy/bytes=...)")
    return planned


def run_case(bench: Benchmark, case: Case, backend: Backend, info: DeviceInfo, mode: str) -> Measurement:
    sampler = TelemetrySampler(backend.device_index if backend.kind == "cuda" else None)
    with sampler:
        try:
            result = bench.run(case, backend, mode)
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            result = _failed(case, backend, f"out of memory: {_first_line(exc)}")
        except (RuntimeError, ValueError, TypeError, NotImplementedError, AssertionError) as exc:
            result = _failed(case, backend, f"{type(exc).__name__}: {_first_line(exc)}")
    telemetry = sampler.telemetry
    flags = result.flags + throttle_flags(telemetry, info.sm_clock_max_mhz)
    return dataclasses.replace(result, telemetry=telemetry, flags=tuple(dict.fromkeys(flags)))


def execute(
    options: RunOptions,
    planned: Sequence[PlannedDevice],
    on_start: CaseStarted | None = None,
    on_done: CaseDone | None = None,
) -> RunResult:
    host = probe_host()
    started = utc_now()
    measurements: list[Measurement] = []
    incomplete_reason = None
    total = sum(len(p.cases) for p in planned)
    try:
        for device in planned:
            warm_up_device(device.backend, options.mode)
            for bench, case in device.cases:
                if on_start:
                    on_start(case, device.backend.device_index)
                measurement = run_case(bench, case, device.backend, device.info, options.mode)
                measurements.append(measurement)
                if on_done:
                    on_done(measurement)
    except KeyboardInterrupt:
        incomplete_reason = f"interrupted (Ctrl-C) after {len(measurements)} of {total} cases"
    run = RunInfo(
        **host,
        started_utc=started,
        finished_utc=utc_now(),
        mode=options.mode,
        argv=options.argv,
        label=options.label,
        suites=options.suites,
        backend=options.backend_kind,
        complete=incomplete_reason is None,
        incomplete_reason=incomplete_reason,
    )
    return RunResult(run=run, devices=tuple(p.info for p in planned), measurements=tuple(measurements))


def warm_up_device(backend: Backend, mode: str) -> None:
    """Global warm-up (mamf-finder style) so clocks are steady before the first case."""
    seconds = backend.sizes(mode).global_warmup_s
    if seconds <= 0:
        return
    a = torch.randn(4096, 4096, device=backend.device, dtype=torch.bfloat16)
    out = torch.empty_like(a)
    backend.synchronize()
    start = backend.now()
    while backend.now() - start < seconds:
        for _ in range(10):
            torch.matmul(a, a, out=out)
        backend.synchronize()


def _failed(case: Case, backend: Backend, reason: str) -> Measurement:
    unit = "byte" if case.benchmark != "matmul" else ("op" if case.precision == "int8" else "flop")
    return not_run(case, backend.device_index, "error", reason, unit=unit)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
