"""Fidelity check: does the harness lose anything to its own method? For every case of every
family the device can run (matmul per precision, device memory, host link, peer copies with two
GPUs, collectives in a world of one), measure it with the harness (A: `bench.runner.run_case`, exactly what `tppbench run` does)
and with an independent plain-torch loop (B: scripts/plain_torch_baselines.py, which imports
nothing from `bench`), interleaved A B A B ... for `--passes` passes, and compare the medians:
ratio = median(harness rates) / median(plain rates), with the SM clock each side ran at.

Usage:  python scripts/fidelity.py [--device cuda|cpu] [--gpu N] [--mode quick] [--passes 3]
                                   [--min-ratio 0.97] [--out DIR]   (default DIR: $OUT, else .)
Writes DIR/fidelity.json, prints one line per case, exits 1 when a ratio is below --min-ratio
or a harness case failed (status error), 2 on bad options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from plain_torch_baselines import Unsupported, plain_rate  # noqa: E402

FAMILIES = ("matmul", "memory", "hostlink", "p2p", "collectives")


def sm_clock_mean(telemetry) -> float | None:
    """The mean SM clock (MHz) of a case's busy telemetry samples; None without NVML (the CPU)."""
    return telemetry.sm_clock_mhz.mean if telemetry and telemetry.sm_clock_mhz else None


def planned_cases(kind: str, gpu: int, mode: str):
    """(family, case, backend, info) for every case `tppbench run` would measure on this device;
    collectives in a world of one (the process group both sides then use)."""
    from bench import distributed
    from bench.runner import RunOptions, plan

    distributed.Session(None, kind, 120.0, gpu if kind == "cuda" else None).start()

    suites = tuple(f for f in FAMILIES if kind == "cuda" or f != "p2p")
    gpus = None
    if kind == "cuda":  # a second GPU (when there is one) for the peer copies
        count = torch.cuda.device_count()
        gpus = (gpu, (gpu + 1) % count) if count >= 2 else (gpu,)
    planned = plan(RunOptions(backend_kind=kind, mode=mode, suites=suites, gpus=gpus))
    largest: dict[str, int] = {}  # collectives: the largest size of the sweep, one case per operation
    for device in planned:
        for _family, case in device.cases:
            if case.benchmark == "collectives":
                largest[case.variant] = max(largest.get(case.variant, 0), int(case.params["bytes"]))
    for device in planned:
        if device.phase == "device" and device.backend.device_index not in (gpu, None):
            continue
        for family, case in device.cases:
            if case.benchmark == "collectives" and int(case.params["bytes"]) != largest[case.variant]:
                continue
            backend = device.backend
            if "src" in case.params and kind == "cuda":  # a peer copy runs on its source GPU (as in run)
                from bench.backend import make_backend

                backend = make_backend(kind, int(case.params["src"]))
            yield family, case, backend, device.info


def harness_once(family, case, backend, info, mode: str) -> tuple[float | None, float | None, str | None]:
    from bench.runner import run_case

    m = run_case(family, case, backend, info, mode)
    clock = sm_clock_mean(m.telemetry)
    if m.status != "ok":
        return None, clock, f"{m.status}: {m.reason}"
    return m.rate, clock, None


def plain_once(case, device: torch.device, gpu: int | None) -> tuple[float | None, float | None, str | None]:
    """The plain side, its SM clock sampled the way the harness samples its own (TelemetrySampler)."""
    from bench.telemetry import TelemetrySampler

    current = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
    with TelemetrySampler(gpu) as sampler:
        try:
            with current:
                rate = plain_rate(case.benchmark, case.variant, case.precision, dict(case.params), device)
        except Unsupported as exc:
            return None, None, f"skipped: {exc}"
    return rate, sm_clock_mean(sampler.telemetry), None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--gpu", type=int, default=0)
    parser.add_argument("--mode", choices=("smoke", "quick", "full"), default=None,
                        help="harness mode for sizes and budgets (default: quick on a GPU, smoke on the CPU)")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--min-ratio", type=float, default=0.97)
    parser.add_argument("--only", default=None, help="glob over case keys")
    parser.add_argument("--out", default=os.environ.get("OUT") or ".")
    args = parser.parse_args(argv)
    if args.passes < 3:
        parser.error("--passes must be at least 3")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    mode = args.mode or ("quick" if args.device == "cuda" else "smoke")
    gpu = args.gpu if args.device == "cuda" else None
    device = torch.device("cuda", args.gpu) if args.device == "cuda" else torch.device("cpu")

    import fnmatch

    from bench.runner import warm_up_device
    from bench.probe import probe_host

    cases = [c for c in planned_cases(args.device, args.gpu, mode)
             if args.only is None or fnmatch.fnmatchcase(c[1].key, args.only)]
    if cases:
        with cases[0][2].selected():
            warm_up_device(cases[0][2], mode)
    rows = []
    print(f"fidelity on {device} ({mode} sizes, {args.passes} passes, A B interleaved); ratio = harness / plain")
    print(f"{'case':52} {'harness':>12} {'plain':>12} {'ratio':>7}  SM MHz harness/plain")
    for family, case, backend, info in cases:
        a_rates, b_rates, a_clock, b_clock, notes = [], [], [], [], []
        for _ in range(args.passes):
            rate, clock, note = harness_once(family, case, backend, info, mode)
            a_rates.append(rate), a_clock.append(clock), notes.append(note)
            rate, clock, note = plain_once(case, device, gpu)
            b_rates.append(rate), b_clock.append(clock), notes.append(note)
        row = {"key": case.key, "harness_rates": a_rates, "plain_rates": b_rates,
               "harness_sm_clock_mhz": a_clock, "plain_sm_clock_mhz": b_clock,
               "notes": sorted({n for n in notes if n})}
        if all(r is not None for r in a_rates + b_rates):
            row["harness_median"] = statistics.median(a_rates)
            row["plain_median"] = statistics.median(b_rates)
            row["ratio"] = row["harness_median"] / row["plain_median"]
        else:
            row["ratio"] = None
        rows.append(row)
        clocks = "/".join(f"{statistics.fmean([c for c in cs if c]):.0f}" if any(cs) else "-" for cs in (a_clock, b_clock))
        if row["ratio"] is None:
            print(f"{case.key:52} {'-':>12} {'-':>12} {'-':>7}  {'; '.join(row['notes'])[:90]}")
        else:
            print(f"{case.key:52} {row['harness_median']:12.4g} {row['plain_median']:12.4g} "
                  f"{row['ratio']:7.3f}  {clocks}")
    failed_harness = [r["key"] for r in rows if any((n or "").startswith("error") for n in r["notes"])]
    low = [r["key"] for r in rows if r["ratio"] is not None and r["ratio"] < args.min_ratio]
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    report = {
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if gpu is not None else None,
        "torch": torch.__version__, "cuda": torch.version.cuda, "host": probe_host(), "mode": mode,
        "passes": args.passes, "min_ratio": args.min_ratio, "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cases": rows, "lowest_ratio": min(ratios) if ratios else None,
        "below_min_ratio": low, "harness_errors": failed_harness,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fidelity.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"{len(ratios)} ratios, lowest {min(ratios):.3f}" if ratios else "no ratios", f"(gate {args.min_ratio});",
          f"wrote {out / 'fidelity.json'}")
    if low or failed_harness:
        print(f"FAIL: below {args.min_ratio}: {', '.join(low) or 'none'}; harness errors: "
              f"{', '.join(failed_harness) or 'none'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
