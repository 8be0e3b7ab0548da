"""How a distributed run fails: the exceptions that end it, its exit code, the one-line message
made from a torch.distributed exception, and leaving a process without interpreter teardown."""

from __future__ import annotations

import os
import re
import sys

EXIT_RANK_FAILURE = 5  # the run stopped because a rank failed, hung or was stopped


class RunAborted(BaseException):
    """The distributed run cannot go on. A BaseException on purpose: it must pass through the
    per-case error nets (which turn ordinary exceptions into status=error records)."""


class RankFailure(RunAborted):
    """A peer died, hung, was stopped, or reported a failure; the message names it."""


class Terminated(RunAborted):
    """This rank was asked to stop (SIGTERM from torchrun or from the local launcher)."""


def exit_now(code: int) -> None:
    """Leave without interpreter teardown: a process group whose peer is gone may block there."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


_SOURCE_LOCATION = re.compile(r"^\[[^\]]*\.(?:cc|cpp|h|hpp|cu):\d+\]\s*")
_NOISE = (" This is typically caused by", " GLHF")


def first_line(exc: BaseException) -> str:
    """An exception's first line without gloo's "[/path/file.cc:123]" prefix and boilerplate;
    square brackets become parentheses (the summary title is rich markup)."""
    lines = str(exc).strip().splitlines()
    text = _SOURCE_LOCATION.sub("", lines[0]) if lines else type(exc).__name__
    for noise in _NOISE:
        text = text.split(noise)[0]
    return text.replace("[", "(").replace("]", ")")[:300] or type(exc).__name__


class GroupUnavailable(RuntimeError):
    """The group collectives are measured on (NCCL) could not be formed: those cases fail with this
    reason; the rest of the run, on gloo, goes on."""
