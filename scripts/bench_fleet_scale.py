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

With --index-sizes N1,N2,... it benchmarks the fleet index instead (issue 11): it writes the largest
size once (in folders of 1,000 files), and for each size N builds a fresh index of the first N
files (`tppbench index`), then runs `tppbench fleet --index` (tables + outliers) over it; after
the largest it adds 1,000 new files and times the update. Each step is a child process; its wall
time and the peak resident memory of its whole process tree (the command plus its parse workers,
sampled from /proc every 50 ms) are printed, with a
linear fit of time against files and the projection to 1,000,000 files.

    .venv/bin/python scripts/bench_fleet_scale.py --index-sizes 10000,30000,100000 --keep /tmp/11/fleet
"""

from __future__ import annotations

import argparse
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
    from results.files.schema import to_dict

    result = synth.h100_run(1, "synthetic-host-template", gpus=gpus, n=samples,
                            label=LABEL, started_utc="2026-01-01T00:00:00Z")
    return to_dict(result)


def vary(doc: dict, index: int, rng: random.Random, slow_fraction: float) -> dict:
    """A copy of `doc` for host `index` (only the varied parts are copied: fast at 100k files)."""
    host = f"synthetic-host-{index:05d}"
    out = dict(doc, run=dict(doc["run"]), devices=[dict(d) for d in doc["devices"]])
    out["run"]["host"] = host
    day = 1 + index % 28
    out["run"]["started_utc"] = f"2026-02-{day:02d}T{index % 24:02d}:{index % 60:02d}:00Z"
    for dev in out["devices"]:
        dev["uuid"] = f"GPU-synthetic-{index:05d}-{dev['index']}"
    slow = {d["index"]: (0.8 if rng.random() < slow_fraction else 1.0) for d in out["devices"]}
    measurements = []
    for m in doc["measurements"]:
        k = rng.gauss(1.0, 0.01) * slow[m["device_index"]]  # rate factor
        stats = dict(m["stats"])
        for name in STAT_FIELDS:
            stats[name] *= k
        measurements.append(dict(m, times_s=[t / k for t in m["times_s"]], rate=m["rate"] * k, stats=stats))
    out["measurements"] = measurements
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


def dumps(doc: dict) -> bytes:
    """JSON as `tppbench run` writes it (indent 1); through orjson when installed (its 2-space
    indent halved), ten times faster at 100,000 files."""
    try:
        import orjson
    except ImportError:
        return (json.dumps(doc, indent=1) + "\n").encode("utf-8")
    text = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    return b"\n".join(line[(len(line) - len(line.lstrip(b" "))) // 2:] for line in text.split(b"\n"))


def _write_batch(job: tuple) -> int:
    folder, start, count, gpus, samples, seed = job
    folder.mkdir(parents=True, exist_ok=True)
    base = template(gpus, samples)
    rng = random.Random(seed + start)
    total = 0
    for i in range(start, start + count):
        payload = dumps(vary(base, i, rng, slow_fraction=0.02))
        (folder / f"20260201T000000Z_synthetic-host-{i:06d}_nvidia-h100-80gb-hbm3.json").write_bytes(payload)
        total += len(payload)
    return total


def write_batches(root: Path, files: int, gpus: int, samples: int, seed: int,
                  batch: int = 1000) -> tuple[list[Path], int]:
    """`files` synthetic files in folders of `batch`, written by one process per CPU."""
    import multiprocessing

    jobs = [(root / f"batch-{b:04d}", b * batch, min(batch, files - b * batch), gpus, samples, seed)
            for b in range((files + batch - 1) // batch)]
    todo = [j for j in jobs if not (j[0].is_dir() and len(list(j[0].glob("*.json"))) == j[2])]
    with multiprocessing.Pool(os.cpu_count()) as pool:
        size = sum(pool.imap_unordered(_write_batch, todo))
    return [j[0] for j in jobs], size


def tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants (KiB), from /proc."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as handle:
                total += next((int(l.split()[1]) for l in handle if l.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as handle:
                    stack.extend(int(c) for c in handle.read().split())
        except (OSError, ValueError):
            continue
    return total


def timed(cmd: list[str]) -> dict:
    """Run `cmd`; wall time, peak RSS of its process tree (sampled) and of its largest process."""
    import threading

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_kib(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall_s = time.perf_counter() - t0
    sampler.join()
    return {"wall_s": wall_s, "tree_mb": peak[0] / 1024, "code": proc.returncode, "out": out, "err": err}


def show(step: str, r: dict) -> None:
    print(f"{step}: {r['wall_s']:.1f} s wall, peak RSS {r['tree_mb']:.0f} MB (command + workers), "
          f"exit {r['code']}", flush=True)
    if r["code"] != 0:
        print(r["out"][-2000:], r["err"][-2000:], sep="\n")


def index_benchmark(args: argparse.Namespace, root: Path) -> int:
    sizes = sorted(int(n) for n in args.index_sizes.split(","))
    t0 = time.perf_counter()
    batches, size = write_batches(root / "files", sizes[-1] + args.batch, args.gpus, args.samples, args.seed, args.batch)
    print(f"{sizes[-1] + args.batch} synthetic files ready in {len(batches)} folders of {args.batch} "
          f"({size / 1e9:.2f} GB written now, {time.perf_counter() - t0:.0f} s): {root / 'files'}", flush=True)
    tool = [sys.executable, "-m", "bench"]
    builds, queries, others = [], [], []  # others: the update and the CSV export
    for n in sizes:
        index = root / f"index-{n}"
        shutil.rmtree(index, ignore_errors=True)
        folders = [str(b) for b in batches[: n // args.batch]]
        r = timed(tool + ["index", *folders, "--index", str(index)])
        show(f"first index of {n} files", r)
        print("  " + r["out"].strip().splitlines()[-1] if r["out"].strip() else "", flush=True)
        builds.append((n, r))
        q = timed(tool + ["fleet", "--index", str(index), "--top", "5"])
        show(f"fleet tables + outliers over the {n}-file index", q)
        queries.append((n, q))
        if n == sizes[-1]:
            u = timed(tool + ["index", *folders, str(batches[n // args.batch]), "--index", str(index)])
            show(f"update of the {n}-file index after {args.batch} new files", u)
            print("  " + u["out"].strip().splitlines()[-1] if u["out"].strip() else "", flush=True)
            c = timed(tool + ["fleet", "--index", str(index), "--top", "5", "--csv", str(root / "fleet.csv")])
            show(f"fleet + CSV export of every measurement ({n + args.batch} files)", c)
            others += [(n, u), (n, c)]
            (root / "fleet.csv").unlink(missing_ok=True)
        if not args.keep_indexes and n != sizes[-1]:
            shutil.rmtree(index, ignore_errors=True)
    for label, points in (("first index", builds), ("fleet query", queries)):
        if len(points) >= 2:
            xs = [n for n, _ in points]
            ys = [r["wall_s"] for _, r in points]
            mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
            slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
            fixed = mean_y - slope * mean_x
            print(f"{label}: time = {fixed:.1f} s + {slope * 1e3:.3f} ms/file (least squares over "
                  f"{', '.join(map(str, xs))}); projected 1,000,000 files: {fixed + slope * 1e6:.0f} s; "
                  f"peak RSS " + ", ".join(f"{r['tree_mb']:.0f}" for _, r in points) + " MB")
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at the end")
    return max(r["code"] for _, r in builds + queries + others)  # any failed step fails the benchmark


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--gpus", type=int, default=1, help="GPUs per result file (default 1)")
    parser.add_argument("--samples", type=int, default=30, help="raw samples per case (default 30)")
    parser.add_argument("--corrupt", type=int, default=2, help="bad files mixed in (default 2)")
    parser.add_argument("--budget-s", type=float, default=30.0, help="fail above this (default 30)")
    parser.add_argument("--keep", metavar="DIR", help="write the files here and keep them")
    parser.add_argument("--seed", type=int, default=20260201)
    parser.add_argument("--index-sizes", metavar="N,N,...",
                        help="benchmark the fleet index at these numbers of files instead")
    parser.add_argument("--batch", type=int, default=1000,
                        help="files per folder, and files added for the update step (default 1000)")
    parser.add_argument("--keep-indexes", action="store_true", help="keep every index (default: the largest)")
    args = parser.parse_args()
    if args.index_sizes:
        root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tppbench-synthetic-fleet-"))
        try:
            return index_benchmark(args, root)
        finally:
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)

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
