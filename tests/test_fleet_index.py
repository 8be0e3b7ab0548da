"""The fleet index: incremental builds equal fresh ones, bad files are recorded once, SQL over the
index gives the same statistics and outliers as pandas over the raw files, and a foreign or
damaged index folder is a one-line error that leaves it as it is."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "data" / "results"))
import synth  # noqa: E402

from results.files import store  # noqa: E402
from results.analysis.fleet import OutlierRule, analyze  # noqa: E402
from results.analysis.frame import load_frame  # noqa: E402
from results.index import build, layout  # noqa: E402
from results.index.queries import IndexReader, Selection  # noqa: E402
from test_fleet import cli, digest, fleet_folder, write_bad_files  # noqa: E402


def tree(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under `folder` (recursively): content hash and mtime."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def tables_of(index: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables of an index as frames, in a canonical order, without the part-file names."""
    manifest = layout.open_existing(index)
    parts = [pq.read_table(index / p.path).to_pandas() for p in manifest.parts.values()]
    measurements = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    measurements = measurements.sort_values(["source", "row_in_file"]).reset_index(drop=True)
    files = pq.read_table(index / manifest.files_table).to_pandas().drop(columns=["parts"])
    return measurements, files.sort_values("path").reset_index(drop=True)


def assert_same_index(a: Path, b: Path) -> None:
    ma, fa = tables_of(a)
    mb, fb = tables_of(b)
    pd.testing.assert_frame_equal(ma, mb)
    pd.testing.assert_frame_equal(fa, fb)


# --------------------------------------------------------------------------- incremental builds


def test_updated_index_equals_a_fresh_build_after_adds_changes_and_deletions(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "IN_PROCESS_BELOW", 0)  # worker processes even for a few files
    folder = fleet_folder(tmp_path, hosts=4, gpus=2)
    index = tmp_path / "idx"
    first = build.update(index, [folder], workers=2)
    assert first.added == 4 and first.files == 4 and first.measurements == 4 * 2 * len(synth.H100_CASES)

    files = sorted(folder.glob("*.json"))
    files[0].unlink()  # deleted
    changed = synth.h100_run(900, "synthetic-node-1", gpus=2, started_utc="2026-01-02T10:00:00Z")
    files[1].write_text(json.dumps(store.to_dict(changed), indent=1))  # changed content
    os.utime(files[2], ns=(files[2].stat().st_atime_ns, files[2].stat().st_mtime_ns + 10**9))  # touched only
    store.save(synth.h100_run(901, "synthetic-node-new", gpus=2, started_utc="2026-03-05T10:00:00Z"), folder)
    second = build.update(index, [folder], workers=2)
    assert (second.added, second.changed, second.touched, second.removed, second.unchanged) == (1, 1, 1, 1, 1)

    fresh = build.update(tmp_path / "fresh", [folder], workers=1)
    assert fresh.files == second.files == 4
    assert_same_index(index, tmp_path / "fresh")
    assert "synthetic-node-new" in set(tables_of(index)[0]["host"])


def test_an_update_with_other_paths_adds_them_and_drops_only_files_gone_from_disk(tmp_path):
    first_folder = fleet_folder(tmp_path / "a", hosts=2, gpus=1)
    second_folder = tmp_path / "b"
    store.save(synth.h100_run(902, "synthetic-node-b", gpus=1, started_utc="2026-02-01T10:00:00Z"), second_folder)
    index = tmp_path / "idx"
    build.update(index, [first_folder], workers=1)

    added = build.update(index, [second_folder], workers=1)  # the first folder's files stay indexed
    assert (added.added, added.removed, added.files) == (1, 0, 3)

    sorted(first_folder.glob("*.json"))[0].unlink()
    pruned = build.update(index, [second_folder], workers=1)  # a file gone from the disk is dropped
    assert (pruned.added, pruned.removed, pruned.files) == (0, 1, 2)
    build.update(tmp_path / "fresh", [first_folder, second_folder], workers=1)
    assert_same_index(index, tmp_path / "fresh")


