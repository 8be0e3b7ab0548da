"""SIGTERM and SIGHUP end a single-process `tppbench run` the way Ctrl-C does.

Slurm, Kubernetes and systemd send SIGTERM at a time limit; a closed terminal or ssh session sends
SIGHUP. While cases run, the first such signal raises `StopRequested` in the main thread (as SIGINT
raises KeyboardInterrupt): the current case is abandoned, the runner returns everything measured so
far marked incomplete ("terminated by SIGTERM after 7 of 20 cases"), the file is written, and the
process exits with 128 + the signal number (143 for SIGTERM, 129 for SIGHUP: the shell's
convention, and what a job scheduler reports for a job its signal ended). A signal that arrives
while the result is being saved is only remembered (the save finishes, then the same exit code).
A second signal exits at once, writing nothing more.

Multi-rank processes (torchrun, the local launcher) handle SIGTERM in `bench.distributed`; this
module is for the process that has no such session. Torch-free.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def exit_code_for(signum: int) -> int:
    """128 + the signal number: 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + int(signum)


class StopRequested(BaseException):
    """A stop signal arrived while measuring. A BaseException on purpose: it must pass through the
    per-case error nets (which turn ordinary exceptions into status=error records)."""

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"terminated by {self.signal_name}")


class StopSignals:
    """Installs the handlers for SIGTERM and SIGHUP; `saving()` switches the first signal from
    "stop measuring" to "remember"; `restore()` puts the previous handlers back."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._measuring = True
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def saving(self) -> None:
        self._measuring = False

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @property
    def exit_code(self) -> int | None:
        return None if self.received is None else exit_code_for(self.received)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            print(f"tppbench: error: second stop signal ({name}): exiting at once", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(exit_code_for(signum))
        self.received = signum
        if self._measuring:
            raise StopRequested(signum)
