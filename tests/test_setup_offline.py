"""Issue 18, defect 2: `scripts/setup.sh` sets up offline (PIP_NO_INDEX=1, no registry) in a fresh
copy of the tree, against an environment like the GPU image's: torch, pandas, rich, pynvml,
matplotlib and pytest importable; duckdb, msgspec and orjson not (blocked here by stand-in modules
that raise ImportError, first on PYTHONPATH). Before the fix setup.sh always ran
`pip install -e .[test]`, which needs the registry, and stopped run.sh and test.sh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = ("duckdb", "msgspec", "orjson")


def _copy_tree(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    for name in files:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory):
    base = tmp_path_factory.mktemp("offline")
    blocked = base / "blocked"
    blocked.mkdir()
    for name in BLOCKED:
        (blocked / f"{name}.py").write_text(f"raise ImportError('{name} is blocked: the GPU image lacks it')\n")
    tree = base / "tree"
    tree.mkdir()
    _copy_tree(tree)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_NO_INDEX="1", PYTHON=sys.executable, PYTHONPATH=str(blocked), CUDA_VISIBLE_DEVICES="")
    return tree, env


def test_setup_sh_installs_offline_without_the_optional_packages(offline_env):
    tree, env = offline_env
    proc = subprocess.run(["bash", "scripts/setup.sh"], cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for name in BLOCKED:
        check = subprocess.run([str(tree / ".venv/bin/python"), "-c", f"import {name}"], cwd="/", env=env,
                               capture_output=True, text=True)
        assert check.returncode != 0  # the environment really lacks it
    version = subprocess.run([str(tree / ".venv/bin/tppbench"), "--version"], cwd="/", env=env,
                             capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("tppbench "), version.stderr
    again = subprocess.run(["bash", "scripts/setup.sh"], cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stderr == ""  # idempotent: nothing to do the second time


def test_the_offline_install_measures_and_reads_files(offline_env, tmp_path):
    tree, env = offline_env
    tppbench = str(tree / ".venv/bin/tppbench")
    run = subprocess.run([tppbench, "run", "--device", "cpu", "--mode", "smoke", "--suite", "memory",
                          "--only", "memory/read/*", "--out", str(tmp_path)], cwd="/", env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    (path,) = tmp_path.glob("*.json")
    show = subprocess.run([tppbench, "show", str(path)], cwd="/", env=env, capture_output=True, text=True)
    assert show.returncode == 0 and "memory/read" in show.stdout, show.stderr


def test_offline_with_a_core_package_missing_is_one_line(tmp_path):
    """A package setup.sh needs and cannot fetch offline (named through TPPBENCH_SETUP_CORE, the list
    setup.sh checks) is named in one line, exit 1."""
    tree = tmp_path / "tree"
    tree.mkdir()
    _copy_tree(tree)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_NO_INDEX="1", PYTHON=sys.executable, TPPBENCH_SETUP_CORE="torch, pandas, no_such_package_xyz")
    proc = subprocess.run(["bash", "scripts/setup.sh"], cwd=tree, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1] == ("setup: error: offline and these packages are missing: no_such_package_xyz "
                         "(install them, or run where PyPI is reachable)")
