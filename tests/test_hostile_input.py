"""Hostile and broken input (issue 12): every case of the regression corpus in tests/data/hostile
(each with its note in cases.json), special files made at test time, and bad option values, on
every command that reads them: the documented exit code, one line on stderr naming the file or
option, no traceback, terminal-safe output, no input modified, no partial output left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile_harness import (
    HOSTILE, REPO, VALID_RESULT, check_outcome, data_commands, digest, env, environment_for, invoke,
    leftovers, result_commands,
)

CASES = json.loads((HOSTILE / "cases.json").read_text())


def _ids(kind: str) -> list[dict]:
    return [pytest.param(c, id=Path(c["file"]).stem) for c in CASES if c["kind"] == kind]


@pytest.mark.parametrize("case", _ids("result"))
def test_result_file_corpus(case, tmp_path):
    path = HOSTILE / case["file"]
    before = digest([path, VALID_RESULT])
    for argv in result_commands(str(path), tmp_path):
        outcome = invoke(argv)
        check_outcome(outcome, {case["exit"]}, [str(path)])
        if outcome.code:
            assert leftovers(tmp_path) == [], f"{argv}: left {leftovers(tmp_path)}"
        else:
            for p in tmp_path.iterdir():
                p.unlink()
    assert digest([path, VALID_RESULT]) == before


@pytest.mark.parametrize("case", _ids("result"))
def test_result_file_corpus_through_the_index(case, tmp_path):
    """`index --strict` (worker side: store.read_bytes + parse_bytes, then Arrow rows) gives each
    corpus file the exit the other commands give it, in one line naming the file."""
    path = HOSTILE / case["file"]
    before = digest([path, VALID_RESULT])
    outcome = invoke(["index", "--strict", str(path), "--index", str(tmp_path / "idx")])
    check_outcome(outcome, {case["exit"]}, [str(path)])
    assert digest([path, VALID_RESULT]) == before


@pytest.mark.parametrize("case", _ids("spec") + _ids("rules") + _ids("catalog"))
def test_toml_corpus(case, tmp_path):
    source = HOSTILE / case["file"]
    content = source.read_bytes()
    values = environment_for(case["kind"], content, tmp_path)
    replaced = next(iter(Path(v) for v in values.values()), None)
    with env(values):
        for argv in data_commands(case["kind"], str(source)):
            outcome = invoke(argv)
            check_outcome(outcome, {case["exit"]}, [str(source)] if replaced is None else [str(replaced)])
    assert source.read_bytes() == content


def test_rates_at_the_ceiling_draw_the_html_report(tmp_path):
    """All rates 1e308 crashed a plot (axis limits NaN or Inf); 1e30, the largest a file may hold,
    must draw every figure."""
    out = tmp_path / "report.html"
    outcome = invoke(["report", str(HOSTILE / "result/rate-1e30-all.json"), "-o", str(out)])
    check_outcome(outcome, {0}, [])
    assert out.stat().st_size > 10_000


def test_escapes_in_files_never_reach_the_terminal():
    outcome = invoke(["show", str(HOSTILE / "result/escapes-everywhere.json")])
    check_outcome(outcome, {0}, [])
    assert "?[2J" in outcome.out  # shown, neutralised


# --------------------------------------------------------------------------- special files


def _special_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, words the one-line error must contain)."""
    big = tmp / "big.json"
    with open(big, "wb") as handle:  # sparse: 100 MiB of size, no disk
        handle.truncate(100 * 1024 * 1024)
    fifo = tmp / "fifo.json"
    os.mkfifo(fifo)
    (tmp / "self.json").symlink_to("self.json")
    (tmp / "a.json").symlink_to("b.json")
    (tmp / "b.json").symlink_to("a.json")
    (tmp / "dangling.json").symlink_to("nowhere.json")
    (tmp / "zero.json").symlink_to("/dev/zero")
    return {
        "dev-zero": (Path("/dev/zero"), "character device"),
        "dev-zero-link": (tmp / "zero.json", "character device"),
        "fifo": (fifo, "FIFO"),
        "symlink-loop": (tmp / "self.json", "symlink loop"),
        "symlink-cycle": (tmp / "a.json", "symlink loop"),
        "dangling": (tmp / "dangling.json", "no such file"),
        "100-mib": (big, "104,857,600 bytes"),
    }


