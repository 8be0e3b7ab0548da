"""Synthetic, clearly labelled result files for the compare / fleet / report tests.

Built with the schema dataclasses and `results.store.save`, with realistic raw samples drawn
from a seeded `random.Random` (per-sample time = work / (rate x (1 + noise))). Rates default to
the H100 SXM reference numbers of benchmark-anchors.md section 8. Every run's label says
"synthetic" so a file that escapes a test is never mistaken for a measurement.

Regenerate the committed golden files with: .venv/bin/python tests/data/results/synth.py
"""

from __future__ import annotations

import random
import sys
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Mapping

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from results.files import store  # noqa: E402
from results.files.schema import (  # noqa: E402
    DeviceInfo, Measurement, RangeSummary, RunInfo, RunResult, Telemetry, Timing,
)
from results.analysis.stats import noise_flags, rates_from_times, summarize  # noqa: E402

H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-80GB"
H20 = "NVIDIA H20"
PCI_IDS = {H100: "0x2330", A100: "0x20b2"}
MATMUL_CONVENTION = "2*m*n*k operations per call (dense; one multiply-add counts 2)"
MNK = {"m": 8192, "n": 8192, "k": 8192}
GB4 = {"bytes": 4 * 1024**3}
MB256 = {"bytes": 256 * 1024**2}

# (benchmark, variant, precision, params, unit, convention, H100 rate per second)
H100_CASES = (
    ("matmul", "reference", "fp64", MNK, "flop", MATMUL_CONVENTION, 56.2e12),
    ("matmul", "reference", "fp32", MNK, "flop", MATMUL_CONVENTION, 50.9e12),
    ("matmul", "reference", "tf32", MNK, "flop", MATMUL_CONVENTION, 365.7e12),
    ("matmul", "reference", "fp16", MNK, "flop", MATMUL_CONVENTION, 737.2e12),
    ("matmul", "reference", "bf16", MNK, "flop", MATMUL_CONVENTION, 776.4e12),
    ("matmul", "reference", "fp8", MNK, "flop", MATMUL_CONVENTION, 1404.3e12),
    ("matmul", "reference", "int8", MNK, "op", MATMUL_CONVENTION, 889e12),
    ("memory", "copy", None, GB4, "byte", "bytes read + bytes written (2 x buffer) per call", 3.01e12),
    ("memory", "read", None, GB4, "byte", "bytes read (1 x buffer) per call; output is one scalar", 3.06e12),
    ("memory", "write", None, GB4, "byte", "bytes written (1 x buffer) per call", 3.26e12),
    ("memory", "triad", None, GB4, "byte", "2 buffers read + 1 written (3 x buffer) per call", 3.04e12),
    ("hostlink", "h2d_pinned", None, MB256, "byte", "bytes copied host->device once per call (pinned host buffer)", 55.2e9),
    ("hostlink", "d2h_pinned", None, MB256, "byte", "bytes copied device->host once per call (pinned host buffer)", 53.9e9),
    ("hostlink", "h2d_pageable", None, MB256, "byte", "bytes copied host->device once per call (pageable host buffer; host-clock timed)", 22.9e9),
    ("hostlink", "bidirectional_pinned", None, MB256, "byte", "sum of both directions: buffer bytes each way, started together on two streams", 94.0e9),
)


def case_key(benchmark: str, variant: str, precision: str | None, params: Mapping[str, int]) -> str:
    """The same key rule as bench.registry.Case.key."""
    parts = [benchmark, precision or variant]
    if precision and variant not in ("reference", "sweep"):
        parts.append(variant)
    body = ",".join(f"{k}={v}" for k, v in params.items())
    return "/".join(parts) + (f"/{body}" if body else "")


KEYS = {c[2] or c[1]: case_key(c[0], c[1], c[2], c[3]) for c in H100_CASES}


