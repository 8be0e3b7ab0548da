"""Writes the hostile-input regression corpus: inputs that once crashed, hung or were wrongly
accepted (issue 12's 674-input survey, and what the fuzz test found since), each with a note.

Every file here is derived from a valid file by one mutation, so each case tests one thing.
`cases.json` lists them: file, kind (result | spec | rules | catalog), the exit code every
command that reads it must give (0: must be accepted and must not crash; 1: refused in one line),
and the note. Special files (FIFO, /dev/zero, symlink loops, a 100 MB sparse file) cannot live in
git: tests/test_hostile_input.py makes them at test time. Regenerate with:

    .venv/bin/python tests/data/hostile/make_corpus.py
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
BASE_RESULT = REPO / "tests/data/results/compare/golden-a100.json"
BASE_SPEC = REPO / "tests/data/thresholds/example-part.toml"
BASE_RULE = REPO / "thresholds/rules/us-2023-10.toml"
BASE_CATALOG = REPO / "thresholds/devices/04-huawei.toml"

Case = dict[str, Any]
CASES: list[Case] = []


def case(name: str, kind: str, exit_code: int, note: str, content: bytes) -> None:
    suffix = ".json" if kind == "result" else ".toml"
    folder = HERE / kind
    folder.mkdir(exist_ok=True)
    (folder / f"{name}{suffix}").write_bytes(content)
    CASES.append({"file": f"{kind}/{name}{suffix}", "kind": kind, "exit": exit_code, "note": note})


def base() -> dict:
    """A small valid result: four ok cases of the A100 fixture (five samples each) and one skipped."""
    data = json.loads(BASE_RESULT.read_text())
    keep = [m for m in data["measurements"] if m["variant"] in ("fp64", "fp16", "tf32", "copy", "h2d_pinned")]
    for m in keep:
        m["times_s"] = m["times_s"][:5]
        if m["variant"] == "tf32":
            m.update(status="skipped", reason="not measured in this fixture", rate=None, stats=None, times_s=[])
    data["measurements"] = keep
    return data


def base_text() -> str:
    return json.dumps(base(), indent=0)


def result(name: str, note: str, mutate: Callable[[dict], Any], exit_code: int = 1) -> None:
    data = base()
    mutate(data)
    case(name, "result", exit_code, note, json.dumps(data, indent=0).encode())


def result_text(name: str, note: str, edit: Callable[[str], str], exit_code: int = 1) -> None:
    """For what json.dumps cannot write (1e999, 5,000-digit literals, raw escapes)."""
    case(name, "result", exit_code, note, edit(base_text()).encode("utf-8", "surrogatepass"))


def first_ok(data: dict) -> dict:
    return next(m for m in data["measurements"] if m["status"] == "ok")


def set_rate_literal(literal: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        data = json.loads(text)
        first_ok(data)["rate"] = "@RATE@"
        return json.dumps(data, indent=0).replace('"@RATE@"', literal)

    return edit


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def results() -> None:
    raw = base_text()
    case("valid-base", "result", 0, "the unmutated base of every result case: accepted", raw.encode())
    result_text("nesting-5000-in-extra", "a valid file whose extra is 5,000 levels deep: RecursionError in "
                "the loader of all 8 reading commands; plain fleet stopped instead of skipping",
                lambda t: t.replace('"extra": {}', '"extra": {"x": ' + "[" * 5000 + "]" * 5000 + "}", 1))
    result_text("nesting-20000-top", "20,000 open brackets: the JSON scanner's own recursion guard",
                lambda t: "[" * 20_000)
    result("nesting-40-in-params", "40 levels in params: parses, but deeper than a result file ever is "
           "(MAX_NESTING 16); json.dumps of it in compare --json or the report could recurse",
           lambda d: first_ok(d)["params"].update(deep=nested(40)))
    result_text("int-5000-digits-rate", "an integer literal over 4,300 digits: ValueError (Exceeds the "
                "limit for integer string conversion) in the loader", set_rate_literal("9" * 5000))
    result_text("rate-1e999", "1e999 parses as infinity and passed the NaN/Infinity refusal: show/check/"
                "fleet printed inf, check --json and report crashed", set_rate_literal("1e999"))
    result_text("rate-minus-1e999", "-1e999: negative infinity", set_rate_literal("-1e999"))
    result_text("stats-median-1e999", "1e999 in a nested record (stats.median)",
                lambda t: re.sub(r'"median": [0-9.e+-]+', '"median": 1e999', t, count=1))
    result("rate-1e308-all", "all rates 1e308: finite, but report crashed in a plot (axis limits NaN or "
           "Inf); now refused above 1e30 (MAX_MAGNITUDE)",
           lambda d: [m.update(rate=1e308) for m in d["measurements"] if m["status"] == "ok"])
    result("rate-1e30-all", "all rates (and their stats) at the 1e30 ceiling: accepted, and every "
           "command (report plots too) must still work", _all_rates(1e30), exit_code=0)
    result_text("times-1e999", "infinity among raw sample times",
                lambda t: t.replace('"times_s": [', '"times_s": [1e999, ', 1))
    result("times-negative", "a negative sample time", lambda d: first_ok(d).update(times_s=[-1.0, 0.1]))
    result("times-zero", "a zero sample time (a rate of work/0)", lambda d: first_ok(d).update(times_s=[0, 0.1]))
    result_text("extra-1e999", "1e999 in a free-form field (extra)",
                lambda t: t.replace('"extra": {}', '"extra": {"x": 1e999}', 1))
    result("extra-int-2e70", "an integer in extra too large for 64 bits (pandas/Parquet overflow)",
           lambda d: first_ok(d)["extra"].update(x=2**70))
    result("rate-zero-ok", "an ok record with rate 0", lambda d: first_ok(d).update(rate=0.0))
    result("rate-negative-ok", "an ok record with a negative rate", lambda d: first_ok(d).update(rate=-5.0))
    result("all-ok-rates-zero", "every ok rate 0: fleet crashed in idxmin (0/0 ratios)",
           lambda d: [m.update(rate=0.0) for m in d["measurements"] if m["status"] == "ok"])
    result("ok-without-samples", "an ok record with no raw samples and no stats (and work done)",
           lambda d: first_ok(d).update(times_s=[], stats=None))
    result("device-index-1e20", "device_index 10**20: OverflowError in fleet (Int64 column)",
           lambda d: first_ok(d).update(device_index=10**20))
    result("device-index-float", "device_index 1e20 as a float", lambda d: first_ok(d).update(device_index=1e20))
    result("device-index-99", "device_index that names no device in the file",
           lambda d: first_ok(d).update(device_index=99))
    result("device-index-negative", "a negative device_index", lambda d: first_ok(d).update(device_index=-1))
    result("nvlink-not-objects", "nvlink entries that are not objects: AttributeError in check and report",
           lambda d: d["devices"][0].update(nvlink=[1, "x", None]))
    result("schema-version-true", "schema_version true was accepted as version 1",
           lambda d: d.update(schema_version=True))
    result("schema-version-float", "schema_version 1.0 was accepted as version 1",
           lambda d: d.update(schema_version=1.0))
    result("schema-version-string", "schema_version \"1\"", lambda d: d.update(schema_version="1"))
    result("started-utc-not-timestamp", "started_utc that is not a timestamp",
           lambda d: d["run"].update(started_utc="yesterday"))
    result("world-size-zero", "world_size 0", lambda d: d["run"].update(world_size=0))
    result("key-null", "a required string field null (case key)", lambda d: first_ok(d).update(key=None))
    result("flags-null", "a list field null (flags): ', '.join(None) in show",
           lambda d: first_ok(d).update(flags=None))
    result("status-unknown", "an unknown status", lambda d: first_ok(d).update(status="fine"))
    result_text("lone-surrogate-host", "a lone surrogate (\\ud800) in the host name: UnicodeEncodeError in "
                "show, compare, fleet and report", lambda t: t.replace('"host": "', '"host": "\\ud800', 1))
    result_text("lone-surrogate-key", "a lone low surrogate (\\udc00) in a case key",
                lambda t: t.replace('"key": "', '"key": "\\udc00', 1))
    result_text("surrogate-pair-host", "a valid surrogate pair (an emoji, as json.dumps escapes it): "
                "accepted", lambda t: t.replace('"host": "', '"host": "\\ud83d\\ude00', 1), exit_code=0)
    result("escapes-everywhere", "ANSI escapes and control characters in host, device name, key, reason, "
           "flags, label: accepted, but show printed them raw (\\x1b[2J cleared the screen)",
           _escapes, exit_code=0)
    case("bom", "result", 1, "a UTF-8 byte-order mark before the JSON", b"\xef\xbb\xbf" + raw.encode())
    case("nul-byte", "result", 1, "a NUL byte inside the file", raw.encode().replace(b'"run"', b'"r\x00un"', 1))
    case("utf16", "result", 1, "the same JSON saved as UTF-16", raw.encode("utf-16"))
    case("latin1-byte", "result", 1, "one byte that is not UTF-8 (0xff)", raw.encode().replace(b'"run"', b'"r\xffn"', 1))
    case("truncated", "result", 1, "the first half of a valid file", raw.encode()[: len(raw) // 2])
    case("empty", "result", 1, "an empty file", b"")
    case("whitespace", "result", 1, "only blanks", b" \n\t \n")
    case("nan-literal", "result", 1, "NaN (Python's json accepts it by default)",
         re.sub(r'"rate": [0-9.e+-]+', '"rate": NaN', raw, count=1).encode())
    case("top-level-list", "result", 1, "a JSON list instead of an object", b"[1, 2, 3]\n")


def _all_rates(value: float) -> Callable[[dict], None]:
    def mutate(d: dict) -> None:
        for m in d["measurements"]:
            if m["status"] != "ok":
                continue
            m["rate"] = value
            if m.get("stats"):
                m["stats"].update(median=value, mean=value, min=value, max=value, p10=value, p90=value,
                                  iqr=0.0, stdev=0.0, cv=0.0)

    return mutate


def _escapes(d: dict) -> None:
    esc = "\x1b[2J\x1b]0;pwned\x07\r\n\t\u202e\x9b"
    d["run"]["host"] += esc
    d["run"]["label"] = "label" + esc
    d["devices"][0]["name"] += esc
    first_ok(d)["key"] += esc
    first_ok(d)["flags"] = ["flag" + esc]
    for m in d["measurements"]:
        if m["status"] != "ok":
            m["reason"] = (m["reason"] or "") + esc
            break


def tomls() -> None:
    spec = BASE_SPEC.read_text()
    case("nesting-500", "spec", 1, "a spec file with an array nested 500 levels: RecursionError in tomllib",
         spec.encode() + b"\nextra = " + b"[" * 500 + b"]" * 500 + b"\n")
    case("int-5000-digits", "spec", 1, "an integer over 4,300 digits: ValueError in tomllib",
         spec.replace("nvlink = 400.0", "nvlink = " + "9" * 5000).encode())
    case("int-10e400", "spec", 1, "an integer float() cannot hold (10**400): OverflowError in math.isfinite",
         spec.replace("nvlink = 400.0", "nvlink = 1" + "0" * 400).encode())
    case("float-inf", "spec", 1, "inf (valid TOML) as a figure", spec.replace("= 2039.0", "= inf", 1).encode())
    case("float-1e999", "spec", 1, "1e999 (tomllib reads it as inf)", spec.replace("= 2039.0", "= 1e999", 1).encode())
    case("bom", "spec", 1, "a UTF-8 byte-order mark", b"\xef\xbb\xbf" + spec.encode())
    case("nul-byte", "spec", 1, "a NUL byte", spec.encode().replace(b"name", b"na\x00me", 1))
    case("lone-surrogate", "spec", 1, "a \\ud800 escape (not a Unicode scalar value)",
         spec.replace('name = "', 'name = "\\ud800', 1).encode())
    case("escape-in-name", "spec", 0, "an ANSI escape in the part name: accepted, printed escaped",
         spec.replace('name = "', 'name = "\\u001b[2J', 1).encode())
    rule = BASE_RULE.read_text()
    case("threshold-negative", "rules", 1, "a negative threshold (every metric is a quantity >= 0)",
         rule.replace("value = 4800.0", "value = -4800.0", 1).encode())
    case("threshold-inf", "rules", 1, "an infinite threshold", rule.replace("value = 4800.0", "value = inf", 1).encode())
    case("threshold-nan", "rules", 1, "a NaN threshold", rule.replace("value = 4800.0", "value = nan", 1).encode())
    case("nesting-500", "rules", 1, "rule data nested 500 levels through TPPBENCH_RULES_DIR: RecursionError",
         rule.encode() + b"\nextra = " + b"[" * 500 + b"]" * 500 + b"\n")
    catalog = BASE_CATALOG.read_text()
    case("figure-1e999", "catalog", 1, "1e999 as a catalog figure",
         catalog.replace("value = 665.6", "value = 1e999", 1).encode())
    case("int-5000-digits", "catalog", 1, "an integer over 4,300 digits in the catalog",
         catalog.replace("value = 665.6", "value = " + "9" * 5000, 1).encode())


def main() -> None:
    for kind in ("result", "spec", "rules", "catalog"):
        shutil.rmtree(HERE / kind, ignore_errors=True)
    results()
    tomls()
    (HERE / "cases.json").write_text(json.dumps(CASES, indent=1, ensure_ascii=True) + "\n")
    print(f"{len(CASES)} cases in {HERE}")


if __name__ == "__main__":
    main()
