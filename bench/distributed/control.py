"""The session's control traffic on its gloo group: MAX/MIN over ranks and gathering objects. A
failure here is a collective failure of the session (bench.distributed.session.Session)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

if TYPE_CHECKING:  # annotation only
    from bench.distributed.session import Session


def max_over_ranks(session: Session, value: float) -> float:
    return _reduce(session, value, dist.ReduceOp.MAX)


def min_over_ranks(session: Session, value: float) -> float:
    return _reduce(session, value, dist.ReduceOp.MIN)


def _reduce(session: Session, value: float, op: Any) -> float:
    if session.world_size == 1:
        return float(value)
    tensor = torch.tensor([float(value)], dtype=torch.float64)
    try:
        dist.all_reduce(tensor, op=op, group=session.control)
    except Exception as exc:
        raise session.collective_failed("a control all_reduce", exc) from None
    return float(tensor.item())


def all_gather_objects(session: Session, obj: Any) -> list[Any]:
    if session.world_size == 1:
        return [obj]
    out: list[Any] = [None] * session.world_size
    try:
        dist.all_gather_object(out, obj, group=session.control)
    except Exception as exc:
        raise session.collective_failed("a control all_gather_object", exc) from None
    return out