def measurement(
    rng: random.Random, case: tuple, rate: float, *, cv: float = 0.01, n: int = 30,
    device_index: int | None = 0, method_version: int = 1, throttled: bool = False,
    sm_clock_mhz: float = 1755.0,
) -> Measurement:
    benchmark, variant, precision, params, unit, convention, _ = case
    work = 2.0 * params["m"] * params["n"] * params["k"] if benchmark == "matmul" else float(params["bytes"])
    if benchmark == "memory":
        work *= {"copy": 2, "triad": 3}.get(variant, 1)
    if variant.startswith("bidirectional"):
        work *= 2
    times = tuple(work / (rate * max(0.05, 1.0 + rng.gauss(0.0, cv))) for _ in range(n))
    stats = summarize(rates_from_times(work, times))
    flags = noise_flags(stats) + (("throttled",) if throttled else ())
    clock = sm_clock_mhz * (0.85 if throttled else 1.0)
    telemetry = Telemetry(
        available=True, samples=max(2, n // 2),
        sm_clock_mhz=RangeSummary(clock - 40, clock, min(1980.0, clock + 40)),
        mem_clock_mhz=RangeSummary(2619.0, 2619.0, 2619.0),
        power_w=RangeSummary(420.0, 610.0, 699.0), temperature_c=RangeSummary(41.0, 58.0, 66.0),
        throttle_reasons_mask=0x4 if throttled else 0,
        throttle_reasons=("sw_power_cap",) if throttled else (),
    )
    return Measurement(
        key=case_key(benchmark, variant, precision, params), benchmark=benchmark, variant=variant,
        precision=precision, params=dict(params), device_index=device_index, status="ok",
        reason=None, unit=unit, convention=convention, work_per_call=work, times_s=times,
        rate=stats.median, stats=stats, flags=flags, telemetry=telemetry,
        timing=Timing("cuda_event", 1, 10, 0.025, benchmark == "matmul"),
        method_version=method_version,
    )


def skipped(case: tuple, reason: str, device_index: int | None = 0) -> Measurement:
    benchmark, variant, precision, params, unit, convention, _ = case
    return Measurement(
        key=case_key(benchmark, variant, precision, params), benchmark=benchmark, variant=variant,
        precision=precision, params=dict(params), device_index=device_index, status="skipped",
        reason=reason, unit=unit, convention=convention, work_per_call=0.0,
    )


def device(index: int = 0, name: str = H100, host: str | None = None, **overrides) -> DeviceInfo:
    base = DeviceInfo(
        index=index, backend="cuda", name=name, pci_device_id=PCI_IDS.get(name),
        uuid=f"GPU-synthetic-{(host or 'h')}-{index}", compute_capability="9.0" if name == H100 else "8.0",
        sm_count=132 if name == H100 else 108, sm_clock_max_mhz=1980, sm_clock_app_mhz=1980,
        mem_clock_max_mhz=2619, mem_clock_app_mhz=2619, memory_total_bytes=85_899_345_920,
        memory_bus_width_bits=5120, l2_cache_bytes=52_428_800, ecc_mode="enabled", mig_mode="disabled",
        power_limit_w=700.0, pcie_gen_current=5, pcie_gen_max=5, pcie_width_current=16,
        pcie_width_max=16,
    )
    return replace(base, **overrides)


def run(
    host: str = "synthetic-host-a",
    measurements: Iterable[Measurement] = (),
    devices: Iterable[DeviceInfo] | None = None,
    *, started_utc: str = "2026-01-05T10:00:00Z", label: str = "synthetic test data",
    **run_overrides,
) -> RunResult:
    info = RunInfo(
        host=host, started_utc=started_utc, finished_utc=started_utc.replace("10:00", "10:01"),
        mode="quick", argv=("tppbench", "run", "--mode", "quick"), harness_version="0.1.0",
        git_commit="0000000", label=label, suites=("matmul", "memory", "hostlink"),
        cpu_model="synthetic CPU", os="Linux-synthetic", python="3.11.9", torch="2.13.0+cu128",
        cuda="12.8", driver="570.86.15", nccl="2.26.2", backend="cuda",
    )
    info = replace(info, **run_overrides)
    devs = tuple(devices) if devices is not None else (device(0, host=host),)
    return RunResult(run=info, devices=devs, measurements=tuple(measurements))


def h100_run(
    seed: int, host: str = "synthetic-host-a", *, scale: Mapping[str, float] | None = None,
    gpus: int = 1, gpu_scale: Mapping[int, float] | None = None, name: str = H100,
    cv: float = 0.01, n: int = 30, **run_overrides,
) -> RunResult:
    """A full quick-mode run: every H100 case on `gpus` devices, rates scaled per case/GPU."""
    rng = random.Random(seed)
    ms = []
    for index in range(gpus):
        for case in H100_CASES:
            rate = case[6] * (scale or {}).get(case[2] or case[1], 1.0) * (gpu_scale or {}).get(index, 1.0)
            ms.append(measurement(rng, case, rate, cv=cv, n=n, device_index=index))
    devs = [device(i, name=name, host=host) for i in range(gpus)]
    return run(host, ms, devs, **run_overrides)


# --------------------------------------------------------------------------- golden compare pair


def _case(short: str) -> tuple:
    return next(c for c in H100_CASES if (c[2] or c[1]) == short)


def golden_pair() -> tuple[RunResult, RunResult, dict[str, str]]:
    """A baseline and a current run with one case per classification, and the expected result."""
    rng = random.Random(20260105)
    r = lambda short: _case(short)[6]  # noqa: E731
    base = [
        measurement(rng, _case("bf16"), r("bf16")),
        measurement(rng, _case("fp8"), r("fp8")),
        measurement(rng, _case("fp16"), r("fp16")),
        measurement(rng, _case("tf32"), r("tf32"), cv=0.15, n=3),
        measurement(rng, _case("copy"), r("copy"), cv=0.002, n=3),
        measurement(rng, _case("int8"), r("int8")),
        measurement(rng, _case("fp64"), r("fp64")),
        measurement(rng, _case("fp32"), r("fp32")),
        measurement(rng, _case("h2d_pinned"), r("h2d_pinned"), cv=0.30, n=30),
    ]
    cur = [
        measurement(rng, _case("bf16"), r("bf16") * 0.88, throttled=True),  # regressed (MWU)
        measurement(rng, _case("fp8"), r("fp8") * 1.12),  # improved (MWU)
        measurement(rng, _case("fp16"), r("fp16") * 1.01),  # unchanged
        measurement(rng, _case("tf32"), r("tf32") * 0.90, cv=0.15, n=3),  # noisy (CI overlap)
        measurement(rng, _case("copy"), r("copy") * 0.80, cv=0.002, n=3),  # regressed (CI disjoint)
        measurement(rng, _case("int8"), r("int8"), method_version=2),  # incomparable
        skipped(_case("fp32"), "synthetic: fp32 not run"),  # missing (skipped now)
        # fp64 absent: missing
        measurement(rng, _case("read"), r("read")),  # new
        measurement(rng, _case("h2d_pinned"), r("h2d_pinned") * 0.93, cv=0.30, n=30),  # noisy (MWU)
    ]
    expected = {
        KEYS["bf16"]: "regressed", KEYS["fp8"]: "improved", KEYS["fp16"]: "unchanged",
        KEYS["tf32"]: "noisy", KEYS["copy"]: "regressed", KEYS["int8"]: "incomparable",
        KEYS["fp32"]: "missing", KEYS["fp64"]: "missing", KEYS["read"]: "new",
        KEYS["h2d_pinned"]: "noisy",
    }
    baseline = run("synthetic-host-a", base, started_utc="2026-01-05T10:00:00Z",
                   label="synthetic golden baseline")
    current = run("synthetic-host-b", cur, devices=(device(0, host="synthetic-host-b", power_limit_w=500.0),),
                  started_utc="2026-01-06T10:00:00Z", label="synthetic golden current",
                  driver="575.51.03")
    return baseline, current, expected


def write_golden(folder: Path) -> None:
    import json

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.json"):
        old.unlink()
    baseline, current, expected = golden_pair()
    for name, result in (("baseline", baseline), ("current", current)):
        path = store.save(result, folder)
        path.rename(folder / f"golden-{name}.json")
    a100 = h100_run(7, "synthetic-host-c", name=A100, started_utc="2026-01-07T10:00:00Z",
                    label="synthetic golden other model")
    store.save(a100, folder).rename(folder / "golden-a100.json")
    (folder.parent / "compare-expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_golden(Path(__file__).resolve().parent / "compare")
    print("wrote", Path(__file__).resolve().parent / "compare")


# --------------------------------------------------------------------------- report fixtures

EVIL_HOST = "<script>alert('host')</script>$x^2$&amp;"
EVIL_LABEL = '"><img src=x onerror=alert(1)> synthetic label'


def h20_run(seed: int = 21, host: str = "synthetic-h20-host") -> RunResult:
    """An H20 (peak TPP 2,368, 1.3 % under the 3A090.b.1 bound): a near-limit verdict."""
    scale = {k: 0.15 for k in ("tf32", "fp16", "bf16", "fp8", "int8")} | {"fp64": 0.015, "fp32": 0.65}
    result = h100_run(seed, host, name=H20, scale=scale, label="synthetic H20 run")
    devices = tuple(replace(d, sm_count=78) for d in result.devices)
    return replace(result, devices=devices)


def evil_run(seed: int = 31) -> RunResult:
    """Strings that must stay inert in every rendering: markup in host, label, reason, env."""
    result = h100_run(seed, EVIL_HOST, gpus=2, label=EVIL_LABEL,
                      env={"NCCL_DEBUG": "<b>bold</b>"}, argv=("tppbench", "<script>x</script>"))
    rng = random.Random(seed)
    ms = list(result.measurements)
    ms[0] = replace(ms[0], flags=tuple(ms[0].flags) + ("throttled",))
    ms.append(skipped(_case("fp64"), "<script>alert('reason')</script>", device_index=1))
    for src in range(2):
        for dst in range(2):
            if src != dst:
                ms.append(p2p(rng, src, dst, 380e9 if (src, dst) == (0, 1) else 365e9))
    return replace(result, measurements=tuple(ms))


def p2p(rng: random.Random, src: int, dst: int, rate: float, n: int = 20) -> Measurement:
    work = float(1 << 30)
    times = tuple(work / (rate * (1 + rng.gauss(0, 0.01))) for _ in range(n))
    stats = summarize(rates_from_times(work, times))
    return Measurement(
        key=f"p2p/write_ce/bytes={1 << 30},dst={dst},src={src}", benchmark="p2p", variant="write_ce",
        precision=None, params={"bytes": 1 << 30, "src": src, "dst": dst}, device_index=src,
        status="ok", reason=None, unit="byte", convention="bytes written to the peer once per call",
        work_per_call=work, times_s=times, rate=stats.median, stats=stats, flags=noise_flags(stats),
    )
