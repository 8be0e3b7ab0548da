"""Shared test set-up: the `gpu` marker and --require-gpu."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--require-gpu", action="store_true", default=False,
                     help="fail (instead of skip) tests marked gpu when no CUDA device is present")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("gpu") is None:
        return
    import torch

    if torch.cuda.is_available():
        return
    if item.config.getoption("--require-gpu"):
        pytest.fail("--require-gpu given but torch sees no CUDA device", pytrace=False)
    pytest.skip("needs a CUDA device (run with --require-gpu on a GPU host to make this a failure)")


@pytest.fixture(scope="session")
def lab_run(tmp_path_factory) -> dict:
    """One real `tppbench run --procedure lab` on this CPU (the whole procedure, as CI runs it),
    shared by tests/test_verify.py and tests/test_verify_browser.py."""
    import json
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("lab")
    cp = subprocess.run([sys.executable, "-m", "bench", "run", "--device", "cpu", "--procedure", "lab",
                         "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert cp.returncode == 0, cp.stderr[-2000:]
    [path] = list(out.glob("*.json"))
    return json.loads(path.read_text())
