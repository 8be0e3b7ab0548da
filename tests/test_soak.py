"""`--suite soak` on the CPU: windows of about 1 s with their rates, the burst / steady /
sustained_ratio figures, `check`'s burst and sustained TPP side by side, the report's series, a
SIGTERM mid-soak keeping the windows measured so far, and bad --soak-seconds."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import main

PY = [sys.executable, "-m", "bench"]


def _only_file(folder: Path) -> dict:
    [path] = list(folder.glob("*.json"))
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def soak_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("soak")
    cp = subprocess.run([*PY, "run", "--device", "cpu", "--suite", "soak", "--soak-seconds", "4",
                         "--soak-precision", "fp32", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stderr[-2000:]
    return next(out.glob("*.json"))


def test_windows_and_derived_figures(soak_file):
    doc = json.loads(soak_file.read_text())
    [m] = [m for m in doc["measurements"] if m["benchmark"] == "soak"]
    windows = m["extra"]["windows"]
    assert m["status"] == "ok" and m["precision"] == "fp32" and m["params"]["seconds"] == 4.0
    assert 3 <= len(windows) == len(m["times_s"]) and all(w["rate"] > 0 and w["calls"] >= 1 for w in windows)
    assert all(0.5 < w["seconds"] < 3.0 for w in windows)  # about 1 s each (fp32 1024^3 calls take ms)
    rates = [w["rate"] for w in windows]
    steady = sorted(rates[len(rates) // 2:])
    assert m["extra"]["steady_rate"] == pytest.approx(steady[len(steady) // 2] if len(steady) % 2 else
                                                      (steady[len(steady) // 2 - 1] + steady[len(steady) // 2]) / 2)
    assert m["extra"]["sustained_ratio"] == pytest.approx(m["extra"]["steady_rate"] / m["extra"]["burst_rate"])
    assert "energy_note" in m["extra"] or "steady_op_per_j" in m["extra"]  # no RAPL on most VMs


def test_check_shows_burst_and_sustained_tpp_and_the_report_plots_the_series(soak_file, tmp_path, capsys):
    main(["check", str(soak_file)])
    out = capsys.readouterr().out
    assert "soak fp32: measured-burst TPP" in out and "measured-sustained TPP" in out
    page = tmp_path / "r.html"
    assert main(["report", str(soak_file), "-o", str(page)]) == 0
    html = page.read_text()
    assert '<section id="soak">' in html and 'id="soak-0"' in html and "sustained/burst" in html


def test_sigterm_mid_soak_keeps_the_windows(tmp_path):
    proc = subprocess.Popen([*PY, "run", "--device", "cpu", "--suite", "soak", "--soak-seconds", "60",
                             "--soak-precision", "fp32", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # start-up, warm-up, then a few windows
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-1500:]
    doc = _only_file(tmp_path)
    assert not doc["run"]["complete"] and "SIGTERM" in doc["run"]["incomplete_reason"]
    [m] = [m for m in doc["measurements"] if m["benchmark"] == "soak"]
    assert "interrupted" in m["flags"] and len(m["extra"]["windows"]) >= 2


@pytest.mark.parametrize("value", ["0", "-3", "abc"])
def test_soak_seconds_must_be_positive(value, tmp_path):
    cp = subprocess.run([*PY, "run", "--device", "cpu", "--suite", "soak", "--soak-seconds", value,
                         "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert cp.returncode == 2 and "--soak-seconds" in cp.stderr and "Traceback" not in cp.stderr