def test_an_update_leaves_unchanged_parts_as_they_are_and_a_no_op_writes_nothing(tmp_path):
    folder = fleet_folder(tmp_path, hosts=3, gpus=1)  # January
    index = tmp_path / "idx"
    build.update(index, [folder])
    before = {p.name: p.stat().st_mtime_ns for p in (index / "measurements").rglob("*.parquet")}
    store.save(synth.h100_run(7, "synthetic-node-march", started_utc="2026-03-01T10:00:00Z"), folder)
    summary = build.update(index, [folder])
    after = {p.name: p.stat().st_mtime_ns for p in (index / "measurements").rglob("*.parquet")}
    assert summary.parts_written == 1 and summary.parts_rewritten == 0
    assert all(after[name] == mtime for name, mtime in before.items())  # January part untouched
    assert any("month=2026-03" in str(p) for p in (index / "measurements").rglob("*.parquet"))
    manifest = (index / layout.MANIFEST).read_bytes()
    again = build.update(index, [folder])
    assert not again.committed and (index / layout.MANIFEST).read_bytes() == manifest


def test_a_bad_file_is_skipped_once_recorded_and_read_again_when_it_changes(tmp_path):
    folder = fleet_folder(tmp_path, hosts=3, gpus=1)
    good = next(folder.glob("2026*.json"))
    bad = folder / "truncated.json"
    bad.write_text(good.read_text()[:200])
    index = tmp_path / "idx"
    seen: list = []
    first = build.update(index, [folder], on_problem=seen.append)
    assert [p.path for p in seen] == [str(bad)] and "truncated" in seen[0].problem
    assert first.skipped == 1 and first.files == 4
    seen.clear()
    second = build.update(index, [folder], on_problem=seen.append)
    assert seen == [] and not second.committed and second.skipped == 1  # not parsed again
    files = tables_of(index)[1].set_index("path")
    assert files.loc[str(bad), "status"] == "skipped" and "truncated" in files.loc[str(bad), "problem"]
    result = synth.h100_run(55, "synthetic-node-fixed", started_utc="2026-01-09T10:00:00Z")
    bad.write_text(json.dumps(store.to_dict(result), indent=1))  # repaired
    third = build.update(index, [folder], on_problem=seen.append)
    assert seen == [] and third.skipped == 0 and third.changed == 1
    assert tables_of(index)[1].set_index("path").loc[str(bad), "status"] == "indexed"


def test_a_broken_link_is_skipped_like_fleet_skips_it_and_indexed_once_repaired(tmp_path):
    folder = fleet_folder(tmp_path, hosts=2, gpus=1)
    link = folder / "gone.json"
    link.symlink_to(tmp_path / "nowhere.json")
    seen: list = []
    first = build.update(tmp_path / "idx", [folder], on_problem=seen.append)  # it used to stop the index
    assert [(p.path, p.problem) for p in seen] == [(str(link), "no such file")]
    assert load_frame([folder]).problems == tuple(seen)  # the same file, the same words, without an index
    assert (first.files, first.skipped) == (3, 1)
    seen.clear()
    assert not build.update(tmp_path / "idx", [folder], on_problem=seen.append).committed and seen == []
    (tmp_path / "nowhere.json").write_text(next(folder.glob("2026*.json")).read_text())
    repaired = build.update(tmp_path / "idx", [folder], on_problem=seen.append)
    assert seen == [] and (repaired.changed, repaired.skipped) == (1, 0)


def test_strict_makes_a_bad_file_fatal_and_commits_nothing(capsys, tmp_path):
    folder = fleet_folder(tmp_path, hosts=2, gpus=1)
    index = tmp_path / "idx"
    build.update(index, [folder])
    manifest = (index / layout.MANIFEST).read_bytes()
    (folder / "bad.json").write_text('{"schema_version": 1, "run": {')
    code, out, err = cli(capsys, "index", str(folder), "--index", str(index), "--strict")
    assert code == 1 and "bad.json" in err and err.count("\n") == 1
    assert (index / layout.MANIFEST).read_bytes() == manifest
    assert len(list((index / "measurements").rglob("*.parquet"))) == 1  # no leftover part
    code, _, err = cli(capsys, "index", str(folder), "--index", str(index))  # recorded as skipped
    assert code == 0 and "skipped" in err and "bad.json" in err
    code, _, err = cli(capsys, "fleet", "--index", str(index), "--strict")
    assert code == 1 and "bad.json" in err and err.count("\n") == 1


# --------------------------------------------------------------------------- same answers


