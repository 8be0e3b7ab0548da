"""Import, round 2: rccl-tests logs as their users published them (real fixtures, every printed
number checked against the file), nccl-tests -J JSON (a synthetic document built to the writer's
source), logs with no header, elided rank lists, and the collective inferred from busbw/algbw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from results.importers.command import import_text
from results.importers.source import ImportFailed, Source

DATA = Path(__file__).parent / "data" / "imported"


def _import(path: Path, collective: str | None = None):
    return import_text(Source.of(str(path), path.read_bytes()), "auto", collective)


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line.strip() and line.strip()[0].isdigit()]


@pytest.mark.parametrize("name, world, version, ranks_host", [
    ("mi300x_8gpu_allreduce_aac8.txt", 8, "develop:a7809b3", "1942ef50-8240-449e-82ca-4ce7993f70b4-78bfb5d4f4-4z9xh"),
    ("mi300x_2node_16gpu_allreduce_aac10.txt", 16, "develop:448c4c7", "gpu-53"),
])
def test_rccl_tests_logs_import_as_rccl_tests_with_every_printed_number(name, world, version, ranks_host):
    path = DATA / "rccl-tests" / name
    got = _import(path)
    run = got.result.run
    assert run.imported_from["tool"] == "rccl-tests" and run.imported_from["version"] == version
    assert run.backend == "rocm" and run.world_size == world and run.host == ranks_host
    assert all(d.name == "AMD Instinct MI300X" for d in got.result.devices)
    rows = _rows(path.read_text())
    by_key = {(m.params["bytes"], m.extra["in_place"]): m for m in got.result.measurements}
    assert len(by_key) == 2 * len(rows)
    for tokens in rows:
        size = int(tokens[0])
        for in_place, start in ((False, 5), (True, 9)):
            m = by_key[(size, in_place)]
            assert m.extra["printed"]["time_us"] == float(tokens[start])
            assert m.extra["printed"]["algbw_gbs"] == float(tokens[start + 1])
            assert m.extra["printed"]["busbw_gbs"] == float(tokens[start + 2])
            assert m.rate == pytest.approx(size / (float(tokens[start]) * 1e-6))
            assert m.busbw == pytest.approx(m.rate * 2 * (world - 1) / world)
    footer = run.imported_from["footer"]
    assert footer["avg_bus_bandwidth_gbs"] == {8: 110.464, 16: 92.3318}[world]
    # the mpirun command, its -x continuation lines and the publisher's <snip> come before the log:
    # read past; the version line and the library block are read, not skipped
    assert run.imported_from["skipped_lines"] == []


def test_the_rccl_library_block_is_kept():
    got = _import(DATA / "rccl-tests" / "mi300x_2node_16gpu_allreduce_aac10.txt")
    run = got.result.run
    assert run.nccl == "2.22.3-HEAD:7d8d67c" and run.hip == "6.4.43484-123eb5128" and run.rocm == "6.4.2.0-120-e7d83f5"
    assert run.imported_from["libraries"]["librccl_path"] == "/shared/apps/ubuntu/opt/rocm-6.4.2/lib/librccl.so.1"
    assert {d.pci_bus_id for d in got.result.devices} >= {"0000:05:00.0", "0000:e5:00.0"}  # the old layout's bus ids


def test_nccl_tests_json_keeps_the_per_iteration_samples():
    path = DATA / "nccl-tests" / "SYNTHETIC_h100_8gpu_allreduce.json"
    doc = json.loads(path.read_text())
    got = _import(path)
    run = got.result.run
    assert run.imported_from["format"] == "nccl-tests -J JSON" and run.nccl == "2.27.3"
    assert run.host == "<HOST>" and run.world_size == 8 and run.complete  # errors [""] is no error
    for row in doc["results"]:
        oop = next(m for m in got.result.measurements if m.params["bytes"] == row["size"] and not m.extra["in_place"])
        times = row["out_of_place_per_iter"]["times_us"]
        assert oop.times_s == tuple(t * 1e-6 for t in times) and oop.stats.n == len(times)
        assert oop.rate == pytest.approx(row["size"] / (sorted(times)[len(times) // 2] * 1e-6))
        assert oop.extra["printed"]["algbw_gbs"] == row["out_of_place"]["alg_bw"]
        assert oop.extra["root"] == "-1"  # the padded string, trimmed
        inp = next(m for m in got.result.measurements if m.params["bytes"] == row["size"] and m.extra["in_place"])
        assert inp.times_s == () and inp.stats.n == 1  # no per-iteration block: the printed time alone


@pytest.mark.parametrize("text, words", [
    ('{"nccl_version": 22703, "results": [', "malformed JSON"),
    ('{"some": "other tool", "results": []}', "not nccl-tests, nvbandwidth or mamf-finder output"),
    ('{"nccl_version": 22703, "results": [], "args": ["./x"]}', "does not say which collective"),
])
def test_bad_json_is_one_line(text, words):
    with pytest.raises(ImportFailed, match=words):
        import_text(Source.of("doc.json", text.encode()))


def _table(ratio: float, n: int, redop: str = "sum", ranks: int | None = None, elide: bool = False,
           header: bool = True) -> str:
    lines = []
    if ranks:
        shown = [0, 1, ranks - 1] if elide else list(range(ranks))
        for r in shown:
            lines.append(f"#  Rank {r:2d} Group  0 Pid {100 + r} on host device {r % 8} [0000:{r:02x}:00] NVIDIA H100 80GB HBM3")
            if elide and r == 1:
                lines.append("#  ...")
    if header:
        lines.append("#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong")
    for size in (1 << 26, 1 << 28, 1 << 30):
        t = size / 200e9 * 1e6
        alg = size / 1e9 / (t * 1e-6)
        cols = f"{t:.1f}  {alg:.2f}  {alg * ratio:.2f}  0"
        lines.append(f"{size:12d}  {size // 4:12d}  float  {redop}  -1  {cols}  {cols}")
    lines.append("# Avg bus bandwidth    : 100")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("ratio, n, redop, op", [
    (2 * 7 / 8, 8, "sum", "all_reduce"), (7 / 8, 8, "sum", "reduce_scatter"), (1.0, 8, "sum", "reduce"),
])
def test_the_collective_is_inferred_where_the_ratio_is_unique(ratio, n, redop, op):
    got = import_text(Source.of("cut.log", _table(ratio, n, redop, ranks=n).encode()))
    assert {m.variant for m in got.result.measurements} == {op}
    assert got.result.run.imported_from["collective_from"].startswith("inferred: busbw/algbw")


@pytest.mark.parametrize("ratio, redop, words", [
    (7 / 8, "none", "all_gather and alltoall alike"), (1.0, "none", "broadcast and sendrecv alike"),
])
def test_an_ambiguous_ratio_asks_for_collective(ratio, redop, words):
    with pytest.raises(ImportFailed, match=words + r".*pass --collective"):
        import_text(Source.of("cut.log", _table(ratio, 8, redop, ranks=8).encode()))


def test_an_elided_rank_list_gives_the_world_from_the_highest_rank():
    got = import_text(Source.of("elided.log", _table(2 * 15 / 16, 16, ranks=16, elide=True).encode()))
    assert got.result.run.world_size == 16 and {m.variant for m in got.result.measurements} == {"all_reduce"}


def test_a_prompt_inside_the_log_is_reported_as_pasted():
    text = _table(2 * 7 / 8, 8, ranks=8).replace("# Avg bus", "$ echo done\n# Avg bus")
    got = import_text(Source.of("pasted.log", text.encode()))
    assert [s["why"] for s in got.result.run.imported_from["skipped_lines"]] == [
        "pasted around the log (a shell prompt, command line or cut mark)"]


def test_rows_with_no_header_and_nranks_from_nccl_info():
    text = "node1: NCCL INFO comm 0x5 rank 0 nranks 8 cudaDev 0 busId 18000 - Init COMPLETE\n" + _table(
        2 * 7 / 8, 8, header=False)
    got = import_text(Source.of("rows-only.log", text.encode()))
    assert got.result.run.world_size == 8 and len(got.result.measurements) == 6
    assert {m.variant for m in got.result.measurements} == {"all_reduce"}
