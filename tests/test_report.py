"""`tppbench report`: the report's data, self-contained HTML, escaping, Markdown, CLI errors.

The browser half is tests/test_report_browser.py."""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "data" / "results"))
import synth  # noqa: E402

from bench.cli import main  # noqa: E402
from results.report import page as report
from results.files import store  # noqa: E402
from results.render import html as html_render  # noqa: E402
from results.render import markdown  # noqa: E402


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def files(tmp_path):
    return [str(store.save(synth.evil_run(), tmp_path / "in")),
            str(store.save(synth.h20_run(), tmp_path / "in"))]


# --------------------------------------------------------------------------- against a constructed check document


def fake_check(paths, rules=None, as_of=None, near_pct=10.0):
    """The `tppbench check --json` shape, constructed (thresholds.report_data.check_subjects)."""
    subjects = []
    for path in paths:
        for index in range(len(store.load(path).devices)):
            subjects.append({
                "subject": f"dev [{path}#{index}]", "kind": "result", "ref": f"{path}#{index}",
                "catalog_id": "x-part", "match": "constructed",
                "metrics": {"tpp": {"value": 4700.0, "basis": "peak-declared"}},
                "metrics_by_basis": {
                    "peak-declared": {"tpp": {"value": 4700.0}, "performance_density": {"value": 5.8}},
                    "measured": {"tpp": {"value": 3500.0, "inputs": {"ratio_to_peak": {"bf16": 0.5}}},
                                 "performance_density": {"value": None}},
                },
                "verdicts": [
                    {"rule_set": "us-2023-10", "basis": "peak-declared", "outcome": "controlled",
                     "paragraph": "3A090.b.1", "near_limit": True, "applicable": True,
                     "nearest": {"metric": "tpp", "threshold": 4800.0, "value": 4700.0, "margin_pct": -2.08,
                                 "comparator": "<", "paragraph": "3A090.b.1"},
                     "reason": "TPP 4,700 in [2,400, 4,800) and PD 5.8 in [1.6, 5.92) -> 3A090.b.1"},
                    {"rule_set": "eu-ai-act-51", "basis": "peak-declared", "outcome": "not_controlled",
                     "paragraph": None, "near_limit": False, "applicable": False, "nearest": None,
                     "reason": "not applicable to a device"},
                ],
                "notes": ["<b>constructed</b> note"],
            })
    return {"subjects": subjects}


def fake_catalog():
    return [{"id": "a", "name": "Part <A>", "tpp": 4992.0, "performance_density": 6.04, "datacenter": True},
            {"id": "b", "name": "Part B", "tpp": 6920.0, "performance_density": None, "datacenter": True}]


def test_build_against_a_constructed_check_document(files):
    data = report.build(files, check=fake_check, catalog=fake_catalog)
    assert len(data.subjects) == 3  # two GPUs in the first file, one in the second
    subject_points = [p for p in data.map_points if p.kind != "catalog"]
    peak = next(p for p in subject_points if p.kind == "peak-declared")
    assert (peak.tpp, peak.pd) == (4700.0, 5.8) and set(peak.regions) == {"3A090.b.1", "3A090.b.2"}
    measured = [p for p in subject_points if p.kind == "measured"]
    assert measured and all(p.pd is None and p.regions == () for p in measured)
    assert [p.label for p in data.map_points if p.kind == "catalog"] == ["Part <A>"]
    assert data.off_map == ("Part B (TPP 6,920; die area unpublished)",)
    near = [v for v in data.verdicts if v.near_limit]
    assert len(near) == 3 and "4,800" in near[0].nearest and "-2.1%" in near[0].nearest
    bf16 = [b for b in data.precision if b.precision == "bf16"]
    assert bf16 and all(b.percent_of_peak == pytest.approx(50.0, abs=1.0) for b in bf16)
    assert [b for b in data.precision if b.precision == "fp16"][0].peak is None
    assert len(data.peers) == 1 and data.peers[0].devices == (0, 1)
    assert data.peers[0].values[0][1] == pytest.approx(380e9, rel=0.02) and data.peers[0].values[0][0] is None


def test_regions_come_from_the_rule_data_and_match_the_reference():
    regions, source = report.map_regions()
    assert "us-2023-10" in source
    assert [(r.label, r.tpp_min, r.tpp_max, r.pd_min, r.pd_max) for r in regions] == \
        [tuple(r) for r in report.REFERENCE_REGIONS]
    by = {r.label: r for r in regions}
    assert by["3A090.a.1"].contains(4800, 0.1) and not by["3A090.a.1"].contains(4799, 100)
    assert by["3A090.b.1"].contains(2400, 1.6) and not by["3A090.b.1"].contains(4800, 2)
    assert by["3A090.a.2"].contains(1600, 5.92) and not by["3A090.b.2"].contains(1600, 5.92)