FLEETS = {
    "one slow GPU": dict(hosts=6, gpus=4, slow={(3, 2): 0.8}),
    "slow host": dict(hosts=6, gpus=4, slow={(1, g): 0.85 for g in range(4)}),
    "two models": dict(hosts=5, gpus=2, model={4: synth.A100}, slow={(0, 1): 0.9}),
    "small groups": dict(hosts=1, gpus=2, slow={(0, 1): 0.5}),
    # a GPU measured on node 0, then in node 9's chassis: two runs, two hosts (its host: the first by name)
    "a GPU moved to another host": dict(hosts=4, gpus=2, slow={(0, 1): 0.8}, moved=True),
}
RULES = [OutlierRule(), OutlierRule("robust-z", 3.0), OutlierRule("pct-below", 4.0)]


def _canon(frame: pd.DataFrame, by: list[str], columns: list[str]) -> pd.DataFrame:
    return frame[columns].sort_values(by).reset_index(drop=True)


@pytest.mark.parametrize("name", list(FLEETS))
def test_sql_over_the_index_gives_the_statistics_and_outliers_of_the_raw_files(tmp_path, name):
    spec = dict(FLEETS[name])
    folder = fleet_folder(tmp_path, **{k: v for k, v in spec.items() if k != "moved"})
    if spec.get("moved"):
        moved_uuid = store.load(next(folder.glob("*synthetic-node-0*"))).devices[1].uuid
        run = synth.h100_run(500, "synthetic-node-9", gpus=2, gpu_scale={1: 0.8}, started_utc="2026-01-05T11:00:00Z")
        devices = tuple(dataclasses.replace(d, uuid=moved_uuid) if d.index == 1 else d for d in run.devices)
        store.save(dataclasses.replace(run, devices=devices), folder)
    index = tmp_path / "idx"
    build.update(index, [folder])
    frame = load_frame([folder]).frame
    if spec.get("moved"):
        assert frame[frame["gpu"] == moved_uuid]["host"].nunique() == 2
    frame["source"] = [os.path.abspath(s) for s in frame["source"]]
    with IndexReader(index) as reader:
        for rule in RULES:
            raw, sql = analyze(frame, rule), reader.fleet(rule)
            keys = ["key", "device_name"]
            stats = ["count", "gpus", "hosts", "median", "mad", "min", "max"]
            pd.testing.assert_frame_equal(_canon(raw.summary, keys, keys + stats),
                                          _canon(sql.summary, keys, keys + stats), check_dtype=False)
            cols = ["host", "gpu", "key", "flagged_cases", "cases", "value", "fleet_median",
                    "robust_z", "pct_below_median", "direction"]
            pd.testing.assert_frame_equal(_canon(raw.gpu_outliers, ["gpu"], cols) if len(raw.gpu_outliers) else
                                          pd.DataFrame(columns=cols),
                                          _canon(sql.gpu_outliers, ["gpu"], cols), check_dtype=False,
                                          check_index_type=False)
            hcols = ["host", "device_name", "key", "flagged_cases", "cases", "value", "pct_below_median"]
            assert (list(raw.host_outliers["host"]) if len(raw.host_outliers) else []) == list(sql.host_outliers["host"])
            if len(raw.host_outliers):
                pd.testing.assert_frame_equal(_canon(raw.host_outliers, ["host"], hcols),
                                              _canon(sql.host_outliers, ["host"], hcols), check_dtype=False)
            scols = ["host", "gpu", "device_index", "device_name", "gpus_on_host", "relative_speed",
                     "worst_key", "worst_ratio"]
            pd.testing.assert_frame_equal(raw.slowest[scols].reset_index(drop=True),
                                          sql.slowest[scols].reset_index(drop=True), check_dtype=False)
            assert (raw.measurement_count, raw.gpu_count, raw.host_count) == (
                sql.measurement_count, sql.gpu_count, sql.host_count)


