"""Real multi-process runs on the CPU: torchrun (`python -m torch.distributed.run`, the module behind
the `torchrun` script) with gloo on loopback, and tppbench's own local launcher (`--nproc`).

Faults are injected from outside, with no hook in the code under test: the test reads rank 0's
per-case log, then SIGKILLs rank 1 (a rank that dies) or SIGSTOPs it (a rank that hangs), and
checks that the run ends within the timeout with one message naming the rank and host, that rank
0's file is written and marked incomplete, and that no process is left behind.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.kernels import collectives as col
from results.files.store import load

pytestmark = pytest.mark.distributed

REPO = Path(__file__).resolve().parent.parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
SMOKE = ["--device", "cpu", "--mode", "smoke"]
_LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
                "MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_USE_AGENT_STORE", "TPPBENCH_LAUNCHER")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Launched:
    """A launcher process whose merged stdout/stderr is read line by line in a thread."""

    def __init__(self, cmd: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _LAUNCH_VARS}
        env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, predicate, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if predicate(line):
                return line
        self.kill()
        pytest.fail("expected output did not come:\n" + "".join(self.lines[-40:]))

    def finish(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the launcher did not end within {timeout} s:\n" + "".join(self.lines[-40:]))
        while (line := self._queue.get(timeout=5)) is not None:
            self.lines.append(line)
        return code

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _children_by_rank(parent: int) -> dict[int, int]:
    """pid of each rank started by `parent` (read from /proc: parent pid and RANK= in environ)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) != parent:
            continue
        for item in environ:
            if item.startswith(b"RANK="):
                found[int(item[5:])] = int(entry)
    return found


def _leftovers(marker: str, grace_s: float = 5.0) -> list[str]:
    """Live processes whose command line mentions `marker` (this test's own output folder)."""
    deadline = time.monotonic() + grace_s
    while True:
        alive = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()[0]
            except OSError:
                continue
            if marker in cmdline and state != "Z":
                alive.append(f"{entry} ({state}): {cmdline[:200]}")
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def _assert_collectives(result, world: int, sizes: list[int]) -> None:
    records = [m for m in result.measurements if m.benchmark == "collectives"]
    assert sorted((m.variant, m.params["bytes"]) for m in records) == sorted(
        (op, s) for op in col.OPS for s in sizes)
    for m in records:
        assert m.status == "ok", (m.key, m.reason)
        assert m.key == f"collectives/{m.variant}/bytes={m.params['bytes']},world_size={world}"
        assert m.params["world_size"] == world and m.unit == "byte"
        assert m.rank == (0 if world > 1 else None)  # rank is set in multi-rank runs only
        factor = col.busbw_factor(m.variant, world)
        assert m.busbw_factor == pytest.approx(factor)
        assert m.busbw == pytest.approx(m.rate * factor, rel=1e-12)  # busbw / algbw == the formula
        per_iteration = sorted(m.work_per_call / t for t in m.times_s)  # rate = algbw = median of S/t
        assert m.rate == pytest.approx(statistics.median(per_iteration))
        assert col.FORMULAS[m.variant] in m.convention
        extra = m.extra
        assert extra["dtype"] == "float32" and extra["world_size"] == world and extra["backend"] == "gloo"
        assert extra["in_place"] is (m.variant in ("all_reduce", "broadcast"))
        ranks = extra["ranks"]
        assert [r["rank"] for r in ranks] == list(range(world))
        assert all(r["check"] == "ok" for r in ranks)  # every rank checked its output
        # each iteration's time is the slowest rank's: it dominates every rank's own samples
        assert max(m.times_s) == pytest.approx(max(r["max_s"] for r in ranks))
        assert statistics.median(m.times_s) >= max(r["median_s"] for r in ranks) * (1 - 1e-9)


