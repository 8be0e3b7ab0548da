"""`tppbench import`: real published nccl-tests, nvbandwidth and mamf-finder outputs -> result files.

Fixtures live in tests/data/imported/<tool>/ with a `.source.toml` sidecar each (where it was
published, what was trimmed); the one synthetic fixture says so in its name and sidecar. Every
printed row or cell is checked against the fixture text, read here with a plain split that shares
no code with the importers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bench.cli import main
from results.files import store
from results.analysis.collective_conventions import busbw_factor
from results.importers.command import import_text
from results.importers.source import ImportFailed, Source
from thresholds.load import load_catalog
from thresholds.match import match_part

DATA = Path(__file__).parent / "data" / "imported"
ROOT = Path(__file__).parents[1]


def fixture(path: str) -> Path:
    return DATA / path


def imported(path: str, **options):
    source = Source.of(str(fixture(path)), fixture(path).read_bytes())
    return import_text(source, collective=options.get("collective"))


def by_key(result, key: str, device_index=None):
    found = [m for m in result.measurements if m.key == key and (device_index is None or m.device_index == device_index)]
    assert len(found) == 1, (key, device_index, len(found))
    return found[0]


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- fixtures and sources


def test_every_fixture_has_a_source_sidecar_and_synthetic_ones_say_so():
    fixtures = [p for p in DATA.rglob("*") if p.is_file() and not p.name.endswith(".source.toml")]
    assert len(fixtures) >= 15
    for path in fixtures:
        sidecar = tomllib.loads(path.with_name(path.name + ".source.toml").read_text())
        assert sidecar["kind"] in ("real", "synthetic") and sidecar["what"] and sidecar["trimmed"], path
        assert (sidecar["kind"] == "synthetic") == path.name.startswith("SYNTHETIC"), path
        if sidecar["kind"] == "real":
            assert sidecar.get("url") or sidecar.get("thread") or sidecar.get("repository"), path


# --------------------------------------------------------------------------- nccl-tests


def nccl_rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if re.match(r"^\s+\d+\s+\d+\s+float\s", line)]


def test_nccl_h100_two_nodes_every_row_as_printed():
    result = imported("nccl-tests/h100_2x8_all_reduce.txt").result
    rows = nccl_rows(fixture("nccl-tests/h100_2x8_all_reduce.txt").read_text())
    assert len(rows) == 31 and len(result.measurements) == 62
    factor = busbw_factor("all_reduce", 16)
    for size, count, _type, _op, root, *blocks in rows:
        assert int(size) == int(count) * 4  # nccl-tests' S for all_reduce: count x sizeof(float)
        for in_place, (time_us, algbw, busbw, wrong) in ((False, blocks[:4]), (True, blocks[4:])):
            key = f"collectives/all_reduce/bytes={size},world_size=16" + ("" if in_place else ",placement=out-of-place")
            m = by_key(result, key)
            assert m.status == "ok" and m.rank == 0 and m.work_per_call == int(size) and m.times_s == ()
            assert m.extra["printed"] == {"time_us": float(time_us), "algbw_gbs": float(algbw),
                                          "busbw_gbs": float(busbw), "#wrong": wrong}
            assert m.rate == pytest.approx(int(size) / (float(time_us) * 1e-6))
            assert abs(m.rate / 1e9 - float(algbw)) <= 0.006 + 0.001 * float(algbw)  # nccl-tests' own S/t
            assert m.busbw == pytest.approx(m.rate * factor) and m.busbw_factor == pytest.approx(1.875)
            assert m.extra["root"] == root == "-1" and m.stats.n == 1 and m.stats.median == m.rate
            assert m.extra["imported"]["tool"] == "nccl-tests" and m.extra["imported"]["sha256"]
    big = [r for r in rows if int(r[0]) >= 1 << 30]
    for row in big:  # nccl-tests' printed busbw / algbw is tppbench's factor for n = 16
        assert float(row[7]) / float(row[6]) == pytest.approx(factor, rel=0.005)


def test_nccl_rank_lines_give_world_hosts_and_catalog_devices():
    result = imported("nccl-tests/h100_2x8_all_reduce.txt").result
    run = result.run
    assert run.source == "imported" and run.world_size == 16 and run.hosts == ("ztan-mig-235z", "ztan-mig-gq73")
    assert run.imported_from["world_size"] == "16: from the rank lines"
    assert run.host == "ztan-mig-235z" and run.complete and run.imported_from["footer"] == {
        "out_of_bounds": {"count": 0, "verdict": "OK"}, "avg_bus_bandwidth_gbs": 70.742}
    assert len(result.devices) == 16
    d = result.devices[2]
    assert (d.host, d.index, d.pci_bus_id, d.name) == ("ztan-mig-235z", 2, "0000:0b:00", "NVIDIA H100 80GB HBM3")
    part, how = match_part(d, load_catalog())
    assert part.id == "h100-sxm" and "NVIDIA H100 80GB HBM3" in how


def test_nccl_old_table_without_root_needs_the_collective_named():
    with pytest.raises(ImportFailed, match=r"dgx_a100_4node_old_format.txt: line 3: .*pass --collective"):
        imported("nccl-tests/dgx_a100_4node_old_format.txt")
    result = imported("nccl-tests/dgx_a100_4node_old_format.txt", collective="all_reduce").result
    rows = [line.split() for line in fixture("nccl-tests/dgx_a100_4node_old_format.txt").read_text().splitlines()
            if re.match(r"^\s+\d+\s", line)]
    assert len(rows) == 13 and len(result.measurements) == 26
    for size, _count, _t, _op, time_us, algbw, busbw, error, *in_place in rows:
        m = by_key(result, f"collectives/all_reduce/bytes={size},placement=out-of-place")
        assert m.extra["printed"] == {"time_us": float(time_us), "algbw_gbs": float(algbw),
                                      "busbw_gbs": float(busbw), "error": error}
        assert m.busbw_factor is None and m.busbw == pytest.approx(float(busbw) * 1e9)  # n not printed
        assert by_key(result, f"collectives/all_reduce/bytes={size}").extra["printed"]["time_us"] == float(in_place[0])
    assert result.run.imported_from["collective_from"] == "--collective"


def test_nccl_log_cut_before_its_footer_is_imported_as_incomplete():
    result = imported("nccl-tests/gb10_2node_all_reduce_cut.txt").result
    assert not result.run.complete and "footer" in result.run.incomplete_reason
    assert result.run.imported_from["version"] == "2.20.0" and result.run.world_size == 2
    assert result.run.hosts == ("spark-d708", "spark-dbf4")
    assert by_key(result, "collectives/all_reduce/bytes=65536,world_size=2").extra["printed"]["algbw_gbs"] == 1.01


def test_nccl_interleaved_info_lines_and_partial_rank_lines():
    got = imported("nccl-tests/h200_2node_info_interleaved.txt", collective="all_reduce")
    result = got.result
    rows = [line.split() for line in fixture("nccl-tests/h200_2node_info_interleaved.txt").read_text().splitlines()
            if re.match(r"^\s+\d+\s+\d+\s+bfloat16\s", line)]
    assert len(rows) == 31 and len(result.measurements) == 62
    assert [(s.line, s.text.split()[0]) for s in got.skipped] == [(17, "579.3")]  # the fragment INFO lines left
    # only 2 of 16 rank lines were kept: busbw/algbw = 1.875 does not fit 2 ranks, so n stays unknown
    assert result.run.imported_from["world_size"].startswith("unknown: the log lists 2 rank(s)")
    for size, _count, _t, _op, _root, time_us, algbw, busbw, *_ in rows[1:]:
        m = by_key(result, f"collectives/all_reduce/bytes={size},placement=out-of-place")
        assert m.busbw_factor is None and m.busbw == pytest.approx(float(busbw) * 1e9)
        assert m.rate == pytest.approx(int(size) / (float(time_us) * 1e-6))
    zero = by_key(result, "collectives/all_reduce/bytes=0")
    assert zero.status == "skipped" and zero.rate is None  # size 0 moves nothing: no rate
    assert result.run.nccl == "2.27.7+cuda12.4"


# --------------------------------------------------------------------------- nvbandwidth


def nv_blocks(text: str) -> dict[str, list[list[str]]]:
    """Testcase -> its printed rows (label dropped), read with a plain split."""
    blocks: dict[str, list[list[str]]] = {}
    name = None
    for line in text.splitlines():
        if line.startswith("Running "):
            name = line.split()[1].rstrip(".")
            blocks[name] = []
        elif name and re.match(r"^\s*\d+\s+(N/A|\d+\.\d+)(\s|$)", line):
            blocks[name].append(line.split()[1:])
    return blocks


def test_nvbandwidth_h800_nvlink_every_cell_as_printed():
    result = imported("nvbandwidth/h800_8gpu_v0.2_nvlink.txt").result
    blocks = nv_blocks(fixture("nvbandwidth/h800_8gpu_v0.2_nvlink.txt").read_text())
    assert len(blocks) == 16
    for gpu, value in enumerate(blocks["host_to_device_memcpy_ce"][0]):
        assert by_key(result, "hostlink/h2d_pinned", gpu).rate == pytest.approx(float(value) * 1e9)
    for gpu, value in enumerate(blocks["device_to_host_memcpy_ce"][0]):
        assert by_key(result, "hostlink/d2h_pinned", gpu).rate == pytest.approx(float(value) * 1e9)
    for i, row in enumerate(blocks["device_to_device_memcpy_read_ce"]):  # printed "GPU(row) -> GPU(column)"
        for j, value in enumerate(row):
            if i != j:
                assert by_key(result, f"p2p/unidirectional_read/src={i},dst={j}").rate == pytest.approx(float(value) * 1e9)
    for i, row in enumerate(blocks["device_to_device_memcpy_write_ce"]):  # printed "GPU(row) <- GPU(column)"
        for j, value in enumerate(row):
            if i != j:
                assert by_key(result, f"p2p/unidirectional/src={j},dst={i}").rate == pytest.approx(float(value) * 1e9)
    bidir = blocks["device_to_device_bidirectional_memcpy_write_ce"]
    for i in range(8):
        for j in range(i + 1, 8):
            both = float(bidir[i][j]) + float(bidir[j][i])
            assert by_key(result, f"p2p/bidirectional/src={i},dst={j}").rate == pytest.approx(both * 1e9)
        for j in range(8):  # each printed cell also stays as printed (row, column)
            if i != j:
                cell = by_key(result, f"nvbandwidth/device_to_device_bidirectional_memcpy_write_ce/src={i},dst={j}")
                assert cell.rate == pytest.approx(float(bidir[i][j]) * 1e9)
    for name in ("all_to_host_memcpy_ce", "host_to_all_bidirectional_memcpy_ce", "one_to_all_read_ce"):
        for gpu, value in enumerate(blocks[name][0]):
            assert by_key(result, f"nvbandwidth/{name}/gpu={gpu}").rate == pytest.approx(float(value) * 1e9)
    h2d, d2h = blocks["host_to_device_bidirectional_memcpy_ce"][0], blocks["device_to_host_bidirectional_memcpy_ce"][0]
    for gpu in range(8):
        link = by_key(result, "hostlink/bidirectional_pinned", gpu)
        assert link.rate == pytest.approx((float(h2d[gpu]) + float(d2h[gpu])) * 1e9)
    assert [d.name for d in result.devices] == ["NVIDIA H800"] * 8
    assert result.run.imported_from["version"] == "v0.2" and result.run.driver == "525.105.17"


def test_nvbandwidth_h800_aggregate_io_and_its_2022_verdict(tmp_path, capsys):
    result = imported("nvbandwidth/h800_8gpu_v0.2_nvlink.txt").result
    blocks = nv_blocks(fixture("nvbandwidth/h800_8gpu_v0.2_nvlink.txt").read_text())
    for gpu in range(8):  # all peers at once: best inbound total + best outbound total (write and read tests)
        agg = by_key(result, f"p2p/aggregate_io/device={gpu}")
        inbound = max(float(blocks["all_to_one_write_ce"][0][gpu]), float(blocks["one_to_all_read_ce"][0][gpu]))
        outbound = max(float(blocks["one_to_all_write_ce"][0][gpu]), float(blocks["all_to_one_read_ce"][0][gpu]))
        assert agg.rate == pytest.approx((inbound + outbound) * 1e9) and agg.flags == ("host_link_missing",)
        assert agg.extra["derived_from"]["chosen"] == "all_peers_at_once_in_plus_out"
    path = store.save(result, tmp_path)
    code, out, _ = run_cli(["check", str(path), "--rules", "us-2022-10", "--json"], capsys)
    assert code == 0
    subject = json.loads(out)["subjects"][0]
    assert subject["catalog_id"] == "h800-sxm"
    io = subject["metrics_by_basis"]["measured"]["io_bidirectional_gbs"]
    assert io["range"] == [pytest.approx(353.64), None] and "imported from nvbandwidth" in io["source"]
    measured = next(v for v in subject["verdicts"] if v["basis"] == "measured")
    clause = next(c for c in measured["clauses"] if c["metric"] == "io_bidirectional_gbs")
    assert measured["outcome"] == "indeterminate" and clause["result"] is None  # 353.6 <= I/O: below 600 decides nothing
    declared = next(v for v in subject["verdicts"] if v["basis"] == "peak-declared")
    assert declared["outcome"] == "not_controlled"  # 528 GB/s declared, the H800's point


def test_nvbandwidth_total_matrix_gives_pairs_and_an_io_that_meets_600(tmp_path, capsys):
    result = imported("nvbandwidth/7gpu_v0.10_bidirectional_read.txt").result
    text = fixture("nvbandwidth/7gpu_v0.10_bidirectional_read.txt").read_text()
    total = [line.split()[1:] for line in text.split("Total bandwidth")[1].splitlines() if re.match(r"^\s*\d+\s+(N/A|\d+\.\d+)", line)]
    for i in range(7):
        for j in range(i + 1, 7):
            assert by_key(result, f"p2p/bidirectional_read/src={i},dst={j}").rate == pytest.approx(float(total[i][j]) * 1e9)
    assert by_key(result, "p2p/aggregate_io/device=0").rate == pytest.approx(1522.36e9)  # best pair of GPU 0
    read1 = by_key(result, "nvbandwidth/device_to_device_bidirectional_memcpy_read_ce_read1/src=6,dst=1")
    assert read1.rate == pytest.approx(759.23e9)
    assert all(d.name.startswith("unknown GPU") for d in result.devices) and len(result.devices) == 7
    path = store.save(result, tmp_path)
    code, out, _ = run_cli(["check", str(path), "--rules", "us-2022-10", "--json"], capsys)
    measured = next(v for v in json.loads(out)["subjects"][0]["verdicts"] if v["basis"] == "measured")
    clause = next(c for c in measured["clauses"] if c["metric"] == "io_bidirectional_gbs")
    assert code == 0 and clause["result"] is True  # >= 1,522 GB/s measured meets the 600 GB/s test


def test_nvbandwidth_pcie_only_and_waived_and_elided_outputs():
    pcie = imported("nvbandwidth/rtx4090_8gpu_v0.2_pcie.txt").result
    blocks = nv_blocks(fixture("nvbandwidth/rtx4090_8gpu_v0.2_pcie.txt").read_text())
    assert [by_key(pcie, "hostlink/h2d_pinned", g).rate / 1e9 for g in range(8)] == pytest.approx(
        [float(v) for v in blocks["host_to_device_memcpy_ce"][0]])
    assert not [m for m in pcie.measurements if m.benchmark == "p2p"]
    part, _ = match_part(pcie.devices[0], load_catalog())
    assert part is not None and part.id == "rtx-4090"
    waived = imported("nvbandwidth/2080ti_2gpu_v0.2_waived.txt").result.measurements
    assert [(m.key, m.status) for m in waived] == [("nvbandwidth/device_to_device_memcpy_write_ce", "skipped")]
    elided = imported("nvbandwidth/a6000_6gpu_v0.8_d2d_read.txt")
    assert [(s.line, s.text) for s in elided.skipped] == [(8, "...")]
    assert elided.result.run.imported_from["skipped_lines"][0]["line"] == 8
    assert by_key(elided.result, "p2p/unidirectional_read/src=3,dst=0").rate == pytest.approx(21.82e9)


def test_nvbandwidth_stopped_by_its_own_check_keeps_the_devices_and_the_error():
    result = imported("nvbandwidth/a100_8gpu_v0.7_assert.txt").result
    (m,) = result.measurements
    assert (m.key, m.status) == ("nvbandwidth/device_to_device_memcpy_read_ce", "error")
    assert "Invalid value when checking the pattern" in m.reason and "ASSERT" in m.reason
    assert not result.run.complete and result.run.imported_from["skipped_lines"] == []
    assert [(d.index, d.pci_bus_id) for d in result.devices][::7] == [(0, "00000000:34:00"), (7, "00000000:9e:00")]
    part, _ = match_part(result.devices[0], load_catalog())
    assert part.id == "a100-sxm"


def test_nvbandwidth_json_every_testcase():
    text = fixture("nvbandwidth/1gpu_v0.5_verbose.json").read_text()
    result = import_text(Source.of("x.json", text.encode())).result
    for case in json.loads(text)["nvbandwidth"]["testcases"]:
        matching = [m for m in result.measurements if m.extra.get("testcase") == case["name"]]
        if case["status"] == "Waived":
            assert [m.status for m in matching] == ["skipped"], case["name"]
        elif "latency" in case["bandwidth_description"]:
            assert matching == [] and case["name"] in str(result.run.imported_from["not_imported"])
        else:
            assert [m.rate for m in matching] == [pytest.approx(float(case["bandwidth_matrix"][0][0]) * 1e9)]
    assert by_key(result, "hostlink/bidirectional_pinned", 0).rate == pytest.approx((11.5031 + 11.329) * 1e9)
    assert result.run.imported_from["format"] == "json" and result.run.imported_from["version"] == "v0.5"
    wrapped = "WARNING: Failed to acquire log file lock\n" + text + "\nWARNING: suffix\n"
    again = import_text(Source.of("w.json", wrapped.encode()))
    assert [s.line for s in again.skipped] == [1, text.count("\n") + 3]
    assert len(again.result.measurements) == len(result.measurements)


def test_nvbandwidth_json_stacked_matrices_are_split():
    """Input constructed here (not a fixture): nvbandwidth's json_output.cpp appends each matrix of a
    testcase to one bandwidth_matrix and keeps the last description, so a bidirectional testcase
    holds direction 1, direction 2 and Total stacked."""
    case = {"name": "device_to_device_bidirectional_memcpy_read_ce", "status": "Passed",
            "bandwidth_description": "memcpy CE GPU(row) <-> GPU(column) Total bandwidth (GB/s)",
            "bandwidth_matrix": [["N/A", "1"], ["2", "N/A"], ["N/A", "3"], ["4", "N/A"], ["N/A", "7"], ["7", "N/A"]]}
    text = json.dumps({"nvbandwidth": {"version": "v0.8", "testcases": [case]}}, indent=1)
    result = import_text(Source.of("stacked.json", text.encode())).result
    assert by_key(result, "p2p/bidirectional_read/src=0,dst=1").rate == pytest.approx(7e9)
    assert by_key(result, "nvbandwidth/device_to_device_bidirectional_memcpy_read_ce_part2/src=1,dst=0").rate == 4e9


# --------------------------------------------------------------------------- mamf-finder


def test_mamf_v2_log_best_shape_is_the_achievable_rate():
    result = imported("mamf-finder/gfx1151_v2_interrupted.txt").result
    (m,) = result.measurements
    assert m.key == "matmul/bf16/mamf/m=3072,n=3072,k=1024" and m.flags == ("achievable",)
    assert m.rate == pytest.approx(22.3e12) and m.work_per_call == 2 * 3072 * 3072 * 1024
    assert m.extra["printed_tflops"] == {"mean": 22.3, "median": 22.3, "max": 22.9}
    assert result.devices[0].name == "AMD Radeon Graphics" and result.run.torch == "2.7.0a0+git6537fd5"
    assert result.run.imported_from["version"] == "2" and result.run.imported_from["shapes_tried"] == 879


def test_mamf_v1_summary_and_the_stale_shape_line():
    (m,) = imported("mamf-finder/gh200_v1_pr60.txt").result.measurements
    assert m.key == "matmul/bf16/mamf/m=11264,n=19712,k=1536" and m.rate == pytest.approx(821.0e12)
    assert m.flags == ("achievable",) and m.extra["from"] == "the final 'best outcome' block"
    with pytest.raises(ImportFailed, match=r"gh200_v1_issue58.txt: line 1: no '\*\* Dtype:' header line"):
        imported("mamf-finder/gh200_v1_issue58.txt")
    headed = ("** Dtype: torch.bfloat16\n" + fixture("mamf-finder/gh200_v1_issue58.txt").read_text()).encode()
    got = import_text(Source.of("h.txt", headed))
    assert [s.line for s in got.skipped] == [2] and "stale" in got.skipped[0].why
    assert [m.rate for m in got.result.measurements] == [pytest.approx(831.7e12)]


def test_mamf_carriage_return_lines_synthetic(tmp_path, capsys):
    imp = imported("mamf-finder/SYNTHETIC_h100_v2_carriage_returns.txt")
    text = fixture("mamf-finder/SYNTHETIC_h100_v2_carriage_returns.txt").read_bytes().decode()
    assert text.count("\r") == 2 and "\n     2 |" not in text  # shape 2 overwrote shape 1 on the terminal
    lines = re.split(r"\r|\n", text)
    first, second = (next(i + 1 for i, line in enumerate(lines) if f"@ {shape}" in line)
                     for shape in ("1024x4096x4096", "2048x4096x4096"))
    rates = {m.key: (m.rate, m.flags, m.extra["imported"]["line"]) for m in imp.result.measurements}
    assert rates == {"matmul/bf16/mamf/m=1024,n=4096,k=4096": (pytest.approx(110e12), (), first),
                     "matmul/bf16/mamf/m=2048,n=4096,k=4096": (pytest.approx(310e12), ("achievable",), second)}
    assert imp.skipped == ()
    path = store.save(imp.result, tmp_path)
    code, out, _ = run_cli(["check", str(path), "--rules", "us-2023-10", "--json"], capsys)
    tpp = json.loads(out)["subjects"][0]["metrics_by_basis"]["measured"]["tpp"]
    assert code == 0 and tpp["value"] == pytest.approx(310 * 16)  # best bf16 median as measured TPP


# --------------------------------------------------------------------------- bad input


def truncated(path: str, keep: float) -> bytes:
    raw = fixture(path).read_bytes()
    return raw[: int(len(raw) * keep)]


BAD = {
    "empty": (b"", r"empty file"),
    "blank": (b"\n  \n", r"empty file"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00", r"not UTF-8 text|NUL"),
    "byte-order mark, then a bad byte": (b"\xef\xbb\xbfab\xff", r"not UTF-8 text \(byte 0xff at offset 5\)"),
    "foreign": (b"# README\nSome prose.\n", r"line 1: not nccl-tests, nvbandwidth or mamf-finder output"),
    "nccl cut mid-row": (truncated("nccl-tests/h100_2x8_all_reduce.txt", 0.5), r"line \d+: truncated"),
    "nccl header only": (fixture("nccl-tests/h100_2x8_all_reduce.txt").read_bytes().split(b"(elements)")[0]
                         + b"(elements)\n", r"line 31: truncated: the result table \(header at line 30\) has no rows"),
    "nvbandwidth cut in a matrix": (truncated("nvbandwidth/h800_8gpu_v0.2_nvlink.txt", 0.5), r"line \d+: truncated"),
    "nvbandwidth json cut": (truncated("nvbandwidth/1gpu_v0.5_verbose.json", 0.5), r"line \d+: not valid JSON"),
    "mamf header only": (truncated("mamf-finder/gfx1151_v2_interrupted.txt", 0.45), r"line \d+: truncated"),
    "nccl header without busbw": (fixture("nccl-tests/h100_2x8_all_reduce.txt").read_bytes().replace(b"busbw", b"xxxxx"),
                                  r"line 30: a table header without out-of-place and in-place"),
    "nccl header, algbw in one block only": (fixture("nccl-tests/h100_2x8_all_reduce.txt").read_bytes().replace(
        b"time   algbw", b"time   xxxxx", 1), r"line 30: a table header without out-of-place and in-place"),
    "mixed": (fixture("nccl-tests/h100_2x8_all_reduce.txt").read_bytes()
              + fixture("nvbandwidth/h800_8gpu_v0.2_nvlink.txt").read_bytes(), r"line 65: mixed file"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_exit_1_and_nothing_written(case, tmp_path, capsys):
    raw, message = BAD[case]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(raw)
    good = fixture("nccl-tests/gb10_2node_all_reduce_cut.txt")
    code, out, err = run_cli(["import", str(good), str(bad), "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"tppbench: error: {bad}: ") and re.search(message, err), err
    assert not (tmp_path / "out").exists()  # the good file before it is not written either


FIXTURES = sorted(str(p.relative_to(DATA)) for p in DATA.rglob("*") if p.is_file() and not p.name.endswith(".toml"))


@pytest.mark.parametrize("path", FIXTURES)
def test_every_fixture_cut_in_half_is_a_one_line_error(path, tmp_path, capsys):
    bad = tmp_path / Path(path).name
    bad.write_bytes(truncated(path, 0.5))
    code, out, err = run_cli(["import", str(bad), "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert re.match(rf"tppbench: error: {re.escape(str(bad))}: line \d+: ", err), err
    assert not (tmp_path / "out").exists()


def test_a_garbled_row_is_skipped_and_listed(tmp_path, capsys):
    lines = fixture("nccl-tests/h100_2x8_all_reduce.txt").read_text().splitlines(keepends=True)
    lines[40] = lines[40].replace("float     sum      -1", "float sum")  # row 8192 loses its root column
    bad = tmp_path / "garbled.txt"
    bad.write_text("".join(lines))
    code, out, err = run_cli(["import", str(bad), "--out", str(tmp_path / "out")], capsys)
    assert code == 0 and "60 ok of 60 records" in out and "skipped 1 unreadable line(s)" in err and ": 41 " in err
    (saved,) = (tmp_path / "out").iterdir()
    assert store.load(saved).run.imported_from["skipped_lines"][0]["line"] == 41


def test_many_garbled_rows_are_all_listed():
    """5,000 unreadable rows (about 200 KB): each one listed; the file is split into lines once, not
    once per unreadable row (that took 32 s for 8,000 rows on this VM)."""
    lines = fixture("nccl-tests/h100_2x8_all_reduce.txt").read_text().splitlines(keepends=True)
    text = "".join(lines[:41]) + "        8192          2048     float sum\n" * 5000 + "".join(lines[41:])
    got = import_text(Source.of("garbled.txt", text.encode()))
    assert [s.line for s in got.skipped] == list(range(42, 5042))
    assert len(got.result.measurements) == 62


def test_malformed_numbers_and_a_cut_best_part_are_skipped_lines_not_tracebacks(tmp_path):
    """Numbers float() refuses ("5..0", "1.2.3") and a version-1 mamf-finder line cut inside its
    `best:` part: the line is listed as skipped, the rest imports."""
    head = "** Dtype: torch.bfloat16\nbenchmark version: 2\n     1 | 5.0(mean) 5.0(median) 6.0(max) @ 1024x1024x1024 | best: x\n"
    mamf = import_text(Source.of("m.txt", (head + "Tried 1 shapes => the best outcomes were:\n"
                                           "mean:   5..0 TFLOPS @ 1024x1024x1024\n").encode()))
    assert [s.line for s in mamf.skipped] == [5] and len(mamf.result.measurements) == 1
    v1 = import_text(Source.of("v1.txt", b"** Dtype: torch.bfloat16\nbenchmark version: 1\n"
                                         b"     1 | 5.0 TFLOPS @ 1024x1024x1024 | best: (cut\n"
                                         b"     2 | 6.0 TFLOPS @ 2048x1024x1024 | best: 6.0 TFLOPS @ 2048x1024x1024\n"))
    assert [(s.line, "cut inside its 'best:' part" in s.why) for s in v1.skipped] == [(3, True)]
    assert [m.params["m"] for m in v1.result.measurements] == [2048]
    nv = fixture("nvbandwidth/h800_8gpu_v0.2_nvlink.txt").read_text()
    first_sum = re.search(r"^SUM \w+ [\d.]+$", nv, re.M)
    bad_sum = nv.replace(first_sum.group(0), first_sum.group(0).rsplit(" ", 1)[0] + " 1.2.3", 1)
    got = import_text(Source.of("s.txt", bad_sum.encode()))
    assert [s.text for s in got.skipped] == [first_sum.group(0).rsplit(" ", 1)[0] + " 1.2.3"]
    nccl = fixture("nccl-tests/h100_2x8_all_reduce.txt").read_text().replace(": 70.742", ": 70..742")
    with pytest.raises(ImportFailed, match="line 64: truncated"):  # the footer is not read: a cut log
        import_text(Source.of("n.txt", nccl.encode()))
    starred = fixture("nccl-tests/h100_2x8_all_reduce.txt").read_text().replace(
        " 126.9    0.03    0.06 ", " 126.9    0.03*   0.06 ", 1)  # an asterisk where nccl-tests puts none
    assert len(import_text(Source.of("a.txt", starred.encode())).result.measurements) == 62
    for cell in ("nan", "-5.0", "inf"):  # float() reads each; no tool prints one as a bandwidth
        odd = nv.replace(" 176.14 ", f" {cell} ", 1)
        got = import_text(Source.of("c.txt", odd.encode())).result
        assert all(m.rate is None or 0 < m.rate < 1e13 for m in got.measurements)
    case = json.loads(fixture("nvbandwidth/1gpu_v0.5_verbose.json").read_text())
    case["nvbandwidth"]["testcases"][0].update(sum=float("inf"), bufferSize=float("inf"))
    case["nvbandwidth"]["testcases"][1]["bandwidth_matrix"][0][0] = float("nan")
    got = import_text(Source.of("j.json", json.dumps(case).encode())).result  # Infinity, NaN: JSON that Python writes
    assert store.load(store.save(got, tmp_path)).run.imported_from["format"] == "json"  # saved: nothing non-finite
    with pytest.raises(ImportFailed, match=r"h.txt: line 3: a number of more than 100 digits"):
        import_text(Source.of("h.txt", (head.replace("1024x", "9" * 5000 + "x", 1)).encode()))


def test_nvbandwidth_json_of_odd_shapes_is_one_line_or_read():
    deep = ('{"nvbandwidth": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()
    with pytest.raises(ImportFailed, match=r"deep.json: line 1: JSON nested too deeply"):
        import_text(Source.of("deep.json", deep), "nvbandwidth")
    odd = {"nvbandwidth": {"GPU Device list": 5, "testcases": [{"name": "x", "bandwidth_matrix": [[1, 2], [3, 4]]}]}}
    got = import_text(Source.of("odd.json", json.dumps(odd).encode())).result
    assert [m.rate for m in got.measurements if m.benchmark == "nvbandwidth"] == [1e9, 2e9, 3e9, 4e9]


def test_what_the_loader_refuses_is_never_written(tmp_path):
    """A device list trimmed to some devices gets unknown devices for the rest; a figure a result
    file cannot hold (0 TFLOPS as ok, a size past 64 bits) is one line naming the line, before any
    file is written."""
    nv = fixture("nvbandwidth/h800_8gpu_v0.2_nvlink.txt").read_text().replace("Device 2: NVIDIA H800\n", "", 1)
    got = import_text(Source.of("trimmed.txt", nv.encode())).result
    assert [d.name for d in got.devices].count("NVIDIA H800") == 7 and got.devices[-1].index == 2
    assert got.devices[-1].name.startswith("unknown GPU")
    assert len(store.load(store.save(got, tmp_path)).measurements) == 392
    mamf = fixture("mamf-finder/gfx1151_v2_interrupted.txt").read_text().replace("median: 22.3", "median: 0.0", 1)
    with pytest.raises(ImportFailed, match=r"z.txt: line 20: a figure a result file cannot hold: .* rate 0.0 is not positive"):
        import_text(Source.of("z.txt", mamf.encode()))
    nccl = fixture("nccl-tests/h100_2x8_all_reduce.txt").read_text().replace("        4096 ", "9" * 30 + " ", 1)
    with pytest.raises(ImportFailed, match=r"b.txt: line 41: .*params.bytes must be an integer that fits 64 bits"):
        import_text(Source.of("b.txt", nccl.encode()))


def test_a_leading_byte_order_mark_is_dropped():
    raw = fixture("mamf-finder/gfx1151_v2_interrupted.txt").read_bytes()
    with_bom = import_text(Source.of("bom.txt", b"\xef\xbb\xbf" + raw)).result
    assert [m.key for m in with_bom.measurements] == [m.key for m in imported("mamf-finder/gfx1151_v2_interrupted.txt").result.measurements]


def test_bad_options_exit_2(tmp_path, capsys):
    for args in (["--format", "iperf"], ["--host", "a b"], ["--host", ""]):
        with pytest.raises(SystemExit) as exit_info:
            main(["import", str(fixture("nccl-tests/gb10_2node_all_reduce_cut.txt")), *args])
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.count("\n") == 1
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    code, _, err = run_cli(["import", str(fixture("mamf-finder/gh200_v1_pr60.txt")), "--out", str(not_a_folder)], capsys)
    assert code == 2 and err == f"tppbench: error: --out {not_a_folder}: exists and is not a folder\n"
    code, _, err = run_cli(["import", str(fixture("mamf-finder/gh200_v1_pr60.txt")), "--collective", "all_reduce",
                            "--out", str(tmp_path)], capsys)
    assert code == 1 and "--collective is for nccl-tests" in err


def test_stdin_host_and_never_overwriting(tmp_path):
    text = fixture("nvbandwidth/h800_8gpu_v0.2_nvlink.txt").read_bytes()
    cmd = [sys.executable, "-m", "bench", "import", "-", "--host", "node-7", "--out", str(tmp_path)]
    for _ in range(2):
        done = subprocess.run(cmd, input=text, capture_output=True, cwd=ROOT, timeout=120)
        assert done.returncode == 0, done.stderr
    files = sorted(tmp_path.iterdir())
    assert len(files) == 2  # same second, same name: the second gets a suffix, nothing replaced
    result = store.load(files[0])
    assert result.run.host == "node-7" and result.run.imported_from["file"] == "<stdin>"
    assert {d.host for d in result.devices} == {"node-7"}


# --------------------------------------------------------------------------- the other commands


@pytest.fixture(scope="module")
def gloo_run(tmp_path_factory):
    """A real tppbench run: all_reduce over gloo, 2 ranks, the CPU smoke sizes (1K, 8K, 64K)."""
    out = tmp_path_factory.mktemp("gloo")
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--device", "cpu", "--suite", "collectives",
                           "--nproc", "2", "--mode", "smoke", "--only", "collectives/all_reduce/*", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    (path,) = out.iterdir()
    return path


def test_compare_aligns_a_tppbench_gloo_run_with_an_imported_log(gloo_run, tmp_path, capsys):
    imported_path = store.save(imported("nccl-tests/gb10_2node_all_reduce_cut.txt").result, tmp_path)
    ours = store.load(gloo_run)
    assert {m.key for m in ours.measurements} >= {"collectives/all_reduce/bytes=8192,world_size=2",
                                                  "collectives/all_reduce/bytes=65536,world_size=2"}
    code, out, _ = run_cli(["compare", str(gloo_run), str(imported_path), "--json"], capsys)
    rows = {r["key"]: r for r in json.loads(out)["rows"]}
    for size in (8192, 65536):
        row = rows[f"collectives/all_reduce/bytes={size},world_size=2"]  # in-place: what tppbench measures
        assert row["baseline_rate"] and row["current_rate"]  # aligned: both sides present
        assert row["change"] == "incomparable" and "nccl-tests' printed time" in row["reason"]
        assert rows[f"collectives/all_reduce/bytes={size},world_size=2,placement=out-of-place"]["change"] == "new"
    assert rows["collectives/all_reduce/bytes=1024,world_size=2"]["change"] == "missing"
    assert code == 0


def test_show_fleet_and_report_read_imported_files(tmp_path, capsys):
    folder = tmp_path / "imported"
    for path in ("nvbandwidth/h800_8gpu_v0.2_nvlink.txt", "mamf-finder/gfx1151_v2_interrupted.txt",
                 "nccl-tests/h100_2x8_all_reduce.txt", "nvbandwidth/1gpu_v0.5_verbose.json"):
        store.save(imported(path).result, folder)
    files = sorted(map(str, folder.iterdir()))
    code, out, _ = run_cli(["show", *files], capsys)
    assert code == 0 and "mode imported" in out
    code, out, _ = run_cli(["fleet", str(folder)], capsys)
    assert code == 0 and "4 files" in out and "NVIDIA H800" in out
    code, _, _ = run_cli(["report", str(folder), "--markdown", "-o", str(tmp_path / "r.md")], capsys)
    assert code == 0 and "NVIDIA H800" in (tmp_path / "r.md").read_text()
