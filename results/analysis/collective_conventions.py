"""nccl-tests' conventions for collective bandwidth, shared by tppbench's collectives and the importer
of nccl-tests logs (benchmark-anchors.md section 2; nccl-tests doc/PERFORMANCE.md).

algbw = S / t with S the operation's size as nccl-tests defines it; busbw = algbw x factor(n).
`IN_PLACE` says which placement tppbench measures per operation: an imported record of that
placement gets the plain key, so `compare` aligns it with a tppbench record.
"""

from __future__ import annotations

FORMULAS = {
    "all_reduce": "2(n-1)/n",
    "all_gather": "(n-1)/n",
    "reduce_scatter": "(n-1)/n",
    "all_to_all": "(n-1)/n",
    "broadcast": "1",
    "reduce": "1",
    "sendrecv": "1",
}
SIZE_MEANING = {
    "all_reduce": "S = bytes of the buffer each rank reduces (count x 4 B)",
    "all_gather": "S = bytes of the gathered output (n x each rank's input)",
    "reduce_scatter": "S = bytes of each rank's input (n x each rank's output)",
    "all_to_all": "S = bytes each rank sends (and receives), n chunks of S/n",
    "broadcast": "S = bytes broadcast from rank 0",
    "reduce": "S = bytes of the buffer each rank sends to the root",
    "sendrecv": "S = bytes each rank sends to its peer",
}
IN_PLACE = {"all_reduce": True, "broadcast": True, "all_gather": False, "reduce_scatter": False,
            "all_to_all": False, "reduce": False, "sendrecv": False}


_FACTORS = {  # each formula of FORMULAS as a function of n
    "2(n-1)/n": lambda n: 2.0 * (n - 1) / n,
    "(n-1)/n": lambda n: (n - 1) / n,
    "1": lambda n: 1.0,
}


def busbw_factor(op: str, world_size: int) -> float:
    if op not in FORMULAS:
        raise ValueError(f"unknown collective {op!r}")
    return _FACTORS[FORMULAS[op]](world_size)


TPPBENCH_TIMING = "t = the slowest rank's time per iteration"


def convention(op: str, timing: str = TPPBENCH_TIMING) -> str:
    return f"algbw = S/t, {SIZE_MEANING[op]}; busbw = algbw x {FORMULAS[op]} (nccl-tests); {timing}"
