"""Fuzz test (issue 12): hypothesis mutates a valid result file, spec file, rule file and catalog
file, and generates option values, then runs the commands that read them in-process and checks
the user-facing contract (tests/hostile_harness.check_outcome): exit code in the documented set,
no traceback, a refusal is one line on stderr naming the file or option, output is terminal-safe,
no input file is modified, a failed command leaves no output behind.

Bounded for CI (fixed seed, ~30 s on a 2-core machine); TPPBENCH_FUZZ_PROFILE=long runs 25 times
as many examples with fresh random seeds. Inputs it finds that fail go into the regression
corpus (tests/data/hostile/make_corpus.py) with a note.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("hypothesis")  # a GPU host may lack it (scripts/gpu-check.sh collects every module)

from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.hostile_harness import (
    CATALOG_FILE, DEVICES_DIR, REPO, RULE_FILE, RULES_DIR, VALID_RESULT, check_outcome, data_commands, digest,
    env, environment_for, invoke, leftovers, result_commands,
)

LONG = os.environ.get("TPPBENCH_FUZZ_PROFILE", "") == "long"
SCALE = 25 if LONG else 1


def budget(examples: int):
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=not LONG, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


BASE = json.loads(VALID_RESULT.read_text())
BASE_SPEC = (REPO / "tests/data/thresholds/example-part.toml").read_text()
BASE_RULE = (RULES_DIR / RULE_FILE).read_text()
BASE_CATALOG = (DEVICES_DIR / CATALOG_FILE).read_text()

# Text the JSON or TOML writer cannot produce: spliced in verbatim in place of a value.
LITERALS = ["1e999", "-1e999", "9" * 5000, "NaN", "Infinity", "-0", "1e-400", "[" * 3000 + "]" * 3000,
            "18446744073709551616", "true", "null", '"\\ud800"', '"\\udc00x"', '"\\u001b[2J"', "{}", "[]"]
TOML_LITERALS = ["inf", "-inf", "nan", "1e999", "-1", "0", "9" * 5000, "1" + "0" * 400, '"x"', "true",
                 "[" * 600 + "]" * 600, '"\\u001b[2J"', '"\\ud800"', "{ a = 1 }", "1979-05-27", "0x7fffffffffffffffffff",
                 '""', "[]", "1e308"]
HOSTILE_TEXT = ["", " ", "\x1b[2J", "\x1b]0;x\x07", "\ud800", "\u202e", "a\nb", "\x00", "\x9b31m", "%s%n"]


def _get(data: Any, path: tuple) -> Any:
    for step in path:
        data = data[step]
    return data


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:3]):
            out += _paths(v, prefix + (i,))
    return out



json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 0.0, -0.0, 1e30, 1.0000001e30, 1e308, 5e-324, 2**63, 2**63 - 1, 1]),
    st.text(max_size=12), st.sampled_from(HOSTILE_TEXT),
)
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=8)


hostile_text = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=12),
                         st.lists(st.sampled_from(HOSTILE_TEXT + ["x", "matmul"]), min_size=1, max_size=4).map("".join))


def like(original: Any) -> st.SearchStrategy:
    """A value of the original's JSON type (it passes the type checks and reaches the commands'
    logic): hostile text, extreme but finite numbers, small or extreme integers."""
    if isinstance(original, bool):
        return st.booleans()
    if isinstance(original, int):
        return st.one_of(st.integers(-3, 3), st.sampled_from([2**63 - 1, 2**31, 10**18]))
    if isinstance(original, float):
        return st.one_of(st.floats(min_value=-1e30, max_value=1e30, allow_nan=False),
                         st.sampled_from([1e30, 5e-324, 1e-30, 0.0, -0.0, 1.0]))
    if isinstance(original, str):
        return hostile_text
    if isinstance(original, list) and original and all(isinstance(v, str) for v in original):
        return st.lists(hostile_text, max_size=3)
    return json_value


def _set(data: Any, path: tuple, value: Any) -> None:
    for step in path[:-1]:
        data = data[step]
    data[path[-1]] = value


def _delete(data: Any, path: tuple) -> None:
    for step in path[:-1]:
        data = data[step]
    del data[path[-1]]


def _leaf_paths(paths: list[tuple], base: Any) -> list[tuple]:
    return [p for p in paths if not isinstance(_get(base, p), (dict, list)) or (
        isinstance(_get(base, p), list) and all(isinstance(v, str) for v in _get(base, p)))]


@st.composite
def mutated_result(draw, base: Any = None) -> bytes:
    """A mutation of the valid result file (or of `base`, a result-file dict)."""
    base = BASE if base is None else base
    paths = [p for p in _paths(base) if p]
    leaf_paths = _leaf_paths(paths, base)
    data = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 2))):
        # half the mutations keep the JSON type of a leaf (they pass validation and reach the
        # commands' logic); the others break types, numbers, structure or fields
        action = draw(st.sampled_from(["like"] * 5 + ["set", "literal", "delete", "unknown"]))
        path = draw(st.sampled_from(leaf_paths if action == "like" else paths))
        try:
            if action == "like":
                _set(data, path, draw(like(_get(data, path))))
            elif action == "set":
                _set(data, path, draw(json_value))
            elif action == "literal":
                _set(data, path, "@LITERAL@")
            elif action == "delete":
                _delete(data, path)
            else:
                _set(data, path[:-1] + (draw(st.text(min_size=1, max_size=8)),), draw(json_value))
        except (KeyError, IndexError, TypeError):
            pass  # the path went away with an earlier mutation
    text = json.dumps(data, indent=draw(st.sampled_from([None, 0, 1])))
    text = text.replace('"@LITERAL@"', draw(st.sampled_from(LITERALS)))
    raw = text.encode()
    return _byte_mutation(draw, raw) if draw(st.integers(0, 4)) == 0 else raw


def _byte_mutation(draw, raw: bytes) -> bytes:
    at = draw(st.integers(0, max(0, len(raw) - 1)).map(lambda i: len(raw) - 1 - i))  # shrinks to the end
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
    if kind == "truncate":
        return raw[:at]
    if kind == "flip":
        return raw[:at] + bytes([raw[at] ^ (1 << draw(st.integers(0, 7)))]) + raw[at + 1:] if raw else raw
    if kind == "insert":
        return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    return raw[:at] + raw[at + draw(st.integers(1, 64)):]


@st.composite
def mutated_toml(draw, base: str) -> bytes:
    lines = base.splitlines()
    assignments = [i for i, line in enumerate(lines) if re.match(r"^\s*[A-Za-z0-9_.\"-]+\s*=", line)]
    for _ in range(draw(st.integers(1, 2))):
        i = draw(st.sampled_from(assignments))
        action = draw(st.sampled_from(["value", "value", "inline", "delete"]))
        key = lines[i].split("=", 1)[0]
        if action == "value":
            lines[i] = f"{key}= {draw(st.sampled_from(TOML_LITERALS))}"
        elif action == "inline":  # a number inside an inline table: value = 4800.0 -> value = <x>
            lines[i] = re.sub(r"(value|min|max) = [^,}]+", lambda m: f"{m.group(1)} = {draw(st.sampled_from(TOML_LITERALS))}",
                              lines[i], count=1)
        else:
            lines[i] = ""
    raw = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    return _byte_mutation(draw, raw) if draw(st.integers(0, 5)) == 0 else raw


def _run_on_file(raw: bytes, name: str, pick: int, commands) -> None:
    with tempfile.TemporaryDirectory(prefix="tppbench-fuzz-") as tmp:
        inputs, work = Path(tmp, "in"), Path(tmp, "work")
        inputs.mkdir()
        work.mkdir()
        path = inputs / name
        path.write_bytes(raw)
        before = digest([path, VALID_RESULT])
        argv = commands(str(path), work)[pick % len(commands(str(path), work))]
        outcome = invoke(argv)
        event(f"{argv[0]} exit {outcome.code}")  # --hypothesis-show-statistics: how deep examples got
        check_outcome(outcome, {0, 1}, [str(path)])
        if outcome.code:
            assert leftovers(work) == [], f"{argv}: left {leftovers(work)}"
        assert digest([path, VALID_RESULT]) == before, f"{argv}: modified an input"


@budget(300)
@given(raw=mutated_result(), pick=st.integers(0, 8))
def test_fuzz_result_files(raw, pick):
    _run_on_file(raw, "fuzz.json", pick, result_commands)


@budget(80)
@given(raw=mutated_toml(BASE_SPEC), pick=st.integers(0, 2))
def test_fuzz_spec_files(raw, pick):
    _run_on_file(raw, "spec.toml", pick, lambda path, work: data_commands("spec", path))


@budget(60)
@given(kind=st.sampled_from(["rules", "catalog"]), data=st.data(), pick=st.integers(0, 3))
def test_fuzz_rule_and_catalog_files(kind, data, pick):
    raw = data.draw(mutated_toml(BASE_RULE if kind == "rules" else BASE_CATALOG))
    with tempfile.TemporaryDirectory(prefix="tppbench-fuzz-") as tmp:
        values = environment_for(kind, raw, Path(tmp))
        with env(values):
            commands = data_commands(kind, "")
            outcome = invoke(commands[pick % len(commands)])
        check_outcome(outcome, {0, 1}, [next(iter(values.values()))])


option_text = st.one_of(
    st.text(max_size=24), st.sampled_from(HOSTILE_TEXT),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "9" * 5000, "-1", "0", "1", "0.5", "1e-400", "2026-01-31",
                     "0000-00-00", "all", "us-2023-10", "controlled", "1K", "64M", "0,1", ",", "matmul"]),
    st.floats().map(str), st.integers().map(str),
)
VALID = str(VALID_RESULT)
OPTIONS = [
    (["compare", VALID, VALID], "--factor"), (["compare", VALID, VALID], "--alpha"),
    (["compare", VALID, VALID], "--fail-on"), (["fleet", VALID], "--threshold"), (["fleet", VALID], "--top"),
    (["check", "a100-sxm"], "--near"), (["check", "a100-sxm"], "--as-of"), (["check", "a100-sxm"], "--rules"),
    (["report", VALID, "--markdown"], "--near-pct"), (["report", VALID, "--markdown"], "--as-of"),
    (["report", VALID, "--markdown"], "--title"), (["report", VALID, "--markdown"], "--rules"),
    (["whatif", "a100-sxm"], "--count"),
]
# run: every value must end before measuring: refused at the option, at an --out it cannot create
# in, or (fuzzing --out itself) at an --only that matches no case. Run in a scratch folder anyway.
RUN_OPTIONS = ["--only", "--out", "--label", "--timeout", "--min-bytes", "--max-bytes", "--step-factor",
               "--nproc", "--gpus", "--suite", "--mode", "--device"]


@budget(100)
@given(which=st.integers(0, len(OPTIONS) - 1), value=option_text)
def test_fuzz_option_values(which, value):
    argv, option = OPTIONS[which]
    outcome = invoke([*argv, option, value])
    check_outcome(outcome, {0, 1, 2}, [option, "--rules", "rule", "regime"])


@budget(50)
@given(option=st.sampled_from(RUN_OPTIONS), value=option_text)
def test_fuzz_run_option_values(option, value):
    args = ["run", option, value] + (["--out", "/proc/x"] if option != "--out" else ["--only", "no-such-case"])
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="tppbench-fuzz-") as tmp:
        os.chdir(tmp)
        try:
            outcome = invoke(args)
        finally:
            os.chdir(here)
        assert os.listdir(tmp) == [], f"{args}: created {os.listdir(tmp)}"
    check_outcome(outcome, {2}, [option, "--out", "--only", "--gpus", "--nproc"])

