"""One rank's Session: the torch.distributed process group, rank liveness through the rendezvous
store (heartbeats, progress, status, abort), progress-aware syncs, the watchdog, and gathering to
rank 0 (plus the control-group reductions the collectives family uses).

How these bound every wait is described in the package docstring (`bench/distributed/__init__.py`).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist

from bench.distributed.env import LaunchEnv, hostname
from bench.distributed.failures import (
    EXIT_RANK_FAILURE,
    GroupUnavailable,
    RankFailure,
    RunAborted,
    Terminated,
    first_line,
)
from bench.distributed.diagnosis import FailureDiagnosis
from bench.distributed.launcher import SIGTERM_GRACE_S, _die_with_parent

DEFAULT_TIMEOUT_S = 300.0
NCCL_TIMEOUT_MARGIN_S = 60.0  # NCCL's own watchdog fires this long after our deadline

_CURRENT: Session | None = None


def current() -> Session | None:
    """The session of this process (set by `Session.start`), used by the collectives family."""
    return _CURRENT



# --------------------------------------------------------------------------- the session


class Session(FailureDiagnosis):
    """One rank's view of the process group, its liveness channel and its failure handling."""

    def __init__(self, launch: LaunchEnv | None, kind: str, timeout_s: float,
                 device_index: int | None = None) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout must be positive, got {timeout_s}")
        self.launch = launch
        self.kind = kind
        # The backend collectives are measured on. The session itself (syncs, gathers, the MAX/MIN
        # reductions) always runs on gloo: NCCL is formed only when a collective case asks for it.
        self.backend = "nccl" if kind == "cuda" else "gloo"
        self.timeout_s = float(timeout_s)
        self.device_index = device_index
        self.rank = launch.rank if launch else 0
        self.world_size = launch.world_size if launch else 1
        self.local_rank = launch.local_rank if launch else 0
        self.local_world_size = launch.local_world_size if launch else 1
        self.node_rank = launch.node_rank if launch else 0
        self.host = hostname()
        self.pid = os.getpid()
        self.hb_interval_s = min(1.0, max(0.1, self.timeout_s / 30))
        self.stale_s = min(self.timeout_s, max(10 * self.hb_interval_s, 5.0))
        self.poll_s = 0.02 * max(1.0, self.world_size / 16)
        self.group: Any = None  # the measuring group: made by measuring_group() at the first collective
        self.group_error: str | None = None  # why the measuring group could not be formed, once known
        self.control: Any = None  # gloo group for CPU-side object traffic and MAX/MIN reductions
        self._store: Any = None
        self._started = False
        self._progress_count = 0
        self._label = "start-up"
        self._last_alive = time.monotonic()
        self._terminated_at: float | None = None
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._peer_hb: dict[int, tuple[int, float]] = {}
        self._peer_info: dict[int, tuple[str, int, int]] = {}  # rank -> (host, pid, node)
        self.on_emergency: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def multi(self) -> bool:
        """True when there are other ranks (or a launcher) to watch."""
        return self.launch is not None

    def _start_slurm(self, timeout: dt.timedelta) -> None:
        """Ranks started by srun: rank 0 hosts the rendezvous TCPStore at the first host of the step
        (MASTER_ADDR/MASTER_PORT override it; the port follows the job id otherwise)."""
        launch = self.launch
        store = dist.TCPStore(launch.master_addr, launch.master_port, launch.world_size,
                              is_master=launch.rank == 0, timeout=timeout, wait_for_workers=False)
        dist.init_process_group("gloo", store=dist.PrefixStore("pg", store), rank=launch.rank,
                                world_size=launch.world_size, timeout=timeout)
        self._store = dist.PrefixStore(f"tppbench/{launch.restart}", store)

    def start(self) -> Session:
        global _CURRENT
        timeout = dt.timedelta(seconds=self.timeout_s)
        if self.kind == "cuda" and self.device_index is not None:
            torch.cuda.set_device(self.device_index)
        # The default group is gloo on every backend: a run of matmul, memory and hostlink needs no
        # NCCL, so a host where NCCL cannot initialise (a container's 64 MB /dev/shm, a broken IB
        # plugin) still measures; NCCL is formed by measuring_group() for collectives only.
        try:
            if self.launch is None:
                dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1, timeout=timeout)
            else:
                if self.launch.launcher == "local":
                    _die_with_parent()
                if self.launch.launcher == "slurm":  # srun set no RANK/MASTER_*: rank 0 hosts the store
                    self._start_slurm(timeout)
                else:
                    dist.init_process_group("gloo", init_method="env://", timeout=timeout)
                self._store = self._store or dist.PrefixStore(
                    f"tppbench/{self.launch.restart}",
                    dist.TCPStore(self.launch.master_addr, self.launch.master_port, is_master=False,
                                  timeout=dt.timedelta(seconds=min(self.timeout_s, 60.0)),
                                  wait_for_workers=False),
                )
        except RunAborted:
            raise
        except Exception as exc:  # rendezvous timed out, a peer vanished during set-up, ...
            where = f"{self.launch.master_addr}:{self.launch.master_port}" if self.launch else "in-process"
            raise RankFailure(f"rank {self.rank} (host {self.host}) could not join the process group "
                              f"(gloo, {where}) within {self.timeout_s:g} s: {first_line(exc)}"
                              ) from None
        self.control = dist.group.WORLD
        if self.backend == "gloo":
            self.group = self.control
        self._started = True
        _CURRENT = self
        if self.multi:
            self._store.set(f"who/{self.rank}", f"{self.host}|{self.pid}|{self.node_rank}")
            self._store.set(f"status/{self.rank}", "running")
            self._store.set(f"local/{self.node_rank}/{self.local_rank}", str(self.rank))
            signal.signal(signal.SIGTERM, self._on_sigterm)
            self._thread = threading.Thread(target=self._watch, name="tppbench-heartbeat", daemon=True)
            self._thread.start()
        return self

    def measuring_group(self) -> Any:
        """The group collectives are measured on, formed at the first call: the gloo default group,
        or an NCCL group bound to this rank's GPU (formed at once, so a failure is seen here, on
        every rank, and named). Raises GroupUnavailable with the reason; later calls repeat it."""
        if self.group is not None:
            return self.group
        if self.group_error is not None:
            raise GroupUnavailable(self.group_error)
        pg_timeout = dt.timedelta(seconds=self.timeout_s + NCCL_TIMEOUT_MARGIN_S)
        bound = self.pg_device()
        try:
            self.group = dist.new_group(backend=self.backend, timeout=pg_timeout,
                                        **({"device_id": bound} if bound is not None else {}))
        except Exception as exc:  # NCCL could not initialise: /dev/shm, IB/plugins, NVLS, ...
            self.group_error = f"{self.backend} group could not be formed: {type(exc).__name__}: {first_line(exc)}"
            raise GroupUnavailable(self.group_error) from None
        return self.group

    def pg_device(self) -> torch.device | None:
        """The `device_id` the NCCL measuring group is bound to: this rank's GPU, else None."""
        if self.backend == "nccl" and self.device_index is not None:
            return torch.device("cuda", self.device_index)
        return None

    def close(self, ok: bool, reason: str | None = None) -> None:
        """Record this rank's outcome and stop the threads; destroy the group only on success
        (tearing down a group whose peer is gone can block; the process exit frees it)."""
        global _CURRENT
        self._stop.set()
        if self.multi and self._store is not None:
            if ok:
                try:
                    self._store.set(f"status/{self.rank}", "done")
                except Exception:
                    pass
            elif not self._reported():
                self.abort(reason or "stopped")
        if self._thread is not None:
            self._thread.join(timeout=2 * self.hb_interval_s + 1)
        if ok and self._started:
            try:
                dist.destroy_process_group()
            except Exception:
                pass
        _CURRENT = None

    # ------------------------------------------------------------------ liveness and progress

    def alive(self) -> None:
        """The main thread is not stuck (the watchdog's clock), and reacts to SIGTERM here."""
        self._last_alive = time.monotonic()
        if self._terminated_at is not None and not self._failing:
            self._failing = True
            raise Terminated(self.describe_failure("stopped by the launcher (SIGTERM)"))

    def progress(self, label: str) -> None:
        """The main thread starts `label` (a case key or a phase): liveness plus global progress."""
        self.alive()
        self._label = label
        self._progress_count += 1
        if self.multi:
            self._store_call(lambda s: s.set(f"progress/{self.rank}", f"{self._progress_count}|{label}"))
            self._store_call(lambda s: s.add("progress", 1))
            self._check_abort()

    def fail(self, reason: str) -> None:
        """This rank is the origin of a failure: tell the others (they stop waiting at once)."""
        self._failing = True
        if self.multi:
            try:
                self._store.set(f"status/{self.rank}", f"failed: {reason}")
                self._store.set("abort", f"{self.rank}|{reason}")
            except Exception:
                pass

    def abort(self, reason: str) -> None:
        """This rank stops because of someone else: tell the others, blame nobody."""
        self._failing = True
        if self.multi:
            try:
                self._store.set(f"status/{self.rank}", f"aborted: {reason}")
                if not self._store.check(["abort"]):
                    self._store.set("abort", f"{self.rank}|{reason}")
            except Exception:
                pass

    def _reported(self) -> bool:
        """Whether this rank already published a failed/aborted status."""
        try:
            key = f"status/{self.rank}"
            return bool(self._store.check([key])) and self._store.get(key).decode() != "running"
        except Exception:
            return True

    def collective_failed(self, what: str, exc: BaseException) -> RankFailure:
        """The RankFailure to raise when a torch.distributed call raised `exc`."""
        if isinstance(exc, RunAborted):
            return exc if isinstance(exc, RankFailure) else RankFailure(str(exc))
        self._failing = True
        return RankFailure(self.describe_failure(f"{what} failed on rank {self.rank}: {first_line(exc)}"))

    # ------------------------------------------------------------------ waiting

    def sync(self, name: str, payload: str = "") -> list[str]:
        """A progress-aware barrier through the store; returns every rank's payload (rank order)."""
        if not self.multi:
            return [payload]
        self.alive()
        self._store_call(lambda s: s.set(f"sync/{name}/{self.rank}", payload))
        missing = [r for r in range(self.world_size) if r != self.rank]
        self._wait(lambda r: f"sync/{name}/{r}", missing, f"sync '{name}'")
        return [payload if r == self.rank else self._store_call(lambda s, r=r: s.get(f"sync/{name}/{r}").decode())
                for r in range(self.world_size)]

    def mark(self, name: str) -> None:
        if self.multi:
            self._store_call(lambda s: s.set(f"mark/{name}/{self.rank}", "1"))

    def wait_local(self, name: str, local_rank: int) -> None:
        """Wait until local rank `local_rank` of this node has set mark `name`."""
        if not self.multi or local_rank == self.local_rank:
            return
        key = f"local/{self.node_rank}/{local_rank}"
        self._wait(lambda _r: key, [-1], f"the rank list of node {self.node_rank}")
        rank = int(self._store_call(lambda s: s.get(key).decode()))
        self._wait(lambda r: f"mark/{name}/{r}", [rank], f"'{name}' of local rank {local_rank}")

    def _wait(self, key_of: Callable[[int], str], ranks: Sequence[int], what: str) -> None:
        missing = list(ranks)
        last_global = None
        last_change = time.monotonic()
        delay = self.poll_s
        next_look = 0.0
        while missing:
            missing = [r for r in missing if not self._store_call(lambda s, r=r: s.check([key_of(r)]))]
            if not missing:
                return
            self.alive()
            self._check_abort()
            now = time.monotonic()
            for r in (missing[:8] if now >= next_look else ()):  # peers' health: a few, each interval
                if r >= 0:
                    death = self._store_call(lambda _s, r=r: self._peer_problem(r))
                    if death:
                        self._failing = True
                        raise RankFailure(f"{self._who(r)} {death}{self._store_call(lambda _s, r=r: self._last_case(r))}"
                                          f" -- noticed by rank {self.rank} waiting at {what}")
            if now >= next_look:
                next_look = now + self.hb_interval_s / 2
                missing = missing[8:] + missing[:8]
            count = int(self._store_call(lambda s: s.add("progress", 0)))
            if count != last_global:
                last_global, last_change = count, now
            elif now - last_change > self.timeout_s:
                self._failing = True
                names = ", ".join(self._who(r) for r in missing if r >= 0) or "a peer"
                raise RankFailure(self.describe_failure(
                    f"{names} did not reach {what} and no rank made progress for {self.timeout_s:g} s (hang?)"))
            time.sleep(delay)
            delay = min(delay * 1.5, max(self.poll_s, self.hb_interval_s / 2))  # back off: big worlds

    def wait_events(self, events: Sequence[Any], what: str) -> None:
        """Poll CUDA events until done, bounded by the timeout (NCCL ops never block the host)."""
        deadline = time.monotonic() + self.timeout_s
        next_check = time.monotonic() + 1.0
        delay = 1e-4
        for event in events:
            while not event.query():
                now = time.monotonic()
                if now > deadline:
                    self._failing = True
                    raise RankFailure(self.describe_failure(f"{what} did not complete within {self.timeout_s:g} s"))
                if now > next_check:
                    self.alive()
                    self._check_abort()
                    next_check = now + 1.0
                time.sleep(delay)
                delay = min(delay * 2, 0.01)

    # ------------------------------------------------------------------ rank 0's view

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's `obj` on rank 0 (rank order), None elsewhere; progress-aware first."""
        if self.world_size == 1:
            return [obj]
        self.sync("gather")
        out: list[Any] | None = [None] * self.world_size if self.rank == 0 else None
        try:
            dist.gather_object(obj, out, dst=0, group=self.control)
        except Exception as exc:
            raise self.collective_failed("gathering results to rank 0", exc) from None
        return out

    def hosts(self) -> list[str]:
        """Every rank's host, in rank order (after a sync, when every rank has registered)."""
        if not self.multi:
            return [self.host]
        return [self._info(r)[0] for r in range(self.world_size)]

    def _check_abort(self) -> None:
        if not self.multi:
            return
        if self._store_call(lambda s: s.check(["abort"])):
            origin, _, reason = self._store_call(lambda s: s.get("abort").decode()).partition("|")
            if int(origin) != self.rank:
                self._failing = True
                raise RankFailure(self.describe_failure(f"rank {origin} stopped the run: {reason}"))

    def _store_call(self, fn: Callable[[Any], Any]) -> Any:
        try:
            return fn(self._store)
        except Exception as exc:
            self._failing = True
            raise RankFailure(f"rank {self.rank} (host {self.host}) lost the rendezvous store "
                              f"(the launcher or node 0 is gone?): {first_line(exc)}") from None

    # ------------------------------------------------------------------ signals and watchdog

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        # Only a flag: raising here could interrupt the save of the partial result.
        if self._terminated_at is None:
            self._terminated_at = time.monotonic()

    def _watch(self) -> None:
        hard_limit = 2 * self.timeout_s + 60.0
        while not self._stop.wait(self.hb_interval_s):
            try:
                self._store.add(f"hb/{self.rank}", 1)
                if self.rank == 0:  # the reporter keeps every peer's heartbeat age current
                    now = time.monotonic()
                    for r in self._others():
                        count = int(self._store.add(f"hb/{r}", 0))
                        if self._peer_hb.get(r, (None,))[0] != count:
                            self._peer_hb[r] = (count, now)
            except Exception:
                pass  # the main thread reports a lost store when it next touches it
            now = time.monotonic()
            stuck = now - self._last_alive
            if self._terminated_at is not None and now - self._terminated_at > SIGTERM_GRACE_S:
                self._emergency(f"rank {self.rank} (host {self.host}) got SIGTERM and its main thread did "
                                f"not respond within {SIGTERM_GRACE_S:g} s (stuck at {self._label})")
            elif stuck > hard_limit:
                self._emergency(f"rank {self.rank} (host {self.host}) made no progress for {stuck:.0f} s "
                                f"(stuck at {self._label}); watchdog limit 2 x --timeout + 60 s")

    def _emergency(self, reason: str) -> None:
        self.fail(reason)
        try:
            if self.on_emergency is not None:
                self.on_emergency(reason)
        finally:
            print(f"tppbench: error: {reason}", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(EXIT_RANK_FAILURE)