def test_fleet_command_prints_the_same_tables_and_csv_with_and_without_the_index(capsys, tmp_path):
    folder = fleet_folder(tmp_path, slow={(2, 3): 0.8})
    write_bad_files(folder, next(folder.glob("2026*.json")))
    before = digest(folder)
    code, plain, _ = cli(capsys, "fleet", str(folder), "--csv", str(tmp_path / "raw.csv"))
    assert code == 0
    index = tmp_path / "idx"
    code, indexed, err = cli(capsys, "fleet", str(folder), "--index", str(index), "--csv", str(tmp_path / "sql.csv"))
    assert code == 0 and err.count("tppbench: skipped") == 5
    assert indexed.splitlines()[0].startswith(f"index {index}: 6 result files indexed")
    assert indexed.splitlines()[1:] == [line.replace("raw.csv", "sql.csv") for line in plain.splitlines()]
    code, again, err = cli(capsys, "fleet", "--index", str(index))  # query only; bad files not re-read
    assert code == 0 and err == "" and "5 bad files skipped" in again
    # --top 2: the index fetches only 2 rows of the slowest-GPU table (one per host) and counts the rest
    code, plain_top, _ = cli(capsys, "fleet", str(folder), "--top", "2")
    code_top, indexed_top, _ = cli(capsys, "fleet", "--index", str(index), "--top", "2")
    assert code == code_top == 0 and indexed_top == plain_top
    assert "... and 4 more (all rows: --csv, or --top)" in indexed_top.split("slowest GPU of each host")[1]
    raw = pd.read_csv(tmp_path / "raw.csv")
    sql = pd.read_csv(tmp_path / "sql.csv")
    raw["source"] = [os.path.abspath(s) for s in raw["source"]]
    assert list(raw.columns) == list(sql.columns)
    by = ["source", "key", "device_index"]
    raw, sql = raw.sort_values(by).reset_index(drop=True), sql.sort_values(by).reset_index(drop=True)
    pd.testing.assert_frame_equal(raw, sql, check_dtype=False, rtol=1e-12)
    assert digest(folder) == before  # result files only read


def test_parquet_export_from_the_index(capsys, tmp_path):
    folder = fleet_folder(tmp_path, hosts=3, gpus=1)
    code, _, _ = cli(capsys, "fleet", str(folder), "--index", str(tmp_path / "idx"),
                     "--parquet", str(tmp_path / "x.parquet"))
    assert code == 0 and len(pd.read_parquet(tmp_path / "x.parquet")) == 3 * len(synth.H100_CASES)


def test_an_export_into_the_index_or_onto_an_indexed_result_file_is_refused(capsys, tmp_path):
    folder = fleet_folder(tmp_path, hosts=2, gpus=1)
    index = tmp_path / "idx"
    build.update(index, [folder])
    before, files_before = tree(index), digest(folder)
    result_file = str(next(iter(sorted(folder.rglob("*.json")))))
    for target in (str(index / "out.csv"), result_file):
        code, _, err = cli(capsys, "fleet", "--index", str(index), "--csv", target)
        assert code == 2 and "never overwritten" in err and err.count("\n") == 1, err
    assert tree(index) == before and digest(folder) == files_before


# --------------------------------------------------------------------------- selections


def test_selection_by_host_model_and_dates(capsys, tmp_path):
    folder = fleet_folder(tmp_path, hosts=5, gpus=1, model={4: synth.A100})  # dates 2026-01-01..05
    index = tmp_path / "idx"
    build.update(index, [folder])
    with IndexReader(index, Selection(host="synthetic-node-2")) as reader:
        assert [Path(p).name for p in reader.result_paths()] == [
            p.name for p in folder.glob("*synthetic-node-2*.json")]
    with IndexReader(index, Selection(model="a100")) as reader:
        assert reader.fleet(OutlierRule()).host_count == 1
    import datetime

    with IndexReader(index, Selection(since=datetime.date(2026, 1, 2), until=datetime.date(2026, 1, 3))) as reader:
        assert len(reader.result_paths()) == 2
    code, out, _ = cli(capsys, "fleet", "--index", str(index), "--model", "h100", "--since", "2026-01-02")
    assert code == 0 and "fleet: 3 files" in out
    code, out, _ = cli(capsys, "compare", str(next(folder.glob("*node-0*.json"))), "--index", str(index),
                       "--host", "synthetic-node-1")
    assert code == 0 and "synthetic-node-1" in out
    code, out, _ = cli(capsys, "report", "--markdown", "--index", str(index), "--host", "synthetic-node-3")
    assert code == 0 and "synthetic-node-3" in out and "synthetic-node-1" not in out
    code, _, err = cli(capsys, "report", "--markdown", "--index", str(index), "--host", "nobody")
    assert code == 1 and "nothing to report" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["fleet", "PATH", "--host", "x"], ["report", "--markdown", "PATH", "--model", "x"],
                                  ["compare", "PATH", "PATH", "--since", "2026-01-01"]])
def test_a_selection_without_an_index_is_a_usage_error(capsys, tmp_path, argv):
    folder = fleet_folder(tmp_path, hosts=1, gpus=1)
    code, _, err = cli(capsys, *[str(next(folder.glob("*.json"))) if a == "PATH" else a for a in argv])
    assert code == 2 and "--index" in err and err.count("\n") == 1


