"""`tppbench compare`: golden pairs covering every classification, context, exit codes, BASE=ref:*."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "data" / "results"))
import synth  # noqa: E402

from bench.cli import main  # noqa: E402
from results.files import store  # noqa: E402
from results.analysis.compare import CHANGES, Named, compare  # noqa: E402

DATA = Path(__file__).parent / "data" / "results"
GOLDEN = DATA / "compare"
BASE = GOLDEN / "golden-baseline.json"
CURRENT = GOLDEN / "golden-current.json"
OTHER_MODEL = GOLDEN / "golden-a100.json"
EXPECTED = json.loads((DATA / "compare-expected.json").read_text())


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def named(path: Path) -> Named:
    return Named(str(path), store.load(path))


# --------------------------------------------------------------------------- golden pairs


def test_golden_pair_classifies_every_case_as_committed():
    comp = compare(named(BASE), [named(CURRENT)])
    got = {row.key: row.change for row in comp.rows}
    assert got == EXPECTED


def test_golden_pairs_cover_every_classification():
    same_model = compare(named(BASE), [named(CURRENT)])
    other_model = compare(named(BASE), [named(OTHER_MODEL)])
    seen = {r.change for r in same_model.rows} | {r.change for r in other_model.rows}
    assert seen == set(CHANGES)


def test_golden_pair_uses_both_significance_tests():
    rows = {r.key: r for r in compare(named(BASE), [named(CURRENT)]).rows}
    bf16 = rows[synth.KEYS["bf16"]]
    assert bf16.test == "mann-whitney-u" and bf16.p_value < 0.05 and bf16.ratio < 1 / 1.05
    copy = rows[synth.KEYS["copy"]]
    assert copy.test == "ci-overlap" and copy.change == "regressed"
    tf32 = rows[synth.KEYS["tf32"]]
    assert tf32.test == "ci-overlap" and tf32.change == "noisy"
    h2d = rows[synth.KEYS["h2d_pinned"]]
    assert h2d.test == "mann-whitney-u" and h2d.p_value >= 0.05 and h2d.change == "noisy"


def test_other_device_model_is_incomparable_with_reason():
    rows = compare(named(BASE), [named(OTHER_MODEL)]).rows
    both = [r for r in rows if r.baseline_rate is not None and r.current_rate is not None]
    assert both and all(r.change == "incomparable" for r in both)
    assert all("device model" in r.reason for r in both)


def test_context_lists_what_differs_and_throttled_cases():
    comp = compare(named(BASE), [named(CURRENT)])
    fields = {d.field: (d.baseline, d.current) for d in comp.differences}
    assert fields["driver"] == ("570.86.15", "575.51.03")
    assert fields["device.power_limit_w"] == (700.0, 500.0)
    assert "torch" not in fields  # same on both sides: not shown
    assert [(t.side, t.key) for t in comp.throttled] == [("current", synth.KEYS["bf16"])]


def test_identical_runs_are_all_unchanged():
    comp = compare(named(BASE), [named(BASE)])
    assert {r.change for r in comp.rows} == {"unchanged"}
    assert not comp.differences


def test_swapping_sides_swaps_improved_and_regressed():
    forward = {r.key: r.change for r in compare(named(BASE), [named(CURRENT)]).rows}
    backward = {r.key: r.change for r in compare(named(CURRENT), [named(BASE)]).rows}
    swap = {"improved": "regressed", "regressed": "improved", "new": "missing", "missing": "new"}
    for key, change in forward.items():
        if change in swap:
            assert backward[key] == swap[change], key


def test_factor_widens_unchanged():
    comp = compare(named(BASE), [named(CURRENT)], factor=1.5)
    changed = {r.change for r in comp.rows} & {"improved", "regressed", "noisy"}
    assert not changed


def test_one_baseline_device_serves_every_current_device():
    reference = synth.h100_run(1, "synthetic-ref", gpus=1)
    current = synth.h100_run(2, "synthetic-node", gpus=2, gpu_scale={1: 0.8})
    comp = compare(Named("ref", reference), [Named("cur", current)])
    by_device = {}
    for row in comp.rows:
        by_device.setdefault(row.device, set()).add(row.change)
    assert by_device["gpu0"] == {"unchanged"}
    assert by_device["gpu1"] == {"regressed"}
    assert len(comp.rows) == 2 * len(synth.H100_CASES)


def test_matching_device_sets_align_by_index():
    base = synth.h100_run(1, "synthetic-node", gpus=2)
    cur = synth.h100_run(2, "synthetic-node", gpus=2, gpu_scale={0: 1.2})
    rows = compare(Named("a", base), [Named("b", cur)]).rows
    assert {r.change for r in rows if r.device == "gpu0"} == {"improved"}
    assert {r.change for r in rows if r.device == "gpu1"} == {"unchanged"}


# --------------------------------------------------------------------------- CLI and exit codes


def test_cli_text_shows_context_above_table_and_exit_0(capsys):
    code, out, err = cli(capsys, "compare", str(BASE), str(CURRENT))
    assert code == 0 and err == ""
    assert out.index("context that differs") < out.index("case ")
    assert "575.51.03" in out and "regressed" in out


def test_cli_fail_on_regressed_exits_3(capsys):
    code, out, _ = cli(capsys, "compare", str(BASE), str(CURRENT), "--fail-on", "regressed")
    assert code == 3


def test_cli_fail_on_without_matches_exits_0(capsys):
    code, _, _ = cli(capsys, "compare", str(BASE), str(BASE), "--fail-on", "regressed,missing")
    assert code == 0


def test_cli_fail_on_several_classes(capsys):
    assert cli(capsys, "compare", str(BASE), str(CURRENT), "--fail-on", "incomparable")[0] == 3
    assert cli(capsys, "compare", str(BASE), str(CURRENT), "--fail-on", "new,missing")[0] == 3


def test_cli_json_document(capsys):
    code, out, _ = cli(capsys, "compare", str(BASE), str(CURRENT), "--json", "--fail-on", "regressed")
    assert code == 3
    doc = json.loads(out)
    assert set(doc) >= {"context", "rows", "counts", "factor", "baseline", "currents"}
    assert {r["key"]: r["change"] for r in doc["rows"]} == EXPECTED
    for row in doc["rows"]:
        assert set(row) >= {"key", "change", "ratio", "baseline_rate", "current_rate", "rate_unit"}
    assert {d["field"] for d in doc["context"]["differences"]} == {"driver", "device.power_limit_w"}
    assert doc["counts"]["regressed"] == 2


def test_cli_markdown(capsys):
    code, out, _ = cli(capsys, "compare", str(BASE), str(CURRENT), "--markdown")
    assert code == 0
    assert "| case |" in out and "### Context that differs" in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--factor", "0.9"], "--factor"),
        (["--factor", "abc"], "--factor"),
        (["--fail-on", "worse"], "unknown classification"),
        (["--json", "--markdown"], "not allowed with"),
        (["--alpha", "2"], "--alpha"),
    ],
)
def test_cli_bad_options_exit_2_one_line(capsys, argv, fragment):
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(BASE), str(CURRENT), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_cli_bad_file_is_one_line_error(capsys, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text(BASE.read_text()[:500])
    code, _, err = cli(capsys, "compare", str(BASE), str(broken))
    assert code == 1 and str(broken) in err and err.count("\n") == 1
    code, _, err = cli(capsys, "compare", str(tmp_path / "nope.json"), str(BASE))
    assert code == 1 and "nope.json" in err


def test_cli_empty_current_folder_is_an_error_not_an_empty_pass(capsys, tmp_path):
    code, out, err = cli(capsys, "compare", str(BASE), str(tmp_path), "--fail-on", "regressed")
    assert code == 1 and "no result files" in err and err.count("\n") == 1 and out == ""


def test_cli_strings_from_files_are_inert_in_markdown_and_text(capsys, tmp_path):
    evil = synth.h100_run(3, "<script>alert(1)</script>|\x1b[31mred", gpus=1)
    path = store.save(evil, tmp_path)
    _, md, _ = cli(capsys, "compare", str(BASE), str(path), "--markdown")
    assert "<script>" not in md and "&lt;script&gt;" in md
    _, text, _ = cli(capsys, "compare", str(BASE), str(path))
    assert "\x1b" not in text


def test_compare_does_not_load_pandas_or_matplotlib():
    code = (
        "import sys; from bench.cli import main; "
        f"rc = main(['compare', {str(BASE)!r}, {str(CURRENT)!r}, '--json']); "
        "assert rc == 0; "
        "assert 'pandas' not in sys.modules and 'matplotlib' not in sys.modules, 'heavy import'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- BASE = reference


@pytest.fixture()
def reference_dir(tmp_path):
    folder = tmp_path / "reference"
    old = synth.h100_run(11, "synthetic-ref-old", started_utc="2025-06-01T00:00:00Z")
    new = synth.h100_run(12, "synthetic-ref-new", started_utc="2026-01-01T00:00:00Z")
    other = synth.h100_run(13, "synthetic-ref-a100", name=synth.A100)
    for result, name in ((old, "h100-old.json"), (new, "h100-new.json"), (other, "a100.json")):
        store.save(result, folder).rename(folder / name)
    return folder


def test_ref_auto_picks_newest_reference_of_the_same_model(capsys, reference_dir):
    current = synth.h100_run(14, "synthetic-mine")
    path = store.save(current, reference_dir.parent / "mine")
    code, out, _ = cli(capsys, "compare", "ref:auto", str(path), "--reference-dir",
                       str(reference_dir), "--json")
    doc = json.loads(out)
    assert code == 0
    assert doc["baseline"]["source"] == "ref:h100-new.json"
    assert {r["change"] for r in doc["rows"]} <= {"unchanged", "noisy"}


def test_ref_dir_from_environment(capsys, reference_dir, monkeypatch):
    monkeypatch.setenv("TPPBENCH_REFERENCE_DIR", str(reference_dir))
    current = synth.h100_run(15, "synthetic-mine", name=synth.A100)
    path = store.save(current, reference_dir.parent / "mine")
    code, out, _ = cli(capsys, "compare", "ref:auto", str(path), "--json")
    assert code == 0 and json.loads(out)["baseline"]["source"] == "ref:a100.json"
    code, out, _ = cli(capsys, "compare", "ref:h100-old", str(path), "--json")
    assert code == 0 and json.loads(out)["baseline"]["source"] == "ref:h100-old.json"


def test_ref_auto_without_a_match_is_a_clear_error(capsys, reference_dir):
    current = synth.h100_run(16, "synthetic-mine", name="NVIDIA L4")
    path = store.save(current, reference_dir.parent / "mine")
    code, _, err = cli(capsys, "compare", "ref:auto", str(path), "--reference-dir", str(reference_dir))
    assert code == 1 and "no reference measurement for NVIDIA L4" in err and err.count("\n") == 1
    code, _, err = cli(capsys, "compare", "ref:nope", str(path), "--reference-dir", str(reference_dir))
    assert code == 1 and "no reference file 'nope'" in err


def test_ref_auto_with_empty_reference_folder(capsys, tmp_path):
    path = store.save(synth.h100_run(17, "synthetic-mine"), tmp_path / "mine")
    (tmp_path / "empty").mkdir()
    code, _, err = cli(capsys, "compare", "ref:auto", str(path), "--reference-dir", str(tmp_path / "empty"))
    assert code == 1 and "available: none" in err


# --------------------------------------------------------------------------- edge cases


def test_skipped_on_both_sides_is_unchanged_and_errors_are_missing():
    case = synth._case("fp32")
    rng = random.Random(5)
    base = synth.run("synthetic-a", [synth.skipped(case, "no fp32 here"),
                                     synth.measurement(rng, synth._case("bf16"), 7e14)])
    bad = synth.measurement(rng, synth._case("bf16"), 7e14)
    from dataclasses import replace

    bad = replace(bad, status="error", reason="correctness check failed", rate=None)
    cur = synth.run("synthetic-b", [synth.skipped(case, "no fp32 here"), bad])
    rows = {r.key: r for r in compare(Named("a", base), [Named("b", cur)]).rows}
    assert rows[synth.KEYS["fp32"]].change == "unchanged"
    assert rows[synth.KEYS["bf16"]].change == "missing"
    assert "correctness" in rows[synth.KEYS["bf16"]].reason


def test_a_new_failure_after_a_skip_is_missing_not_unchanged():
    from dataclasses import replace

    case = synth._case("fp8")
    rng = random.Random(6)
    base = synth.run("synthetic-a", [synth.skipped(case, "fp8 needs compute capability 8.9")])
    failed = replace(synth.measurement(rng, case, 1e15), status="error", reason="RuntimeError: boom",
                     rate=None)
    cur = synth.run("synthetic-b", [failed])
    (row,) = compare(Named("a", base), [Named("b", cur)]).rows
    assert row.change == "missing" and "boom" in row.reason


def test_several_current_files_each_get_rows(capsys):
    comp = compare(named(BASE), [named(CURRENT), named(BASE)])
    sources = {r.current_source for r in comp.rows}
    assert sources == {str(CURRENT), str(BASE)}
    code, out, _ = cli(capsys, "compare", str(BASE), str(CURRENT), str(BASE), "--json")
    assert {r["current"] for r in json.loads(out)["rows"]} == {str(CURRENT), str(BASE)}
