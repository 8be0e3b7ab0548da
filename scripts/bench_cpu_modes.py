#!/usr/bin/env python3
"""Benchmark (not a test): wall time of CPU smoke/quick runs and of the answer to Ctrl-C.

    .venv/bin/python scripts/bench_cpu_modes.py [--llc-mib N] [--modes smoke,quick]
                                                [--interrupt-after S] [--signal INT|TERM]

Each run is `python -m bench run --device cpu --mode M` in a child process. `--llc-mib N` makes
the child read an LLC of N MiB instead of sysfs's (bench.backend._cpu_llc_bytes is replaced before
the run starts): that is how a VM with a huge L3 (a current Xeon's 480 MiB) is planned on a VM
with a small one. It changes the sizes chosen, not the memory system measured.
`--interrupt-after S` sends the signal S seconds into a quick run and times the exit.
Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import sys
llc = int(sys.argv[1])
if llc:
    import bench.backend
    bench.backend._cpu_llc_bytes = lambda: llc << 20
from bench.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run(mode: str, llc_mib: int, out: Path, interrupt_after: float | None, signame: str) -> dict:
    argv = [sys.executable, "-c", CHILD, str(llc_mib), "run", "--device", "cpu", "--mode", mode, "--out", str(out)]
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    answered_s = None
    if interrupt_after is not None:
        try:
            child.wait(timeout=interrupt_after)
        except subprocess.TimeoutExpired:
            sent = time.perf_counter()
            child.send_signal(getattr(signal, f"SIG{signame}"))
            child.wait()
            answered_s = time.perf_counter() - sent
    output, _ = child.communicate()
    wall_s = time.perf_counter() - start
    files = sorted(out.glob("*.json"))
    doc = json.loads(files[-1].read_text()) if files else {}
    below = sorted({m["key"] for m in doc.get("measurements", []) if "below_8x_cache" in (m.get("flags") or [])})
    return {
        "mode": mode, "llc_mib": llc_mib or "sysfs", "exit": child.returncode, "wall_s": round(wall_s, 1),
        "signal_answered_s": None if answered_s is None else round(answered_s, 2),
        "complete": doc.get("run", {}).get("complete"), "incomplete_reason": doc.get("run", {}).get("incomplete_reason"),
        "cases": len(doc.get("measurements", [])), "below_8x_cache": below,
        "memory_keys": sorted({m["key"] for m in doc.get("measurements", []) if m["benchmark"] == "memory"}),
        "tail": output.strip().splitlines()[-1:] if child.returncode not in (0, 4) else [],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llc-mib", type=int, default=0, help="LLC size the child reads (0: sysfs)")
    parser.add_argument("--modes", default="smoke,quick")
    parser.add_argument("--interrupt-after", type=float, default=None, metavar="S")
    parser.add_argument("--signal", default="INT", choices=("INT", "TERM"))
    args = parser.parse_args()
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run(mode, args.llc_mib, Path(tmp), args.interrupt_after, args.signal)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
