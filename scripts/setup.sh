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
# Run from inside another environment (a conda env or venv with a CUDA torch)? Let .venv see that
# environment's packages too, so its torch is used rather than a second download.
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  outer_site=$("$PY" -c "import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))" 2>/dev/null || true)
  if [ -n "$outer_site" ]; then
    venv_site=$("$VPY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    echo "$outer_site" > "$venv_site/_tppbench_outer_env.pth"
    echo "setup: using the torch of $outer_site" >&2
  fi
fi
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  echo "setup: no torch found; installing torch==2.13.0" >&2
  "$VPY" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
fi
if ! "$VPY" -c "import bench, results, thresholds, pytest, pandas, rich, pynvml, matplotlib" >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.tppbench-installed ]; then
  "$VPY" -m pip install --quiet --disable-pip-version-check -e ".[test]"
  touch .venv/.tppbench-installed
fi
