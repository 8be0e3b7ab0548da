#!/usr/bin/env bash
# GPU verification kit: proves on one GPU host, offline, in about 5 minutes on one H100/H200, that
# the harness runs every GPU path and loses nothing to its own method.
#
#   scripts/gpu-check.sh [--out DIR] [--cpu] [--min-ratio R]
#
# Offline by design: nothing is installed. It runs from the source tree (PYTHONPATH) with a Python
# that already has torch, pandas, rich, matplotlib, nvidia-ml-py and pytest: $PYTHON, else
# .venv/bin/python when present, else python3. PIP_NO_INDEX=1 is exported, so any step that tried
# to reach a package registry would fail instead of downloading.
#
# Steps (each logged to DIR; DIR = --out, else $OUT, else ./gpu-check-out):
#   1. the GPU tests: pytest -m gpu --require-gpu (CPU mode: the CUDA control-flow tests instead)
#   2. tppbench run --mode quick and --mode full (wall time of each), and
#      torchrun --nproc-per-node 1 ... --suite collectives,p2p
#   3. fidelity for every family and precision: harness vs an independent plain-torch loop,
#      interleaved A B A B, 3 passes, medians, ratio per case with SM clocks -> DIR/fidelity.json
#   4. exit 1 when a step failed, a GPU test failed or any ratio is below --min-ratio (0.97)
# --cpu runs every step a CPU can (--device cpu; the full run limited to the fp32 matmul sweep,
# as bf16 matmul can be ~100x slower than fp32 on a CPU (this 2-core VM at 1024^3); fidelity on
# smoke sizes) and reports the ratios without gating them (default --min-ratio 0): a shared CPU's
# noise is not harness overhead.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT_DIR=${OUT:-gpu-check-out}
CPU=0
MIN_RATIO=
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT_DIR=$2; shift 2 ;;
    --cpu) CPU=1; shift ;;
    --min-ratio) MIN_RATIO=$2; shift 2 ;;
    *) echo "gpu-check: unknown option $1 (use --out DIR, --cpu, --min-ratio R)" >&2; exit 2 ;;
  esac
done
if [ -z "$MIN_RATIO" ]; then MIN_RATIO=$([ $CPU = 1 ] && echo 0 || echo 0.97); fi
PY=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
export PIP_NO_INDEX=1 PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR" || exit 2
OUT_DIR=$(cd "$OUT_DIR" && pwd)
FAILED=()
step() {  # step NAME COMMAND...: run, log to DIR/NAME.log, print rc and wall seconds
  local name=$1; shift
  local t0=$SECONDS
  "$@" > "$OUT_DIR/$name.log" 2>&1
  local rc=$?
  echo "[$name] rc=$rc wall=$((SECONDS - t0)) s"
  [ $rc -eq 0 ] || FAILED+=("$name(rc=$rc)")
  return $rc
}

"$PY" - <<'EOF' || { echo "gpu-check: a needed package is missing (no registry is used: install it first)" >&2; exit 1; }
import importlib
for name in ("torch", "pandas", "rich", "matplotlib", "pynvml", "pytest"):
    importlib.import_module(name)
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, GPUs visible: {torch.cuda.device_count()}")
EOF
if [ $CPU = 0 ]; then
  command -v nvidia-smi >/dev/null && nvidia-smi -q > "$OUT_DIR/nvidia-smi.txt" 2>&1
  DEVICE=(--device cuda)
  step gpu-tests "$PY" -m pytest -p no:cacheprovider -q -m gpu --require-gpu tests
  step quick-run "$PY" -m bench run "${DEVICE[@]}" --mode quick --out "$OUT_DIR/runs" --label gpu-check-quick
  step full-run "$PY" -m bench run "${DEVICE[@]}" --mode full --out "$OUT_DIR/runs" --label gpu-check-full
  step torchrun-1 "$PY" -m torch.distributed.run --nproc-per-node 1 -m bench run "${DEVICE[@]}" \
    --suite collectives,p2p --mode smoke --out "$OUT_DIR/runs" --label gpu-check-torchrun
  step fidelity "$PY" scripts/fidelity.py --device cuda --min-ratio "$MIN_RATIO" --out "$OUT_DIR"
else
  DEVICE=(--device cpu)
  step gpu-tests "$PY" -m pytest -p no:cacheprovider -q tests/test_cuda_control_flow.py tests/test_timing.py
  step quick-run "$PY" -m bench run "${DEVICE[@]}" --mode quick --out "$OUT_DIR/runs" --label gpu-check-quick
  step full-run "$PY" -m bench run "${DEVICE[@]}" --mode full --suite matmul --only 'matmul/fp32/*' \
    --out "$OUT_DIR/runs" --label gpu-check-full
  step torchrun-1 "$PY" -m torch.distributed.run --nproc-per-node 1 -m bench run "${DEVICE[@]}" \
    --suite collectives,p2p --mode smoke --out "$OUT_DIR/runs" --label gpu-check-torchrun
  step fidelity "$PY" scripts/fidelity.py --device cpu --min-ratio "$MIN_RATIO" --out "$OUT_DIR"
fi
tail -2 "$OUT_DIR/gpu-tests.log"
sed -n '/^fidelity on/,$p' "$OUT_DIR/fidelity.log"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "gpu-check: FAILED: ${FAILED[*]} (logs in $OUT_DIR)"
  exit 1
fi
echo "gpu-check: every step passed (logs, result files and fidelity.json in $OUT_DIR)"