@pytest.mark.parametrize("world, rendezvous", [(2, "static"), (3, "c10d"), (1, "static")])
def test_torchrun_writes_one_file_with_every_collective_and_every_rank(world, rendezvous, tmp_path):
    port = _free_port()
    launch = (["--master-port", str(port)] if rendezvous == "static"
              else ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"localhost:{port}"])
    run = Launched([*TORCHRUN, "--nproc-per-node", str(world), *launch, "-m", "bench", "run", *SMOKE,
                    "--suite", "hostlink,collectives", "--min-bytes", "1K", "--max-bytes", "64K",
                    "--step-factor", "64", "--timeout", "30", "--out", str(tmp_path)])
    assert run.finish(timeout=90) == 0, run.output
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1, files  # rank 0 writes; the other ranks write nothing
    result = load(files[0])
    assert result.run.world_size == world and result.run.complete
    assert result.run.hosts == (socket.gethostname(),)
    assert [d.backend for d in result.devices] == ["cpu"]  # the ranks share one host's CPU
    sizes = col.sweep_sizes(1024, 65536, 64, world)
    _assert_collectives(result, world, sizes)
    # per-device families keep one record per rank, gathered to rank 0
    hostlink = [m for m in result.measurements if m.benchmark == "hostlink"]
    expected_ranks = list(range(world)) if world > 1 else [None]
    assert sorted({m.rank for m in hostlink}, key=str) == sorted(expected_ranks, key=str)
    # 5 cases in turns + h2d_pinned_all_gpus, which ranks measure at once (skipped on the CPU)
    assert len(hostlink) == 6 * world
    assert {m.concurrent_devices for m in hostlink if m.variant == "h2d_pinned_all_gpus"} == {world}
    if world > 1:
        logged = [line for line in run.lines if line.startswith("[")]
        assert len(logged) == 6 + 5 * len(sizes)  # one line per case, from rank 0 only
        assert "wrote " in run.output and run.output.count("wrote ") == 1
    assert not _leftovers(str(tmp_path))


def test_local_launcher_runs_the_ranks_without_torchrun(tmp_path):
    run = Launched([sys.executable, "-m", "bench", "run", *SMOKE, "--suite", "collectives", "--nproc", "2",
                    "--max-bytes", "8K", "--timeout", "30", "--out", str(tmp_path)])
    assert run.finish(timeout=90) == 0, run.output
    (path,) = tmp_path.glob("*.json")
    result = load(path)
    assert result.run.world_size == 2 and result.run.complete
    _assert_collectives(result, 2, [1024, 8192])
    assert not _leftovers(str(tmp_path))


def _start_for_fault(tmp_path: Path, timeout_s: int) -> tuple[Launched, int]:
    """A 2-rank torchrun whose sweep lasts a few seconds; returns it and rank 1's pid once rank 0
    has logged two collective cases (so the fault hits the middle of the collectives)."""
    run = Launched([*TORCHRUN, "--nproc-per-node", "2", "--master-port", str(_free_port()), "-m", "bench",
                    "run", *SMOKE, "--suite", "collectives", "--max-bytes", "1M", "--step-factor", "2",
                    "--timeout", str(timeout_s), "--out", str(tmp_path)])
    run.wait_for(lambda line: line.startswith("[2/"), timeout=60)
    ranks = _children_by_rank(run.proc.pid)
    assert set(ranks) == {0, 1}, ranks
    return run, ranks[1]


def _assert_partial_file(tmp_path: Path, victim: int, problem: str) -> None:
    (path,) = tmp_path.glob("*.json")
    result = load(path)
    assert not result.run.complete
    reason = result.run.incomplete_reason
    assert f"rank 1 (host {socket.gethostname()}, pid {victim}) {problem}" in reason
    done = [m for m in result.measurements if m.benchmark == "collectives"]
    assert len(done) >= 2 and all(m.status == "ok" for m in done)


def test_a_rank_that_dies_ends_the_run_naming_it(tmp_path):
    run, victim = _start_for_fault(tmp_path, timeout_s=20)
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    error = run.wait_for(lambda line: line.startswith("tppbench: error:"), timeout=25)
    noticed_s = time.monotonic() - killed
    assert noticed_s < 20, noticed_s  # well inside --timeout: a dead peer is seen at once
    assert f"rank 1 (host {socket.gethostname()}, pid {victim}) exited unexpectedly" in error
    assert "marked incomplete" in error
    assert run.finish(timeout=60) != 0
    assert run.output.count("tppbench: error:") == 1  # one message, from rank 0
    _assert_partial_file(tmp_path, victim, "exited unexpectedly")
    assert not _leftovers(str(tmp_path))


