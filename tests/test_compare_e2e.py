"""From real files: two CPU smoke runs (`tppbench run --device cpu --mode smoke`) compare cleanly,
and `fleet` and `report` read them. CPU timings on a shared 2-core machine are noisy, so this
asserts alignment, valid classifications and exit-code semantics, not "nothing regressed"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from results.files import store
from results.analysis.compare import CHANGES

ROOT = Path(__file__).parents[1]


def tppbench(*argv: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def _memory_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as handle:
            return next(int(line.split()[1]) * 1024 for line in handle if line.startswith("MemAvailable:"))
    except (OSError, StopIteration):
        return None


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Two runs back to back with free memory moved between them by a large resident buffer (the
    issue-16 case: sizes that followed free memory gave the second run other keys)."""
    out = tmp_path_factory.mktemp("smoke")
    hog = None
    for label in ("first", "second"):
        proc = tppbench("run", "--device", "cpu", "--mode", "smoke", "--out", str(out), "--label",
                        f"e2e {label}")
        assert proc.returncode in (0, 4), proc.stderr  # 4: written, but a case has status=error
        before = _memory_available_bytes()
        if hog is None and before is not None:
            import torch

            hog = torch.ones(min(before // 3, 5 << 29) // 4)  # written, so resident
            after = _memory_available_bytes()
            assert after is not None and before - after > 1 << 30, "free memory did not move"
    del hog
    files = sorted(out.glob("*.json"))
    assert len(files) == 2
    return files


def test_two_back_to_back_runs_give_identical_keys_while_free_memory_changes(smoke_runs):
    first, second = ({m.key for m in store.load(path).measurements} for path in smoke_runs)
    assert first == second
    assert any(k.startswith("memory/") for k in first) and any(k.startswith("matmul/") for k in first)


def test_two_smoke_runs_compare_cleanly(smoke_runs):
    base, cur = smoke_runs
    proc = tppbench("compare", str(base), str(cur), "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    keys = {m.key for m in store.load(base).measurements}
    assert {r["key"] for r in doc["rows"]} == keys  # every key aligns, once
    assert len(doc["rows"]) == len(keys)
    changes = {r["change"] for r in doc["rows"]}
    assert changes <= set(CHANGES) - {"new", "missing", "incomparable"}
    for row in doc["rows"]:
        if row["baseline_rate"] is None and row["current_rate"] is None:
            assert row["change"] == "unchanged" and "either side" in row["reason"]
        elif row["change"] in ("improved", "regressed", "noisy"):
            assert row["ratio"] > 1.05 or row["ratio"] < 1 / 1.05
    regressed = any(r["change"] == "regressed" for r in doc["rows"])
    fail = tppbench("compare", str(base), str(cur), "--fail-on", "regressed")
    assert fail.returncode == (3 if regressed else 0), fail.stderr
    same = tppbench("compare", str(base), str(base), "--fail-on", "regressed,noisy,improved")
    assert same.returncode == 0 and "unchanged" in same.stdout


def test_fleet_and_report_read_smoke_runs(smoke_runs, tmp_path):
    fleet = tppbench("fleet", str(smoke_runs[0].parent), "--csv", str(tmp_path / "f.csv"))
    assert fleet.returncode == 0, fleet.stderr
    assert "fleet: 2 files" in fleet.stdout and (tmp_path / "f.csv").stat().st_size > 0
    report = tppbench("report", *map(str, smoke_runs), "-o", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "r.html").read_text()
    assert 'id="tpp-pd-map"' in page and 'id="verdict-table"' in page
