"""How rank 0 names the rank(s) at fault when a distributed run fails: reported failures, local
pids (exited, zombie, stopped), then heartbeats sampled a few intervals apart. A mixin of
`bench.distributed.session.Session`: it reads the session's store, heartbeats and peer table."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bench.distributed.failures import first_line


class FailureDiagnosis:
    """Failure description for a Session (`self._store`, `self._peer_hb`, `self._peer_info`, ...)."""

    _store: Any
    _peer_hb: Any
    _peer_info: Any

    def describe_failure(self, cause: str) -> str:
        """One line naming the rank(s) at fault, or saying none could be identified.

        Rank 0 (the one that reports) looks closely: a failure a rank reported, then local pids
        (exited, zombie, stopped), then heartbeats sampled twice a few intervals apart. Other
        ranks stay quiet and skip the look."""
        if not self.multi or self.rank != 0:
            return cause
        culprits: list[str] = []
        try:
            reported = self._reported_failure()
            if reported:
                return f"{reported} -- {cause}"
            quiet = []
            for r in self._others():
                problem = self._peer_problem(r)
                if problem:
                    culprits.append(f"{self._who(r)} {problem}{self._last_case(r)}")
                elif not self._finished(r):
                    quiet.append(r)
            if not culprits and quiet:
                before = {r: int(self._store.add(f"hb/{r}", 0)) for r in quiet}
                time.sleep(3 * self.hb_interval_s + 0.05)
                for r in quiet:
                    if int(self._store.add(f"hb/{r}", 0)) == before[r] and not self._finished(r):
                        age = time.monotonic() - self._peer_hb.get(r, (0, time.monotonic() - 3 * self.hb_interval_s))[1]
                        culprits.append(f"{self._who(r)} {self._frozen(r, age)}{self._last_case(r)}")
        except Exception as exc:  # the store itself is gone (the launcher died)
            return f"{cause}; could not reach the rendezvous store to find the failed rank ({first_line(exc)})"
        if not culprits:
            return f"{cause} (no failed peer identified; this is rank {self.rank} on host {self.host})"
        return f"{'; '.join(culprits)} -- {cause}"

    def _finished(self, r: int) -> bool:
        key = f"status/{r}"
        if not self._store.check([key]):
            return False
        status = self._store.get(key).decode()
        return status == "done" or status.startswith("aborted: ")

    def _reported_failure(self) -> str | None:
        for r in self._others():
            key = f"status/{r}"
            if self._store.check([key]):
                status = self._store.get(key).decode()
                if status.startswith("failed: "):
                    return f"{self._who(r)} failed: {status[len('failed: '):]}"
        return None

    def _peer_problem(self, r: int) -> str | None:
        """Why rank r is not a healthy peer, or None. Its own status first (a rank that stopped
        because of someone else is not to blame), then, on this node, whether its process is gone,
        then whether its heartbeat advanced within `stale_s` (a dead node, a frozen process)."""
        key = f"status/{r}"
        status = self._store.get(key).decode() if self._store.check([key]) else ""
        if status.startswith("failed: "):
            return f"failed: {status[len('failed: '):]}"
        if status.startswith("aborted: ") or status == "done":
            return None
        state = self._local_state(r)
        if state is None or state in "ZX":
            return "exited unexpectedly" if state is None else "exited unexpectedly (not yet reaped)"
        count = int(self._store.add(f"hb/{r}", 0))
        now = time.monotonic()
        seen = self._peer_hb.get(r)
        if seen is None or seen[0] != count:
            self._peer_hb[r] = seen = (count, now)
        if now - seen[1] > self.stale_s:
            return self._frozen(r, now - seen[1])
        return None

    def _local_state(self, r: int) -> str:
        """Process state of rank r when it runs on this node ("?" elsewhere; None: gone)."""
        host, pid, node = self._info(r)
        if node != self.node_rank or host != self.host or pid <= 0:
            return "?"
        return _proc_state(pid)

    def _frozen(self, r: int, age_s: float) -> str:
        if self._local_state(r) in ("T", "t"):
            return f"is stopped (process state T: SIGSTOP or a debugger; no heartbeat for {age_s:.1f} s)"
        return f"stopped responding (no heartbeat for {age_s:.1f} s)"

    def _last_case(self, r: int) -> str:
        key = f"progress/{r}"
        if not self._store.check([key]):
            return "; before its first case"
        return f"; last case: {self._store.get(key).decode().partition('|')[2]}"

    def _who(self, r: int) -> str:
        try:
            host, pid, _node = self._info(r)
        except Exception:
            return f"rank {r}"
        return f"rank {r} (host {host}, pid {pid})"

    def _info(self, r: int) -> tuple[str, int, int]:
        if r == self.rank:
            return self.host, self.pid, self.node_rank
        if r not in self._peer_info:
            key = f"who/{r}"
            if not self._store.check([key]):
                return "?", -1, -1
            host, pid, node = self._store.get(key).decode().rsplit("|", 2)
            self._peer_info[r] = (host, int(pid), int(node))
        return self._peer_info[r]

    def _others(self) -> list[int]:
        return [r for r in range(self.world_size) if r != self.rank]


def _proc_state(pid: int) -> str | None:
    """The one-letter state of a local process (R, S, D, T, Z, ...), or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "S"
        return "S"  # no /proc (not Linux): alive, state unknown
    return text.rpartition(")")[2].split()[0]

