#!/usr/bin/env bash
# Idempotent set-up: a .venv that sees the system's packages (so a GPU host keeps the CUDA torch
# it already has), torch==2.13.0 only where no torch is importable, then tppbench itself.
#
# Offline (PIP_NO_INDEX=1, or no registry reachable) it installs nothing it would have to fetch:
# when the packages tppbench needs are importable already (torch, pandas, rich, pynvml,
# matplotlib, and pytest for the tests), tppbench is installed editable without build isolation
# and without dependencies, or, where even that cannot run, put on the path with a `tppbench`
# script. The optional packages (scipy, pyarrow, duckdb, orjson, msgspec, hypothesis) stay optional.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
say() { echo "setup: $*" >&2; }
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv --system-site-packages .venv 2>/dev/null; then
    # Minimal images lack ensurepip (Debian/Ubuntu: the python3-venv package).
    rm -rf .venv
    if "$PY" -m venv --without-pip --system-site-packages .venv 2>/dev/null; then
      say "$PY -m venv has no ensurepip (apt-get install python3-venv adds it); made .venv without pip"
    else
      say "error: '$PY -m venv' failed; install python3-venv (Debian/Ubuntu) or set PYTHON to another python3"
      exit 1
    fi
  fi
fi
VPY=.venv/bin/python
# Run from inside another environment (a conda env or venv with a CUDA torch)? Let .venv see that
# environment's packages too, so its torch is used rather than a second download.
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  outer_site=$("$PY" -c "import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))" 2>/dev/null || true)
  if [ -n "$outer_site" ]; then
    venv_site=$("$VPY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    echo "$outer_site" > "$venv_site/_tppbench_outer_env.pth"
    say "using the torch of $outer_site"
  fi
fi
offline=0
case "${PIP_NO_INDEX:-}" in 1|true|yes|on) offline=1 ;; esac
pip_install() { "$VPY" -m pip install --quiet --disable-pip-version-check "$@"; }
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  if [ "$offline" = 1 ]; then
    say "error: no torch is importable and PIP_NO_INDEX is set; install torch first (pip install torch==2.13.0)"
    exit 1
  fi
  say "no torch found; installing torch==2.13.0"
  pip_install "torch==2.13.0"
fi
CORE=${TPPBENCH_SETUP_CORE:-"torch, pandas, rich, pynvml, matplotlib, pytest"}
missing_core=$("$VPY" -c "
import importlib.util as u
print(' '.join(m for m in '${CORE}'.split(', ') if u.find_spec(m) is None))" 2>/dev/null || echo "python")
root=$PWD
installed() {  # tppbench importable from anywhere (not just this folder) and its script present
  [ -x .venv/bin/tppbench ] && (cd / && "$root/$VPY" -c "import bench, results, thresholds" >/dev/null 2>&1)
}
stamp=.venv/.tppbench-installed
if [ -z "$missing_core" ] && installed && [ -f "$stamp" ] && [ ! pyproject.toml -nt "$stamp" ]; then
  exit 0  # nothing to do
fi
if [ "$offline" = 0 ] && pip_install -e ".[test]"; then
  touch "$stamp"
  exit 0
fi
if [ -n "$missing_core" ]; then
  say "error: offline and these packages are missing: $missing_core (install them, or run where PyPI is reachable)"
  exit 1
fi
[ "$offline" = 1 ] || say "pip could not install from the registry; installing tppbench alone, offline"
if PIP_NO_INDEX=1 pip_install --no-build-isolation --no-deps -e . 2>/dev/null; then
  touch "$stamp"
  exit 0
fi
# No pip or no setuptools: put the tree on the venv's path and write the console script by hand.
site=$("$VPY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "$PWD" > "$site/_tppbench_tree.pth"
cat > .venv/bin/tppbench <<EOS
#!/usr/bin/env bash
exec "$PWD/.venv/bin/python" -m bench "\$@"
EOS
chmod +x .venv/bin/tppbench
say "tppbench put on .venv's path from this tree (no pip/setuptools install possible offline)"
touch "$stamp"
