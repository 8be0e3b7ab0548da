"""Launch-environment detection: whether this process is one rank of many (torchrun or the
local launcher put RANK, WORLD_SIZE, ... in the environment), and which host it runs on."""

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
    launcher: str  # "torchrun" | "local" | "env"
    restart: int = 0


def detect(environ: Any = None) -> LaunchEnv | None:
    """The launch environment, or None when this process was not started as one rank of many."""
    env = os.environ if environ is None else environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
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