SPECIAL = ("dev-zero", "dev-zero-link", "fifo", "symlink-loop", "symlink-cycle", "dangling", "100-mib")


@pytest.mark.parametrize("name", SPECIAL)
def test_special_files_are_refused_by_type_before_reading(name, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    path, words = _special_files(inputs)[name]
    work = tmp_path / "work"
    work.mkdir()
    for argv in result_commands(str(path), work):
        outcome = invoke(argv)  # a FIFO opened for reading would block here forever
        check_outcome(outcome, {1}, [str(path)])
        if not (argv[0] in ("check", "history") and path.suffix != ".json"):  # these go by suffix first
            assert words in outcome.err, f"{argv}: {outcome.err}"
        assert leftovers(work) == []


def test_special_files_as_spec_rule_data_and_import_input(tmp_path):
    fifo = tmp_path / "spec.toml"
    os.mkfifo(fifo)
    for argv in (["check", str(fifo)], ["import", str(fifo), "--out", str(tmp_path / "out")],
                 ["import", "/dev/zero", "--out", str(tmp_path / "out")]):
        outcome = invoke(argv)
        check_outcome(outcome, {1}, [argv[1]])
        assert "FIFO" in outcome.err or "character device" in outcome.err
    assert not (tmp_path / "out").exists()
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "us-2023-10.toml").symlink_to("/dev/zero")
    with env({"TPPBENCH_RULES_DIR": str(rules)}):
        outcome = invoke(["rules"])
    check_outcome(outcome, {1}, [str(rules / "us-2023-10.toml")])
    assert "character device" in outcome.err


def test_a_folder_holding_symlink_loops(tmp_path):
    """report stopped with RuntimeError: Symlink loop; fleet skips the loop, the others name it."""
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "good.json").write_bytes(VALID_RESULT.read_bytes())
    (folder / "loop.json").symlink_to("loop.json")
    (folder / "sub").mkdir()
    (folder / "sub/up").symlink_to("..")  # a folder cycle: never followed
    for argv in (["report", str(folder), "--markdown"], ["report", str(folder), "-o", str(tmp_path / "r.md"),
                                                          "--markdown"], ["compare", str(VALID_RESULT), str(folder)]):
        check_outcome(invoke(argv), {1}, [str(folder / "loop.json")])
    outcome = invoke(["fleet", str(folder)])
    check_outcome(outcome, {0}, [])
    assert "skipped" in outcome.err and "symlink loop" in outcome.err
    assert not (tmp_path / "r.md").exists()


