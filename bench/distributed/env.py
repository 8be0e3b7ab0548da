"""Launch-environment detection: whether this process is one rank of many, and which host it runs
on. torchrun or the local launcher put RANK, WORLD_SIZE, ... in the environment; `srun` with no
torchrun puts SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODEID (torchrun's variables win
under `srun ... torchrun`). The scheduler's job facts (Slurm's job, array task, step and node;
Kubernetes' JOB_COMPLETION_INDEX) are read here too, for the run's metadata."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

from bench.probe import host_name

LAUNCHER_ENV = "TPPBENCH_LAUNCHER"  # set to "local" in children started by launch_local


@dataclass(frozen=True)
class LaunchEnv:
    """What torchrun (or `launch_local`) put in the environment."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node_rank: int
    master_addr: str
    master_port: int
    launcher: str  # "torchrun" | "local" | "env" | "slurm"
    restart: int = 0


def detect(environ: Any = None) -> LaunchEnv | None:
    """The launch environment, or None when this process was not started as one rank of many."""
    env = os.environ if environ is None else environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return _slurm(env)
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        local_rank = int(env.get("LOCAL_RANK", rank))
        local_world = int(env.get("LOCAL_WORLD_SIZE", world))
        node_rank = int(env.get("GROUP_RANK", 0))
        port = int(env.get("MASTER_PORT", "0"))
        restart = int(env.get("TORCHELASTIC_RESTART_COUNT", "0"))
    except ValueError as exc:
        from results.errors import UsageError

        raise UsageError(f"bad torchrun environment: {exc}") from None
    if not 0 <= rank < world:
        from results.errors import UsageError

        raise UsageError(f"bad torchrun environment: RANK={rank} with WORLD_SIZE={world}")
    launcher = env.get(LAUNCHER_ENV) or ("torchrun" if "TORCHELASTIC_RUN_ID" in env else "env")
    return LaunchEnv(rank, world, local_rank, local_world, node_rank,
                     env.get("MASTER_ADDR", "127.0.0.1"), port, launcher, restart)


SLURM_PORT_BASE, SLURM_PORT_SPAN = 61000, 4536  # NVIDIA's enroot hook 50-slurm-pytorch.sh: job id % 4536 + 61000


def _slurm(env: Any) -> LaunchEnv | None:
    """Ranks started by `srun` (a job step: SLURM_STEP_ID set) with more than one task."""
    if "SLURM_PROCID" not in env or "SLURM_NTASKS" not in env or "SLURM_STEP_ID" not in env:
        return None
    from results.errors import UsageError

    try:
        rank, world = int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"])
        local_rank = int(env.get("SLURM_LOCALID", rank))
        node = int(env.get("SLURM_NODEID", 0))
        job = int(env.get("SLURM_JOB_ID", "0") or 0)
    except ValueError as exc:
        raise UsageError(f"bad Slurm environment: {exc}") from None
    if world <= 1:
        return None  # one task: a plain run (its job facts still go into the run's metadata)
    if not 0 <= rank < world:
        raise UsageError(f"bad Slurm environment: SLURM_PROCID={rank} with SLURM_NTASKS={world}")
    local_world = tasks_on_node(env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE") or "",
                                node) or world
    nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or ""
    master = env.get("MASTER_ADDR") or (first_host(nodes) if nodes else "127.0.0.1")
    try:
        port = int(env.get("MASTER_PORT") or SLURM_PORT_BASE + job % SLURM_PORT_SPAN)
    except ValueError as exc:
        raise UsageError(f"bad MASTER_PORT: {exc}") from None
    return LaunchEnv(rank, world, local_rank, local_world, node, master, port, "slurm")


def first_host(nodelist: str) -> str:
    """The first host of a Slurm hostlist: "gpu-[07-09,12],login1" -> "gpu-07"."""
    text = nodelist.strip()
    depth, end = 0, len(text)
    for i, ch in enumerate(text):  # the first top-level comma ends the first entry
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            end = i
            break
    entry = text[:end]
    if "[" not in entry:
        return entry
    prefix, rest = entry.split("[", 1)
    ranges, suffix = rest.split("]", 1)
    first = ranges.split(",")[0].split("-")[0]
    return prefix + first + (first_host(suffix) if "[" in suffix else suffix)


def tasks_on_node(spec: str, node: int) -> int | None:
    """SLURM_TASKS_PER_NODE "2(x3),1" -> the count on node `node` (0-based)."""
    counts: list[int] = []
    for part in filter(None, spec.split(",")):
        count, _, times = part.partition("(x")
        try:
            counts.extend([int(count)] * (int(times.rstrip(")")) if times else 1))
        except ValueError:
            return None
    return counts[node] if node < len(counts) else None


def scheduler_facts(environ: Any = None) -> dict[str, Any]:
    """What the job scheduler says about this run (for run.scheduler and the fleet index)."""
    env = os.environ if environ is None else environ
    if "SLURM_JOB_ID" in env:
        keys = {"job_id": "SLURM_JOB_ID", "array_job_id": "SLURM_ARRAY_JOB_ID",
                "array_task_id": "SLURM_ARRAY_TASK_ID", "step_id": "SLURM_STEP_ID", "node": "SLURMD_NODENAME",
                "nodelist": "SLURM_JOB_NODELIST", "partition": "SLURM_JOB_PARTITION"}
        return {"name": "slurm", **{k: env[v] for k, v in keys.items() if env.get(v)}}
    if "JOB_COMPLETION_INDEX" in env:
        keys = {"job_completion_index": "JOB_COMPLETION_INDEX", "pod": "HOSTNAME", "job_name": "JOB_NAME"}
        return {"name": "kubernetes", **{k: env[v] for k, v in keys.items() if env.get(v)}}
    return {}


def rank_gpu(chosen: Sequence[int], local_rank: int, environ: Any = None) -> int | None:
    """The GPU (torch index) of local rank `local_rank`: the local_rank-th selected GPU, or, when
    the scheduler gives each rank its own single GPU (Slurm `--gpus-per-task=1`, a per-rank
    CUDA_VISIBLE_DEVICES naming one device), that one. None: this rank has no GPU."""
    if local_rank < len(chosen):
        return chosen[local_rank]
    env = os.environ if environ is None else environ
    visible = [part for part in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if part.strip()]
    if len(chosen) == 1 and len(visible) == 1:
        return chosen[0]
    return None


def hostname() -> str:
    return host_name()
