"""`tppbench fleet`: tidy frame, statistics, outliers on constructed fleets, bad files, exports."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data" / "results"))
import synth  # noqa: E402

from bench.cli import main  # noqa: E402
from results.files import store  # noqa: E402
from results.analysis.fleet import OutlierRule, analyze  # noqa: E402
from results.analysis.frame import COLUMNS, frame_of, load_frame  # noqa: E402
from results.files.schema import SCHEMA_VERSION  # noqa: E402

ROOT = Path(__file__).parents[1]


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fleet_folder(tmp_path: Path, hosts: int = 6, gpus: int = 4, slow: dict | None = None,
                 model: dict | None = None) -> Path:
    """`hosts` synthetic hosts with `gpus` H100s each; slow = {(host, gpu): factor}."""
    folder = tmp_path / "fleet"
    for h in range(hosts):
        scale = {g: f for (hh, g), f in (slow or {}).items() if hh == h}
        name = (model or {}).get(h, synth.H100)
        store.save(synth.h100_run(100 + h, f"synthetic-node-{h}", gpus=gpus, gpu_scale=scale, name=name,
                                  started_utc=f"2026-01-0{1 + h % 9}T10:00:00Z"), folder)
    return folder


def frame(folder: Path) -> pd.DataFrame:
    return load_frame([folder]).frame


# --------------------------------------------------------------------------- tidy frame


def test_frame_has_one_row_per_measurement_and_the_columns(tmp_path):
    folder = fleet_folder(tmp_path, hosts=2, gpus=2)
    df = frame(folder)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == 2 * 2 * len(synth.H100_CASES)
    row = df.iloc[0]
    assert row["host"] == "synthetic-node-0" and row["device_name"] == synth.H100
    assert row["gpu"] == "GPU-synthetic-synthetic-node-0-0" and row["rate_unit"] == "flop/s"
    assert df["rate"].gt(0).all() and df["device_index"].dtype == "Int64"


def test_skipped_measurements_are_rows_without_rate():
    result = synth.run("synthetic-a", [synth.skipped(synth._case("fp32"), "not here")])
    df = frame_of([("x.json", result)])
    assert len(df) == 1 and df.loc[0, "status"] == "skipped" and np.isnan(df.loc[0, "rate"])
    analysis = analyze(df)
    assert analysis.summary.empty and analysis.slowest.empty


def test_summary_statistics_per_metric_and_model(tmp_path):
    folder = fleet_folder(tmp_path, hosts=3, gpus=2, model={2: synth.A100})
    analysis = analyze(frame(folder))
    s = analysis.summary
    assert len(s) == 2 * len(synth.H100_CASES)  # every case, per model
    bf16 = s[(s["key"] == synth.KEYS["bf16"]) & (s["device_name"] == synth.H100)].iloc[0]
    rates = frame(folder).query("key == @synth.KEYS['bf16'] and device_name == @synth.H100")["rate"]
    assert bf16["count"] == 4 and bf16["gpus"] == 4 and bf16["hosts"] == 2
    assert bf16["median"] == pytest.approx(rates.median())
    assert bf16["mad"] == pytest.approx((rates - rates.median()).abs().median())
    assert bf16["min"] == rates.min() and bf16["max"] == rates.max()


# --------------------------------------------------------------------------- outliers


def test_one_slow_gpu_is_the_only_outlier_and_its_hosts_slowest(tmp_path):
    folder = fleet_folder(tmp_path, slow={(3, 2): 0.8})
    analysis = analyze(frame(folder))
    gpus = analysis.gpu_outliers
    assert list(gpus["gpu"]) == ["GPU-synthetic-synthetic-node-3-2"]
    assert gpus.iloc[0]["flagged_cases"] == len(synth.H100_CASES)
    assert gpus.iloc[0]["pct_below_median"] == pytest.approx(20, abs=2)
    assert analysis.host_outliers.empty  # the host median is not moved by one GPU in four
    slowest = analysis.slowest.iloc[0]
    assert (slowest["host"], slowest["device_index"]) == ("synthetic-node-3", 2)
    assert slowest["relative_speed"] == pytest.approx(0.8, abs=0.02)
    assert len(analysis.slowest) == 6  # one row per host


def test_a_slow_host_is_flagged_as_a_host(tmp_path):
    slow = {(1, g): 0.85 for g in range(4)}
    analysis = analyze(frame(fleet_folder(tmp_path, slow=slow)))
    assert list(analysis.host_outliers["host"]) == ["synthetic-node-1"]
    assert set(analysis.gpu_outliers["host"]) == {"synthetic-node-1"}


def test_pct_below_threshold_option(tmp_path):
    df = frame(fleet_folder(tmp_path, slow={(0, 1): 0.95}))
    flagged = analyze(df, OutlierRule("pct-below", 4.0)).gpu_outliers
    assert list(flagged["gpu"]) == ["GPU-synthetic-synthetic-node-0-1"]
    assert analyze(df, OutlierRule("pct-below", 6.0)).gpu_outliers.empty


def test_robust_z_threshold_option(tmp_path):
    df = frame(fleet_folder(tmp_path, slow={(0, 1): 0.95}))
    assert not analyze(df, OutlierRule("robust-z", 3.0)).gpu_outliers.empty
    assert analyze(df, OutlierRule("robust-z", 8.0)).gpu_outliers.empty


def test_uniform_fleet_has_no_outliers(tmp_path):
    analysis = analyze(frame(fleet_folder(tmp_path)))
    assert analysis.gpu_outliers.empty and analysis.host_outliers.empty


def test_zero_mad_still_flags_a_real_outlier():
    rng = random.Random(1)
    case = synth._case("bf16")
    results = []
    for h in range(5):
        m = synth.measurement(rng, case, 7e14 * (0.7 if h == 4 else 1.0), cv=0.0, n=5)
        results.append((f"{h}.json", synth.run(f"synthetic-{h}", [m], [synth.device(0, host=f"synthetic-{h}")])))
    analysis = analyze(frame_of(results))
    assert list(analysis.gpu_outliers["host"]) == ["synthetic-4"]


def test_groups_too_small_are_never_flagged(tmp_path):
    df = frame(fleet_folder(tmp_path, hosts=1, gpus=2, slow={(0, 1): 0.5}))
    assert analyze(df).gpu_outliers.empty  # robust-z needs 3 GPUs


def test_device_models_are_separate_groups(tmp_path):
    folder = fleet_folder(tmp_path, hosts=5, gpus=2, model={4: synth.A100})
    df = frame(folder)
    a100 = df["device_name"] == synth.A100
    df.loc[a100, "rate"] = df.loc[a100, "rate"] * 0.5  # a slower model is not an outlier
    analysis = analyze(df)
    assert analysis.gpu_outliers.empty
    assert set(analysis.summary["device_name"]) == {synth.H100, synth.A100}


def test_repeated_runs_of_one_gpu_count_as_one_gpu(tmp_path):
    folder = tmp_path / "runs"
    for i in range(3):
        store.save(synth.h100_run(i, "synthetic-node", started_utc=f"2026-01-0{i + 1}T10:00:00Z"), folder)
    analysis = analyze(frame(folder))
    assert set(analysis.summary["gpus"]) == {1} and set(analysis.summary["count"]) == {3}
    assert set(analysis.gpus["runs"]) == {3}


# --------------------------------------------------------------------------- bad files, CLI


def write_bad_files(folder: Path, good: Path) -> dict[str, str]:
    text = good.read_text()
    bad = {
        "truncated.json": text[: len(text) // 3],
        "version.json": text.replace(f'"schema_version": {SCHEMA_VERSION}', '"schema_version": 7', 1),
        "wrongtype.json": text.replace('"mode": "quick"', '"mode": 5', 1),
        "empty.json": "",
        "notjson.json": "this is not json\n",
    }
    for name, body in bad.items():
        (folder / name).write_text(body)
    return {"truncated.json": "truncated", "version.json": "unknown schema_version 7",
            "wrongtype.json": "run.mode must be a string", "empty.json": "empty file",
            "notjson.json": "not valid JSON"}


def digest(folder: Path) -> dict[str, tuple[str, float]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
            for p in sorted(folder.iterdir())}


def test_bad_files_are_reported_by_name_and_skipped(capsys, tmp_path):
    folder = fleet_folder(tmp_path, hosts=4, gpus=1)
    expected = write_bad_files(folder, next(folder.glob("2026*.json")))
    before = digest(folder)
    code, out, err = cli(capsys, "fleet", str(folder))
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == len(expected)
    for name, problem in expected.items():
        line = next(l for l in lines if name in l)
        assert line.startswith("tppbench: skipped ") and problem in line
    assert "fleet: 4 files" in out and "5 bad files skipped" in out
    assert digest(folder) == before  # nothing modified, nothing added


def test_strict_makes_a_bad_file_fatal(capsys, tmp_path):
    folder = fleet_folder(tmp_path, hosts=3, gpus=1)
    (folder / "truncated.json").write_text('{"schema_version": 1, "run": {')
    code, out, err = cli(capsys, "fleet", str(folder), "--strict")
    assert code == 1 and "truncated.json" in err and err.count("\n") == 1 and out == ""


def test_no_readable_file_is_an_error(capsys, tmp_path):
    (tmp_path / "a.json").write_text("{}")
    code, _, err = cli(capsys, "fleet", str(tmp_path))
    assert code == 1 and "no readable result files" in err


def test_missing_path_is_one_line_error(capsys, tmp_path):
    code, _, err = cli(capsys, "fleet", str(tmp_path / "nope"))
    assert code == 1 and "nope" in err and err.count("\n") == 1


def test_globs_and_several_paths(capsys, tmp_path):
    folder = fleet_folder(tmp_path, hosts=3, gpus=1)
    files = sorted(folder.glob("*.json"))
    code, out, _ = cli(capsys, "fleet", str(folder / "*node-0*.json"), str(files[1]), str(files[2]))
    assert code == 0 and "fleet: 3 files" in out


def test_cli_tables_and_csv(capsys, tmp_path):
    folder = fleet_folder(tmp_path, slow={(2, 3): 0.8})
    csv = tmp_path / "fleet.csv"
    code, out, _ = cli(capsys, "fleet", str(folder), "--csv", str(csv))
    assert code == 0
    assert "per metric and device model" in out and "outlier GPUs" in out
    assert "synthetic-node-2" in out.split("outlier GPUs")[1].split("outlier hosts")[0]
    assert "slowest GPU of each host" in out and f"wrote {csv}" in out
    df = pd.read_csv(csv)
    assert len(df) == 6 * 4 * len(synth.H100_CASES)
    assert set(COLUMNS) <= set(df.columns) and {"fleet_median", "robust_z", "outlier"} <= set(df.columns)
    flagged = df[df["outlier"]]
    assert set(flagged["gpu"]) == {"GPU-synthetic-synthetic-node-2-3"}


def test_cli_pct_below_option(capsys, tmp_path):
    folder = fleet_folder(tmp_path, slow={(2, 3): 0.93})
    code, out, _ = cli(capsys, "fleet", str(folder), "--outliers", "pct-below", "--threshold", "5")
    assert code == 0 and "5% or more below the fleet median" in out
    assert "GPU-synthetic-synthetic-node-2-3" in out.split("outlier GPUs")[1].split("outlier hosts")[0]


def test_parquet_without_pyarrow_is_a_one_line_error(capsys, tmp_path, monkeypatch):
    import results.commands.analysis_commands as commands

    monkeypatch.setattr(commands, "_has_module", lambda name: False)
    folder = fleet_folder(tmp_path, hosts=1, gpus=1)
    code, out, err = cli(capsys, "fleet", str(folder), "--parquet", str(tmp_path / "x.parquet"))
    assert code == 2 and "pyarrow" in err and err.count("\n") == 1 and out == ""
    assert not (tmp_path / "x.parquet").exists()


def test_parquet_with_pyarrow(capsys, tmp_path):
    pytest.importorskip("pyarrow", reason="optional extra tppbench[parquet] not installed")
    folder = fleet_folder(tmp_path, hosts=2, gpus=1)
    code, _, _ = cli(capsys, "fleet", str(folder), "--parquet", str(tmp_path / "x.parquet"))
    assert code == 0 and len(pd.read_parquet(tmp_path / "x.parquet")) == 2 * len(synth.H100_CASES)


@pytest.mark.parametrize("argv", [["--outliers", "zscore"], ["--threshold", "-1"], ["--threshold", "x"]])
def test_bad_options_exit_2(capsys, tmp_path, argv):
    with pytest.raises(SystemExit) as exc:
        main(["fleet", str(tmp_path), *argv])
    assert exc.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_csv_into_missing_folder_is_a_clear_error(capsys, tmp_path):
    folder = fleet_folder(tmp_path, hosts=1, gpus=1)
    code, _, err = cli(capsys, "fleet", str(folder), "--csv", str(tmp_path / "no" / "x.csv"))
    assert code == 2 and "does not exist" in err


def test_csv_onto_a_folder_or_an_input_file_is_a_clear_error_before_any_output(capsys, tmp_path):
    folder = fleet_folder(tmp_path, hosts=1, gpus=1)
    before = digest(folder)
    code, out, err = cli(capsys, "fleet", str(folder), "--csv", str(folder))  # was IsADirectoryError
    assert code == 2 and "is a folder" in err and err.count("\n") == 1 and out == ""
    victim = next(folder.glob("*.json"))
    code, _, err = cli(capsys, "fleet", str(folder), "--csv", str(victim))
    assert code == 2 and "input result files" in err
    assert digest(folder) == before


def test_top_must_not_be_negative(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["fleet", str(tmp_path), "--top", "-1"])
    assert exc.value.code == 2 and "--top" in capsys.readouterr().err


def test_scale_script_runs_on_a_small_fleet(tmp_path):
    proc = subprocess.run(
        [sys.executable, "scripts/bench_fleet_scale.py", "--files", "40", "--keep", str(tmp_path / "f")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fleet over 40 files" in proc.stdout and "peak RSS" in proc.stdout
    sample = json.loads(next((tmp_path / "f").glob("2026*.json")).read_text())
    assert "SYNTHETIC" in sample["run"]["label"] and sample["run"]["host"].startswith("synthetic-host-")


def test_cpu_measurements_without_device_index_belong_to_the_only_device():
    from dataclasses import replace

    rng = random.Random(3)
    m = replace(synth.measurement(rng, synth._case("bf16"), 3e11), device_index=None)
    cpu = synth.run("synthetic-cpu", [m], devices=(synth.device(0, name="Synthetic CPU", backend="cpu"),))
    analysis = analyze(frame_of([("cpu.json", cpu)]))
    assert list(analysis.summary["device_name"]) == ["Synthetic CPU"]
    assert analysis.rows.loc[0, "device_index"] == 0
