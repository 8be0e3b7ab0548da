"""`tppbench run` / `show` end to end through the real CLI (subprocesses, real torch on the CPU)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from results.files.store import load

MATMUL_PRECISIONS = {"fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp4"}


def tppbench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    proc = tppbench("run", "--device", "cpu", "--mode", "smoke", "--out", str(out), "--label", "ci smoke")
    return proc, out


def test_smoke_run_writes_one_valid_file(smoke_run):
    proc, out = smoke_run
    assert proc.returncode == 0, proc.stderr
    files = list(out.glob("*.json"))
    assert len(files) == 1
    result = load(files[0])
    assert result.run.complete and result.run.mode == "smoke" and result.run.label == "ci smoke"
    assert result.run.backend == "cpu" and result.run.torch and result.run.python
    matmul = {m.precision: m for m in result.measurements if m.benchmark == "matmul"}
    assert set(matmul) == MATMUL_PRECISIONS
    for m in matmul.values():
        assert (m.status == "ok" and m.rate > 0) or (m.status == "skipped" and m.reason)
    assert {m.variant for m in result.measurements if m.benchmark == "memory"} == {"copy", "read", "write", "triad"}
    assert all(m.telemetry is not None for m in result.measurements)
    assert f"wrote {files[0]}" in proc.stdout.replace("\n", "")
    assert "TFLOP/s" in proc.stdout and "GB/s" in proc.stdout


def test_show_prints_the_same_summary(smoke_run):
    _, out = smoke_run
    path = next(out.glob("*.json"))
    proc = tppbench("show", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "matmul/bf16/m=256,n=256,k=256" in proc.stdout and "ok," in proc.stdout


def test_show_refuses_a_bad_file_in_one_line(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"schema_version": 1, "run"')
    proc = tppbench("show", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert str(bad) in proc.stderr and "not valid JSON" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args,needle", [
    (["--mode", "turbo"], "invalid choice: 'turbo'"),
    (["--gpus", "zero"], "GPU indices"),
    (["--suite", "matmul,warp"], "unknown suite 'warp'"),
    (["--device", "cuda"], "no CUDA device"),
    (["--device", "cpu", "--gpus", "0"], "--gpus needs CUDA devices"),
    (["--device", "cpu", "--only", "nothing/*"], "matches no case"),
])
def test_bad_options_exit_2_with_one_line(args, needle, tmp_path):
    proc = tppbench("run", *args, "--out", str(tmp_path))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert needle in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_only_selects_cases(tmp_path):
    proc = tppbench("run", "--device", "cpu", "--mode", "smoke", "--suite", "matmul",
                    "--only", "matmul/bf16/*", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    result = load(next(tmp_path.glob("*.json")))
    assert [m.key for m in result.measurements] == ["matmul/bf16/m=256,n=256,k=256"]


def test_ctrl_c_writes_what_was_measured_marked_incomplete(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", "--device", "cpu", "--mode", "full",
                             "--suite", "matmul,memory", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    time.sleep(10)  # well past start-up (~3 s), into the measurements (a full CPU run takes minutes)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=max(5, deadline - time.monotonic()))
    assert proc.returncode == 130, stderr
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    result = load(files[0])
    assert not result.run.complete and "interrupted" in result.run.incomplete_reason
    assert 1 <= len(result.measurements) and all(m.status in ("ok", "skipped") for m in result.measurements)
    assert "Traceback" not in stderr


def test_python_dash_m_is_the_same_entry():
    proc = subprocess.run([sys.executable, "-m", "bench", "--help"], capture_output=True, text=True)
    script = Path(sys.executable).with_name("tppbench")
    same = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert proc.returncode == same.returncode == 0
    assert proc.stdout.replace("__main__.py", "tppbench") == same.stdout


def test_commands_that_only_read_never_import_torch():
    code = ("import sys; from bench.cli import main; rc = main(['rules']); "
            "assert rc == 0, rc; heavy = [m for m in ('torch', 'pandas', 'matplotlib') if m in sys.modules]; "
            "assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_out_that_is_a_file_is_refused_before_measuring(tmp_path):
    taken = tmp_path / "results.json"
    taken.write_text("{}")
    for out, needle in ((taken, "exists and is not a folder"), (taken / "runs", "is not a folder")):
        start = time.monotonic()
        proc = tppbench("run", "--device", "cpu", "--mode", "smoke", "--out", str(out))
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr
        assert proc.stderr.strip().count("\n") == 0
        assert "ok," not in proc.stdout and time.monotonic() - start < 20  # nothing was measured
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_result_that_cannot_go_into_out_is_saved_in_the_temp_folder(tmp_path, monkeypatch):
    import tempfile

    from bench.orchestrate import RESCUE_FOLDER, save_or_rescue
    from helpers_results import run_result

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    path, problem = save_or_rescue(run_result(), str(blocked))
    assert path.parent == tmp_path / "tmp" / RESCUE_FOLDER
    assert load(path) == run_result()
    assert str(blocked) in problem and str(path) in problem
    path, problem = save_or_rescue(run_result(), str(tmp_path / "fine"))
    assert problem is None and path.parent == tmp_path / "fine"


def test_a_gpu_named_twice_is_measured_once():
    from bench.commands.run import _gpu_list

    assert _gpu_list("1,0,1,") == (1, 0)


def test_an_in_process_main_starts_local_ranks_like_the_command_line(tmp_path):
    """Issue 18, defect 1: main(["run", ...]) called in-process (pytest's sys.argv is not a tppbench
    command line) was refused with "starting local ranks needs the command line" wherever local
    ranks start (2+ GPUs; here 2 CPU slices). It now starts them with the argv main was given."""
    from bench.cli import main

    code = main(["run", "--device", "cpu", "--mode", "smoke", "--nproc", "2", "--suite", "memory",
                 "--only", "memory/read/*", "--out", str(tmp_path)])
    assert code == 0
    (path,) = tmp_path.glob("*.json")
    from results.files.store import load

    records = load(path).measurements
    assert {m.rank for m in records} == {0, 1} and {m.concurrent_devices for m in records} == {2}


def test_no_gpu_test_drives_a_multi_device_run_in_process():
    """GPU tests drive multi-GPU runs as a user does, through the command line as a subprocess."""
    import ast
    from pathlib import Path

    offenders = []
    for path in Path(__file__).parent.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any("gpu" in ast.unparse(d) for d in node.decorator_list):
                for call in ast.walk(node):
                    if (isinstance(call, ast.Call) and ast.unparse(call.func) == "main" and call.args
                            and ast.unparse(call.args[0]).startswith("['run'")):
                        offenders.append(f"{path.name}::{node.name}")
    assert offenders == []
