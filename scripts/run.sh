#!/usr/bin/env bash
# The main job: set up, then `tppbench run` (GPU when present, else the CPU fallback) with a
# printed summary. Extra arguments go to `tppbench run` (e.g. --mode full).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/tppbench run "$@"