def test_a_rank_that_hangs_ends_the_run_within_the_timeout(tmp_path):
    timeout_s = 3
    run, victim = _start_for_fault(tmp_path, timeout_s=timeout_s)
    os.kill(victim, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        error = run.wait_for(lambda line: line.startswith("tppbench: error:"), timeout=timeout_s + 20)
        noticed_s = time.monotonic() - stopped
    finally:
        # torchrun's own clean-up SIGTERMs the stopped rank, then waits 30 s before SIGKILL: let it
        # continue instead, so it sees the SIGTERM and leaves (this is torchrun's part, not ours).
        os.kill(victim, signal.SIGCONT)
    assert timeout_s - 0.5 < noticed_s < timeout_s + 10, noticed_s
    assert f"rank 1 (host {socket.gethostname()}, pid {victim}) is stopped" in error
    assert f"{timeout_s * 1000}ms" in error  # gloo's per-operation timeout is --timeout
    assert run.finish(timeout=30) != 0
    _assert_partial_file(tmp_path, victim, "is stopped")
    assert not _leftovers(str(tmp_path))


@pytest.mark.gpu
def test_nccl_world_of_one_through_torchrun_on_a_gpu(tmp_path):
    """GPU host only (skipped in CI; --require-gpu makes the skip a failure): the collective path
    with NCCL at world size 1, and p2p's behaviour with the GPUs this host has."""
    import torch

    run = Launched([*TORCHRUN, "--nproc-per-node", "1", "--master-port", str(_free_port()), "-m", "bench", "run",
                    "--device", "cuda", "--mode", "smoke", "--suite", "collectives,p2p", "--max-bytes", "8M",
                    "--timeout", "120", "--out", str(tmp_path)])
    assert run.finish(timeout=300) == 0, run.output
    (path,) = tmp_path.glob("*.json")
    result = load(path)
    records = [m for m in result.measurements if m.benchmark == "collectives"]
    assert {m.variant for m in records} == set(col.OPS)
    for m in records:
        assert m.status == "ok", (m.key, m.reason)
        assert m.extra["backend"] == "nccl" and m.extra["nccl_version"] and m.timing.clock == "cuda_event"
        assert m.busbw == pytest.approx(m.rate * col.busbw_factor(m.variant, 1))
    peer = [m for m in result.measurements if m.benchmark == "p2p"]
    if torch.cuda.device_count() < 2:
        assert peer and all(m.status == "skipped" and "at least 2 GPUs" in m.reason for m in peer)
    else:
        assert all(m.status == "ok" for m in peer), [(m.key, m.reason) for m in peer if m.status != "ok"]


def test_one_visible_gpu_per_rank_is_that_ranks_gpu():
    """Slurm --gpus-per-task=1 (a per-rank CUDA_VISIBLE_DEVICES naming one device): every local
    rank uses its one visible GPU instead of failing with 'local rank N has no GPU'."""
    from bench.distributed import rank_gpu

    assert rank_gpu([0, 1, 2, 3], 2, {}) == 2
    assert rank_gpu([0], 3, {"CUDA_VISIBLE_DEVICES": "5"}) == 0
    assert rank_gpu([0], 3, {}) is None  # one GPU shared by four ranks: refused as before
    assert rank_gpu([0, 1], 3, {"CUDA_VISIBLE_DEVICES": "0,1"}) is None


def test_nccl_is_bound_to_the_ranks_gpu_at_init():
    import torch

    from bench.distributed import Session

    assert Session(None, "cuda", 30.0, device_index=3).pg_device() == torch.device("cuda", 3)
    assert Session(None, "cpu", 30.0).pg_device() is None  # gloo takes no device_id


def test_a_cuda_session_starts_on_gloo_and_forms_nccl_only_for_collectives():
    """Issue 18, defect 3: a CUDA session used to init_process_group("nccl", device_id=...) at start,
    so a default multi-GPU run (matmul, memory, hostlink: no collective) died wherever NCCL could not
    initialise. Now the session is gloo and NCCL is formed by the first collective; where it cannot
    form (here: a CPU build of torch has no NCCL) that case fails with the reason, the session lives."""
    import torch.distributed as dist

    from bench.backend import CpuBackend
    from bench import distributed
    from bench.distributed import GroupUnavailable, Session
    from bench.kernels.collectives import CollectivesBenchmark
    from bench.registry import Case

    session = Session(None, "cuda", 30.0).start()  # before the fix: RankFailure, NCCL not available
    try:
        assert dist.get_backend() == "gloo" and session.backend == "nccl"
        with pytest.raises(GroupUnavailable, match="nccl group could not be formed"):
            session.measuring_group()
        with pytest.raises(GroupUnavailable):  # remembered: every later collective case fails at once
            session.measuring_group()
        case = Case("collectives", "all_reduce", {"bytes": 1 << 16, "world_size": 1})
        record = CollectivesBenchmark()._run(case, CpuBackend(), "smoke", session)
        assert record.status == "error" and "nccl group could not be formed" in record.reason
        assert distributed.all_gather_objects(session, "still alive") == ["still alive"]  # gloo control
    finally:
        session.close(True)
