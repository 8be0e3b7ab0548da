#!/usr/bin/env bash
# GPU check for a lent device machine: GPU tests with --require-gpu, a full run, the plain-torch
# overhead comparison, and the test suite. Logs and the result file go to ${OUT:-gpu-check-out}.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
scripts/setup.sh > "$OUT/setup.log" 2>&1 || { tail -20 "$OUT/setup.log"; exit 1; }
nvidia-smi -q > "$OUT/nvidia-smi.txt" 2>&1
.venv/bin/python -m pytest -m gpu --require-gpu -q > "$OUT/gpu-tests.log" 2>&1; echo "gpu tests rc=$?"
tail -3 "$OUT/gpu-tests.log"
# bash's own `time` (GNU /usr/bin/time is often missing from GPU images): wall time of the quick run.
TIMEFORMAT="quick run wall %R s"
{ time .venv/bin/tppbench run --mode quick --out "$OUT/runs" > "$OUT/quick.log" 2>&1; } 2>&1 | tee "$OUT/quick-wall.txt"
tail -1 "$OUT/quick.log"
quick=$(ls "$OUT"/runs/*.json | tail -1)
.venv/bin/python scripts/plain_torch_baselines.py "$quick" | tee "$OUT/baselines.txt"
.venv/bin/tppbench run --mode full --out "$OUT/runs" > "$OUT/full.log" 2>&1; echo "full run rc=$?"
tail -40 "$OUT/full.log"
# torchrun as a module: a GPU host's own torch (seen through --system-site-packages) has no
# .venv/bin/torchrun script.
.venv/bin/python -m torch.distributed.run --nproc-per-node 1 -m bench run --suite collectives,p2p --mode smoke --out "$OUT/runs" \
  > "$OUT/torchrun.log" 2>&1; echo "torchrun world 1 rc=$?"
.venv/bin/python -m pytest -q -x -m "not browser" > "$OUT/suite.log" 2>&1; echo "suite rc=$?"; tail -3 "$OUT/suite.log"
