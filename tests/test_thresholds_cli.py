"""`tppbench check | devices | rules | whatif`: output shapes, exit codes, the library entry points,
and that thresholds/ never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from results.report.verdict_data import catalog_points, check_subjects

REPO = Path(__file__).resolve().parents[1]
SPEC = str(REPO / "tests" / "data" / "thresholds" / "example-part.toml")


def run_json(capsys, args: list[str]) -> tuple[int, dict]:
    rc = main(args)
    return rc, json.loads(capsys.readouterr().out)


def _in_process(args: list[str], capsys) -> tuple[int, str]:
    """(exit code, stderr) of `tppbench ARGS` run in this process (argparse errors exit via SystemExit)."""
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def _cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


# --------------------------------------------------------------------------- check


def test_check_json_shape_on_spec_file(capsys):
    rc, doc = run_json(capsys, ["check", SPEC, "--json", "--rules", "us-2022-10,us-2023-10"])
    assert rc == 0
    (s,) = doc["subjects"]
    assert s["subject"] == "Example part"
    assert s["metrics"]["tpp"] == {**s["metrics"]["tpp"], "value": 4992.0, "basis": "peak-declared"}
    assert s["metrics"]["performance_density"]["value"] == pytest.approx(6.04, abs=0.01)
    assert s["metrics"]["io_bidirectional_gbs"]["value"] == 464.0
    v2022, v2023 = s["verdicts"]
    assert v2022 == {**v2022, "rule_set": "us-2022-10", "basis": "peak-declared", "outcome": "not_controlled",
                     "paragraph": None, "near_limit": True}
    assert v2022["nearest"] == {**v2022["nearest"], "metric": "tpp", "threshold": 4800.0, "value": 4992.0,
                                "margin_pct": 4.0}
    assert v2023["outcome"] == "controlled" and v2023["paragraph"] == "3A090.a.1" and v2023["near_limit"]
    assert "TPP 4,992 >= 4,800 -> 3A090.a.1" in v2023["reason"]


def test_check_text_on_catalog_id(capsys):
    assert main(["check", "h100-sxm", "--as-of", "2026-11-26"]) == 0
    out = capsys.readouterr().out
    for words in ("NVIDIA H100 SXM5", "15,832", "19.45", "peak-declared", "CONTROLLED  3A090.a.1",
                  "TPP 15,832 >= 4,800 -> 3A090.a.1", "nearest threshold", "margin", "licence:",
                  "us-2026-01", "inside case-by-case review band", "[V]"):
        assert words in out, words
    assert "us-2022-10" not in out  # superseded: not a default regime in 2026


def test_default_regimes_follow_as_of(capsys):
    _, doc = run_json(capsys, ["check", "a800-sxm", "--json", "--as-of", "2023-01-01"])
    ids = [v["rule_set"] for v in doc["subjects"][0]["verdicts"]]
    assert ids == ["us-2022-10"]
    assert doc["subjects"][0]["verdicts"][0]["outcome"] == "not_controlled"
    _, doc = run_json(capsys, ["check", "a800-sxm", "--json", "--as-of", "2024-06-01"])
    ids = [v["rule_set"] for v in doc["subjects"][0]["verdicts"]]
    assert ids == ["us-eo14110", "us-2023-10"]
    _, doc = run_json(capsys, ["check", "a800-sxm", "--json", "--rules", "all"])
    # every regime of the rule data: us-2026-232, the two bills, and the model-scope SB 53, RAISE and
    # GPAI-guidelines files (not applicable to a device, but listed)
    assert len(doc["subjects"][0]["verdicts"]) == 15


def test_check_before_any_regime_says_so(capsys):
    assert main(["check", "a800-sxm", "--as-of", "2022-01-01"]) == 0
    assert "no regime selected: none is in force on 2022-01-01" in capsys.readouterr().out


def test_check_several_subjects(capsys):
    _, doc = run_json(capsys, ["check", "h20", "l4", SPEC, "--json", "--rules", "us-2023-10"])
    assert [s["subject"] for s in doc["subjects"]] == ["NVIDIA H20", "NVIDIA L4", "Example part"]
    assert [s["verdicts"][0]["paragraph"] for s in doc["subjects"]] == [None, "3A090.a.2", "3A090.a.1"]


def test_fail_on_controlled_exit_codes(capsys):
    assert main(["check", "h100-sxm", "--fail-on", "controlled"]) == 3
    assert main(["check", "h20", "--fail-on", "controlled"]) == 0
    assert main(["check", "h100-sxm", "--json", "--fail-on", "controlled"]) == 3
    capsys.readouterr()


def test_near_option_changes_near_limit(capsys):
    _, doc = run_json(capsys, ["check", SPEC, "--json", "--rules", "us-2022-10", "--near", "3"])
    assert doc["subjects"][0]["verdicts"][0]["near_limit"] is False


@pytest.mark.parametrize("args, words", [
    (["check", "h100-sxm", "--near", "abc"], "--near"),
    (["check", "h100-sxm", "--near", "-1"], "--near"),
    (["check", "h100-sxm", "--as-of", "2026-13-01"], "--as-of"),
    (["check", "h100-sxm", "--rules", "us-1999"], "us-1999"),
    (["check", "h100-sxm", "--fail-on", "everything"], "--fail-on"),
    (["check"], "SUBJECT"),
    (["devices", "--as-of", "yesterday"], "--as-of"),
    (["rules", "--verbose"], "--verbose"),
    (["whatif", "l4", "--count", "0"], "--count"),
    (["whatif", "l4", "--count", "1" + "0" * 400], "--count"),  # too large for a float: no OverflowError
])
def test_bad_options_exit_2_one_line(args, words, capsys):
    code, err = _in_process(args, capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0]


@pytest.mark.parametrize("args, words", [
    (["check", "h999"], "unknown subject 'h999'"),
    (["check", "missing.json"], "missing.json: no such file"),
    (["whatif", "nothing-here"], "unknown subject"),
    (["whatif", "l4", "--measured", "missing.json"], "missing.json"),
    (["whatif", "h100-sxm", "--measured", str(REPO / "tests" / "data" / "thresholds" / "example-part.toml")],
     "example-part.toml"),
])
def test_data_errors_exit_1_one_line(args, words, capsys):
    code, err = _in_process(args, capsys)
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tppbench: error: ") and words in lines[0]


def test_errors_have_no_traceback_in_a_real_process():
    for args, code in ((["check", "h100-sxm", "--rules", "nope"], 2), (["check", "h999"], 1)):
        proc = _cli(args)
        assert proc.returncode == code and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------- devices


def test_devices_table_reproduces_reference_classifications(capsys):
    assert main(["devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0]
    raw = header.split()
    starts = [header.index(n) for n in raw]
    names = ["us-" + n if n[:2] == "20" else n for n in raw]  # headings drop the "us-" of the ids
    assert names[-4:] == ["us-2022-10", "us-2023-10", "us-2026-01", "us-2026-232"]  # regimes with a device threshold
    assert max(len(line) for line in lines) <= 120 and "without 'us-'" in " ".join(lines)

    def cells(part_id):
        row = next(line for line in lines if line.split() and line.split()[0] == part_id)
        bounds = zip(starts, [*starts[1:], None])
        return dict(zip(names, (row[a:b].strip() for a, b in bounds)))

    assert cells("a800-sxm")["us-2022-10"] == "not~" and cells("a800-sxm")["us-2023-10"] == "3A090.a.1~"
    assert cells("a100-sxm")["us-2022-10"] == "3A090.a~"
    assert cells("h20")["us-2023-10"] == "not~" and cells("h20")["TPP"] == "2,368"
    assert cells("l4")["us-2023-10"] == "3A090.a.2"
    assert cells("rtx-4090-d")["us-2023-10"] == "not (Note 2)~" and cells("rtx-4090-d")["DC"] == "no"
    assert cells("rtx-4090")["us-2023-10"] == "3A090.a.1"
    assert cells("h200")["us-2026-01"] == "inside" and cells("b200")["us-2026-01"] == "outside"
    assert cells("h200")["us-2026-232"] == "inside~" and cells("mi325x")["us-2026-232"] == "inside~"
    assert cells("b200")["us-2026-232"] == "outside" and cells("h20")["us-2026-232"] == "outside"
    assert "Not a column: us-2024-12 (thresholds for HBM stacks only: n/a for every part" in " ".join(lines)
    assert cells("mi308x")["us-2023-10"] == "?" and cells("mi308x")["TPP"] == "unknown"
    assert cells("b200")["PD"] == "22.11-22.5"
    assert sum(1 for line in lines[2:] if line and line[0].islower()) >= 45
    assert max(len(line) for line in lines) <= 120  # one screen wide with 45+ parts
    assert [line for line in lines if line.startswith("-- ")] == [
        "-- NVIDIA (43 parts)", "-- AMD (8 parts)", "-- Intel (3 parts)", "-- Huawei (7 parts)",
        "-- AWS (2 parts)", "-- Google (4 parts)", "-- Microsoft (1 parts)", "-- Cambricon (1 parts)",
        "-- Hygon (1 parts)", "-- Kunlunxin (1 parts)", "-- Alibaba (1 parts)"]
    assert cells("rubin-r200")["TPP"] == "100k-200k*" and "  20k-22k  " in next(x for x in lines if x.startswith("rubin-r200 "))
    assert cells("maia-200")["TPP"] == ">= 40,000" and cells("maia-200")["us-2023-10"] == "3A090.a.1"


def test_devices_table_marks_recalled_figures_and_regime_status(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:] if line.split()}
    out = " ".join(out.split())  # the notes under the table are wrapped at 120 columns
    assert rows["mi300x"][2] == "8.72-20.57*"  # die area 1,017-2,400 mm2 is [R]
    assert rows["h100-pcie"][1] == "12,104*"  # datasheet figures the reference tags [V]/[R]
    assert rows["a100-sxm"][1] == "4,992"  # fp16 312 x 16 [V]; INT4 now [S] (regulations-2026.md §2.5)
    assert rows["h800-pcie"][1] == "12,104"  # its FP64 [R] does not decide the TPP
    assert rows["h100-sxm"][1] == "15,832"
    assert "* = rests on a figure the reference marks [R]: recalled, unverified" in out
    assert "us-2022-10: superseded since 2023-11-17" in out and "us-2023-10: in force since 2023-11-17" in out


def test_recalled_thresholds_say_unverified(capsys):
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "790,000,000" in line)
    assert "unverified" in line
    rc, doc = run_json(capsys, ["rules", "--json"])
    diffusion = next(r for r in doc["rules"] if r["id"] == "us-2025-01-diffusion")
    clauses = [c for p in diffusion["paragraphs"] for c in p["clauses"]]
    assert [c["value"] for c in clauses if c.get("unverified")] == [790000000.0]


def test_text_output_neutralises_control_characters_from_result_files(tmp_path, capsys):
    from results.files.schema import DeviceInfo, Measurement, RunInfo, RunResult
    from results.files.store import save

    evil = "GPU\x1b[31mRED\x1b]0;title\x07\nsecond line"
    device = DeviceInfo(index=0, backend="cpu", name=evil, threads=2,
                        unavailable={"sm_count": "CPU backend\x1b[2J"})
    m = Measurement(key="matmul/reference/fp32", benchmark="matmul", variant="reference", precision="fp32",
                    params={}, device_index=None, status="ok", reason=None, unit="flop", convention="test",
                    work_per_call=1.0, times_s=(1e-10,), rate=1e10)
    run = RunInfo(host="h\x1bost", started_utc="2026-11-26T07:00:00Z", finished_utc="2026-11-26T07:01:00Z",
                  mode="smoke", argv=("tppbench",), harness_version="0.1.0", backend="cpu")
    path = str(save(RunResult(run=run, devices=(device,), measurements=(m,)), tmp_path))
    for args in (["check", path, "--rules", "all"], ["whatif", path], ["whatif", "h100-sxm", "--measured", path]):
        assert main(args) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out, args
        assert not any(line.startswith("second line") for line in out.splitlines()), args
    assert main(["check", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["subjects"][0]["subject"] == evil  # JSON keeps it exactly


def test_devices_json_is_the_check_shape(capsys):
    rc, doc = run_json(capsys, ["devices", "--json"])
    assert rc == 0 and len(doc["subjects"]) >= 22
    by = {s["catalog_id"]: s for s in doc["subjects"]}
    assert {"subject", "metrics", "verdicts"} <= set(by["h100-sxm"])
    verdicts = {v["rule_set"]: v for v in by["a800-pcie"]["verdicts"]}
    assert verdicts["us-2022-10"]["outcome"] == "not_controlled"
    assert verdicts["us-2023-10"]["paragraph"] == "3A090.a.1"
    catalog_doc = check_subjects(["h100-sxm"], rules="us-2022-10,us-2023-10,us-2024-12,us-2026-01,us-2026-232")
    assert by["h100-sxm"]["verdicts"] == catalog_doc["subjects"][0]["verdicts"]


def test_devices_as_of_limits_regimes(capsys):
    _, doc = run_json(capsys, ["devices", "--json", "--as-of", "2023-01-01"])
    assert {v["rule_set"] for s in doc["subjects"] for v in s["verdicts"]} == {"us-2022-10"}


# --------------------------------------------------------------------------- rules


def test_rules_json(capsys):
    rc, doc = run_json(capsys, ["rules", "--json"])
    assert rc == 0
    ids = [r["id"] for r in doc["rules"]]
    assert {"us-2022-10", "us-2023-10", "us-2024-12", "us-2026-01", "us-2025-01-diffusion", "us-eo14110",
            "us-2024-09-nprm", "eu-ai-act-51"} <= set(ids)
    for r in doc["rules"]:
        assert {"id", "title", "citation", "effective_from", "status"} <= set(r)
    eo = next(r for r in doc["rules"] if r["id"] == "us-eo14110")
    assert eo["status"] == "revoked" and eo["status_date"] == "2025-01-20"


def test_rules_text(capsys):
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    assert "88 FR 73458" in out and "superseded" in out and "proposed 2024-09-11" in out


# --------------------------------------------------------------------------- whatif


def test_whatif_rtx_4090_in_its_own_terms(capsys):
    assert main(["whatif", "rtx-4090"]) == 0
    out = capsys.readouterr().out
    # 5,284.8 TPP on 128 SMs: at most 116 SMs (116 x 41.29 = 4,789.6) or a clock below 2,289 MHz
    assert "keep at most 116 of 128 SMs (disable 12 or more)" in out
    assert "SM clock below 2,289 MHz" in out
    assert "x0.908" in out


def test_whatif_cluster_and_horizons(capsys):
    assert main(["whatif", "h100-sxm", "--count", "60000"]) == 0
    out = capsys.readouterr().out
    assert "aggregate peak 1.187e20 op/s" in out  # 60,000 x 1.979e15
    assert "meets s.4.2(b)(ii) computing cluster" not in out  # networking unknown: undecided
    assert "INDETERMINATE" in out
    for ops in ("1e23 op", "1e25 op", "1e26 op"):
        assert ops in out
    assert "9.7 d" in out  # 1e26 / 1.1874e20 / 86,400 = 9.75 days


def test_whatif_spec_file(capsys):
    assert main(["whatif", SPEC, "--count", "2"]) == 0
    out = capsys.readouterr().out
    assert "Example part" in out and "TPP >= 4,800" in out and "every dense rate more than 3.8% lower" in out


# --------------------------------------------------------------------------- library and imports


def test_report_data_matches_check_json(capsys):
    rc, doc = run_json(capsys, ["check", "l4", SPEC, "--json", "--as-of", "2026-11-26"])
    import datetime

    assert check_subjects(["l4", SPEC], as_of=datetime.date(2026, 11, 26)) == doc


def test_catalog_points():
    points = {p["id"]: p for p in catalog_points()}
    assert len(points) >= 22
    h100 = points["h100-sxm"]
    assert {"id", "name", "tpp", "performance_density", "datacenter"} <= set(h100)
    assert (h100["tpp"], h100["performance_density"], h100["datacenter"]) == (15832.0, 19.4496, True)
    assert points["gaudi3"]["performance_density"] is None
    assert points["b200"]["performance_density_range"] == [22.113, 22.5]
    json.dumps(list(points.values()))  # plain JSON-able


def test_thresholds_never_imports_torch():
    """Import thresholds and its commands module (now results.commands.export_control), run every
    handler: torch must not be loaded.
    (bench.cli's parser also imports the other packages' command modules, so it is not used here.)"""
    code = (
        "import argparse, contextlib, io, json, sys\n"
        "import thresholds, results.commands.export_control, results.report.verdict_data\n"
        "parser = argparse.ArgumentParser()\n"
        "results.commands.export_control.register(parser.add_subparsers(dest='command'))\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    for argv in (['check', 'h100-sxm', '--json'], ['check', 'l4'], ['devices'], ['devices', '--json'],\n"
        "                 ['rules'], ['rules', '--json'], ['whatif', 'l4', '--count', '8']):\n"
        "        args = parser.parse_args(argv)\n"
        "        args.handler(args)\n"
        "    results.report.verdict_data.check_subjects(['h100-sxm'])\n"
        "    results.report.verdict_data.catalog_points()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_no_torch_import_in_thresholds_source():
    for path in (REPO / "thresholds").rglob("*.py"):
        text = path.read_text()
        assert "import torch" not in text and "from torch" not in text, path


@pytest.mark.parametrize("part_id, line", [
    ("rtx-5090-d", "TPP 6,704 -> 4,750 (-29.1%)"),            # AI TOPS 3,352 -> 2,375: under 4,800
    ("rtx-5090-d-v2", "DRAM bandwidth 1,792 GB/s -> 1,344 GB/s (-25.0%)"),
    ("gaudi2-hl225b", "I/O 664 GB/s -> 589 GB/s (-11.3%)"),  # 24 -> 21 Ethernet ports
    ("a800-sxm", "I/O 664 GB/s -> 464 GB/s (-30.1%)"),       # NVLink 600 -> 400
])
def test_whatif_shows_what_was_cut_from_the_original_part(capsys, part_id, line):
    assert main(["whatif", part_id]) == 0
    out = capsys.readouterr().out
    assert "What was cut: cut down from " in out and line in out


def test_variant_of_must_name_another_catalog_part(tmp_path):
    from thresholds.errors import DataFileError
    from thresholds.load import PACKAGE_DIR, load_catalog

    folder = tmp_path / "devices"
    folder.mkdir()
    text = (PACKAGE_DIR / "devices" / "01-nvidia.toml").read_text().replace(
        'variant_of = "a100-sxm"', 'variant_of = "no-such-part"', 1)
    (folder / "01-nvidia.toml").write_text(text)
    with pytest.raises(DataFileError, match=r"part a800-sxm: variant_of: unknown part 'no-such-part'"):
        load_catalog(folder)
