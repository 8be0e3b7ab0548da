#!/usr/bin/env python3
"""Benchmark `tppbench fleet` at fleet scale: N synthetic result files, wall time and peak memory.

Writes N clearly labelled SYNTHETIC result files (label "SYNTHETIC fleet-scale test data, not a
measurement", hosts "synthetic-host-NNNNN") into a fresh temporary folder, then runs
`python -m bench fleet FOLDER --csv OUT` as a child process and reports its wall time and peak
resident memory (getrusage of the child). Two percent of GPUs are made 20 % slow so the outlier
tables have something to show. A few corrupt files are mixed in to exercise the skip path.

Each file is one single-GPU quick-mode run of 15 cases (7 matmul precisions, 4 device-memory
and 4 host-link variants) with --samples raw samples per case and full telemetry: the shape of
a real `tppbench run --mode quick` file. The folder is deleted afterwards unless --keep.

    .venv/bin/python scripts/bench_fleet_scale.py                 # 10,000 files, budget 30 s
    .venv/bin/python scripts/bench_fleet_scale.py --files 2000 --gpus 8 --keep /tmp/fleet
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "data" / "results"))

LABEL = "SYNTHETIC fleet-scale test data, not a measurement"
STAT_FIELDS = ("median", "mean", "min", "max", "p10", "p90", "iqr", "stdev")


def template(gpus: int, samples: int) -> dict:
    """One realistic run (schema dataclasses -> to_dict), to be varied per file."""
    import synth
    from results.schema import to_dict

    result = synth.h100_run(1, "synthetic-host-template", gpus=gpus, n=samples,
                            label=LABEL, started_utc="2026-01-01T00:00:00Z")
    return to_dict(result)


def vary(doc: dict, index: int, rng: random.Random, slow_fraction: float) -> dict:
    host = f"synthetic-host-{index:05d}"
    out = copy.deepcopy(doc)
    out["run"]["host"] = host
    day = 1 + index % 28
    out["run"]["started_utc"] = f"2026-02-{day:02d}T{index % 24:02d}:{index % 60:02d}:00Z"
    for dev in out["devices"]:
        dev["uuid"] = f"GPU-synthetic-{index:05d}-{dev['index']}"
    slow = {d["index"]: (0.8 if rng.random() < slow_fraction else 1.0) for d in out["devices"]}
    for m in out["measurements"]:
        k = rng.gauss(1.0, 0.01) * slow[m["device_index"]]  # rate factor
        m["times_s"] = [t / k for t in m["times_s"]]
        m["rate"] *= k
        for name in STAT_FIELDS:
            m["stats"][name] *= k
    return out


def write_files(folder: Path, files: int, gpus: int, samples: int, corrupt: int, seed: int) -> int:
    base = template(gpus, samples)
    rng = random.Random(seed)
    total = 0
    for i in range(files):
        text = json.dumps(vary(base, i, rng, slow_fraction=0.02), indent=1) + "\n"
        path = folder / f"20260201T000000Z_synthetic-host-{i:05d}_nvidia-h100-80gb-hbm3.json"
        path.write_text(text, encoding="utf-8")
        total += len(text)
    for j in range(corrupt):  # truncated JSON and an unknown schema version
        bad = folder / f"zz-synthetic-corrupt-{j}.json"
        bad.write_text(text[: len(text) // 2] if j % 2 == 0 else '{"schema_version": 99}')
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--gpus", type=int, default=1, help="GPUs per result file (default 1)")
    parser.add_argument("--samples", type=int, default=30, help="raw samples per case (default 30)")
    parser.add_argument("--corrupt", type=int, default=2, help="bad files mixed in (default 2)")
    parser.add_argument("--budget-s", type=float, default=30.0, help="fail above this (default 30)")
    parser.add_argument("--keep", metavar="DIR", help="write the files here and keep them")
    parser.add_argument("--seed", type=int, default=20260201)
    args = parser.parse_args()

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tppbench-synthetic-fleet-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        size = write_files(folder, args.files, args.gpus, args.samples, args.corrupt, args.seed)
        written_s = time.perf_counter() - t0
        print(f"wrote {args.files} synthetic files ({size / 1e6:.0f} MB, {args.gpus} GPU(s) x 15 cases x "
              f"{args.samples} samples each) + {args.corrupt} corrupt in {written_s:.1f} s: {folder}")
        csv = folder.parent / f"{folder.name}-fleet.csv"
        cmd = [sys.executable, "-m", "bench", "fleet", str(folder), "--csv", str(csv), "--top", "5"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall_s = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        lines = proc.stdout.splitlines()
        print("\n".join(lines[:2] + ["..."] + [l for l in lines if l.startswith("wrote")]))
        print("\n".join(proc.stderr.splitlines()[:4]))
        csv_mb = csv.stat().st_size / 1e6 if csv.exists() else 0.0
        csv.unlink(missing_ok=True)
        print(f"fleet over {args.files} files: {wall_s:.1f} s wall (whole command, including "
              f"interpreter start and CSV of {csv_mb:.0f} MB), peak RSS {peak_mb:.0f} MB, "
              f"exit {proc.returncode}, {os.cpu_count()} CPUs")
        if proc.returncode != 0:
            return proc.returncode
        if wall_s > args.budget_s:
            print(f"SLOWER than the {args.budget_s:g} s budget", file=sys.stderr)
            return 1
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
