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
