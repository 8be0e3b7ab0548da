"""Collectives family without process groups: busbw factors, the size sweep, the correctness
check against an independent simulation of each collective, and the run command's options.
(Real torchrun/gloo runs are in test_distributed.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.kernels import collectives as col

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_busbw_factors_are_nccl_tests(n):
    assert col.busbw_factor("all_reduce", n) == pytest.approx(2 * (n - 1) / n)
    for op in ("all_gather", "reduce_scatter", "all_to_all"):
        assert col.busbw_factor(op, n) == pytest.approx((n - 1) / n)
    for op in ("broadcast", "reduce", "sendrecv"):  # reduce, sendrecv: for imported nccl-tests logs
        assert col.busbw_factor(op, n) == 1.0
    with pytest.raises(ValueError):
        col.busbw_factor("gather", n)


def test_sweep_sizes_round_to_whole_elements_per_rank():
    assert col.sweep_sizes(1024, 65536, 8, 2) == [1024, 8192, 65536]
    assert col.sweep_sizes(1024, 65536, 8, 3) == [1020, 8184, 65532]  # multiples of 4 x 3 bytes
    assert col.sweep_sizes(1, 8, 2, 4) == [16]  # at least one float per rank, duplicates dropped
    assert col.sweep_sizes(1 << 20, 4 << 30, 4, 8)[-1] == 4 << 30  # the GPU sweep reaches 4 GiB
    for bad in ((0, 10, 2), (10, 5, 2), (1, 10, 1.0)):
        with pytest.raises(ValueError):
            col.sweep_sizes(*bad, 2)


def test_default_gpu_sweeps_reach_4_gib_and_cpu_smoke_stays_tiny():
    for mode in ("quick", "full"):
        lo, hi, f = col.DEFAULT_SWEEP["cuda"][mode]
        assert col.sweep_sizes(lo, hi, f, 8)[-1] >= 4 << 30
    lo, hi, f = col.DEFAULT_SWEEP["cpu"]["smoke"]
    assert col.sweep_sizes(lo, hi, f, 2)[-1] <= 64 << 10


def _inputs(op: str, n: int, numel: int) -> list[torch.Tensor]:
    """Every rank's input as the benchmark fills it (S = numel floats)."""
    per_rank = numel // n if op == "all_gather" else numel
    out = []
    for r in range(n):
        t = torch.empty(per_rank, dtype=torch.float32)
        col.fill_pattern(t, r)
        out.append(t)
    return out


def _simulate(op: str, inputs: list[torch.Tensor], rank: int) -> torch.Tensor:
    """What the collective must produce on `rank`, computed from its definition (the oracle)."""
    n = len(inputs)
    if op == "all_reduce":
        return torch.stack(inputs).sum(0)
    if op == "broadcast":
        return inputs[0].clone()
    if op == "all_gather":
        return torch.cat(inputs)
    if op == "reduce_scatter":
        return torch.stack(inputs).sum(0).chunk(n)[rank].clone()
    if op == "all_to_all":
        return torch.cat([inputs[q].chunk(n)[rank] for q in range(n)])
    raise AssertionError(op)


