"""The `run` sub-command's orchestration: everything between the parsed arguments and the summary.

Decides how many local ranks to launch (--out is checked before, by results.out_folder), starts
the Session, measures with a progress bar (or a per-case log), saves the result (rescuing it into the
temp folder when --out fails), leaves a multi-rank run without hanging, and decides the exit code.
Imported only by `bench.commands.run.handle` (it imports torch through `bench.distributed`).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench import distributed
from results.errors import UsageError

EXIT_CASE_ERRORS = 4  # the file was written, but at least one case has status=error
EXIT_INTERRUPTED = 130
EXIT_RANK_FAILURE = distributed.EXIT_RANK_FAILURE  # a rank died, hung or was stopped (partial file written)
EXIT_SAVED_ELSEWHERE = 1  # --out could not be written after all; the file went to RESCUE_FOLDER
RESCUE_FOLDER = "tppbench-rescued"  # under the system's temp folder


def save_or_rescue(result, out: str) -> tuple[Path, str | None]:
    """Save into `out`; if that fails after all (disk full, folder removed mid-run), save into the
    temp folder instead and say so: measured data is never thrown away."""
    from results.files.store import save

    try:
        return save(result, out), None
    except OSError as exc:
        rescue = Path(tempfile.gettempdir()) / RESCUE_FOLDER
        path = save(result, rescue)
        return path, f"could not write into --out {out} ({exc.strerror or exc}); saved the result as {path}"


def local_rank_count(kind: str, gpus: tuple[int, ...] | None, nproc: int | None) -> int:
    """How many local ranks a group-scoped run starts without torchrun: --nproc, else one per
    selected GPU, else 1; never more than the selected GPUs."""
    gpu_count = selected_gpu_count(gpus) if kind == "cuda" else None
    rank_count = nproc or gpu_count or 1
    if gpu_count is not None and rank_count > gpu_count:
        raise UsageError(f"--nproc {rank_count}: only {gpu_count} GPU(s) selected (one rank per GPU)")
    return rank_count


def selected_gpu_count(gpus: tuple[int, ...] | None) -> int:
    import torch

    return len(gpus) if gpus is not None else torch.cuda.device_count()


def start_session(launch, kind: str, gpus: tuple[int, ...] | None, timeout_s: float):
    """Join (or, without torchrun, create a world of one) and return the started Session."""
    device_index = None
    if kind == "cuda":
        import torch

        chosen = list(gpus) if gpus is not None else list(range(torch.cuda.device_count()))
        local = launch.local_rank if launch is not None else 0
        device_index = distributed.rank_gpu(chosen, local)
        if device_index is None:
            raise UsageError(f"local rank {local} has no GPU: {len(chosen)} selected (fewer ranks per node, or --gpus)")
    session = distributed.Session(launch, kind, timeout_s, device_index)
    try:
        return session.start()
    except distributed.RunAborted as exc:
        print(f"tppbench: error: {exc}", file=sys.stderr)
        distributed.exit_now(EXIT_RANK_FAILURE)


def measure(console, options, session, out: str):
    """Plan and run every case with progress shown; a partial result is saved into `out`."""
    from bench.runner import execute, plan

    planned = plan(options, session)
    total = sum(len(p.cases) for p in planned)
    return execute_with_progress(console, options, planned, total, execute, session,
                                 lambda partial: save_or_rescue(partial, out)[0])


def execute_with_progress(console, options, planned, total, execute, session=None, save_partial=None):
    kwargs = {"session": session, "save_partial": save_partial}
    if session is not None and session.rank != 0:
        return execute(options, planned, **kwargs)
    if not console.is_terminal:
        if session is None or session.world_size == 1:
            return execute(options, planned, **kwargs)
        done = [0]

        def logged(m):  # a distributed run's log: one line per case from rank 0
            done[0] += 1
            from results.render.run_summary import display_rate

            value, unit = display_rate(m)
            busbw = f", busbw {m.busbw / 1e9:.4g} GB/s" if m.busbw is not None else ""
            status = f"{value} {unit}{busbw}" if m.status == "ok" else f"{m.status}: {m.reason}"
            print(f"[{done[0]}/{total}] {m.key}: {status}", flush=True)

        return execute(options, planned, on_done=logged, **kwargs)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("measuring", total=total)

        def started(case, device_index):
            where = "cpu" if device_index is None else f"gpu{device_index}"
            progress.update(task, description=f"{where} {case.key}")

        return execute(options, planned, on_start=started, on_done=lambda m: progress.advance(task),
                       **kwargs)


def leave_after(exc: BaseException, session, lead: bool) -> None:
    """An exception outside the measuring loop in a session: tell the peers, and in a multi-rank
    run leave at once (one line from rank 0, a traceback only for a bug), never hang at exit."""
    import traceback

    from results.errors import TppbenchError

    reason = (f"{type(exc).__name__}: {exc}".splitlines() or ["?"])[0][:300]
    if not isinstance(exc, distributed.RunAborted):
        session.fail(reason)
    session.close(False, reason)
    if not session.multi:
        return  # a world of one: the CLI reports it as usual
    if isinstance(exc, (distributed.RunAborted, TppbenchError)):
        if lead:
            print(f"tppbench: error: {exc}", file=sys.stderr)
        code = exc.exit_code if isinstance(exc, TppbenchError) else EXIT_RANK_FAILURE
    elif isinstance(exc, KeyboardInterrupt):
        code = EXIT_INTERRUPTED
    else:
        traceback.print_exc()
        code = 1
    distributed.exit_now(code)


def stopped_by_rank_failure(session, run) -> bool:
    """A multi-rank run that ended incomplete for a reason other than Ctrl-C (a rank failed)."""
    return session is not None and session.multi and not run.complete and not (
        run.incomplete_reason or "").startswith("interrupted")


def exit_code(result, save_problem: str | None) -> int:
    """The exit code of a run whose result was written (a rank failure is decided earlier)."""
    if not result.run.complete:
        return EXIT_INTERRUPTED
    if save_problem is not None:
        return EXIT_SAVED_ELSEWHERE
    if any(m.status == "error" for m in result.measurements):
        return EXIT_CASE_ERRORS
    return 0


def leave(session, code: int) -> int:
    """Return `code`; a multi-rank process exits with it at once instead: it skips interpreter
    teardown, where gloo's threads can abort ("terminate called without an active exception")."""
    if session is not None and session.multi:
        distributed.exit_now(code)
    return code
