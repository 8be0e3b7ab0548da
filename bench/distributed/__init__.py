"""Multi-rank runs: the torch.distributed process group, rank liveness, and gathering to rank 0.
This package only re-exports the public names of its modules (below).

How a run becomes distributed
- Under `torchrun` (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT in the environment) every
  rank starts a `Session`: NCCL on CUDA, gloo on the CPU, `init_process_group(timeout=--timeout)`.
- Without torchrun, `tppbench run --suite collectives` on a host with several selected GPUs (or with
  `--nproc N`) starts its own local group: `launch_local` runs N copies of the same command as
  children with torchrun's environment variables, hosting the rendezvous TCPStore itself.
- Otherwise the collectives run in a world of one, in-process (gloo or NCCL over a HashStore).

Only rank 0 writes the result file; every rank sends it its measurements and DeviceInfo
(`gather_object` over a gloo group, so it is CPU-side and bounded by the timeout on CUDA too).

A rank that dies or hangs ends the run within a bounded time, with one message naming it
- every collective call is bounded: gloo ops by the process-group timeout (`--timeout`); NCCL ops
  are polled through CUDA events against the same deadline (the NCCL watchdog, at --timeout + 60 s,
  is only the backstop);
- phase boundaries are *progress-aware* syncs through the rendezvous store, not PG barriers: a
  rank may wait there as long as the run makes progress (another node's p2p matrix may take
  minutes), but it stops at once when a peer reports a failure, within `stale_s` when a peer's
  heartbeat stops (dead or frozen), and after `--timeout` without any progress anywhere (hang);
- every rank runs a heartbeat thread; rank 0 reads peers' heartbeats, status and pids to name the
  culprit ("rank 1 (host h, pid 42) exited ...");
- SIGTERM (torchrun stops all ranks when one fails) sets a flag that the main thread checks at safe
  points, so rank 0 still writes what it measured, marked incomplete;
- a watchdog thread is the last resort when the main thread is stuck in device code: after
  2 x timeout + 60 s without progress (or 10 s after SIGTERM) it saves the partial result and exits.

Modules, one job each:
- env.py       launch-environment detection (torchrun / local launcher variables), host name
- failures.py  RunAborted / RankFailure / Terminated, EXIT_RANK_FAILURE, exit_now, one-line messages
- session.py   Session: process group, liveness through the store, syncs, watchdog, gather to rank 0
- launcher.py  launch_local: N local ranks without torchrun, and the children's side of it
"""

from __future__ import annotations

from bench.distributed.env import LAUNCHER_ENV, LaunchEnv, detect, hostname, rank_gpu, scheduler_facts
from bench.distributed.failures import (
    EXIT_RANK_FAILURE,
    GroupUnavailable,
    RankFailure,
    RunAborted,
    Terminated,
    first_line,
    exit_now,
)
from bench.distributed.launcher import launch_local
from bench.distributed.session import (
    DEFAULT_TIMEOUT_S,
    NCCL_TIMEOUT_MARGIN_S,
    SIGTERM_GRACE_S,
    Session,
    current,
)
from bench.distributed.control import all_gather_objects, max_over_ranks, min_over_ranks

__all__ = [
    "DEFAULT_TIMEOUT_S", "EXIT_RANK_FAILURE", "LAUNCHER_ENV", "NCCL_TIMEOUT_MARGIN_S", "SIGTERM_GRACE_S",
    "GroupUnavailable", "LaunchEnv", "RankFailure", "RunAborted", "Session", "Terminated",
    "first_line", "all_gather_objects", "current", "detect", "exit_now", "hostname", "launch_local",
    "max_over_ranks", "min_over_ranks", "rank_gpu", "scheduler_facts",
]
