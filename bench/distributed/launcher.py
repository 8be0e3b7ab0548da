"""The local launcher: without torchrun, run N copies of the command as local ranks (hosting the
rendezvous TCPStore), watch them, stop them all when one fails; and the children's side of that
contract (die with the launcher)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from typing import Sequence

import torch.distributed as dist

from bench.distributed.env import LAUNCHER_ENV
from bench.distributed.failures import EXIT_RANK_FAILURE
from bench.stop_signals import StopRequested, StopSignals

SIGTERM_GRACE_S = 10.0  # a rank's watchdog saves and exits this long after SIGTERM (session.py)


def launch_local(argv: Sequence[str], nproc: int, timeout_s: float, *, grace_s: float = 30.0) -> int:
    """Run `python -m bench <argv>` as `nproc` local ranks (what torchrun would do on one node).

    The launcher hosts the rendezvous TCPStore on a free loopback port (no port race). When a
    rank fails, the others get `timeout_s` to notice and stop on their own (rank 0 writes what it
    measured), then SIGTERM, then SIGKILL after `grace_s`; no child outlives the launcher.
    SIGTERM or SIGHUP to the launcher stops every rank the same way and returns 143 / 129 (a
    second signal exits at once). Returns rank 0's exit code (or the first failure's when rank 0
    never finished)."""
    store = dist.TCPStore("127.0.0.1", 0, None, is_master=True, wait_for_workers=False,
                          timeout=dt.timedelta(seconds=max(timeout_s, 30.0)))
    base = dict(os.environ)
    base.update({"WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc), "GROUP_RANK": "0",
                 "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(store.port),
                 "TORCHELASTIC_USE_AGENT_STORE": "True", LAUNCHER_ENV: "local"})
    procs = []
    for rank in range(nproc):
        env = dict(base, RANK=str(rank), LOCAL_RANK=str(rank))
        procs.append(subprocess.Popen([sys.executable, "-m", "bench", *argv], env=env))
    first_failure: int | None = None
    failed_at: float | None = None
    with StopSignals() as stops:  # SIGTERM / SIGHUP to the launcher: every rank stops, rank 0 writes
        try:
            while procs[0].poll() is None:
                if first_failure is None:
                    first_failure = next((i for i, p in enumerate(procs) if p.poll() not in (None, 0)), None)
                    failed_at = time.monotonic() if first_failure is not None else None
                elif time.monotonic() - (failed_at or 0.0) > timeout_s + 5.0:
                    break  # rank 0 had its chance to notice, write and leave
                time.sleep(0.05)
            if procs[0].returncode == 0 and first_failure is None:
                for p in procs[1:]:  # the others finish their last store writes
                    try:
                        p.wait(timeout=timeout_s)
                    except subprocess.TimeoutExpired:
                        break
        except StopRequested:
            stops.saving()  # a second signal now exits at once
            _forward_stop(procs, grace_s)
        except KeyboardInterrupt:
            pass
        finally:
            _stop_all(procs, grace_s)
    del store
    if stops.exit_code is not None:
        return stops.exit_code
    rank0 = procs[0].returncode
    if rank0 is not None and rank0 > 0:
        return rank0  # rank 0 stopped by itself and has said why
    bad = [i for i, p in enumerate(procs) if p.returncode != 0]
    if rank0 == 0 and not bad:
        return 0
    culprit = first_failure if first_failure is not None else bad[0]
    tail = "" if rank0 == 0 else "; rank 0 did not finish, so no result file was written"
    print(f"tppbench: error: local rank {culprit} (pid {procs[culprit].pid}) exited with code "
          f"{procs[culprit].returncode}{tail}", file=sys.stderr)
    return EXIT_RANK_FAILURE


def _forward_stop(procs: Sequence[subprocess.Popen], grace_s: float) -> None:
    """Every rank gets SIGTERM (a rank's Session stops at its next safe point, and rank 0 writes
    what it measured, marked incomplete); rank 0 gets the watchdog's grace plus `grace_s` to do so."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.send_signal(signal.SIGCONT)
    try:
        procs[0].wait(timeout=SIGTERM_GRACE_S + grace_s)
    except subprocess.TimeoutExpired:
        pass


def _stop_all(procs: Sequence[subprocess.Popen], grace_s: float) -> None:
    alive = [p for p in procs if p.poll() is None]
    for p in alive:
        p.send_signal(signal.SIGTERM)
        p.send_signal(signal.SIGCONT)  # a stopped child only sees SIGTERM once continued
    deadline = time.monotonic() + grace_s
    for p in alive:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _die_with_parent() -> None:
    """Children of `launch_local` get SIGTERM if the launcher dies (Linux prctl PDEATHSIG)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        return
    if os.getppid() == 1:  # the launcher died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