# --------------------------------------------------------------------------- end to end with thresholds


def test_build_with_real_verdicts(files):
    import datetime

    data = report.build(files, as_of=datetime.date(2026, 1, 15))
    h20 = next(s for s in data.subjects if s.device_name == synth.H20)
    assert h20.catalog_id == "h20"
    near = [v for v in data.verdicts if v.subject == h20.id and v.near_limit]
    assert any(v.rule_set == "us-2023-10" and "2,400" in v.nearest for v in near)
    h100_bf16 = next(b for b in data.precision if synth.H100 in b.group and b.precision == "bf16")
    assert h100_bf16.peak == pytest.approx(989.5e12, rel=1e-3) and h100_bf16.devices == 2
    assert {r.label for r in data.regions} == {"3A090.a.1", "3A090.a.2", "3A090.b.1", "3A090.b.2"}
    names = {p.label for p in data.map_points if p.kind == "catalog"}
    for part in ("H100", "H20", "L20", "L4", "4090", "A800", "B200"):
        assert any(part in n for n in names), part
    assert any(t.key and "throttled" in t.flags for t in data.telemetry)


def test_html_is_self_contained_and_escapes_everything(files, tmp_path, capsys):
    out = tmp_path / "report.html"
    code, stdout, _ = cli(capsys, "report", *files, "-o", str(out))
    assert code == 0 and f"wrote {out}" in stdout
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:", page)
    assert not re.search(r"(https?|ftp|wss?|file):", text, re.I) and "url(" not in text
    assert "<script" not in page.lower() and "<link" not in page.lower() and "@import" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) >= 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    for s in sources:
        assert base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "&lt;script&gt;alert(&#x27;host&#x27;)&lt;/script&gt;" in page
    assert "<img src=x" not in page  # only ever as escaped text
    assert '"><img' not in page and "&quot;&gt;&lt;img src=x" in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert 'id="tpp-pd-map"' in page and 'id="verdict-table"' in page and 'class="near"' in page
    for section in ("map", "precision", "bandwidth", "verdicts", "telemetry"):
        assert f'<section id="{section}">' in page


def test_escape_helper():
    assert html_render.e("<a href='x'>&\"") == "&lt;a href=&#x27;x&#x27;&gt;&amp;&quot;"
    assert html_render.e(None) == "-"


def test_markdown_variant(files, capsys):
    code, out, _ = cli(capsys, "report", *files, "--markdown")
    assert code == 0
    for heading in ("## 1. TPP versus", "## 2. Measured", "## 3. Bandwidth", "## 4. Verdicts", "## 5. Telemetry"):
        assert heading in out
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "(NEAR LIMIT)" in out and "| src \\\\ dst |" in out


def test_markdown_to_a_file(files, tmp_path, capsys):
    code, out, _ = cli(capsys, "report", *files, "--markdown", "-o", str(tmp_path / "r.md"))
    assert code == 0 and (tmp_path / "r.md").read_text().startswith("# tppbench report")


def test_cpu_result_without_catalog_match(tmp_path, capsys):
    cpu = synth.run("synthetic-cpu", [synth.measurement(__import__("random").Random(1), synth._case("bf16"), 3e11)],
                    devices=(synth.device(0, name="AMD EPYC synthetic", backend="cpu", host="synthetic-cpu"),),
                    backend="cpu")
    path = store.save(cpu, tmp_path)
    data = report.build([str(path)])
    measured = [p for p in data.map_points if p.kind == "measured"]
    assert measured and measured[0].pd is None
    page = html_render.render(data, html_render.figures_for(data))
    assert "tpp-pd-map" in page and "no datasheet figure" in page


def test_report_never_modifies_its_inputs(files, tmp_path, capsys):
    before = {f: hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files}
    assert cli(capsys, "report", *files, "-o", str(tmp_path / "r.html"))[0] == 0
    assert before == {f: hashlib.sha256(Path(f).read_bytes()).hexdigest() for f in files}


def test_html_needs_an_output(files, capsys):
    code, out, err = cli(capsys, "report", *files)
    assert code == 2 and "-o OUT is required" in err and err.count("\n") == 1


def test_bad_input_file_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1')
    code, _, err = cli(capsys, "report", str(bad), "-o", str(tmp_path / "r.html"))
    assert code == 1 and "bad.json" in err and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()


def test_output_onto_a_folder_or_an_input_is_refused_and_empty_input_is_an_error(files, tmp_path, capsys):
    code, _, err = cli(capsys, "report", *files, "-o", str(tmp_path))  # was IsADirectoryError
    assert code == 2 and "is a folder" in err and err.count("\n") == 1
    before = Path(files[0]).read_bytes()
    code, _, err = cli(capsys, "report", *files, "-o", files[0])
    assert code == 2 and "input result files" in err and Path(files[0]).read_bytes() == before
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli(capsys, "report", str(empty), "-o", str(tmp_path / "r.html"))
    assert code == 1 and "no result files" in err and not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("argv, fragment", [(["--as-of", "yesterday"], "--as-of"),
                                             (["--near-pct", "-3"], "--near-pct")])
