"""tppbench under a real single-node Slurm (tests/slurm_cluster.py: Debian's slurm-wlm and munge,
which .ci/run installs; run as root, as CI does): ranks launched by srun with no torchrun, a job
array of smoke runs indexed together, a job cancelled with scancel, and one killed at its time
limit. Deselect with -m "not slurm" where no Slurm can be installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slurm_cluster import SlurmCluster, missing_binaries

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slurm
PY = sys.executable


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        pytest.fail(f"Slurm not installed ({', '.join(missing)} missing): apt-get install slurm-wlm munge "
                    "(.ci/run does); deselect with -m 'not slurm'", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("the single-node Slurm fixture starts munged/slurmctld/slurmd and needs root (CI runs as "
                    "root); deselect with -m 'not slurm'", pytrace=False)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    yield cluster
    cluster.stop()


def _files(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def test_srun_two_tasks_make_one_two_rank_run(slurm, tmp_path):
    cp = slurm.run("srun", "-n", "2", PY, "-m", "bench", "run", "--device", "cpu", "--suite", "collectives",
                   "--mode", "smoke", "--out", str(tmp_path), cwd=ROOT)
    assert cp.returncode == 0, cp.stderr[-2000:] + slurm.logs()
    [doc] = _files(tmp_path)  # one file, not one per task
    run = doc["run"]
    assert run["world_size"] == 2 and run["complete"]
    assert run["scheduler"]["name"] == "slurm" and run["scheduler"]["job_id"].isdigit()
    assert run["scheduler"]["step_id"] == "0"
    assert {m["params"]["world_size"] for m in doc["measurements"] if m["benchmark"] == "collectives"} == {2}


def test_a_job_array_writes_one_file_per_task_and_indexes_them(slurm, tmp_path):
    out, script = tmp_path / "fleet", tmp_path / "array.sh"
    script.write_text(f"""#!/bin/bash
#SBATCH --array=0-1
#SBATCH --ntasks=1
cd {ROOT}
srun {PY} -m bench run --device cpu --mode smoke --suite memory --out {out} --label "array task $SLURM_ARRAY_TASK_ID"
""")
    cp = slurm.run("sbatch", "--wait", "-o", str(tmp_path / "slurm-%A_%a.out"), str(script), timeout=300)
    assert cp.returncode == 0, cp.stderr + slurm.logs()
    docs = _files(out)
    assert sorted(d["run"]["scheduler"]["array_task_id"] for d in docs) == ["0", "1"]
    assert len({d["run"]["scheduler"]["array_job_id"] for d in docs}) == 1
    index = tmp_path / "index"
    cp = subprocess.run([PY, "-m", "bench", "index", str(out), "--index", str(index)], capture_output=True,
                        text=True, cwd=ROOT, timeout=300)
    assert cp.returncode == 0, cp.stderr
    import pyarrow.dataset as ds

    table = ds.dataset(str(index / "measurements"), format="parquet", partitioning="hive").to_table(
        columns=["scheduler", "job_id", "array_task_id", "step_id", "device_uuid", "host"])
    rows = table.to_pylist()
    assert {r["scheduler"] for r in rows} == {"slurm"} and {r["array_task_id"] for r in rows} == {"0", "1"}


def _start_and_wait(slurm, args: list[str], out: Path, started_words: str, timeout: float = 120):
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=slurm.env, cwd=ROOT)
    deadline = time.monotonic() + timeout
    job = None
    while time.monotonic() < deadline and job is None:
        q = slurm.run("squeue", "-h", "-o", "%i %t")
        running = [line.split()[0] for line in q.stdout.splitlines() if line.split()[1:] == ["R"]]
        job = running[0] if running else None
        time.sleep(0.5)
    assert job, "the job never started: " + slurm.logs()
    return proc, job


def test_scancel_mid_run_exits_143_and_keeps_the_partial_file(slurm, tmp_path):
    proc, job = _start_and_wait(slurm, ["srun", "-n", "1", PY, "-m", "bench", "run", "--device", "cpu",
                                        "--mode", "quick", "--out", str(tmp_path)], tmp_path, "")
    time.sleep(8)  # into the cases
    assert slurm.run("scancel", job).returncode == 0
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-1500:]
    [doc] = _files(tmp_path)
    assert not doc["run"]["complete"] and "SIGTERM" in doc["run"]["incomplete_reason"]
    assert any(m["status"] == "ok" for m in doc["measurements"])


def test_the_time_limit_ends_a_soak_with_its_windows_kept(slurm, tmp_path):
    proc, job = _start_and_wait(slurm, ["srun", "-n", "1", "--time=0:15", PY, "-m", "bench", "run", "--device",
                                        "cpu", "--suite", "soak", "--soak-precision", "fp32", "--soak-seconds",
                                        "600", "--out", str(tmp_path)], tmp_path, "")
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 143, err[-1500:]
    assert "TIME LIMIT" in err
    [doc] = _files(tmp_path)
    [soak] = [m for m in doc["measurements"] if m["benchmark"] == "soak"]
    assert not doc["run"]["complete"] and "interrupted" in soak["flags"] and len(soak["extra"]["windows"]) >= 2


def test_scancel_of_a_two_rank_step_keeps_rank_0s_partial_file(slurm, tmp_path):
    proc, job = _start_and_wait(slurm, ["srun", "-n", "2", PY, "-m", "bench", "run", "--device", "cpu",
                                        "--suite", "soak", "--soak-precision", "fp32", "--soak-seconds", "600",
                                        "--out", str(tmp_path)], tmp_path, "")
    time.sleep(12)  # rendezvous, warm-up, a few windows on both ranks
    assert slurm.run("scancel", job).returncode == 0
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, err[-1500:]
    docs = _files(tmp_path)
    assert len(docs) == 1, err[-1500:]  # rank 0 wrote what was measured; no second file
    assert not docs[0]["run"]["complete"]
