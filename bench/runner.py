"""Selected benchmarks x cases x devices -> Measurements -> RunResult.

One failing case (out of memory, unsupported dtype, kernel error) becomes a status=error record
and the run goes on; Ctrl-C stops the loop and the run is returned marked incomplete, so the
caller can still save everything measured so far.

Families have a scope (`Benchmark.scope`, default "device"):
- "device" (matmul, memory, hostlink): planned per device; in a distributed run each rank measures
  its own GPU, and the ranks of one node take turns (GPUs one after another, as in one process,
  so no two ranks share the host link or the CPU while measuring);
- "host" (p2p): planned once per host over its GPUs (`plan_cases(backend, PlanContext)`), run by
  local rank 0 after every local rank finished its device cases;
- "group" (collectives): every rank runs every case in lockstep after a sync that checks that all
  ranks planned the same cases; rank 0 keeps the records.
Then every rank sends its records and DeviceInfo to rank 0 (`Session.gather`), and families with
a `derive(measurements, run_host)` (p2p's aggregate I/O) add records computed from the others.
A RunAborted (a rank died or hung, or SIGTERM in a rank) and a StopRequested (SIGTERM or SIGHUP in a
single-process run) end the loop like Ctrl-C: incomplete, with the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import torch

from bench import distributed, placement
from bench.backend import Backend, make_backend
from bench.measurement import not_run
from bench.probe import probe_cpu_device, probe_cuda_device, probe_host, probe_xpu_device
from bench.registry import Benchmark, Case, families, key_selected, select
from bench.stop_signals import StopRequested
from bench.telemetry import TelemetrySampler, throttle_flags
from results.errors import UsageError
from results.files.schema import DeviceInfo, Measurement, RunInfo, RunResult


@dataclass(frozen=True)
class RunOptions:
    backend_kind: str  # "cuda" | "cpu" (already resolved from --device)
    mode: str
    suites: tuple[str, ...]
    gpus: tuple[int, ...] | None = None  # None: every visible GPU
    only: str | None = None
    label: str | None = None
    argv: tuple[str, ...] = ()
    timeout_s: float = distributed.DEFAULT_TIMEOUT_S  # distributed runs: bound on any wait for a rank
    min_bytes: int | None = None  # collectives size sweep (None: the mode's default)
    max_bytes: int | None = None
    step_factor: float | None = None
    sequential: bool = False  # ranks of a node take turns for every per-device case (--sequential)
    cases: tuple[str, ...] = ()  # a procedure's case globs (a case runs if it matches one)
    soak_seconds: float | None = None  # --soak-seconds (the soak family's default when None)
    soak_precisions: tuple[str, ...] = ()  # --soak-precision
    procedure: Mapping[str, Any] = field(default_factory=dict)  # recorded in run.procedure


@dataclass(frozen=True)
class PlanContext:
    """What host- and group-scope families plan from (`plan_cases(backend, ctx)`)."""

    kind: str
    mode: str
    gpus: tuple[int, ...]  # GPUs of this host the process may use (host scope)
    world_size: int
    min_bytes: int | None = None
    max_bytes: int | None = None
    step_factor: float | None = None


@dataclass(frozen=True)
class PlannedDevice:
    backend: Backend
    info: DeviceInfo
    cases: tuple[tuple[Benchmark, Case], ...]
    phase: str = "device"  # "concurrent" | "device" | "host" | "group"
    warm_up: bool = True


CaseStarted = Callable[[Case, int | None], None]
CaseDone = Callable[[Measurement], None]


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def scope_of(bench: Benchmark) -> str:
    return getattr(bench, "scope", "device")


def device_indices(options: RunOptions, session: distributed.Session | None = None) -> list[int | None]:
    if options.backend_kind == "cpu":
        return [None]
    count = torch.xpu.device_count() if options.backend_kind == "xpu" else torch.cuda.device_count()
    if options.gpus is None:
        chosen = list(range(count))
    else:
        missing = [g for g in options.gpus if not 0 <= g < count]
        if missing:
            raise UsageError(f"--gpus: no GPU with index {missing[0]} (visible GPUs: 0..{count - 1})")
        chosen = list(options.gpus)
    if session is not None and session.multi:  # one GPU per rank: the one the session was started on
        return [session.device_index]  # (orchestrate.start_session: distributed.rank_gpu, or a one-line error)
    return chosen


def host_gpus(options: RunOptions) -> tuple[int, ...]:
    if options.backend_kind != "cuda":
        return ()
    return tuple(options.gpus) if options.gpus is not None else tuple(range(torch.cuda.device_count()))


def measures_concurrently(options: RunOptions, session: distributed.Session | None) -> bool:
    """Whether this rank measures its device at the same time as the node's other ranks (one rank
    per GPU, or per CPU slice), rather than taking turns (--sequential, or a single process)."""
    return session is not None and session.multi and not options.sequential


def runs_concurrently(bench: Benchmark, case: Case) -> bool:
    """Cases of families that share no resource between devices (matmul, device memory) and the
    cases that exist to load every GPU at once (hostlink's h2d_pinned_all_gpus)."""
    return bool(getattr(bench, "concurrent", False)) or concurrent_only(bench, case)


def concurrent_only(bench: Benchmark, case: Case) -> bool:
    return case.variant in getattr(bench, "concurrent_variants", ())


def plan(options: RunOptions, session: distributed.Session | None = None) -> list[PlannedDevice]:
    known = families()
    scoped = {scope: [s for s in options.suites if scope_of(known[s]) == scope]
              for scope in ("device", "host", "group")}
    concurrent = measures_concurrently(options, session)
    planned = []
    for index in device_indices(options, session):
        if concurrent and scoped["device"] and index is None and session is not None:
            bind_cpu_slice(session.local_rank, session.local_world_size)
        backend = make_backend(options.backend_kind, index or 0)
        info = (probe_cpu_device() if index is None else
                probe_xpu_device(index) if options.backend_kind == "xpu" else probe_cuda_device(index))
        cases = tuple(select(scoped["device"], backend, options.mode, options.only, options.cases,
                             {"soak_seconds": options.soak_seconds, "soak_precisions": options.soak_precisions})) if scoped["device"] else ()
        if not concurrent:
            planned.append(PlannedDevice(backend, info, tuple(c for c in cases if not concurrent_only(*c))))
        elif scoped["device"]:  # every rank plans both items: the lockstep syncs need every rank
            together = tuple(c for c in cases if runs_concurrently(*c))
            turns = tuple(c for c in cases if not runs_concurrently(*c))
            planned.append(PlannedDevice(backend, info, together, phase="concurrent"))
            planned.append(PlannedDevice(backend, info, turns, phase="device", warm_up=not together))
        else:
            planned.append(PlannedDevice(backend, info, ()))
    first = planned[0]
    ctx = PlanContext(kind=options.backend_kind, mode=options.mode, gpus=host_gpus(options),
                      world_size=session.world_size if session else 1, min_bytes=options.min_bytes,
                      max_bytes=options.max_bytes, step_factor=options.step_factor)
    extra_phases = []
    for phase in ("host", "group"):
        cases = tuple((known[name], case) for name in scoped[phase]
                      for case in known[name].plan_cases(first.backend, ctx)  # type: ignore[attr-defined]
                      if key_selected(case.key, options.only, options.cases))
        if cases:
            extra_phases.append(PlannedDevice(first.backend, first.info, cases, phase=phase, warm_up=False))
    if options.only and not any(p.cases for p in planned + extra_phases):
        raise UsageError(f"--only {options.only!r} matches no case of suites {','.join(options.suites)} "
                         "(case keys look like matmul/bf16/m=8192,n=8192,k=8192 or memory/copy/bytes=...)")
    for extra in extra_phases:  # the host phase runs once per host: on local rank 0
        if extra.phase == "group" or session is None or session.local_rank == 0:
            planned.append(extra)
    return planned


def run_case(bench: Benchmark, case: Case, backend: Backend, info: DeviceInfo, mode: str) -> Measurement:
    """One case on its device (made current while it runs). Any exception of the case becomes a
    status=error record; only Ctrl-C and a RunAborted (BaseExceptions) end the run."""
    sampler = (TelemetrySampler(backend.device_index, backend="xpu") if backend.kind == "xpu" else
               TelemetrySampler(backend.device_index if backend.kind == "cuda" else None))
    with backend.selected(), sampler:
        try:
            result = bench.run(case, backend, mode)
        except torch.cuda.OutOfMemoryError as exc:
            result = _failed(case, backend, f"out of memory: {distributed.first_line(exc)}")
        except Exception as exc:  # a kernel error, an unsupported dtype, a bug in one family
            result = _failed(case, backend, f"{type(exc).__name__}: {distributed.first_line(exc)}")
    if result.reason and result.reason.startswith("out of memory") and backend.kind == "cuda":
        torch.cuda.empty_cache()  # here, once the exception (and the case's tensors) are released
    telemetry = sampler.telemetry
    flags = result.flags + throttle_flags(telemetry, info.sm_clock_max_mhz)
    extra = result.extra
    if sampler.power_source is not None and telemetry is not None and telemetry.power_w is not None:
        extra = {**result.extra, "power_reading": sampler.power_source}
    if sampler.residency_s:
        extra = {**extra, "clock_event_residency_s": dict(sampler.residency_s)}
    if telemetry is not None and telemetry.energy_j and telemetry.energy_window_s and result.rate:
        watts = telemetry.energy_j / telemetry.energy_window_s  # the case's average power
        extra = {**extra, "average_power_w": watts, f"{result.unit}_per_j": result.rate / watts}
    return dataclasses.replace(result, telemetry=telemetry, flags=tuple(dict.fromkeys(flags)), extra=extra)


def _keep_partial(exc: BaseException, measurements: list[Measurement]) -> None:
    """A case that kept what it measured before the stop (the soak's windows) is stored too."""
    partial = getattr(exc, "partial_measurement", None)
    if isinstance(partial, Measurement):
        measurements.append(partial)


def execute(
    options: RunOptions,
    planned: Sequence[PlannedDevice],
    on_start: CaseStarted | None = None,
    on_done: CaseDone | None = None,
    session: distributed.Session | None = None,
    save_partial: Callable[[RunResult], object] | None = None,
) -> RunResult:
    """Run every planned case. In a distributed run this returns, on rank 0, the whole run (every
    rank's records and devices) and, on other ranks, only their own part (not to be saved).
    `save_partial` is what the session's watchdog calls with the partial result (rank 0) when
    the main thread is stuck."""
    host = probe_host()
    started = utc_now()
    measurements: list[Measurement] = []
    total = sum(len(p.cases) for p in planned)
    reason: str | None = None

    def result(reason: str | None, records: Sequence[Measurement], devices: Sequence[DeviceInfo],
               hosts: Sequence[str]) -> RunResult:
        run = RunInfo(
            **host, started_utc=started, finished_utc=utc_now(), mode=options.mode, argv=options.argv,
            label=options.label, suites=options.suites,
            backend="rocm" if options.backend_kind == "cuda" and host.get("hip") else options.backend_kind,
            complete=reason is None, incomplete_reason=reason,
            world_size=session.world_size if session else 1, hosts=tuple(dict.fromkeys(hosts)),
            procedure=dict(options.procedure), scheduler=distributed.scheduler_facts(),
        )
        return RunResult(run=run, devices=_unique(devices), measurements=tuple(records))

    own_devices = [p.info for p in planned]
    if session is not None and session.multi and session.rank == 0 and save_partial is not None:
        session.on_emergency = lambda reason: save_partial(result(
            reason, [m for m in measurements if m.rank is None or m.rank == 0], own_devices, [session.host]))
    try:
        _execute_phases(options, planned, session, measurements, on_start, on_done)
    except KeyboardInterrupt as exc:
        _keep_partial(exc, measurements)
        reason = f"interrupted (Ctrl-C) after {len(measurements)} of {total} cases"
    except StopRequested as exc:  # SIGTERM / SIGHUP in a single-process run (bench.stop_signals)
        _keep_partial(exc, measurements)
        reason = f"{exc} after {len(measurements)} of {total} cases"
    except distributed.RunAborted as exc:
        _keep_partial(exc, measurements)
        reason = f"{exc} (after {len(measurements)} of {total} cases on rank {_rank(session)})"
    records: list[Measurement] = list(measurements)
    devices: list[DeviceInfo] = list(own_devices)
    hosts = [host["host"]]
    if session is not None and session.world_size > 1 and reason is None:
        mine = [m for m in measurements if not _group_record(m) or session.rank == 0]
        try:
            parts = session.gather((mine, own_devices, session.host))
        except distributed.RunAborted as exc:
            reason, parts = f"{exc} (while gathering results to rank 0)", None
        if parts is not None:
            records = [m for part in parts for m in part[0]]
            devices = [d for part in parts for d in part[1]]
            hosts = [part[2] for part in parts]
    if session is None or session.rank == 0:
        known = families()
        for name in options.suites:
            derive = getattr(known[name], "derive", None)
            if derive is not None:
                try:
                    records.extend(derive(records, str(host["host"])))
                except Exception as exc:  # a bug here must not cost the measured records
                    records.append(not_run(Case(name, "derived"), None, "error",
                                           f"deriving records failed: {type(exc).__name__}: {distributed.first_line(exc)}",
                                           unit="byte"))
    return result(reason, records, devices, hosts)


def _execute_phases(options, planned, session, measurements, on_start, on_done) -> None:
    multi = session is not None and session.multi
    has_device_phase = any(p.cases for p in planned if p.phase == "device")
    turn = "not yet"  # per-device cases in turns: "not yet" -> "mine" (after the previous local rank) -> "done"
    for device in planned:
        if multi and has_device_phase and device.phase == "device" and turn == "not yet":
            if session.local_rank > 0:
                session.wait_local("device-done", session.local_rank - 1)  # a node's ranks take turns
            turn = "mine"
        if turn == "mine" and device.phase != "device":
            session.mark("device-done")
            turn = "done"
        if multi and device.phase == "host" and has_device_phase:  # p2p after every local GPU's turn
            session.wait_local("device-done", session.local_world_size - 1)
        if device.phase == "group" and session is not None:
            _agree_on_plan(session, device.cases)
        if device.warm_up:
            with device.backend.selected():
                warm_up_device(device.backend, options.mode)
        steps = _lockstep(session, device) if device.phase == "concurrent" else None
        backends: dict[int, Backend] = {}
        for i, (bench, case) in enumerate(device.cases):
            if steps is not None:
                steps(i)  # every rank starts case i together
            if session is not None:
                session.progress(case.key)
            backend = _backend_for(device, case, options, backends)
            if on_start:
                on_start(case, backend.device_index)
            measurement = run_case(bench, case, backend, device.info, options.mode)
            measurement = dataclasses.replace(
                measurement, concurrent_devices=_concurrent_devices(device, case, session))
            if device.phase == "concurrent" and backend.kind == "cpu":
                measurement = dataclasses.replace(measurement, extra={**measurement.extra, "cpu_set": placement.current_cpu_set()})
            if session is not None and session.world_size > 1:
                measurement = dataclasses.replace(measurement, rank=session.rank, host=session.host)
            measurements.append(measurement)
            if on_done:
                on_done(measurement)
        if steps is not None:
            steps(len(device.cases), last=True)
    if turn == "mine":
        session.mark("device-done")


def _lockstep(session: distributed.Session, device: PlannedDevice) -> Callable[..., None]:
    """Syncs that start case i on every rank at once. Ranks may plan different numbers of cases
    (shapes fitted to each GPU's free memory): every rank joins every step up to the largest count,
    and a last step ends the phase together (so p2p never starts while a GPU still measures)."""
    counts = [int(c) for c in session.sync("concurrent-plan", str(len(device.cases)))]
    largest = max(counts)

    def step(i: int, last: bool = False) -> None:
        for j in range(i, largest + 1) if last else (i,):
            session.sync(f"concurrent/{j}")
    return step


def _concurrent_devices(device: PlannedDevice, case: Case, session: distributed.Session | None) -> int:
    """Devices of this host measuring while this case ran, itself included."""
    local = session.local_world_size if session is not None else 1
    if device.phase in ("concurrent", "group"):
        return local
    if device.phase == "host" and "dst" in case.params:
        return 2  # a peer pair
    return 1


def bind_cpu_slice(local_rank: int, local_ranks: int) -> None:
    """A CPU rank of a concurrent run is one slice of this host's CPUs (bench.placement.cpu_slice),
    and torch's intra-op threads match it."""
    torch.set_num_threads(len(placement.bind_cpu_slice(local_rank, local_ranks)))


def _agree_on_plan(session: distributed.Session, cases: Sequence[tuple[Benchmark, Case]]) -> None:
    """Every rank must run the same collectives in the same order, or the group deadlocks."""
    keys = "\n".join(case.key for _bench, case in cases)
    plans = session.sync("group-plan", keys)
    for rank, other in enumerate(plans):
        if other != keys:
            session.fail("ranks planned different collective cases")
            mine, theirs = keys.split("\n"), other.split("\n")
            diff = next((f"{a!r} vs {b!r}" for a, b in zip(mine, theirs) if a != b),
                        f"{len(mine)} vs {len(theirs)} cases")
            raise distributed.RankFailure(
                f"rank {session.rank} and rank {rank} planned different collective cases ({diff}); "
                "give every rank the same options (and the same --gpus count per node)")


def _backend_for(device: PlannedDevice, case: Case, options: RunOptions, cache: dict[int, Backend]) -> Backend:
    """Host-scope cases run on their source GPU (telemetry and timing follow it)."""
    src = case.params.get("src") if device.phase == "host" else None
    if src is None or options.backend_kind != "cuda" or src == device.backend.device_index:
        return device.backend
    if src not in cache:
        cache[src] = make_backend(options.backend_kind, int(src))
    return cache[src]


def _group_record(m: Measurement) -> bool:
    known = families()
    return m.benchmark in known and scope_of(known[m.benchmark]) == "group"


def _unique(devices: Sequence[DeviceInfo]) -> tuple[DeviceInfo, ...]:
    seen: dict[tuple, DeviceInfo] = {}
    for d in devices:
        seen.setdefault((d.host, d.backend, d.index, d.uuid), d)
    return tuple(seen.values())


def _rank(session: distributed.Session | None) -> int:
    return session.rank if session is not None else 0


def warm_up_device(backend: Backend, mode: str) -> None:
    """Global warm-up (mamf-finder style) so clocks are steady before the first case."""
    seconds = backend.sizes(mode).global_warmup_s
    if seconds <= 0:
        return
    dtype = torch.float16 if backend.precision_unsupported("bf16") else torch.bfloat16
    a = torch.randn(4096, 4096, device=backend.device, dtype=dtype)
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