def test_bad_options_exit_2(files, capsys, argv, fragment):
    with pytest.raises(SystemExit) as exc:
        main(["report", *files, "--markdown", *argv])
    assert exc.value.code == 2 and fragment in capsys.readouterr().err


def test_unknown_regime_is_a_usage_error(files, capsys):
    code, _, err = cli(capsys, "report", *files, "--markdown", "--rules", "nope")
    assert code == 2 and "nope" in err and err.count("\n") == 1


def test_dollar_signs_and_control_characters_do_not_break_figures():
    from results.render import plots

    png = plots.tpp_pd_map(report.map_regions()[0], [
        report.MapPoint("$\\frac{1}{0}$ \x1b[31m<b>", 5000.0, 7.0, "measured"),
        report.MapPoint("$unbalanced", 2000.0, None, "measured"),
    ])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- the 2026 map, history strips, above_peak


def test_the_2026_band_and_the_section_232_boxes_come_from_the_rule_data():
    band, box1, box2 = report.map_bands()[0]
    source = report.map_bands()[1]
    assert (band.tpp_min, band.tpp_max, band.dram_min_gbs, band.dram_max_gbs) == (0.0, 21000.0, 0.0, 6500.0)
    assert "us-2026-01" in source and "91 FR 1684" in source and "us-2026-232" in source
    assert band.contains(15832, 4800) and not band.contains(36000, 4000) and not band.contains(15832, 6500)
    assert (box1.tpp_min, box1.tpp_max, box1.dram_min_gbs, box1.dram_max_gbs, box1.effect) == (
        14000.0, 17500.0, 4500.0, 5000.0, "duty")
    assert (box2.tpp_min, box2.tpp_max, box2.dram_min_gbs, box2.dram_max_gbs) == (20800.0, 21100.0, 5800.0, 6200.0)
    assert box1.contains(15832, 4800) and not box1.contains(14000, 4800) and not box1.contains(15832, 4500)
    assert box2.contains(20919.2, 6000) and not box2.contains(20800, 6000)


def test_band_points_and_history_strips_with_real_verdicts(files):
    import datetime

    data = report.build(files, as_of=datetime.date(2026, 1, 15))
    subject_points = [p for p in data.band_points if p.kind != "catalog"]
    h20 = next(p for p in subject_points if p.label == f"{synth.H20} (peak-declared)")
    assert (h20.tpp, h20.dram_gbs, h20.inside) == (2368.0, 4000.0, ("case-by-case review band (China/Macau)",))
    catalog = {p.label: p for p in data.band_points if p.kind == "catalog"}
    assert catalog["NVIDIA H200 SXM 141GB"].inside and not catalog["NVIDIA B300"].inside
    assert catalog["NVIDIA B200 (HGX, about 1,000 W)"].dram_range == (7700.0, 8000.0)
    assert len(data.histories) == len(data.subjects) == 3
    strip = next(h for h in data.histories if synth.H20 in h.label)
    assert strip.regimes == ("us-2022-10", "us-2023-10", "us-2026-01", "us-2026-232") and strip.dates[0] == "2022-10-07"
    row_2023 = strip.cells[1]
    assert row_2023[strip.dates.index("2023-11-17")] == "not~" and strip.classes[2][-1] == "inside"
    assert strip.classes[3][-1] == "outside"  # the H20 (DRAM 4,000) is below both tariff boxes
    assert any(d == "2023-11-17" and "TPP 2,368 < 2,400" in t for d, t in strip.changes)
    text = markdown.report(data)
    assert "TPP versus DRAM bandwidth (2026 licence-review band)" in text and "Status through time of" in text


def test_a_rate_above_peak_is_marked_in_the_report(tmp_path):
    path = str(store.save(synth.h100_run(41, scale={"bf16": 3.0}), tmp_path))
    data = report.build([path])
    bf16 = next(b for b in data.precision if b.precision == "bf16")
    assert bf16.above_peak and bf16.percent_of_peak > 105
    assert not next(b for b in data.precision if b.precision == "fp16").above_peak
    section = "".join(html_render._precision_section(data, {"precision": b"not drawn here"}))
    assert '<span class="above">above peak</span>' in section and "likely causes" in section
    assert "ABOVE PEAK" in markdown.report(data)
    measured = [v for v in data.verdicts if v.basis == "measured"]
    assert measured and all(v.reason.startswith("ABOVE PEAK (bf16; see section 2): ") for v in measured)
    assert not any("ABOVE PEAK" in v.reason for v in data.verdicts if v.basis != "measured")
