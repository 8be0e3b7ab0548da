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
