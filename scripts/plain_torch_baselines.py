"""Plain-torch measurements of the operations the harness times, for the 3 % overhead check.

Usage (on a GPU host, after `tppbench run --mode quick`): python scripts/plain_torch_baselines.py RESULT.json
Each baseline is the simplest honest measurement: warm-up, then CUDA events around a loop of
calls (no cache flush), median of 10 loops. Prints harness median, baseline, and their ratio.
"""

from __future__ import annotations

import statistics
import sys

import torch

from results.store import load


def timed(fn, loops: int = 10, calls: int = 20) -> float:
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    per_call = []
    for _ in range(loops):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        per_call.append(start.elapsed_time(end) / 1e3 / calls)
    return statistics.median(per_call)


def baselines(n: int, copy_bytes: int, h2d_bytes: int) -> dict[str, float]:
    dev = torch.device("cuda")
    a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
    c = torch.empty(n, n, device=dev, dtype=torch.bfloat16)
    out = {"bf16": 2 * n**3 / timed(lambda: torch.matmul(a, b, out=c))}
    a8 = torch.randn(n, n, device=dev).to(torch.float8_e4m3fn)
    b8 = torch.randn(n, n, device=dev).to(torch.float8_e4m3fn).t()
    one = torch.tensor(1.0, device=dev)
    out["fp8"] = 2 * n**3 / timed(lambda: torch._scaled_mm(a8, b8, scale_a=one, scale_b=one,
                                                             out_dtype=torch.bfloat16, out=c))
    src = torch.rand(copy_bytes // 4, device=dev)
    dst = torch.empty_like(src)
    out["copy"] = 2 * copy_bytes / timed(lambda: dst.copy_(src), calls=5)
    host = torch.empty(h2d_bytes, dtype=torch.uint8).pin_memory()
    dev_buf = torch.empty(h2d_bytes, dtype=torch.uint8, device=dev)
    out["h2d_pinned"] = h2d_bytes / timed(lambda: dev_buf.copy_(host, non_blocking=True), calls=5)
    return out


def main(path: str) -> int:
    result = load(path)
    harness = {}
    for m in result.measurements:
        if m.status != "ok" or m.device_index not in (0, None):
            continue
        if m.benchmark == "matmul" and m.variant == "reference" and m.precision in ("bf16", "fp8"):
            harness[m.precision] = m
        elif m.benchmark == "memory" and m.variant == "copy":
            harness["copy"] = m
        elif m.benchmark == "hostlink" and m.variant == "h2d_pinned":
            harness["h2d_pinned"] = m
    n = int(harness["bf16"].params["n"]) if "bf16" in harness else 8192
    copy_bytes = int(harness["copy"].params["bytes"]) if "copy" in harness else 1 << 30
    h2d_bytes = int(harness["h2d_pinned"].params["bytes"]) if "h2d_pinned" in harness else 1 << 28
    plain = baselines(n, copy_bytes, h2d_bytes)
    worst = 0.0
    print(f"{'case':12} {'harness':>14} {'plain torch':>14} {'harness/plain':>14}")
    for name, rate in plain.items():
        got = harness.get(name)
        if got is None:
            print(f"{name:12} {'(not measured)':>14} {rate:14.4g}")
            continue
        ratio = got.rate / rate
        worst = max(worst, abs(1 - ratio))
        print(f"{name:12} {got.rate:14.4g} {rate:14.4g} {ratio:14.3f}")
    print(f"largest deviation: {worst * 100:.1f}% (target <= 3%)")
    return 0 if worst <= 0.03 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
