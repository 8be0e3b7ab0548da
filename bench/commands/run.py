"""`tppbench run`: measure, write one result file, print the summary."""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

from bench.modes import MODES
from results.argtypes import bounded
from results.errors import UsageError

DEFAULT_SUITES = ("matmul", "memory", "hostlink")
EXIT_CASE_ERRORS = 4  # the file was written, but at least one case has status=error
EXIT_INTERRUPTED = 130
EXIT_RANK_FAILURE = 5  # distributed run: a rank died, hung or was stopped (partial file written)
EXIT_SAVED_ELSEWHERE = 1  # --out could not be written after all; the file went to RESCUE_FOLDER
RESCUE_FOLDER = "tppbench-rescued"  # under the system's temp folder
_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _parse_bytes(text: str) -> int:
    """1048576, 64K, 1M, 4G, 4GiB, 512MB (binary multiples, as nccl-tests' -b/-e)."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    digits, suffix = (raw[:-1], raw[-1]) if raw[-1:] and raw[-1:] in "KMGT" else (raw, "")
    value = float(digits) * _SUFFIXES[suffix]
    if not math.isfinite(value):
        raise ValueError(text)
    return int(value)


_byte_size = bounded(_parse_bytes, expected="a byte size like 1048576, 64K, 1M or 4G", at_least=1)
_step_factor = bounded(float, expected="a step factor greater than 1", above=1.0)
_seconds = bounded(float, expected="a positive number of seconds", above=0.0)
_positive_int = bounded(int, expected="a positive integer", at_least=1)


def _gpu_list(text: str) -> tuple[int, ...]:
    try:  # a GPU named twice is measured once
        values = tuple(dict.fromkeys(int(part) for part in text.split(",") if part.strip() != ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated GPU indices like 0,1, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated GPU indices like 0,1, got {text!r}")
    return values


def _suite_list(text: str) -> tuple[str, ...]:
    from bench.registry import families

    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    known = families()
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        bad = unknown[0] if unknown else text
        raise argparse.ArgumentTypeError(f"unknown suite {bad!r} (choose from {', '.join(known)})")
    return names


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="measure this host's GPUs (or the CPU) into a result file")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                        help="auto picks CUDA when available (default: auto)")
    parser.add_argument("--gpus", type=_gpu_list, default=None,
                        help="comma-separated GPU indices (default: every visible GPU, one after another)")
    parser.add_argument("--mode", choices=MODES, default="quick", help="work size and time budgets (default: quick)")
    parser.add_argument("--suite", type=_suite_list, default=DEFAULT_SUITES, dest="suites",
                        help=f"benchmark families, comma-separated (default: {','.join(DEFAULT_SUITES)})")
    parser.add_argument("--only", default=None, metavar="PATTERN", help="glob over case keys, e.g. 'matmul/bf16/*'")
    parser.add_argument("--out", default="results/runs", metavar="DIR", help="output folder (default: results/runs)")
    parser.add_argument("--label", default=None, metavar="TEXT", help="free-text label stored in the file")
    parser.add_argument("--timeout", type=_seconds, default=300.0, metavar="SECONDS",
                        help="distributed runs: how long any rank waits for a peer that makes no progress "
                             "before the run stops, naming it (default: 300)")
    parser.add_argument("--min-bytes", type=_byte_size, default=None, metavar="SIZE",
                        help="collectives: smallest size S of the sweep, e.g. 1K, 1M (default per mode)")
    parser.add_argument("--max-bytes", type=_byte_size, default=None, metavar="SIZE",
                        help="collectives: largest size S of the sweep, e.g. 4G (GPU default reaches 4 GiB)")
    parser.add_argument("--step-factor", type=_step_factor, default=None, metavar="F",
                        help="collectives: multiply S by F between sizes (default per mode)")
    parser.add_argument("--nproc", type=_positive_int, default=None, metavar="N",
                        help="collectives without torchrun: start N local ranks (default: one per selected "
                             "GPU; 1 on the CPU)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bench import distributed
    from bench.backend import resolve_device
    from bench.registry import families
    from bench.runner import RunOptions, execute, plan, scope_of
    from results.summary import make_console, print_summary

    launch = distributed.detect()
    lead = launch is None or launch.rank == 0  # only rank 0 talks and writes
    console = make_console() if lead else Console(quiet=True)
    kind, note = resolve_device(args.device)
    if note:
        console.print(note)
    if kind == "cpu" and args.gpus is not None:
        raise UsageError("--gpus needs CUDA devices; the CPU backend has none")
    if args.min_bytes is not None and args.max_bytes is not None and args.min_bytes > args.max_bytes:
        raise UsageError(f"--min-bytes {args.min_bytes} is larger than --max-bytes {args.max_bytes}")
    known = families()
    grouped = any(scope_of(known[name]) == "group" for name in args.suites)
    if launch is not None and launch.launcher != "local" and args.nproc is not None:
        raise UsageError("--nproc starts local ranks without torchrun; under torchrun use --nproc-per-node")
    if launch is None:
        check_out_folder(args.out)  # before measuring: a bad --out must not cost the run
    if launch is None and grouped:
        gpus = _selected_gpu_count(args.gpus) if kind == "cuda" else None
        nproc = args.nproc or gpus or 1
        if gpus is not None and nproc > gpus:
            raise UsageError(f"--nproc {nproc}: only {gpus} GPU(s) selected (one rank per GPU)")
        if nproc > 1:
            if sys.argv[1:2] != ["run"]:
                raise UsageError("starting local ranks needs the command line (run `tppbench run ...`)")
            return distributed.launch_local(sys.argv[1:], nproc, args.timeout)
    options = RunOptions(backend_kind=kind, mode=args.mode, suites=args.suites, gpus=args.gpus,
                         only=args.only, label=args.label, argv=tuple(sys.argv), timeout_s=args.timeout,
                         min_bytes=args.min_bytes, max_bytes=args.max_bytes, step_factor=args.step_factor)
    session = None
    if launch is not None or grouped:
        session = _start_session(launch, kind, args)
    try:
        if launch is not None and lead:
            check_out_folder(args.out)
        planned = plan(options, session)
        total = sum(len(p.cases) for p in planned)
        result = _execute_with_progress(console, options, planned, total, execute, session,
                                        lambda partial: save_or_rescue(partial, args.out)[0])
    except BaseException as exc:
        if session is None:
            raise
        _leave_after(exc, session, lead)
        raise
    run = result.run
    aborted = session is not None and session.multi and not run.complete and not (
        run.incomplete_reason or "").startswith("interrupted")
    if not lead:
        session.close(run.complete, run.incomplete_reason)
        # Multi-rank processes skip interpreter teardown: gloo's threads can abort it
        # ("terminate called without an active exception"); nothing is left to write.
        distributed.exit_now(0 if run.complete else EXIT_RANK_FAILURE)
    path, save_problem = save_or_rescue(result, args.out)
    print_summary(result, console)
    _print_p2p(result, console)
    console.print(f"wrote {path}")
    if save_problem is not None:
        print(f"tppbench: error: {save_problem}", file=sys.stderr)
    if session is not None:
        session.close(run.complete, run.incomplete_reason)
    if aborted:
        print(f"tppbench: error: {run.incomplete_reason}; wrote what rank 0 measured to {path} "
              "(marked incomplete)", file=sys.stderr)
        distributed.exit_now(EXIT_RANK_FAILURE)
    if not run.complete:
        console.print(f"[yellow]run incomplete: {run.incomplete_reason}[/]")
        code = EXIT_INTERRUPTED
    elif save_problem is not None:
        code = EXIT_SAVED_ELSEWHERE
    elif any(m.status == "error" for m in result.measurements):
        code = EXIT_CASE_ERRORS
    else:
        code = 0
    if session is not None and session.multi:
        distributed.exit_now(code)
    return code


def check_out_folder(text: str) -> None:
    """--out must be a writable folder, or one that can be made (its nearest existing ancestor is a
    writable folder); said in one line before anything is measured. Nothing is created here."""
    folder = Path(text).absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "exists and is not a folder" if existing == folder else f"{existing} is not a folder"
        raise UsageError(f"--out {text}: {what}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--out {text}: {existing} is not writable")


def save_or_rescue(result, out: str) -> tuple[Path, str | None]:
    """Save into `out`; if that fails after all (disk full, folder removed mid-run), save into the
    temp folder instead and say so: measured data is never thrown away."""
    from results.store import save

    try:
        return save(result, out), None
    except OSError as exc:
        rescue = Path(tempfile.gettempdir()) / RESCUE_FOLDER
        path = save(result, rescue)
        return path, f"could not write into --out {out} ({exc.strerror or exc}); saved the result as {path}"


def _leave_after(exc: BaseException, session, lead: bool) -> None:
    """An exception outside the measuring loop in a session: tell the peers, and in a multi-rank
    run leave at once (one line from rank 0, a traceback only for a bug), never hang at exit."""
    import traceback

    from bench import distributed
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


def _selected_gpu_count(gpus: tuple[int, ...] | None) -> int:
    import torch

    return len(gpus) if gpus is not None else torch.cuda.device_count()


def _start_session(launch, kind, args):
    """Join (or, without torchrun, create a world of one) and return the started Session."""
    from bench import distributed

    device_index = None
    if kind == "cuda":
        import torch

        chosen = list(args.gpus) if args.gpus is not None else list(range(torch.cuda.device_count()))
        local = launch.local_rank if launch is not None else 0
        if local >= len(chosen):
            raise UsageError(f"local rank {local} has no GPU: {len(chosen)} selected (fewer ranks per node, or --gpus)")
        device_index = chosen[local]
    session = distributed.Session(launch, kind, args.timeout, device_index)
    try:
        return session.start()
    except distributed.RunAborted as exc:
        print(f"tppbench: error: {exc}", file=sys.stderr)
        distributed.exit_now(EXIT_RANK_FAILURE)


def _print_p2p(result, console) -> None:
    if any(m.benchmark == "p2p" and "src" in m.params for m in result.measurements):
        from bench.kernels.p2p import matrix_tables

        for table in matrix_tables(result):
            console.print(table)


def _execute_with_progress(console, options, planned, total, execute, session=None, save_partial=None):
    kwargs = {"session": session, "save_partial": save_partial}
    if session is not None and session.rank != 0:
        return execute(options, planned, **kwargs)
    if not console.is_terminal:
        if session is None or session.world_size == 1:
            return execute(options, planned, **kwargs)
        done = [0]

        def logged(m):  # a distributed run's log: one line per case from rank 0
            done[0] += 1
            from results.summary import display_rate

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
