"""Schema round trip, atomic never-overwriting save, and a loader that refuses bad files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from results.errors import ResultFileError
from results.files.schema import SCHEMA_VERSION, from_dict, to_dict
from results.files import compiled_schema, store
from results.files.store import discover, load, save
from helpers_results import measurement, run_result


def test_round_trip_is_lossless(tmp_path):
    original = run_result([measurement(), measurement("memory/copy/bytes=1024", work=2048.0,
                                                      params={"bytes": 1024}, flags=("noisy",))])
    assert from_dict(json.loads(json.dumps(to_dict(original)))) == original
    path = save(original, tmp_path)
    assert load(path) == original
    data = json.loads(path.read_text())
    assert list(data) == ["schema_version", "run", "devices", "measurements"]
    assert data["schema_version"] == SCHEMA_VERSION


def test_names_sort_in_time_and_never_overwrite(tmp_path):
    first = save(run_result(host="gpu-node-7"), tmp_path)
    second = save(run_result(host="gpu-node-7"), tmp_path)  # same second, same host
    later = save(run_result(host="gpu-node-7", started="2026-11-26T01:02:04.000000Z"), tmp_path)
    assert first.name == "20261126T010203Z_gpu-node-7_test-cpu.json"
    assert second.name == "20261126T010203Z_gpu-node-7_test-cpu-2.json"
    assert first.read_text() == second.read_text()
    assert sorted(p.name for p in tmp_path.iterdir())[-1] == later.name


def test_result_files_get_the_usual_permissions_not_mkstemps_0600(tmp_path):
    previous = os.umask(0o022)
    try:
        path = save(run_result(), tmp_path)
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644  # readable by the other users of a shared folder


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        save(run_result(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_crash_mid_write_leaves_no_result_file(tmp_path):
    # A real process dies half-way through writing: only a hidden temp file may remain.
    script = textwrap.dedent(f"""
        import os, sys
        sys.path[:0] = [{str(Path(__file__).resolve().parents[1])!r}, {str(Path(__file__).resolve().parent)!r}]
        import results.files.store as store
        from helpers_results import run_result
        real_fdopen = os.fdopen
        def dying_fdopen(fd, *a, **k):
            handle = real_fdopen(fd, *a, **k)
            real_write = handle.write
            def write(text):
                real_write(text[: len(text) // 2]); handle.flush(); os._exit(9)
            handle.write = write
            return handle
        store.os.fdopen = dying_fdopen
        store.save(run_result(), {str(tmp_path)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 9
    leftovers = list(tmp_path.iterdir())
    assert all(p.name.startswith(".") and p.suffix == ".tmp" for p in leftovers)
    assert list(discover([tmp_path])) == []  # discovery never picks up temp files


@pytest.mark.parametrize("content,problem", [
    ("", "empty file"),
    ('{"schema_version": 1, "run": {', "not valid JSON"),
    ("[1, 2]", "top level is not an object"),
    ('{"hello": 1}', "no schema_version"),
    ('{"schema_version": 99, "run": {}, "devices": [], "measurements": []}', "unknown schema_version 99"),
])
def test_loader_refuses_bad_files(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ResultFileError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(str(path)) and problem in message
    assert "\n" not in message


def test_loader_refuses_truncated_real_file(tmp_path):
    path = save(run_result(), tmp_path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(ResultFileError, match="not valid JSON"):
        load(path)


@pytest.mark.parametrize("mutate,problem", [
    (lambda d: d["measurements"][0].update(rate="fast"), "measurements[0].rate must be a number"),
    (lambda d: d["measurements"][0].update(times_s=[1, "x"]), "measurements[0].times_s must be a list of numbers"),
    (lambda d: d["measurements"][0].update(status="great"), "measurements[0].status must be one of"),
    (lambda d: d["measurements"][0].pop("key"), "measurements[0] is missing field 'key'"),
    (lambda d: d["run"].update(colour="blue"), "run has unknown field 'colour'"),
    (lambda d: d.update(devices={}), "'devices' must be a list"),
    (lambda d: d["measurements"][0]["stats"].update(n="3"), "measurements[0].stats.n must be an integer"),
    (lambda d: d["measurements"][0].update(rate=None), "has status ok but no rate"),
    (lambda d: d["measurements"][0].update(flags=[1]), "measurements[0].flags must be a list of strings"),
    (lambda d: d["measurements"][0].update(reason=5), "measurements[0].reason must be a string"),
    (lambda d: d["measurements"][0].update(device_index="0"), "measurements[0].device_index must be an integer"),
    (lambda d: d["measurements"][0].update(precision=16), "measurements[0].precision must be a string"),
    (lambda d: d["run"].update(complete="yes"), "run.complete must be true or false"),
    (lambda d: d["devices"][0].update(index=0.5), "devices[0].index must be an integer"),
    (lambda d: d["devices"][0].update(sm_count="132"), "devices[0].sm_count must be an integer"),
    (lambda d: d["measurements"][0].update(concurrent_devices=0), "measurements[0].concurrent_devices must be at least 1"),
    (lambda d: d["measurements"][0].update(concurrent_devices=-2), "concurrent_devices"),
])
def test_loader_refuses_wrong_types(tmp_path, mutate, problem):
    data = to_dict(run_result())
    mutate(data)
    path = tmp_path / "typed.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ResultFileError) as info:
        load(path)
    assert problem in str(info.value)


def test_discover_expands_folders_and_globs(tmp_path):
    a = save(run_result(host="a"), tmp_path / "x")
    b = save(run_result(host="b"), tmp_path / "y")
    assert list(discover([tmp_path])) == [a, b]
    assert list(discover([str(tmp_path / "*" / "*.json")])) == [a, b]
    with pytest.raises(ResultFileError, match="matches no file"):
        list(discover([str(tmp_path / "nothing*.json")]))
    with pytest.raises(ResultFileError, match="no such file"):
        list(discover([tmp_path / "missing.json"]))


def test_discover_walks_a_folder_as_pathlib_rglob_does(tmp_path):
    # discover scans each folder once with os.scandir (the fleet index walks 100,000s of files);
    # it must find what `sorted(Path.rglob("*.json"))` less hidden names finds, in that order
    for name in ("a/x.json", "a-b/x.json", "a/b/c/deep.json", "a/.hidden.json", "a/.tmp/in-hidden-folder.json",
                 "A.json", "z.JSON", "notes.txt", "b/y.json.part"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    (tmp_path / "folder.json").mkdir()  # a folder named like a result file: found, the loader says what it is
    (tmp_path / "linked").symlink_to(tmp_path / "a", target_is_directory=True)  # not followed
    (tmp_path / "broken.json").symlink_to(tmp_path / "nowhere.json")  # found: the loader names the problem
    expected = sorted(q for q in tmp_path.rglob("*.json") if not q.name.startswith("."))
    found = list(discover([tmp_path]))
    assert found == expected
    assert [str(p.relative_to(tmp_path)) for p in found] == [  # by components: "a/..." before "a-b/..."
        "A.json", "a/.tmp/in-hidden-folder.json", "a/b/c/deep.json", "a/x.json", "a-b/x.json", "broken.json",
        "folder.json"]


def test_summary_prints_reasons_with_brackets_verbatim():
    from rich.console import Console

    from results.render.run_summary import print_summary

    failed = measurement(status="error", reason="gloo: [enforce fail at ../gloo/x.cc:12] [/bold]", rate=None,
                         stats=None, flags=())
    console = Console(record=True, width=200)
    print_summary(run_result([failed], host="[red]host"), console)
    text = console.export_text()
    assert "[enforce fail at ../gloo/x.cc:12] [/bold]" in text and "[red]host" in text


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_loader_refuses_non_finite_numbers(tmp_path, token):
    path = save(run_result(), tmp_path)
    data = path.read_text()
    rate = json.loads(data)["measurements"][0]["rate"]
    path.write_text(data.replace(f'"rate": {rate!r}', f'"rate": {token}', 1))
    with pytest.raises(ResultFileError) as info:
        load(path)
    assert str(info.value).startswith(str(path)) and token in str(info.value)


@pytest.mark.parametrize("field,value", [("flags", [1]), ("reason", 5)])
def test_show_of_a_wrongly_typed_file_is_one_line_not_a_traceback(tmp_path, field, value):
    data = to_dict(run_result())
    data["measurements"][0].update({field: value})
    path = tmp_path / "typed.json"
    path.write_text(json.dumps(data))
    proc = subprocess.run([sys.executable, "-m", "bench", "show", str(path)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0
    assert f"measurements[0].{field}" in proc.stderr


# --------------------------------------------------------------- the two JSON decoders agree

_HOSTILE = Path(__file__).parent / "data" / "hostile"
_DECODER_CASES = sorted((_HOSTILE / "result").glob("*.json")) + [
    Path(__file__).parent / "data" / "results" / "compare" / "golden-a100.json",
]


def _outcome(raw: bytes) -> object:
    try:
        return store.parse_bytes(raw, "case.json")
    except ResultFileError as exc:
        return f"error: {exc}"


@pytest.mark.skipif(store._FAST_JSON is None, reason="orjson >= 3.13 not installed: only json.loads is in use")
@pytest.mark.parametrize("path", _DECODER_CASES, ids=lambda p: p.name)
def test_orjson_path_accepts_and_refuses_exactly_as_json_loads(path, monkeypatch):
    monkeypatch.setattr(compiled_schema, "decode", lambda raw, records=True: None)  # its own tests: test_compiled_schema.py
    raw = path.read_bytes()
    fast = _outcome(raw)
    monkeypatch.setattr(store, "_FAST_JSON", None)
    assert _outcome(raw) == fast


@pytest.mark.skipif(store._FAST_JSON is None, reason="orjson >= 3.13 not installed: only json.loads is in use")
def test_a_valid_file_is_decoded_by_orjson_without_json_loads(monkeypatch):
    # else the agreement above would hold trivially, both sides being json.loads
    def refuse(*args, **kwargs):
        raise AssertionError("json.loads called for a file orjson decodes")

    monkeypatch.setattr(compiled_schema, "decode", lambda raw, records=True: None)
    monkeypatch.setattr(store.json, "loads", refuse)
    result = store.parse_bytes(_DECODER_CASES[-1].read_bytes(), "golden-a100.json")
    assert result.measurements


@pytest.mark.skipif(store._FAST_JSON is None, reason="orjson >= 3.13 not installed: only json.loads is in use")
def test_a_20_digit_integer_is_refused_on_both_paths(monkeypatch):
    data = json.loads((_HOSTILE / "result" / "valid-base.json").read_text())
    # orjson would turn this literal into a float and let it through as 1.2e23; json.loads keeps it an int
    data["measurements"][0]["extra"]["big"] = 123456789012345678901234
    bad = json.dumps(data).encode()
    fast = _outcome(bad)
    assert isinstance(fast, str) and "64 bits" in fast
    monkeypatch.setattr(store, "_FAST_JSON", None)
    assert _outcome(bad) == fast


# --------------------------------------------------------------- schema versions 1, 2 and 3

_V1_FIXTURE = Path(__file__).parent / "data" / "results" / "compare" / "golden-a100.json"  # written as version 1


def test_a_version_1_file_is_read_and_upgraded_and_new_files_are_version_3(tmp_path):
    assert json.loads(_V1_FIXTURE.read_text())["schema_version"] == 1
    result = load(_V1_FIXTURE)
    assert result.schema_version == SCHEMA_VERSION == 3
    assert result.run.source is None and all(m.concurrent_devices is None for m in result.measurements)
    assert result.run.procedure == {} and all(d.identity == {} for d in result.devices)
    again = load(save(result, tmp_path))  # re-written as version 3, read back unchanged
    assert again == result
    assert json.loads(next(tmp_path.glob("*.json")).read_text())["schema_version"] == 3


@pytest.mark.parametrize("where, name, value", [
    ("run", "source", "imported"), ("run", "imported_from", {}), ("measurement", "concurrent_devices", 2),
])
def test_a_version_1_file_with_a_version_2_field_is_refused(where, name, value, tmp_path):
    data = json.loads(_V1_FIXTURE.read_text())
    (data["run"] if where == "run" else data["measurements"][0])[name] = value
    bad = tmp_path / "v1-with-v2-field.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ResultFileError, match=f"{name} is new in schema_version 2, but the file says 1"):
        load(bad)
    data["schema_version"] = 2  # the same content as version 2 is fine (read as version 3)
    bad.write_text(json.dumps(data))
    assert load(bad).schema_version == SCHEMA_VERSION


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("where, name, value", [
    ("run", "procedure", {"id": "lab", "version": 1}), ("device", "identity", {"serial": "1650123456789"}),
])
def test_an_older_file_with_a_version_3_field_is_refused(version, where, name, value, tmp_path):
    data = json.loads(_V1_FIXTURE.read_text())
    data["schema_version"] = version
    (data["run"] if where == "run" else data["devices"][0])[name] = value
    bad = tmp_path / "old-with-v3-field.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ResultFileError, match=f"{name} is new in schema_version 3, but the file says {version}"):
        load(bad)
    data["schema_version"] = 3
    bad.write_text(json.dumps(data))
    got = load(bad)
    assert (got.run.procedure if where == "run" else got.devices[0].identity) == value