# --------------------------------------------------------------------------- foreign and damaged folders


def _damage(index: Path, how: str) -> None:
    manifest = layout.open_existing(index)
    part = index / next(iter(manifest.parts))
    if how == "truncated part":
        part.write_bytes(part.read_bytes()[:100])
    elif how == "corrupt files table":  # same size, garbage footer
        table = index / manifest.files_table
        data = bytearray(table.read_bytes())
        data[-60:-8] = b"\xff" * 52
        table.write_bytes(bytes(data))
    elif how == "missing files table":
        (index / manifest.files_table).unlink()
    elif how == "garbage manifest":
        (index / layout.MANIFEST).write_text('{"format": "tppbench-fleet-index", "format_vers')
    elif how == "newer format":
        data = json.loads((index / layout.MANIFEST).read_text())
        (index / layout.MANIFEST).write_text(json.dumps({**data, "format_version": 99}))
    elif how == "foreign manifest":
        (index / layout.MANIFEST).write_text('{"format": "something else"}')


@pytest.mark.parametrize("how", ["truncated part", "corrupt files table", "missing files table", "garbage manifest", "newer format",
                                 "foreign manifest"])
def test_a_damaged_index_is_a_one_line_error_and_never_rebuilt(capsys, tmp_path, how):
    folder = fleet_folder(tmp_path, hosts=2, gpus=1)
    index = tmp_path / "idx"
    build.update(index, [folder])
    _damage(index, how)
    before = tree(index)
    for argv in (["fleet", "--index", str(index)], ["fleet", str(folder), "--index", str(index)],
                 ["index", str(folder), "--index", str(index)]):
        code, out, err = cli(capsys, *argv)
        assert code == 1 and err.count("\n") == 1 and str(index) in err and "Traceback" not in err, (argv, err)
    assert tree(index) == before


def test_a_folder_that_is_not_an_index_is_never_written_into(capsys, tmp_path):
    folder = fleet_folder(tmp_path, hosts=1, gpus=1)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("user data")
    code, _, err = cli(capsys, "fleet", str(folder), "--index", str(precious))
    assert code == 1 and "not a tppbench index" in err and err.count("\n") == 1
    assert [p.name for p in precious.iterdir()] == ["notes.txt"]
    code, _, err = cli(capsys, "fleet", "--index", str(tmp_path / "nothing-here"))
    assert code == 1 and "no such index folder" in err


def test_an_interrupted_update_leaves_the_previous_index_readable(tmp_path, monkeypatch):
    folder = fleet_folder(tmp_path, hosts=2, gpus=1)
    index = tmp_path / "idx"
    build.update(index, [folder])
    store.save(synth.h100_run(77, "synthetic-node-late", started_utc="2026-01-20T10:00:00Z"), folder)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(layout, "commit", crash)
    with pytest.raises(KeyboardInterrupt):
        build.update(index, [folder])
    monkeypatch.undo()
    with IndexReader(index) as reader:
        assert reader.fleet(OutlierRule()).files_read == 2  # the old generation, intact
    assert build.update(index, [folder]).files == 3
    assert len(list((index / "files").glob("*.parquet"))) == 1  # leftovers of the crash removed


def test_scale_script_benchmarks_the_index_on_a_small_fleet(tmp_path):
    root = Path(__file__).parents[1]
    proc = subprocess.run(
        [sys.executable, "scripts/bench_fleet_scale.py", "--index-sizes", "20,40", "--batch", "20",
         "--keep", str(tmp_path / "f")], cwd=root, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for line in ("first index of 40 files", "fleet tables + outliers over the 40-file index",
                 "update of the 40-file index after 20 new files", "projected 1,000,000 files"):
        assert line in proc.stdout, proc.stdout
    assert "20 new, 0 changed, 0 removed, 40 unchanged" in proc.stdout


def test_many_updates_of_one_partition_are_merged_into_few_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "MAX_PARTS_PER_PARTITION", 2)
    folder = tmp_path / "fleet"
    index = tmp_path / "idx"
    for day in range(1, 6):  # five nightly updates, all January, one device model
        store.save(synth.h100_run(day, f"synthetic-node-{day}", started_utc=f"2026-01-0{day}T10:00:00Z"), folder)
        build.update(index, [folder])
        assert len(layout.open_existing(index).parts) <= 2
    build.update(tmp_path / "fresh", [folder])
    assert_same_index(index, tmp_path / "fresh")