def test_escape_and_undecodable_bytes_in_file_names(tmp_path):
    """Error lines echoed file names with ESC in them; a non-UTF-8 name made `show` raise
    UnicodeEncodeError on a UTF-8 stdout (subprocess: a real strict stdout)."""
    evil = tmp_path / "\x1b[2Jevil.json"
    evil.write_text("{")
    outcome = invoke(["show", str(evil)])
    check_outcome(outcome, {1}, [str(evil)])
    # index and fleet --index name a bad file on a `skipped` line and go on (they printed ESC raw)
    for argv, code in ((["index", str(evil), "--index", str(tmp_path / "idx")], 0),
                       (["fleet", str(evil), "--index", str(tmp_path / "idx2")], 1)):
        outcome = invoke(argv)
        check_outcome(outcome, {code}, [str(tmp_path)])
        assert "skipped" in outcome.err and "?[2Jevil.json" in outcome.err
    raw_name = os.fsencode(str(tmp_path)) + b"/caf\xe9.json"
    with open(raw_name, "wb") as handle:
        handle.write(VALID_RESULT.read_bytes())
    proc = subprocess.run([sys.executable, "-m", "bench", "show", os.fsdecode(raw_name)], capture_output=True,
                          cwd=REPO, timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert b"caf?.json" in proc.stdout


def test_fifo_does_not_hang_a_real_process(tmp_path):
    """The same refusal in a subprocess with a timeout: a regression would hang, not fail."""
    fifo = tmp_path / "x.json"
    os.mkfifo(fifo)
    for command in (["show", str(fifo)], ["fleet", str(tmp_path)]):
        proc = subprocess.run([sys.executable, "-m", "bench", *command], capture_output=True, text=True,
                              cwd=REPO, timeout=120)
        assert proc.returncode == 1, proc.stderr
        assert "FIFO" in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- options


BAD_OPTIONS = [
    (["run", "--only", ""], "--only"),
    (["run", "--out", ""], "--out"),
    (["run", "--out", " "], "--out"),
    (["run", "--timeout", "1e999"], "--timeout"),
    (["run", "--timeout", "nan"], "--timeout"),
    (["run", "--gpus", "9" * 5000], "--gpus"),
    (["run", "--min-bytes", "1e999"], "--min-bytes"),
    (["run", "--step-factor", "inf"], "--step-factor"),
    (["run", "--nproc", "9" * 5000], "--nproc"),
    (["run", "--suite", "\x1b[2J"], "--suite"),
    (["compare", str(VALID_RESULT), str(VALID_RESULT), "--factor", "nan"], "--factor"),
    (["compare", str(VALID_RESULT), str(VALID_RESULT), "--alpha", "1e999"], "--alpha"),
    (["fleet", str(VALID_RESULT), "--top", "9" * 5000], "--top"),
    (["fleet", str(VALID_RESULT), "--threshold", "-inf"], "--threshold"),
    (["check", "a100-sxm", "--near", "inf"], "--near"),
    (["check", "a100-sxm", "--as-of", "99999-01-01"], "--as-of"),
    (["check", "a100-sxm", "--rules", "\x1b[2J"], "--rules"),
    (["report", str(VALID_RESULT), "--markdown", "--near-pct", "-1"], "--near-pct"),
    (["show", str(VALID_RESULT), "--\x1b[2J"], "--?[2J"),
    # names longer than the file system allows: OSError (ENAMETOOLONG) from Path.exists/is_dir
    (["run", "--out", "9" * 300], "--out"),
    (["report", str(VALID_RESULT), "-o", "/tmp/" + "9" * 300], "longer than 255 bytes"),
    (["fleet", str(VALID_RESULT), "--csv", "/tmp/" + "9" * 300 + "/x.csv"], "does not exist"),
]


@pytest.mark.parametrize("argv,option", BAD_OPTIONS, ids=[" ".join(a[:2] + [a[-1][:12]]) for a, _ in BAD_OPTIONS])
def test_bad_option_values(argv, option):
    check_outcome(invoke(argv), {2}, [option])


def test_an_input_name_too_long_to_exist():
    name = "/tmp/" + "9" * 300
    for argv in (["show", name + ".json"], ["compare", str(VALID_RESULT), name], ["fleet", name],
                 ["report", name, "--markdown"], ["check", name + ".toml"], ["import", name]):
        check_outcome(invoke(argv), {1}, [name])


def test_run_refuses_an_out_it_cannot_create_in_before_measuring(tmp_path):
    outcome = invoke(["run", "--device", "cpu", "--mode", "smoke", "--out", "/proc/x"])
    check_outcome(outcome, {2}, ["--out /proc/x"])
    assert "cannot create" in outcome.err and "measur" not in outcome.out


def test_printable_neutralises_what_a_terminal_acts_on_and_keeps_real_names():
    from results.terminal import printable

    assert printable("a\x1b[2Jb\rc\nd\te\x7ff\x9bg\ud800h\u202ei\u2028j") == "a?[2Jb?c?d?e?f?g?h?i?j"
    assert printable("NVIDIA H100 80GB HBM3 · café · 显卡 · 😀") == "NVIDIA H100 80GB HBM3 · café · 显卡 · 😀"
