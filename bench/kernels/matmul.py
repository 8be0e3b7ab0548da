"""Dense matmul throughput per precision (work = 2*m*n*k per call).

fp64, fp32 (TF32 off), tf32, fp16, bf16 via torch.matmul(out=); fp8 e4m3 via torch._scaled_mm
with per-tensor scales and bf16 output; int8 via torch._int_mm (int32 output). Random normal
operands (never zeros), the output poisoned first and written every call, the cache flushed
outside the timed region, and a sub-block checked against a float64 reference afterwards.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from bench.backend import Backend
from bench.measurement import measured, not_run
from bench.modes import MATMUL_PRECISIONS
from bench.registry import Case, register
from bench.sizing import does_not_fit
from bench.timing import measure

PRECISIONS = MATMUL_PRECISIONS
METHOD_VERSION = 1
CONVENTION = "2*m*n*k operations per call (dense; one multiply-add counts 2)"
FP8_FAST_ACCUM = False

_DTYPES = {
    "fp64": torch.float64,
    "fp32": torch.float32,
    "tf32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}
_OPERAND_BYTES = {"fp64": 8, "fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1, "fp4": 1}
_OUTPUT_BYTES = {"fp64": 8, "fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 2, "int8": 4, "fp4": 2}

# Relative Frobenius error of a checked sub-block against a float64 reference on the same
# operand values. Bounds are loose multiples of each format's rounding (unit roundoff of the
# output type, plus accumulation in the input type for TF32) so a correct kernel never fails
# and a wrong one (error ~1) always does.
TOLERANCE = {
    "fp64": 1e-10,
    "fp32": 1e-4,
    "tf32": 1e-2,
    "fp16": 1e-2,
    "bf16": 3e-2,
    "fp8": 3e-2,
    "int8": 0.0,  # exact: int8 products summed in int32
}
CHECK_BLOCK = 64

# Memory layout of the operands (A, B) of every precision with a kernel: "row" is row-major (a
# contiguous tensor), "col" column-major (the transpose of a contiguous (n, k) tensor). cuBLASLt's
# fp8 and int8 kernels are "TN" only: `_scaled_mm` refuses a row-major B, and `_int_mm` with a
# row-major B is refused on CUDA 13 builds (pytorch/pytorch#169956) and slow where accepted.
OPERAND_LAYOUT = {
    "fp64": ("row", "row"),
    "fp32": ("row", "row"),
    "tf32": ("row", "row"),
    "fp16": ("row", "row"),
    "bf16": ("row", "row"),
    "fp8": ("row", "col"),
    "int8": ("row", "col"),
}


@dataclass
class Operands:
    a: torch.Tensor
    b: torch.Tensor
    out: torch.Tensor
    scale_a: torch.Tensor | None = None
    scale_b: torch.Tensor | None = None


def _float_mm(ops: Operands) -> None:
    torch.matmul(ops.a, ops.b, out=ops.out)


def _fp8_mm(ops: Operands) -> None:
    torch._scaled_mm(
        ops.a, ops.b, scale_a=ops.scale_a, scale_b=ops.scale_b, out_dtype=torch.bfloat16,
        use_fast_accum=FP8_FAST_ACCUM, out=ops.out,
    )


def _int8_mm(ops: Operands) -> None:
    torch._int_mm(ops.a, ops.b, out=ops.out)


# One call per precision; tests swap in a deliberately wrong kernel to prove the check bites.
KERNELS: dict[str, Callable[[Operands], None]] = {
    **{p: _float_mm for p in _DTYPES},
    "fp8": _fp8_mm,
    "int8": _int8_mm,
}


def make_operands(precision: str, m: int, n: int, k: int, device: torch.device, seed: int,
                  fp8_dtype: torch.dtype = torch.float8_e4m3fn) -> Operands:
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)

    if precision not in OPERAND_LAYOUT:
        raise ValueError(f"no operands for precision {precision!r}")
    layout_a, layout_b = OPERAND_LAYOUT[precision]

    def normal(rows: int, cols: int, layout: str) -> torch.Tensor:
        """A (rows, cols) float32 operand stored in `layout`, converted to the precision's type
        by the caller (a conversion keeps the strides)."""
        if layout == "col":
            return torch.randn(cols, rows, generator=gen, device=device, dtype=torch.float32).t()
        return torch.randn(rows, cols, generator=gen, device=device, dtype=torch.float32)

    a, b = normal(m, k, layout_a), normal(k, n, layout_b)
    if precision in _DTYPES:
        dtype = _DTYPES[precision]
        out = torch.full((m, n), float("nan"), dtype=dtype, device=device)
        return Operands(a.to(dtype), b.to(dtype), out)
    if precision == "fp8":
        fp8 = fp8_dtype  # e4m3fn (OCP), or e4m3fnuz on ROCm gfx942 (the backend says which)
        one = torch.tensor(1.0, device=device)
        out = torch.full((m, n), float("nan"), dtype=torch.bfloat16, device=device)
        return Operands(a.to(fp8), b.to(fp8), out, scale_a=one * 0.5, scale_b=one * 2.0)
    out = torch.full((m, n), -(2**31), dtype=torch.int32, device=device)
    return Operands(_int8(a), _int8(b), out)


def _int8(normal: torch.Tensor) -> torch.Tensor:
    return (normal * 40).round().clamp(-127, 127).to(torch.int8)


def layout_of(t: torch.Tensor) -> str:
    """"row" or "col": how a 2-D operand is stored."""
    if t.stride(1) == 1 and (t.stride(0) == t.shape[1] or t.shape[0] == 1):
        return "row"
    if t.stride(0) == 1 and (t.stride(1) == t.shape[0] or t.shape[1] == 1):
        return "col"
    return "strided"


def _exact_float64(t: torch.Tensor) -> torch.Tensor:
    """A float64 CPU copy of `t`; fp8 goes through float32 (exact) since not every backend
    converts float8 to float64 directly."""
    if t.dtype in (torch.float8_e4m3fn, torch.float8_e4m3fnuz, torch.float8_e5m2, torch.float8_e5m2fnuz):
        t = t.to(torch.float32)
    return t.to(torch.float64).cpu()


def check(precision: str, ops: Operands) -> str | None:
    """Compare a CHECK_BLOCK x CHECK_BLOCK corner of the output with a float64 reference."""
    rows = min(CHECK_BLOCK, ops.out.shape[0])
    cols = min(CHECK_BLOCK, ops.out.shape[1])
    a = _exact_float64(ops.a[:rows])
    b = _exact_float64(ops.b[:, :cols])
    reference = a @ b
    if ops.scale_a is not None and ops.scale_b is not None:
        reference = reference * float(ops.scale_a) * float(ops.scale_b)
    got = ops.out[:rows, :cols].to(torch.float64).cpu()
    if not torch.isfinite(got).all():
        return "output has NaN or Inf (unwritten or overflowed elements)"
    if precision == "int8":
        wrong = int((got != reference).sum())
        return None if wrong == 0 else f"{wrong} of {rows * cols} checked int32 outputs differ from the exact result"
    norm = float(torch.linalg.norm(reference))
    error = float(torch.linalg.norm(got - reference)) / (norm or 1.0)
    tolerance = TOLERANCE[precision]
    if math.isnan(error) or error > tolerance:
        return f"relative error {error:.3g} > tolerance {tolerance:.3g} for {precision}"
    return None


@contextlib.contextmanager
def float32_mode(precision: str) -> Iterator[None]:
    """TF32 on only for the tf32 case; strict IEEE fp32 for the fp32 case; restored after."""
    if precision not in ("fp32", "tf32"):
        yield
        return
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def footprint_bytes(precision: str, m: int, n: int, k: int) -> int:
    """Operands and output of one case, in bytes."""
    return (m * k + k * n) * _OPERAND_BYTES[precision] + m * n * _OUTPUT_BYTES[precision]


def fitted_shape(precision: str, m: int, n: int, k: int, total_bytes: int,
                 edge_cap: int | None = None) -> tuple[int, int, int]:
    """Halve the shape until operands and output use at most half the device's TOTAL memory (a
    static fact: free memory moves from run to run and would move the key), and, where the backend
    caps a precision (CPU-emulated fp16/fp8), until m*n*k <= edge_cap^3."""
    while footprint_bytes(precision, m, n, k) > total_bytes // 2 and min(m, n, k) > 256:
        m, n, k = m // 2, n // 2, k // 2
    if edge_cap is not None:
        while m * n * k > edge_cap ** 3 and min(m, n, k) > 16:
            m, n, k = m // 2, n // 2, k // 2
    return m, n, k


class MatmulBenchmark:
    name = "matmul"
    concurrent = True  # shares no resource with other GPUs: measured on all selected GPUs at once

    def cases(self, backend: Backend, mode: str) -> list[Case]:
        sizes = backend.sizes(mode)
        total = backend.total_memory_bytes()
        cases = []
        for precision in PRECISIONS:
            cap = backend.matmul_edge_cap(precision)
            edge = sizes.matmul_mnk
            m, n, k = fitted_shape(precision, edge, edge, edge, total, cap)
            cases.append(Case("matmul", "reference", {"m": m, "n": n, "k": k}, precision))
            seen = {(m, n, k)}  # shapes halved to fit memory can coincide: one case (one key) each
            for shape in sizes.sweep_shapes:
                shape = fitted_shape(precision, *shape, total, cap)
                if shape not in seen:
                    seen.add(shape)
                    sm, sn, sk = shape
                    cases.append(Case("matmul", "sweep", {"m": sm, "n": sn, "k": sk}, precision))
        return cases

    def run(self, case: Case, backend: Backend, mode: str):
        precision = case.precision or ""
        unit = "op" if precision == "int8" else "flop"
        reason = backend.precision_unsupported(precision)
        if reason is None and precision not in KERNELS:
            reason = f"no {precision} matmul kernel in this tppbench version"
        if reason is not None:
            return not_run(case, backend.device_index, "skipped", reason, unit=unit, convention=CONVENTION)
        m, n, k = (int(case.params[x]) for x in ("m", "n", "k"))
        if precision in _OPERAND_BYTES:
            # float32 operands are made first and converted: room for those as well
            need = footprint_bytes(precision, m, n, k) + 4 * (m * k + k * n)
            reason = does_not_fit(need, backend.free_memory_bytes(), f"{precision} {m}x{n}x{k}")
            if reason is not None:
                return not_run(case, backend.device_index, "skipped", reason, unit=unit, convention=CONVENTION)
        kernel = KERNELS[precision]
        with float32_mode(precision):
            ops = make_operands(precision, m, n, k, backend.device, seed=m * 31 + n * 7 + k,
                                fp8_dtype=backend.fp8_dtype())
            times_s, timing = measure(lambda: kernel(ops), backend, backend.budget(mode), flush_cache=True)
            backend.synchronize()
            problem = check(precision, ops)
        extra: dict[str, object] = {"flush_bytes": backend.flush_bytes(), "cache_bytes": backend.cache_bytes()}
        if precision == "fp8":
            extra["fp8_use_fast_accum"] = FP8_FAST_ACCUM
            extra["fp8_dtype"] = str(ops.a.dtype).removeprefix("torch.")
        if backend.matmul_edge_cap(precision) is not None:
            extra["shape_rule"] = (f"{precision} is emulated on this backend: shapes scaled to m*n*k <= "
                                   f"{backend.matmul_edge_cap(precision)}^3 (a fixed rule, not a timing)")
        return measured(
            case, backend.device_index, times_s=times_s, timing=timing,
            work_per_call=2.0 * m * n * k, unit=unit, convention=CONVENTION,
            method_version=METHOD_VERSION, check_error=problem, extra=extra,
        )


register(MatmulBenchmark())
