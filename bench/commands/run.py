"""`tppbench run`: measure, write one result file, print the summary."""

from __future__ import annotations

import argparse
import sys

from bench.backend import MODES
from results.errors import UsageError

DEFAULT_SUITES = ("matmul", "memory", "hostlink")
EXIT_CASE_ERRORS = 4  # the file was written, but at least one case has status=error
EXIT_INTERRUPTED = 130


def _gpu_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip() != "")
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
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from bench.backend import resolve_device
    from bench.runner import RunOptions, execute, plan
    from results.store import save
    from results.summary import make_console, print_summary

    console = make_console()
    kind, note = resolve_device(args.device)
    if note:
        console.print(note)
    if kind == "cpu" and args.gpus is not None:
        raise UsageError("--gpus needs CUDA devices; the CPU backend has none")
    options = RunOptions(backend_kind=kind, mode=args.mode, suites=args.suites, gpus=args.gpus,
                         only=args.only, label=args.label, argv=tuple(sys.argv))
    planned = plan(options)
    total = sum(len(p.cases) for p in planned)
    result = _execute_with_progress(console, options, planned, total, execute)
    path = save(result, args.out)
    print_summary(result, console)
    console.print(f"wrote {path}")
    if not result.run.complete:
        console.print(f"[yellow]run incomplete: {result.run.incomplete_reason}[/]")
        return EXIT_INTERRUPTED
    if any(m.status == "error" for m in result.measurements):
        return EXIT_CASE_ERRORS
    return 0


def _execute_with_progress(console, options, planned, total, execute):
    if not console.is_terminal:
        return execute(options, planned)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("measuring", total=total)

        def started(case, device_index):
            where = "cpu" if device_index is None else f"gpu{device_index}"
            progress.update(task, description=f"{where} {case.key}")

        return execute(options, planned, on_start=started, on_done=lambda m: progress.advance(task))
