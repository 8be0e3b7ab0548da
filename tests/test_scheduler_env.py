"""Slurm's and Kubernetes' environment as tppbench reads it (the real-Slurm runs are in
tests/test_slurm.py): srun ranks, torchrun's variables winning under srun + torchrun, hostlists,
tasks per node, the port rule, and the scheduler facts recorded in run.scheduler."""

from __future__ import annotations

import pytest

from bench.distributed.env import detect, first_host, scheduler_facts, tasks_on_node
from results.errors import UsageError

SRUN = {"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1", "SLURM_NODEID": "1", "SLURM_STEP_ID": "0",
        "SLURM_JOB_ID": "70001", "SLURM_STEP_NODELIST": "gpu-[07-08]", "SLURM_STEP_TASKS_PER_NODE": "2(x2)"}


def test_srun_ranks_without_torchrun():
    launch = detect(SRUN)
    assert (launch.rank, launch.world_size, launch.local_rank, launch.local_world_size, launch.node_rank) == (3, 4, 1, 2, 1)
    assert launch.master_addr == "gpu-07" and launch.master_port == 61000 + 70001 % 4536 and launch.launcher == "slurm"


def test_master_addr_and_port_override_slurms():
    launch = detect({**SRUN, "MASTER_ADDR": "10.0.0.5", "MASTER_PORT": "29500"})
    assert (launch.master_addr, launch.master_port) == ("10.0.0.5", 29500)


def test_torchrun_variables_win_under_srun():
    launch = detect({**SRUN, "RANK": "9", "WORLD_SIZE": "16", "LOCAL_RANK": "1", "TORCHELASTIC_RUN_ID": "x",
                     "MASTER_ADDR": "gpu-07", "MASTER_PORT": "29500"})
    assert (launch.rank, launch.world_size, launch.launcher) == (9, 16, "torchrun")


def test_one_task_or_no_step_is_a_plain_run():
    assert detect({**SRUN, "SLURM_NTASKS": "1", "SLURM_PROCID": "0"}) is None
    assert detect({k: v for k, v in SRUN.items() if k != "SLURM_STEP_ID"}) is None  # sbatch's own shell


def test_bad_slurm_environment_is_one_line():
    with pytest.raises(UsageError, match="bad Slurm environment"):
        detect({**SRUN, "SLURM_PROCID": "7"})


@pytest.mark.parametrize("nodelist, first", [
    ("gpu-[07-09,12],login1", "gpu-07"), ("node5", "node5"), ("a[1-2]b[3-4]", "a1b3"), ("dgx-[001-004]", "dgx-001"),
])
def test_first_host_of_a_hostlist(nodelist, first):
    assert first_host(nodelist) == first


def test_tasks_per_node():
    assert [tasks_on_node("2(x3),1", n) for n in range(4)] == [2, 2, 2, 1] and tasks_on_node("8", 1) is None


def test_scheduler_facts():
    slurm = scheduler_facts({"SLURM_JOB_ID": "5", "SLURM_ARRAY_JOB_ID": "4", "SLURM_ARRAY_TASK_ID": "1",
                             "SLURM_STEP_ID": "0", "SLURMD_NODENAME": "gpu-07"})
    assert slurm == {"name": "slurm", "job_id": "5", "array_job_id": "4", "array_task_id": "1", "step_id": "0",
                     "node": "gpu-07"}
    k8s = scheduler_facts({"JOB_COMPLETION_INDEX": "3", "HOSTNAME": "tppbench-fleet-3-abcde"})
    assert k8s == {"name": "kubernetes", "job_completion_index": "3", "pod": "tppbench-fleet-3-abcde"}
    assert scheduler_facts({}) == {}
