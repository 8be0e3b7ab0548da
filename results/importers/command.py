"""`tppbench import FILE...`: nccl-tests, nvbandwidth and mamf-finder output -> schema-v1 result files.

Thin: read each input (`-` is standard input), pick the importer (`--format`, or detected from the
content), parse every input first, then save each result like `run` saves its own (results.store:
atomic, never overwriting). Any input that cannot be imported stops the command before anything is
written, with one line naming the file and the line.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from results.importers import FORMATS, importer
from results.importers.source import ImportFailed, Imported, Source
from results.files.schema import SchemaError, from_dict, to_dict
from results.files.untrusted_file import UnreadableFile, read_untrusted

MAX_INPUT_BYTES = 256 * 1024 * 1024  # the largest log seen here is 75 KB; far larger is not a tool's output
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "import",
        help="turn nccl-tests, nvbandwidth or mamf-finder output into result files",
        description="Read other tools' text output and write one tppbench result file per input, so check, "
        "compare, fleet and report read it. Only numbers the tool printed are kept (no invented samples); "
        "each record names the tool, version, source file, sha256 and line.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="tool output files; - reads standard input")
    p.add_argument("--format", choices=("auto", *FORMATS), default="auto",
                   help="which tool printed the input (default: auto, detected from the content)")
    p.add_argument("--out", default="results/imported", metavar="DIR",
                   help="output folder (default: results/imported)")
    p.add_argument("--host", type=_host, default=None, metavar="NAME",
                   help="host name for outputs that print none (nvbandwidth, mamf-finder)")
    p.add_argument("--collective", default=None, metavar="OP",
                   help="nccl-tests: the collective (e.g. all_reduce) when the log does not name it")
    p.set_defaults(handler=run_import)


def _host(text: str) -> str:
    if not _HOST.match(text):
        raise argparse.ArgumentTypeError(f"expected a host name (letters, digits, '.', '_', '-'), got {text!r}")
    return text


def run_import(args: argparse.Namespace) -> int:
    from results.files import store
    from results.files.out_folder import check_out_folder

    check_out_folder(args.out)  # before any input is read: a bad --out is one line, exit 2
    if args.files.count("-") > 1:
        from results.errors import UsageError

        raise UsageError("standard input ('-') can be read once")
    imported = [(name, import_text(Source.of(name, raw, args.host), args.format, args.collective))
                for name, raw in _inputs(args.files)]
    for name, result in imported:
        try:
            path = store.save(result.result, args.out)
        except OSError as exc:  # the folder went away or filled up after the check
            raise ImportFailed(name, None, f"cannot write its result into {args.out}: {exc.strerror or exc}") from None
        kept = sum(m.status == "ok" for m in result.result.measurements)
        print(f"{path}: {kept} ok of {len(result.result.measurements)} records from {name} "
              f"({result.result.run.imported_from['tool']})")
        if result.skipped:
            lines = ", ".join(str(s.line) for s in result.skipped[:20])
            more = f" and {len(result.skipped) - 20} more" if len(result.skipped) > 20 else ""
            print(f"  skipped {len(result.skipped)} unreadable line(s) of {name}: {lines}{more} "
                  "(listed in the file's run.imported_from.skipped_lines)", file=sys.stderr)
    return 0


def import_text(source: Source, format_name: str = "auto", collective: str | None = None) -> Imported:
    """Parse one input with the named importer, or the one whose markers it carries."""
    if not source.text.strip():
        raise ImportFailed(source.name, None, "empty file")
    name = format_name if format_name != "auto" else detect_format(source)
    if collective is not None and name != "nccl-tests":
        raise ImportFailed(source.name, None, f"--collective is for nccl-tests logs; this is {name} output")
    got = importer(name).parse(source, collective)
    try:  # the loader's own checks, before anything is written: never a file `load` refuses
        from_dict(to_dict(got.result))
    except SchemaError as exc:
        record = re.match(r"measurements\[(\d+)\]", str(exc))
        line = got.result.measurements[int(record.group(1))].extra["imported"]["line"] if record else None
        raise ImportFailed(source.name, line, f"a figure a result file cannot hold: {exc}") from None
    return got


def detect_format(source: Source) -> str:
    """The one tool whose output this is; ImportFailed for foreign text and for a mix of tools."""
    found = [name for name in FORMATS if importer(name).detect(source.text)]
    if not found:
        line = source.first_text_line()
        first = source.lines()[line - 1].strip()[:60] if line else ""
        raise ImportFailed(source.name, line, f"not nccl-tests, nvbandwidth or mamf-finder output "
                           f"(starts with {first!r}); --format names the tool if it is one of them")
    if len(found) > 1:
        line = _first_line_of_second(source, found)
        raise ImportFailed(source.name, line, f"mixed file: output of {' and '.join(found)}; import each "
                           "tool's output from its own file")
    return found[0]


def _first_line_of_second(source: Source, found: list[str]) -> int | None:
    """Where the later tool's output starts: the largest of each tool's first start-marker line."""
    starts = []
    for name in found:
        start = importer(name).START
        starts.append(next((n for n, line in enumerate(source.lines(), start=1) if start.search(line)), 0))
    return max(starts) or None


def _inputs(files: list[str]) -> list[tuple[str, bytes]]:
    out = []
    for name in files:
        if name == "-":
            raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
            out.append(("<stdin>", _bounded("<stdin>", raw)))
            continue
        try:  # a FIFO, /dev/zero or symlink loop is refused from a stat, before it is opened
            raw = read_untrusted(name, MAX_INPUT_BYTES, "a tool's text output (name the output files)")
        except UnreadableFile as exc:
            raise ImportFailed(name, None, exc.problem) from None
        out.append((name, raw))
    return out


def _bounded(name: str, raw: bytes) -> bytes:
    if len(raw) > MAX_INPUT_BYTES:
        raise ImportFailed(name, None, f"larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB: not a tool's text output")
    return raw