@pytest.mark.parametrize("op", col.OPS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_check_accepts_the_true_result_of_every_collective(op, n):
    numel = 12 * 37  # divisible by 1, 2 and 3
    inputs = _inputs(op, n, numel)
    for rank in range(n):
        assert col.check_output(op, _simulate(op, inputs, rank), rank, n) is None


@pytest.mark.parametrize("op", col.OPS)
def test_check_catches_a_wrong_result(op):
    n, numel = 3, 12 * 37
    inputs = _inputs(op, n, numel)
    good = _simulate(op, inputs, 1)
    wrong = good.clone()
    wrong[5] += 1.0
    message = col.check_output(op, wrong, 1, n)
    assert message is not None and message.startswith("1 of ") and "first at index 5" in message
    unwritten = torch.full_like(good, float("nan"))  # an output the collective never wrote
    assert col.check_output(op, unwritten, 1, n).startswith(f"{good.numel()} of {good.numel()}")


def test_check_catches_plausible_bugs():
    n, numel = 2, 64
    # an all_reduce that returned only this rank's own contribution
    own = _inputs("all_reduce", n, numel)[1]
    assert col.check_output("all_reduce", own, 1, n) is not None
    # an all_gather with the ranks' chunks swapped
    a, b = _inputs("all_gather", n, numel)
    assert col.check_output("all_gather", torch.cat([b, a]), 0, n) is not None
    # an all_to_all that sent chunks to the wrong ranks (rank 1 got what rank 0 should)
    inputs = _inputs("all_to_all", n, numel)
    assert col.check_output("all_to_all", _simulate("all_to_all", inputs, 0), 1, n) is not None


def test_check_works_in_chunks(monkeypatch):
    monkeypatch.setattr(col, "CHECK_CHUNK", 7)  # many chunks, a ragged last one
    n, numel = 2, 100
    inputs = _inputs("reduce_scatter", n, numel)
    good = _simulate("reduce_scatter", inputs, 1)
    assert col.check_output("reduce_scatter", good, 1, n) is None
    good[-1] = 0.5
    assert "first at index 49" in col.check_output("reduce_scatter", good, 1, n)


def test_conventions_name_the_formula():
    for op in col.OPS:
        text = col.convention(op)
        assert col.FORMULAS[op] in text and "slowest rank" in text and "S = " in text


def _run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", "run", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("args, needle", [
    (("--step-factor", "1"), "step factor greater than 1"),
    (("--min-bytes", "4K", "--max-bytes", "1K"), "larger than --max-bytes"),
    (("--min-bytes", "lots"), "byte size"),
    (("--max-bytes", "inf"), "byte size"),
    (("--max-bytes", "4X"), "byte size"),
    (("--timeout", "0"), "positive number of seconds"),
    (("--nproc", "0"), "positive integer"),
])
def test_bad_sweep_and_timeout_options_are_one_line_errors(args, needle, tmp_path, capsys):
    from bench.cli import main

    try:
        code = main(["run", "--device", "cpu", "--suite", "collectives", "--out", str(tmp_path), *args])
    except SystemExit as exc:  # argparse-level errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_byte_sizes_parse_like_nccl_tests():
    from bench.commands.run import _byte_size

    assert [_byte_size(t) for t in ("1048576", "64K", "1M", "4G", "4GiB", "512MB", "1.5K")] == [
        1 << 20, 64 << 10, 1 << 20, 4 << 30, 4 << 30, 512 << 20, 1536]


@pytest.mark.distributed
def test_without_torchrun_a_cpu_run_measures_a_world_of_one(tmp_path):
    from results.files.store import load

    done = _run_cli("--device", "cpu", "--mode", "smoke", "--suite", "collectives", "--min-bytes", "4K",
                    "--max-bytes", "64K", "--step-factor", "16", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    (path,) = tmp_path.glob("*.json")
    result = load(path)
    assert result.run.world_size == 1 and result.run.complete
    records = [m for m in result.measurements if m.benchmark == "collectives"]
    assert {m.variant for m in records} == set(col.OPS)
    assert {m.params["bytes"] for m in records} == {4096, 65536}
    for m in records:
        assert m.status == "ok" and m.rank is None and m.params["world_size"] == 1
        assert m.busbw == pytest.approx(m.rate * col.busbw_factor(m.variant, 1))  # 0 for the reducing ops


def test_a_step_factor_barely_above_one_is_refused_not_planned_forever(tmp_path):
    done = _run_cli("--device", "cpu", "--suite", "collectives", "--step-factor", "1.0000001",
                    "--out", str(tmp_path), timeout=60)
    assert done.returncode == 2, done.stderr
    assert "use a larger --step-factor" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
