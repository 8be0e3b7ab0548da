"""Case keys: the stable identity of one measurement across hosts, runs and tools.

`matmul/bf16/m=8192,n=8192,k=8192`, `collectives/all_reduce/bytes=1048576,world_size=8`: the family,
then the precision (or the variant when there is none), the variant again when a precision names
a non-default variant, then the parameters in their given order. `tppbench run` and the importers
of other tools' output build keys here, so `compare` aligns their records.
"""

from __future__ import annotations

from typing import Any, Mapping

DEFAULT_VARIANTS = ("reference", "sweep")  # matmul variants that the key leaves out


def case_key(benchmark: str, variant: str, params: Mapping[str, Any], precision: str | None = None) -> str:
    parts = [benchmark, precision or variant]
    if precision and variant not in DEFAULT_VARIANTS:
        parts.append(variant)
    body = ",".join(f"{k}={v}" for k, v in params.items())
    return "/".join(parts) + (f"/{body}" if body else "")
