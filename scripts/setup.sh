#!/usr/bin/env bash
# Idempotent set-up: a .venv that sees the system's packages (so a GPU host keeps the CUDA torch
# it already has), torch==2.13.0 only where no torch is importable, then tppbench itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv --system-site-packages .venv
fi
VPY=.venv/bin/python
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  echo "setup: no torch found; installing torch==2.13.0" >&2
  "$VPY" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
fi
if ! "$VPY" -c "import bench, results, thresholds, pytest, pandas, rich, pynvml, matplotlib" >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.tppbench-installed ]; then
  "$VPY" -m pip install --quiet --disable-pip-version-check -e ".[test]"
  touch .venv/.tppbench-installed
fi
