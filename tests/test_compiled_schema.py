"""The compiled (msgspec) decoder is only a faster way to the same answer (issue 11).

`results.compiled_schema.decode` may accept a file or pass it on (None) to the reference path
(`json.loads` / orjson + `results.schema.from_dict`). These tests hold it to that: whatever it
accepts, the reference path accepts with an identical record (same values, same Python types), and
`parse_bytes` gives the same record or the same one-line error with it and without it (and the
fleet index's rows from its undecorated form equal the rows from the record), on every
committed result file, the hostile corpus and hypothesis mutations of a version-1 and a version-2
file. Where msgspec is not installed (an offline GPU host) they are skipped: only the reference
path runs there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

for _module in ("msgspec", "hypothesis", "pyarrow"):  # without msgspec only the reference path runs
    pytest.importorskip(_module)

from hypothesis import HealthCheck, event, given, settings  # noqa: E402

from results.files import compiled_schema, store  # noqa: E402
from results.errors import ResultFileError  # noqa: E402
from results.index import tables  # noqa: E402
from results.files.schema import SCHEMA_VERSION, from_dict, to_dict  # noqa: E402
from tests.test_fuzz_input import BASE, LONG, mutated_result  # noqa: E402

DATA = Path(__file__).parent / "data"
COMMITTED = sorted(p for p in DATA.rglob("*.json") if p.is_file() and p.stat().st_size < 4_000_000)


def reference(raw: bytes, monkeypatch) -> object:
    """parse_bytes without the compiled decoder: the record, or the error line."""
    with monkeypatch.context() as patch:
        patch.setattr(compiled_schema, "decode", lambda raw, records=True: None)
        return outcome(raw)


def outcome(raw: bytes) -> object:
    try:
        return store.parse_bytes(raw, "case.json")
    except ResultFileError as exc:
        return f"error: {exc}"


def same_record(a: object, b: object) -> bool:
    """Equal and of the same types all the way down (1 and 1.0, a list and a tuple differ in repr)."""
    return a == b and repr(a) == repr(b)


def agree(raw: bytes, monkeypatch) -> object:
    fast = compiled_schema.decode(raw)
    slow = reference(raw, monkeypatch)
    if fast is not None:
        assert not isinstance(slow, str), f"compiled decoder accepted what the reference refuses: {slow}"
        assert same_record(fast, slow)
    with_fast = outcome(raw)
    assert same_record(with_fast, slow) if not isinstance(slow, str) else with_fast == slow
    view = compiled_schema.decode(raw, records=False)  # the fleet index's form: same rows
    if view is not None:
        assert not isinstance(slow, str), f"compiled decoder accepted what the reference refuses: {slow}"
        assert repr(tables.measurement_rows(view, "case.json")) == repr(tables.measurement_rows(slow, "case.json"))
        assert repr(tables.file_row(view, "case.json", 1, 2, "ab", None, ())) == \
            repr(tables.file_row(slow, "case.json", 1, 2, "ab", None, ()))
    assert (view is None) == (fast is None)
    return fast


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(DATA)))
def test_every_committed_result_file_gets_the_same_answer(path, monkeypatch):
    agree(path.read_bytes(), monkeypatch)


def test_the_compiled_decoder_is_used_for_valid_files_of_both_versions(monkeypatch):
    # else the agreement above would hold trivially, the compiled decoder passing on everything
    v1 = (DATA / "hostile" / "result" / "valid-base.json").read_bytes()
    v2 = json.dumps(to_dict(from_dict(json.loads(v1))), indent=1).encode()
    assert json.loads(v1)["schema_version"] == 1 and json.loads(v2)["schema_version"] == SCHEMA_VERSION == 3
    for raw in (v1, v2):
        assert agree(raw, monkeypatch) is not None
    # every committed file the reference accepts, except those routed to it untried (surrogate
    # escapes, 20-digit runs: see the module's docstring)
    valid = [p for p in COMMITTED if not isinstance(reference(p.read_bytes(), monkeypatch), str)]
    routed = [p for p in valid if b"\\ud" in p.read_bytes().lower() or compiled_schema.long_digit_run(p.read_bytes())]
    assert len(valid) >= 6 and [p.name for p in routed] == ["surrogate-pair-host.json"]
    assert [p.name for p in valid if p not in routed and compiled_schema.decode(p.read_bytes()) is None] == []


def _with(raw: bytes, edit) -> bytes:
    data = json.loads(raw)
    edit(data)
    return json.dumps(data).encode()


V1 = (DATA / "hostile" / "result" / "valid-base.json").read_bytes()


@pytest.mark.parametrize("name,edit,problem", [
    ("a version-1 file with a version-2 field", lambda d: d["run"].update(source="imported"), "new in schema_version 2"),
    ("a 20-digit integer", lambda d: d["measurements"][0]["extra"].update(big=12345678901234567890123), "64 bits"),
    ("a 19-digit integer over 2**63", lambda d: d["measurements"][0]["extra"].update(big=9300000000000000000), "64 bits"),
    ("an unknown field", lambda d: d["devices"][0].update(colour="green"), "unknown field 'colour'"),
    ("a bool for an integer", lambda d: d["devices"][0].update(index=True), "must be an integer"),
    ("a float for an integer", lambda d: d["measurements"][0]["stats"].update(n=3.0), "must be an integer"),
    ("a rate over 1e30", lambda d: d["measurements"][0].update(rate=2e30), "size at most 1e+30"),
    ("a negative device index", lambda d: d["measurements"][0].update(device_index=-1), "from 0 to 2**63-1"),
    ("a timestamp that is not one", lambda d: d["run"].update(started_utc="yesterday"), "ISO 8601"),
    ("params nested 17 levels", lambda d: d["measurements"][0].update(params={"a": json.loads("[" * 17 + "]" * 17)}), "nested more"),
    ("nvlink entries that are not objects", lambda d: d["devices"][0].update(nvlink=[1]), "must be an object"),
    ("an ok record with a zero rate", lambda d: d["measurements"][0].update(rate=0.0), "not positive"),
    ("a device index naming no device", lambda d: d["measurements"][0].update(device_index=7), "names no device"),
    ("no device measured at once", lambda d: (d.update(schema_version=2), d["measurements"][0].update(concurrent_devices=0)),
     "concurrent_devices must be at least 1"),
])
def test_refusals_keep_the_reference_message(name, edit, problem, monkeypatch):
    raw = _with(V1, edit)
    assert compiled_schema.decode(raw) is None
    slow = reference(raw, monkeypatch)
    assert isinstance(slow, str) and problem in slow, slow
    assert outcome(raw) == slow


@pytest.mark.parametrize("name,text,compiled", [
    ("a duplicate key, the last one counts",
     lambda t: t.replace('"status": "ok"', '"status": "error", "status": "ok"', 1), True),
    ("an unknown top-level name, ignored as from_dict ignores it",
     lambda t: t.replace("{", '{"note": [1, {"a": 2}],', 1), True),
    ("an integer where a float is expected becomes a float",
     lambda t: t.replace('"warmup_s": 0.025', '"warmup_s": 1', 1), True),
    ("a surrogate pair (astral character) in a string, handed to from_dict untried",
     lambda t: t.replace('"host": "', '"host": "\\ud83d\\ude00', 1), False),
])
def test_edge_cases_decode_as_the_reference_does(name, text, compiled, monkeypatch):
    raw = text(V1.decode()).encode()
    assert raw != V1
    assert not isinstance(reference(raw, monkeypatch), str)
    assert (agree(raw, monkeypatch) is not None) == compiled  # else the agreement holds trivially


V2_BASE = json.loads(json.dumps(to_dict(from_dict(BASE))))
V2_BASE["run"]["source"] = "imported"
V2_BASE["run"]["imported_from"] = {"tool": "nccl-tests", "line": 12}
for _m in V2_BASE["measurements"]:
    _m["concurrent_devices"] = 1


@settings(max_examples=(25 if LONG else 1) * 400, deadline=None, derandomize=not LONG, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(raw_v1=mutated_result(), raw_v2=mutated_result(V2_BASE))
def test_fuzz_compiled_decoder_agrees_with_the_reference(raw_v1, raw_v2, monkeypatch):
    for version, raw in ((1, raw_v1), (2, raw_v2)):
        fast = agree(raw, monkeypatch)
        path = "compiled decoder" if fast is not None else "reference path, " + (
            "refused" if isinstance(reference(raw, monkeypatch), str) else "accepted")
        event(f"version {version}: {path}")
