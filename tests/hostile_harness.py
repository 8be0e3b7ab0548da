"""Running `tppbench` in-process on hostile input and checking what a user must always get.

Shared by the regression corpus (tests/test_hostile_input.py) and the fuzz test
(tests/test_fuzz_input.py): the exit code is in the documented set, nothing prints a traceback,
a refusal is one line on stderr naming the file or option, output is terminal-safe, no input file
changes, and a failed command leaves no output file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from bench.cli import main
from results.terminal import printable

REPO = Path(__file__).resolve().parents[1]
HOSTILE = REPO / "tests/data/hostile"
VALID_RESULT = HOSTILE / "result/valid-base.json"
RULES_DIR = REPO / "thresholds/rules"
DEVICES_DIR = REPO / "thresholds/devices"
RULE_FILE = "us-2023-10.toml"  # the rule file hostile rule data replaces in a copied rules folder
CATALOG_FILE = "04-huawei.toml"  # likewise for a copied catalog folder
# Anything a terminal would act on: C0 controls but newline, DEL, C1, lone surrogates, bidi.
_UNSAFE_OUTPUT = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Outcome:
    argv: tuple[str, ...]
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def invoke(argv: Sequence[str]) -> Outcome:
    """`tppbench ARGV` in this process; an exception other than SystemExit propagates (a bug)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse: --help, a bad option (exit 2)
            code = exc.code if isinstance(exc.code, int) else 1
    return Outcome(tuple(argv), code, out.getvalue(), err.getvalue())


def result_commands(path: str, work: Path) -> list[list[str]]:
    """Every command that reads result files, on `path` (outputs go under `work`)."""
    valid = str(VALID_RESULT)
    return [
        ["show", path],
        ["check", path, "--rules", "us-2023-10"],
        ["check", path, "--json", "--rules", "all"],
        ["compare", valid, path],
        ["compare", path, valid, "--json"],
        ["fleet", path],
        ["fleet", "--strict", path, "--csv", str(work / "out.csv")],
        ["report", path, "--markdown", "-o", str(work / "report.md")],
        ["history", path, "--json"],
    ]


def digest(paths: Iterable[Path]) -> dict[str, str]:
    """Content hash of every input file (not following into special files)."""
    out = {}
    for p in paths:
        if p.is_file() and not p.is_symlink():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def check_outcome(outcome: Outcome, expected: set[int], names: Sequence[str]) -> None:
    """The user-facing contract for one invocation. `names`: the file or option that a refusal
    must name (any one of them, as printed: terminal-safe)."""
    argv = " ".join(map(repr, outcome.argv))
    assert outcome.code in expected, f"{argv}: exit {outcome.code}, expected {sorted(expected)}\n{outcome.err}"
    assert "Traceback" not in outcome.err, f"{argv}: traceback\n{outcome.err}"
    for stream, text in (("stdout", outcome.out), ("stderr", outcome.err)):
        bad = _UNSAFE_OUTPUT.search(text)
        assert bad is None, f"{argv}: {stream} holds {bad.group()!r} (not terminal-safe)"
    if outcome.code == 0:
        return
    lines = outcome.err_lines
    assert lines, f"{argv}: exit {outcome.code} with nothing on stderr"
    assert all(line.startswith("tppbench") for line in lines), f"{argv}: stderr not one-line errors\n{outcome.err}"
    # fleet without --strict reports the bad file as skipped, then that nothing was readable
    limit = 2 if outcome.argv[:1] == ("fleet",) and "--strict" not in outcome.argv else 1
    assert len(lines) <= limit, f"{argv}: {len(lines)} lines on stderr\n{outcome.err}"
    if names:
        shown = [printable(n) for n in names]
        assert any(s in outcome.err for s in shown), f"{argv}: stderr names none of {shown}\n{outcome.err}"


def leftovers(work: Path) -> list[str]:
    """Files a failed command left in its output folder (a partial or temporary output)."""
    return sorted(p.name for p in work.iterdir())


def copied_data_dir(source: Path, target: Path, replace: str, content: bytes) -> Path:
    """A copy of thresholds/rules or thresholds/devices with one file's bytes replaced."""
    shutil.copytree(source, target)
    (target / replace).write_bytes(content)
    return target


def environment_for(kind: str, content: bytes, scratch: Path) -> dict[str, str]:
    """TPPBENCH_RULES_DIR / TPPBENCH_DEVICES_DIR pointing at a copy holding `content`."""
    if kind == "rules":
        return {"TPPBENCH_RULES_DIR": str(copied_data_dir(RULES_DIR, scratch / "rules", RULE_FILE, content))}
    if kind == "catalog":
        return {"TPPBENCH_DEVICES_DIR": str(copied_data_dir(DEVICES_DIR, scratch / "devices", CATALOG_FILE, content))}
    return {}


def data_commands(kind: str, path: str) -> list[list[str]]:
    """Commands that read a spec file, or the (replaced) rule data or catalog."""
    if kind == "spec":
        return [["check", path], ["check", path, "--json", "--rules", "all"], ["history", path]]
    valid = str(VALID_RESULT)
    first = ["rules"] if kind == "rules" else ["devices"]
    return [first, ["check", "a100-sxm", "--rules", "all"], ["check", valid], ["report", valid, "--markdown"]]


@contextlib.contextmanager
def env(values: dict[str, str]):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
