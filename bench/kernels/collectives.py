"""Collectives through torch.distributed: all_reduce, all_gather, reduce_scatter, all_to_all, broadcast.

NCCL on CUDA, gloo on the CPU; the group comes from `bench.distributed` (torchrun, the local
launcher, or a world of one). Method (nccl-tests, benchmark-anchors.md sections 2 and 7.9):

- A size sweep S = min, min x f, ... <= max (`--min-bytes`, `--max-bytes`, `--step-factor`), each S
  rounded down to a multiple of 4 x n bytes (float32, n ranks) as nccl-tests rounds its counts.
- Every rank runs the same number of calls (collectives must match): one call, then a warm-up
  whose length comes from the slowest rank's first call, then per-iteration timed calls whose
  count comes from the slowest rank's warm-up (the time budgets of `bench.timing`).
- Each iteration is timed on every rank (CUDA events, or the host clock around a blocking gloo
  call); the time of iteration i is the slowest rank's (an all_reduce MAX over ranks, the
  nccl-tests `-a max` convention). `times_s` holds those, `rate` = algbw = S / t (median),
  `busbw` = algbw x the nccl-tests factor, `busbw_factor` beside it.
- After the timed loop the inputs are set to a known pattern of small integers, one more call
  runs, and every rank compares its whole output with the exact expected values (float32 sums of
  small integers are exact); any rank's mismatch makes the record status=error, naming the rank.
- One record per (operation, size), written by rank 0, with every rank's own timing and check in
  `extra["ranks"]`; device-side records of other families keep one record per rank.

The timed iterations reuse one buffer, so the in-place all_reduce's values grow (and saturate at
+-inf, never NaN): collective bandwidth does not depend on the data; the check pass re-fills it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time
from typing import Any, Callable

import torch
import torch.distributed as dist

from bench import distributed
from bench.backend import Backend
from bench.measurement import measured, not_run
from bench.registry import Case, register
from bench.timing import plan_samples
from results.analysis.collective_conventions import FORMULAS, IN_PLACE, busbw_factor, convention  # noqa: F401 (re-exported)
from results.files.schema import Measurement, Timing

METHOD_VERSION = 1
OPS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "broadcast")
DTYPE = torch.float32
ELEMENT = 4  # bytes per float32
CHECK_CHUNK = 1 << 22  # elements compared at a time (bounded memory for multi-GiB outputs)
MAX_SWEEP_SIZES = 1000  # a step factor barely above 1 would otherwise plan (nearly) forever
KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30

# (min bytes, max bytes, step factor) per backend and mode. GPU sweeps reach 4 GiB and more, where
# bus bandwidth peaks (nccl-tests #212: 256 MB is too small); CPU sweeps stay tiny so CI is fast.
DEFAULT_SWEEP = {
    "cpu": {"smoke": (1 * KIB, 64 * KIB, 8.0), "quick": (1 * KIB, 16 * MIB, 4.0), "lab": (1 * KIB, 16 * MIB, 4.0), "full": (1 * KIB, 256 * MIB, 2.0)},
    "cuda": {"smoke": (1 * MIB, 64 * MIB, 8.0), "quick": (64 * MIB, 4 * GIB, 4.0), "lab": (64 * MIB, 4 * GIB, 4.0), "full": (1 * MIB, 8 * GIB, 2.0)},
}

FOOTPRINT = {"all_reduce": 1.0, "broadcast": 1.0, "all_gather": 1.5, "reduce_scatter": 1.5, "all_to_all": 2.0}
_UNSUPPORTED = ("not supported", "unsupported", "not implemented", "does not support")


def sweep_sizes(min_bytes: int, max_bytes: int, factor: float, world_size: int) -> list[int]:
    """S values of the sweep: min, min x f, ... <= max, rounded down to whole float32 elements per
    rank (a multiple of 4 x n bytes, at least one element per rank), duplicates dropped."""
    if min_bytes <= 0 or max_bytes < min_bytes:
        raise ValueError(f"need 0 < min bytes <= max bytes, got {min_bytes} and {max_bytes}")
    if factor <= 1.0:
        raise ValueError(f"step factor must be > 1, got {factor}")
    unit = ELEMENT * world_size
    sizes: list[int] = []
    size = float(min_bytes)
    while size <= max_bytes * (1 + 1e-12):
        rounded = max(unit, int(size) // unit * unit)
        if rounded not in sizes:
            sizes.append(rounded)
        size *= factor
    return sizes


# --------------------------------------------------------------------------- data and the check


def pattern_values(q: Any, k: torch.Tensor) -> torch.Tensor:
    """Rank q's input element k: ((7k + 13q) mod 17) - 8, small integers so float32 sums are exact."""
    return (((k % 17) * 7 + (q * 13) % 17) % 17 - 8).to(DTYPE)


