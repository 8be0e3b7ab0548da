"""`tppbench run`: its argument parser and a thin handler (parse -> call -> render -> exit code).

The orchestration (checking --out, launching local ranks, the Session, progress, saving or
rescuing the file, the exit code) lives in `bench.orchestrate`, imported only by `handle`, so
building the CLI parser never imports torch."""

from __future__ import annotations

import argparse
import math
import sys

from bench.modes import MATMUL_PRECISIONS as _PRECISIONS, MODES
from results.commands.argtypes import bounded, non_empty
from results.errors import UsageError

DEFAULT_SUITES = ("matmul", "memory", "hostlink")
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
_pattern = non_empty("a glob over case keys like 'matmul/bf16/*'")
_folder = non_empty("a folder name")


def _precision_list(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    bad = [n for n in names if n not in _PRECISIONS]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"unknown precision {bad[0] if bad else text!r} (choose from {', '.join(_PRECISIONS)})")
    return names



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
    parser.add_argument("--device", choices=("auto", "cuda", "xpu", "cpu"), default="auto",
                        help="auto picks CUDA when available (default: auto)")
    parser.add_argument("--gpus", type=_gpu_list, default=None,
                        help="comma-separated GPU indices (default: every visible GPU, one after another)")
    parser.add_argument("--mode", choices=MODES, default=None, help="work size and time budgets (default: quick)")
    parser.add_argument("--procedure", default=None, metavar="NAME|FILE",
                        help="run a fixed, versioned test procedure (`lab`: the third-party lab test, "
                             "docs/verification.md); it sets the mode, suites and cases")
    parser.add_argument("--suite", type=_suite_list, default=None, dest="suites",
                        help=f"benchmark families, comma-separated (default: {','.join(DEFAULT_SUITES)})")
    parser.add_argument("--only", type=_pattern, default=None, metavar="PATTERN", help="glob over case keys, e.g. 'matmul/bf16/*'")
    parser.add_argument("--out", type=_folder, default="results/runs", metavar="DIR", help="output folder (default: results/runs)")
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
                        help="without torchrun: start N local ranks (default: one per selected GPU; 1 on the "
                             "CPU, where N ranks each measure one N-th of the CPUs at the same time)")
    parser.add_argument("--soak-seconds", type=_seconds, default=None, metavar="SECONDS",
                        help="how long --suite soak holds its load (default 120)")
    parser.add_argument("--soak-precision", type=_precision_list, default=(), dest="soak_precisions",
                        metavar="LIST", help="precisions the soak holds, one after another (default bf16)")
    parser.add_argument("--sequential", action="store_true",
                        help="measure GPUs one after another (default: matmul and device memory on every "
                             "selected GPU at once, one process per GPU; host-link cases always take turns)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bench import distributed, orchestrate
    from bench.backend import resolve_device
    from bench.registry import families
    from bench.runner import RunOptions, scope_of
    from results.files.out_folder import check_out_folder
    from results.render.run_summary import make_console

    launch = distributed.detect()
    lead = launch is None or launch.rank == 0  # only rank 0 talks and writes
    console = make_console() if lead else Console(quiet=True)
    kind, note = resolve_device(args.device)
    if note:
        console.print(note)
    cases, procedure = _apply_procedure(args, kind)
    if kind == "cpu" and args.gpus is not None:
        raise UsageError("--gpus needs CUDA devices; the CPU backend has none")
    if args.min_bytes is not None and args.max_bytes is not None and args.min_bytes > args.max_bytes:
        raise UsageError(f"--min-bytes {args.min_bytes} is larger than --max-bytes {args.max_bytes}")
    known = families()
    grouped = any(scope_of(known[name]) == "group" for name in args.suites)
    per_device = any(scope_of(known[name]) == "device" for name in args.suites)
    if launch is not None and launch.launcher != "local" and args.nproc is not None:
        raise UsageError("--nproc starts local ranks without torchrun; under torchrun use --nproc-per-node")
    if launch is None:
        check_out_folder(args.out)  # before measuring: a bad --out must not cost the run
    if launch is None and (grouped or (per_device and not args.sequential)):
        nproc = orchestrate.local_rank_count(kind, args.gpus, args.nproc)
        if nproc > 1:  # one process per GPU (or CPU slice), measuring at once
            argv = list(getattr(args, "command_argv", None) or sys.argv[1:])
            if argv[:1] != ["run"]:
                raise UsageError("starting local ranks needs the command line (run `tppbench run ...`)")
            return distributed.launch_local(argv, nproc, args.timeout)
    options = RunOptions(backend_kind=kind, mode=args.mode, suites=args.suites, gpus=args.gpus,
                         only=args.only, label=args.label, argv=tuple(sys.argv), timeout_s=args.timeout,
                         min_bytes=args.min_bytes, max_bytes=args.max_bytes, step_factor=args.step_factor,
                         sequential=args.sequential, cases=cases, procedure=procedure,
                         soak_seconds=args.soak_seconds, soak_precisions=args.soak_precisions)
    if launch is not None:  # a rank: SIGTERM is the session's (bench.distributed)
        return _measure_and_write(args, options, launch, lead, console, grouped, None)
    from bench.stop_signals import StopRequested, StopSignals, exit_code_for

    with StopSignals() as stops:  # SIGTERM / SIGHUP end this process's run like Ctrl-C
        try:
            return _measure_and_write(args, options, launch, lead, console, grouped, stops)
        except StopRequested as exc:  # before the first case started: nothing was measured
            print(f"tppbench: error: {exc} before any case was measured; nothing written", file=sys.stderr)
            return exit_code_for(exc.signum)


def _apply_procedure(args: argparse.Namespace, kind: str) -> tuple[tuple[str, ...], dict]:
    """--procedure sets mode, suites and case globs (refusing the options it would override);
    without it --mode and --suite take their defaults. Returns (case globs, run.procedure)."""
    if args.procedure is None:
        args.mode = args.mode or "quick"
        args.suites = args.suites or DEFAULT_SUITES
        return (), {}
    given = [name for name, value in (("--mode", args.mode), ("--suite", args.suites), ("--only", args.only))
             if value is not None]
    if given:
        raise UsageError(f"--procedure sets the mode, suites and cases itself; drop {', '.join(given)}")
    from results.verification.procedure import load_procedure

    procedure = load_procedure(args.procedure)
    profile = procedure.profiles.get(kind)
    if profile is None:
        raise UsageError(f"procedure {procedure.id} v{procedure.version} has no profile for the {kind} backend "
                         f"(it has: {', '.join(procedure.profiles)})")
    unknown = [s for s in profile.suites if s not in _known_families()]
    if unknown:
        raise UsageError(f"procedure {procedure.path}: unknown suite {unknown[0]!r}")
    args.mode, args.suites = profile.mode, profile.suites
    return profile.cases, procedure.record()


def _known_families() -> tuple[str, ...]:
    from bench.registry import families

    return tuple(families())


def _measure_and_write(args, options, launch, lead, console, grouped, stops) -> int:
    """Measure (in a session when ranks or collectives need one), write the file, print the
    summary, and return the exit code. `stops`: this process's SIGTERM/SIGHUP handling, if any."""
    from bench import orchestrate
    from results.files.out_folder import check_out_folder
    from results.render.run_summary import print_summary

    kind = options.backend_kind
    session = None
    if launch is not None or grouped:
        session = orchestrate.start_session(launch, kind, args.gpus, args.timeout)
    try:
        if launch is not None and lead:
            check_out_folder(args.out)
        result = orchestrate.measure(console, options, session, args.out)
    except BaseException as exc:
        if session is None:
            raise
        orchestrate.leave_after(exc, session, lead)
        raise
    run = result.run
    aborted = orchestrate.stopped_by_rank_failure(session, run)
    if not lead:  # nothing to write or print; a follower always runs in a multi-rank session
        session.close(run.complete, run.incomplete_reason)
        return orchestrate.leave(session, 0 if run.complete else orchestrate.EXIT_RANK_FAILURE)
    if stops is not None:
        stops.saving()  # a signal from now on only sets the exit code: the save goes on
    path, save_problem = orchestrate.save_or_rescue(result, args.out)
    print_summary(result, console, origin=str(path))
    _print_p2p(result, console)
    console.print(f"wrote {path}")
    if save_problem is not None:
        print(f"tppbench: error: {save_problem}", file=sys.stderr)
    if session is not None:
        session.close(run.complete, run.incomplete_reason)
    if aborted:
        print(f"tppbench: error: {run.incomplete_reason}; wrote what rank 0 measured to {path} "
              "(marked incomplete)", file=sys.stderr)
        return orchestrate.leave(session, orchestrate.EXIT_RANK_FAILURE)
    if not run.complete:
        console.print(f"[yellow]run incomplete: {run.incomplete_reason}[/]")
    if stops is not None and stops.exit_code is not None:
        return orchestrate.leave(session, stops.exit_code)
    return orchestrate.leave(session, orchestrate.exit_code(result, save_problem))


def _print_p2p(result, console) -> None:
    if any(m.benchmark == "p2p" and "src" in m.params for m in result.measurements):
        from bench.kernels.p2p import matrix_tables

        for table in matrix_tables(result):
            console.print(table)
