"""The GPU verification kit's fidelity step, on the CPU: one case end to end, and the plain side's
independence from the harness (it must not import `bench`)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_plain_baselines_import_nothing_from_bench():
    tree = ast.parse((REPO / "scripts" / "plain_torch_baselines.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not [name for name in imported if name.split(".")[0] in ("bench", "results", "thresholds")]


def test_fidelity_prints_and_writes_one_ratio_per_case(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "fidelity.py"), "--device", "cpu",
                           "--only", "matmul/fp64/*", "--min-ratio", "0", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=180, env={"PIP_NO_INDEX": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "fidelity.json").read_text())
    case, = report["cases"]
    assert case["key"] == "matmul/fp64/m=256,n=256,k=256"
    assert len(case["harness_rates"]) == len(case["plain_rates"]) == 3  # A B interleaved, 3 passes
    assert case["ratio"] == case["harness_median"] / case["plain_median"] > 0
    ratio_lines = [line for line in proc.stdout.splitlines() if line.startswith("matmul/fp64/")]
    assert len(ratio_lines) == 1 and f"{case['ratio']:.3f}" in ratio_lines[0]


class _StreamRecorder:
    """Stands in for the torch.cuda stream calls the plain p2p baseline makes, and records which
    stream is current on each device when a copy runs (the copy's stream on its source device, and
    the destination's current stream, with which torch's Copy.cu makes a two-way barrier)."""

    def __init__(self) -> None:
        self.current = {0: "default-0", 1: "default-1"}
        self.copies: list[tuple[str, dict[int, str]]] = []
        self.made = 0

    def install(self, monkeypatch, torch) -> None:
        import contextlib
        import types

        recorder = self

        class Stream:
            def __init__(self, device=None):
                recorder.made += 1
                self.device = types.SimpleNamespace(index=device.index if device is not None else 0)
                self.name = f"s{recorder.made}-{self.device.index}"

            def wait_event(self, event):
                pass

            def wait_stream(self, other):
                pass

        class Event:
            def __init__(self, enable_timing=False):
                pass

            def record(self, stream=None):
                pass

            def synchronize(self):
                pass

            def elapsed_time(self, other):
                return 1.0

        @contextlib.contextmanager
        def stream(s):
            before = recorder.current[s.device.index]
            recorder.current[s.device.index] = s.name
            try:
                yield
            finally:
                recorder.current[s.device.index] = before

        for name, value in {"Stream": Stream, "Event": Event, "stream": stream, "_sleep": lambda cycles: None,
                            "synchronize": lambda device=None: None,
                            "current_stream": lambda device=None: types.SimpleNamespace(
                                name=recorder.current[device.index], device=device,
                                wait_event=lambda e: None, wait_stream=lambda s: None)}.items():
            monkeypatch.setattr(torch.cuda, name, value, raising=False)

    def copy(self, label: str):
        return lambda: self.copies.append((label, dict(self.current)))


def _shared_streams(copies) -> set[str]:
    forward = {name for label, current in copies if label == "forward" for name in current.values()}
    backward = {name for label, current in copies if label == "backward" for name in current.values()}
    return forward & backward


def test_the_plain_p2p_bidirectional_baseline_really_overlaps(monkeypatch):
    """Issue 18, defect 5: torch's cross-device copy makes a barrier with the destination's current
    stream, so the old baseline's two directions (one sharing the source's current stream) waited
    on each other: plain ~ one-way rate, fidelity ratio ~2.0, and the 0.97 gate blind there. The new
    one gives each direction its own stream on both devices: no stream is shared by both."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("plain", REPO / "scripts" / "plain_torch_baselines.py")
    plain = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plain)
    recorder = _StreamRecorder()
    recorder.install(monkeypatch, torch)
    plain.concurrent_peer_copies(recorder.copy("forward"), recorder.copy("backward"), 0, 1, iterations=3)
    assert len(recorder.copies) == 2 * (2 + 3)
    assert _shared_streams(recorder.copies) == set()
    old = _StreamRecorder()
    old.install(monkeypatch, torch)
    plain._two_streams(old.copy("forward"), old.copy("backward"), torch.device("cuda", 0), torch.device("cuda", 1))
    assert _shared_streams(old.copies)  # the serialising shape this replaces (host-link copies keep it: no barrier)