def fill_pattern(tensor: torch.Tensor, rank: int) -> None:
    flat = tensor.view(-1)
    for start in range(0, flat.numel(), CHECK_CHUNK):
        stop = min(start + CHECK_CHUNK, flat.numel())
        k = torch.arange(start, stop, dtype=torch.int64, device=flat.device)
        flat[start:stop] = pattern_values(rank, k)


def expected_chunk(op: str, rank: int, world_size: int, out_numel: int, start: int, stop: int,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Expected output elements [start, stop) of `op` on `rank` (output of `out_numel` elements)."""
    n = world_size
    i = torch.arange(start, stop, dtype=torch.int64, device=device)
    if op == "all_reduce":
        total = torch.zeros(stop - start, dtype=DTYPE, device=device)
        for q in range(n):
            total += pattern_values(q, i)
        return total
    if op == "broadcast":
        return pattern_values(0, i)
    if op == "all_gather":
        m = out_numel // n
        return pattern_values(i // m, i % m)
    if op == "reduce_scatter":
        m = out_numel
        total = torch.zeros(stop - start, dtype=DTYPE, device=device)
        for q in range(n):
            total += pattern_values(q, rank * m + i)
        return total
    if op == "all_to_all":
        m = out_numel // n
        return pattern_values(i // m, rank * m + i % m)
    raise ValueError(f"unknown collective {op!r}")


def check_output(op: str, output: torch.Tensor, rank: int, world_size: int) -> str | None:
    """None when `output` (rank `rank`'s result after the check call) is exactly as expected, else
    a one-line description of the mismatch."""
    flat = output.reshape(-1)
    numel = flat.numel()
    bad = 0
    first: tuple[int, float, float] | None = None
    for start in range(0, numel, CHECK_CHUNK):
        stop = min(start + CHECK_CHUNK, numel)
        want = expected_chunk(op, rank, world_size, numel, start, stop, flat.device)
        got = flat[start:stop]
        wrong = got != want  # NaN (an output never written) counts as wrong
        count = int(wrong.sum().item())
        if count and first is None:
            at = int(wrong.nonzero()[0].item())
            first = (start + at, float(got[at].item()), float(want[at].item()))
        bad += count
    if not bad:
        return None
    assert first is not None
    return (f"{bad} of {numel} output elements differ from the expected values "
            f"(first at index {first[0]}: got {first[1]:g}, expected {first[2]:g})")


# --------------------------------------------------------------------------- the calls


def _api(name: str, fallback: str) -> tuple[str, Callable[..., Any]]:
    fn = getattr(dist, name, None)  # torch >= 2.13 renamed the *_tensor forms to *_single
    return (name, fn) if fn is not None else (fallback, getattr(dist, fallback))


def make_call(op: str, session: distributed.Session, device: torch.device, size: int
              ) -> tuple[Callable[[], Any], torch.Tensor, torch.Tensor, str]:
    """(call, input, output, torch API name) for one collective of S = `size` bytes."""
    n, group = session.world_size, session.measuring_group()
    numel = size // ELEMENT
    m = numel // n
    empty = lambda count: torch.empty(count, dtype=DTYPE, device=device)  # noqa: E731
    if op == "all_reduce":
        buf = empty(numel)
        return (lambda: dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=group)), buf, buf, "all_reduce"
    if op == "broadcast":
        buf = empty(numel)
        return (lambda: dist.broadcast(buf, src=0, group=group)), buf, buf, "broadcast"
    if op == "all_gather":
        inp, out = empty(m), empty(numel)
        name, fn = _api("all_gather_single", "all_gather_into_tensor")
        return (lambda: fn(out, inp, group=group)), inp, out, name
    if op == "reduce_scatter":
        inp, out = empty(numel), empty(m)
        name, fn = _api("reduce_scatter_single", "reduce_scatter_tensor")
        return (lambda: fn(out, inp, op=dist.ReduceOp.SUM, group=group)), inp, out, name
    if op == "all_to_all":
        inp, out = empty(numel), empty(numel)
        return (lambda: dist.all_to_all_single(out, inp, group=group)), inp, out, "all_to_all_single"
    raise ValueError(f"unknown collective {op!r}")


# --------------------------------------------------------------------------- the family


class CollectivesBenchmark:
    name = "collectives"
    scope = "group"  # every rank runs every case in lockstep; rank 0 keeps the record

    def cases(self, backend: Backend, mode: str) -> list[Case]:
        session = distributed.current()
        world = session.world_size if session else 1
        return self._cases(backend.kind, mode, world, None, None, None)

    def plan_cases(self, backend: Backend, ctx: Any) -> list[Case]:
        return self._cases(backend.kind, ctx.mode, ctx.world_size, ctx.min_bytes, ctx.max_bytes, ctx.step_factor)

    def _cases(self, kind: str, mode: str, world: int, lo: int | None, hi: int | None,
               factor: float | None) -> list[Case]:
        d_lo, d_hi, d_factor = DEFAULT_SWEEP["cuda" if kind == "cuda" else "cpu"][mode]
        lo, hi, factor = lo or d_lo, hi or d_hi, factor or d_factor
        if hi < lo:  # only one bound given on the command line: sweep that single size
            lo, hi = (lo, lo) if hi == d_hi else (hi, hi)
        count = math.floor(math.log(hi / lo) / math.log(factor) + 1e-9) + 1
        if count > MAX_SWEEP_SIZES:
            from results.errors import UsageError

            raise UsageError(f"the collectives sweep {lo} .. {hi} bytes with step factor {factor!r} has "
                             f"{count} sizes (at most {MAX_SWEEP_SIZES}); use a larger --step-factor")
        sizes = sweep_sizes(lo, hi, factor, world)
        return [Case("collectives", op, {"bytes": s, "world_size": world}) for op in OPS for s in sizes]

    def run(self, case: Case, backend: Backend, mode: str) -> Measurement:
        session = distributed.current()
        if session is None or backend.kind != "cuda":
            return self._run(case, backend, mode, session)
        with torch.cuda.device(backend.device):  # events and streams on this rank's GPU
            return self._run(case, backend, mode, session)

    def _run(self, case: Case, backend: Backend, mode: str, session: distributed.Session | None) -> Measurement:
        try:
            return self._measure(case, backend, mode, session)
        except distributed.RunAborted:
            raise
        except Exception as exc:
            # One rank leaving a collective case early would desynchronise the group (its next
            # collective meets the others' current one): stop every rank instead, naming this one.
            if session is None or session.world_size == 1:
                raise
            reason = f"{case.key}: {type(exc).__name__}: {distributed.first_line(exc)}"
            session.fail(reason)
            raise distributed.RankFailure(f"rank {session.rank} (host {session.host}) failed in {reason}") from None

    def _measure(self, case: Case, backend: Backend, mode: str, session: distributed.Session | None) -> Measurement:
        op, size = case.variant, int(case.params["bytes"])
        if session is None:
            return not_run(case, backend.device_index, "skipped",
                           "no process group: collectives run under torchrun or `tppbench run --suite collectives`",
                           unit="byte", convention=convention(op))
        if int(case.params["world_size"]) != session.world_size:
            return not_run(case, backend.device_index, "error",
                           f"planned for world size {case.params['world_size']}, running in {session.world_size}",
                           unit="byte", convention=convention(op))
        need = int(FOOTPRINT[op] * size) + 3 * CHECK_CHUNK * 8
        free = backend.free_memory_bytes()
        short = [(r, f) for r, f in enumerate(distributed.all_gather_objects(session, free)) if f < need]
        if short:
            r, f = short[0]
            return not_run(case, backend.device_index, "skipped",
                           f"needs about {need / 1e9:.2f} GB of free memory on every rank; rank {r} has "
                           f"{f / 1e9:.2f} GB", unit="byte", convention=convention(op))
        try:
            call, inp, out, api = make_call(op, session, backend.device, size)
        except distributed.GroupUnavailable as exc:  # this case fails; the rest of the run goes on
            return not_run(case, backend.device_index, "error", str(exc), unit="byte", convention=convention(op))
        fill_pattern(inp, session.rank)
        skip = _first_call(call, op, api, session, backend)
        if skip is not None:
            return not_run(case, backend.device_index, "skipped", skip, unit="byte", convention=convention(op))
        own, slowest, timing = _timed(call, op, session, backend, backend.budget(mode))
        problem = _check(call, op, inp, out, session, backend)
        reports = distributed.all_gather_objects(session, {
            "rank": session.rank, "host": session.host, "device_index": backend.device_index,
            "median_s": statistics.median(own), "max_s": max(own), "check": problem or "ok",
        })
        failures = [f"rank {r['rank']} (host {r['host']}): {r['check']}" for r in reports if r["check"] != "ok"]
        factor = busbw_factor(op, session.world_size)
        record = measured(
            case, backend.device_index, times_s=tuple(slowest), timing=timing, work_per_call=float(size),
            unit="byte", convention=convention(op), method_version=METHOD_VERSION,
            check_error="; ".join(failures) if failures else None,
            extra=_extra(op, api, session, backend, size, reports),
        )
        busbw = record.rate * factor if record.rate is not None else None
        return dataclasses.replace(record, busbw=busbw, busbw_factor=factor)


def _first_call(call: Callable[[], Any], op: str, api: str, session: distributed.Session,
                backend: Backend) -> str | None:
    """Run the first call; an operation the backend lacks (same error on every rank) is a skip
    with the reason, never emulated; anything else means the group is broken."""
    try:
        call()
        _wait_device(session, backend, f"{op} (first call)")
        return None
    except distributed.RunAborted:
        raise
    except Exception as exc:
        text = distributed.first_line(exc)
        if not any(word in text.lower() for word in _UNSUPPORTED):
            raise session.collective_failed(f"{op} (first call)", exc) from None
        errors = distributed.all_gather_objects(session, text)
        return (f"torch.distributed.{api} is not supported by {session.backend} in torch "
                f"{torch.__version__}: {errors[0]}")


def _timed(call: Callable[[], Any], op: str, session: distributed.Session, backend: Backend,
           budget: Any) -> tuple[list[float], list[float], Timing]:
    """(this rank's per-iteration times, the slowest rank's per iteration, Timing). Call counts
    come from values agreed over ranks, so every rank runs the same number of collectives."""
    try:
        start = time.perf_counter()
        call()
        _wait_device(session, backend, f"{op} warm-up")
        first_s = distributed.max_over_ranks(session, time.perf_counter() - start)
        warm_calls = int(min(max(budget.warmup_s / max(first_s, 1e-9), 1), 10_000,
                             max(1.0, budget.max_case_s / 2 / max(first_s, 1e-9))))
        start = time.perf_counter()
        for _ in range(warm_calls):
            call()
        _wait_device(session, backend, f"{op} warm-up")
        warm_s = time.perf_counter() - start
        per_call_s = distributed.max_over_ranks(session, warm_s / warm_calls)
        spent_s = distributed.max_over_ranks(session, first_s + warm_s)
        _, iterations = plan_samples(per_call_s, dataclasses.replace(budget, min_sample_s=0.0), spent_s=spent_s)
        if backend.kind == "cuda":
            starts = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
            ends = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
            for begin, end in zip(starts, ends):
                begin.record()
                call()
                end.record()
            session.wait_events(ends[-1:], f"{op} timed loop")
            own = [b.elapsed_time(e) / 1e3 for b, e in zip(starts, ends)]
            clock = "cuda_event"
        else:
            own = []
            for _ in range(iterations):
                begin_s = time.perf_counter()
                call()
                own.append(time.perf_counter() - begin_s)
            clock = "perf_counter"
    except distributed.RunAborted:
        raise
    except Exception as exc:
        raise session.collective_failed(f"{op}", exc) from None
    slowest = torch.tensor(own, dtype=torch.float64)
    if session.world_size > 1:
        try:
            dist.all_reduce(slowest, op=dist.ReduceOp.MAX, group=session.control)
        except Exception as exc:
            raise session.collective_failed("the MAX over ranks of the iteration times", exc) from None
    timing = Timing(clock=clock, calls_per_sample=1, warmup_calls=1 + warm_calls, warmup_s=spent_s,
                    l2_flushed=False)
    return own, slowest.tolist(), timing


def _check(call: Callable[[], Any], op: str, inp: torch.Tensor, out: torch.Tensor,
           session: distributed.Session, backend: Backend) -> str | None:
    fill_pattern(inp, session.rank)
    if out is not inp:
        out.fill_(float("nan"))
    try:
        call()
        _wait_device(session, backend, f"{op} check call")
    except distributed.RunAborted:
        raise
    except Exception as exc:
        raise session.collective_failed(f"{op} check call", exc) from None
    return check_output(op, out, session.rank, session.world_size)


def _wait_device(session: distributed.Session, backend: Backend, what: str) -> None:
    if backend.kind != "cuda":
        return  # gloo calls block until done (bounded by the group's timeout)
    event = torch.cuda.Event()
    event.record()
    session.wait_events([event], what)


def _extra(op: str, api: str, session: distributed.Session, backend: Backend, size: int,
           reports: list[dict[str, Any]]) -> dict[str, Any]:
    nccl = None
    if session.backend == "nccl":
        try:
            version = torch.cuda.nccl.version()
            nccl = ".".join(str(v) for v in version) if isinstance(version, tuple) else str(version)
        except Exception:
            nccl = None
    return {
        "op": "sum" if op in ("all_reduce", "reduce_scatter") else None,
        "dtype": "float32",
        "in_place": IN_PLACE[op],
        "world_size": session.world_size,
        "busbw_formula": FORMULAS[op],
        "torch_api": f"torch.distributed.{api}",
        "backend": session.backend,
        "nccl_version": nccl,
        "nccl_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("NCCL_")},
        "timing": "per iteration on every rank; each iteration's time is the slowest rank's (MAX over ranks)",
        "elements_per_rank": size // ELEMENT // session.world_size,
        "ranks": reports,
    }


register(CollectivesBenchmark())
