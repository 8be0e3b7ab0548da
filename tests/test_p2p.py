"""Peer-to-peer family on a machine without two GPUs: skips with reasons, case planning for a
multi-GPU host, the NVML path classification against a fake NVML, the per-GPU aggregate I/O, the
rendered matrix, and `tppbench check` reading the measured I/O from a SYNTHETIC result file
(tests/data/p2p/synthetic-2gpu-p2p.json, made by tests/data/p2p/make_synthetic.py)."""

from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path

import pytest

from bench.backend import ModeSizes
from bench.kernels import p2p
from bench.registry import Case
from results.files.schema import Measurement, to_dict
from results.files.store import load

FIXTURE = Path(__file__).parent / "data" / "p2p" / "synthetic-2gpu-p2p.json"


def _fake_cuda_backend():
    sizes = ModeSizes(2048, (), 256 << 20, 64 << 20, 0.0)
    return types.SimpleNamespace(kind="cuda", device_index=0, sizes=lambda mode: sizes)


def test_cpu_run_records_every_p2p_case_as_skipped_with_the_reason(tmp_path, capsys):
    from bench.cli import main

    assert main(["run", "--device", "cpu", "--mode", "smoke", "--suite", "p2p", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("*.json")
    records = [m for m in load(path).measurements if m.benchmark == "p2p"]
    assert {m.variant for m in records} == {"unidirectional", "bidirectional", "aggregate_io"}
    for m in records:
        assert m.status == "skipped" and "at least 2 GPUs" in m.reason and m.rate is None


def test_one_visible_gpu_is_a_skip_too():
    cases = p2p.P2PBenchmark()._cases(_fake_cuda_backend(), "smoke", (0,))
    assert [c.key for c in cases] == ["p2p/unidirectional/bytes=67108864", "p2p/bidirectional/bytes=67108864"]
    assert "at least 2 GPUs" in p2p.skip_reason("cuda")


def test_plans_every_ordered_pair_and_every_unordered_bidirectional_pair():
    cases = p2p.P2PBenchmark()._cases(_fake_cuda_backend(), "quick", (0, 1, 3))
    uni = [(c.params["src"], c.params["dst"]) for c in cases if c.variant == "unidirectional"]
    bi = [(c.params["src"], c.params["dst"]) for c in cases if c.variant == "bidirectional"]
    assert uni == [(0, 1), (0, 3), (1, 0), (1, 3), (3, 0), (3, 1)]
    assert bi == [(0, 1), (0, 3), (1, 3)]
    assert cases[0].key == "p2p/unidirectional/src=0,dst=1,bytes=67108864"


class _Nvml:
    """Just the NVML calls link_path makes; constants carry pynvml's real values."""

    NVML_P2P_CAPS_INDEX_NVLINK = 2
    NVML_P2P_STATUS_OK = 0

    def __init__(self, p2p_status=None, level=None):
        self._status, self._level = p2p_status, level

    def nvmlDeviceGetP2PStatus(self, a, b, index):
        assert index == 2
        if isinstance(self._status, Exception):
            raise self._status
        return self._status

    def nvmlDeviceGetTopologyCommonAncestor(self, a, b):
        if isinstance(self._level, Exception):
            raise self._level
        return self._level


def test_nvml_constants_match_pynvml():
    pynvml = pytest.importorskip("pynvml")
    assert pynvml.NVML_P2P_CAPS_INDEX_NVLINK == _Nvml.NVML_P2P_CAPS_INDEX_NVLINK
    assert pynvml.NVML_P2P_STATUS_OK == _Nvml.NVML_P2P_STATUS_OK
    assert {pynvml.NVML_TOPOLOGY_SINGLE, pynvml.NVML_TOPOLOGY_MULTIPLE, pynvml.NVML_TOPOLOGY_SYSTEM} <= set(p2p.TOPOLOGY)


def test_link_path_from_nvml():
    assert p2p.link_path(_Nvml(p2p_status=0, level=50), "a", "b") == ("nvlink", None)
    path, reason = p2p.link_path(_Nvml(p2p_status=5, level=20), "a", "b")
    assert path == "pcie (PXB: through several PCIe switches)" and reason is None
    path, reason = p2p.link_path(_Nvml(p2p_status=RuntimeError("Not Supported"), level=RuntimeError("Not Supported")),
                                 "a", "b")
    assert path == "unknown" and "Not Supported" in reason


def _rec(variant, src=None, dst=None, rate=1e9, device=None, status="ok", host=None, benchmark="p2p"):
    params = {"bytes": 1 << 20} if src is None else {"src": src, "dst": dst, "bytes": 1 << 20}
    case = Case(benchmark, variant, params)
    return Measurement(key=case.key, benchmark=benchmark, variant=variant, precision=None, params=params,
                       device_index=src if device is None else device, status=status,
                       reason=None if status == "ok" else "boom", unit="byte", convention="",
                       work_per_call=1.0, rate=rate if status == "ok" else None, host=host)


def _all_peers(gpu, rate, path="nvlink", peers=2):
    case = Case("p2p", "all_peers", {"device": gpu, "peers": peers, "bytes": 1 << 20})
    return Measurement(key=case.key, benchmark="p2p", variant="all_peers", precision=None, params=dict(case.params),
                       device_index=gpu, status="ok", reason=None, unit="byte", convention="", work_per_call=1.0,
                       rate=rate, extra={"paths": {str(p): path for p in range(peers + 1) if p != gpu},
                                         "window_overlap_median": 0.98})


def test_aggregate_io_is_the_concurrent_figure_plus_the_nvlink_hosts_link_never_a_sum_of_pairs():
    records = [
        _rec("bidirectional", 0, 1, 700e9), _rec("bidirectional", 0, 2, 600e9), _rec("bidirectional", 1, 2, 500e9),
        _rec("unidirectional", 0, 1, 999e9),  # never used: the aggregate is bidirectional
        _all_peers(0, 720e9), _all_peers(1, 710e9), _all_peers(2, 650e9),
        _rec("bidirectional_pinned", device=0, rate=90e9, benchmark="hostlink"),
        _rec("bidirectional_pinned", device=1, rate=80e9, benchmark="hostlink"),
    ]
    out = {m.device_index: m for m in p2p.aggregate_io(records, "h")}
    assert out[0].key == "p2p/aggregate_io/device=0" and out[0].status == "ok"
    assert out[0].rate == pytest.approx(720e9 + 90e9) and out[0].flags == ()
    assert out[1].rate == pytest.approx(710e9 + 80e9)
    assert out[2].rate == pytest.approx(650e9) and out[2].flags == ("host_link_missing",)
    assert out[0].extra["peers_from"] == "p2p/all_peers/device=0,peers=2,bytes=1048576"
    assert out[0].extra["hostlink_bidirectional"] == 90e9 and out[0].extra["window_overlap_median"] == 0.98
    assert "never a sum of pairs" in out[0].convention


def test_a_synthetic_nvswitch_node_is_measured_at_its_concurrent_figure_not_seven_pairs():
    """Issue 18, defect 4: 8 GPUs on NVSwitch, each pair alone moves the GPU's whole NVLink (341 GB/s
    both ways, the real 8xH800 nvbandwidth fixture's figure) and every peer at once shares it (356 GB/s
    per GPU, 2 x 178). Summing pairs made 7 x 341 + 87 = 2.47 TB/s: above 600 GB/s, 'controlled'."""
    records = [_rec("bidirectional", i, j, 341e9) for i in range(8) for j in range(i + 1, 8)]
    records += [_all_peers(g, 356e9, peers=7) for g in range(8)]
    records += [_rec("bidirectional_pinned", device=g, rate=87e9, benchmark="hostlink") for g in range(8)]
    out = {m.device_index: m for m in p2p.aggregate_io(records, "h")}
    assert sorted(out) == list(range(8))
    assert all(m.rate == pytest.approx(356e9 + 87e9) for m in out.values())  # 443 GB/s, under 600
    assert all(m.rate < 600e9 for m in out.values())
    assert 7 * 341e9 + 87e9 > 600e9  # what the old sum said


def test_without_a_concurrent_figure_the_largest_pair_is_a_flagged_lower_bound():
    records = [_rec("bidirectional", i, j, 341e9 + i) for i in range(4) for j in range(i + 1, 4)]
    records += [_rec("bidirectional_pinned", device=g, rate=87e9, benchmark="hostlink") for g in range(4)]
    out = {m.device_index: m for m in p2p.aggregate_io(records, "h")}
    assert all("lower_bound" in m.flags for m in out.values())
    assert out[0].rate == pytest.approx(341e9)  # the paths are unknown: the larger of peers and host link, not added
    assert "never summed" in out[0].extra["lower_bound_reason"]


def test_peers_over_pcie_are_not_added_to_the_host_link():
    records = [_all_peers(0, 40e9, path="pcie (PXB: through several PCIe switches)", peers=1),
               _rec("bidirectional", 0, 1, 41e9),
               _rec("bidirectional_pinned", device=0, rate=50e9, benchmark="hostlink")]
    out = {m.device_index: m for m in p2p.aggregate_io(records, "h")}
    assert out[0].rate == pytest.approx(50e9) and "lower_bound" in out[0].flags


def test_the_measured_basis_reads_a_lower_bound_as_a_lower_bound():
    from helpers_results import run_result
    from thresholds.measured import measured_metrics

    records = [_rec("bidirectional", 0, 1, 341e9), _rec("bidirectional_pinned", device=0, rate=87e9, benchmark="hostlink")]
    aggregate = [m for m in p2p.aggregate_io(records, "h") if m.device_index == 0]
    result = run_result(aggregate)
    metrics, _ = measured_metrics(result, result.devices[0], None, None, "f")
    io = metrics.values["io_bidirectional_gbs"]
    assert io.value.lo == pytest.approx(341) and io.value.hi == float("inf")


def test_aggregate_io_is_an_error_when_a_pair_failed_and_is_per_host():
    records = [_rec("bidirectional", 0, 1, status="error"), _rec("bidirectional", 0, 1, 300e9, host="b")]
    out = sorted(p2p.aggregate_io(records, "a"), key=lambda m: (m.host or "", m.device_index))
    assert [(m.host, m.device_index, m.status) for m in out] == [
        (None, 0, "error"), (None, 1, "error"), ("b", 0, "ok"), ("b", 1, "ok")]
    assert "boom" in out[0].reason and out[2].rate == 300e9


def test_synthetic_fixture_is_what_its_generator_writes():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_synthetic", FIXTURE.with_name("make_synthetic.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert json.loads(FIXTURE.read_text()) == json.loads(json.dumps(to_dict(module.build())))
    assert "SYNTHETIC" in load(FIXTURE).run.label


def test_matrix_tables_render_the_fixture():
    from rich.console import Console

    console = Console(width=200, record=True)
    for table in p2p.matrix_tables(load(FIXTURE)):
        console.print(table)
    text = console.export_text()
    assert "p2p unidirectional GB/s on synthetic-host" in text and "376.0" in text and "375.0" in text
    assert "p2p bidirectional GB/s" in text and text.count("745.0") == 2  # symmetric cells


def test_check_reads_the_measured_io_from_p2p_aggregate_records(capsys):
    from bench.cli import main

    expected = {m.device_index: m.rate / 1e9 for m in load(FIXTURE).measurements
                if m.variant == "aggregate_io"}
    assert expected == {0: pytest.approx(839.0), 1: pytest.approx(837.0)}
    assert main(["check", "--json", str(FIXTURE)]) == 0
    document = json.loads(capsys.readouterr().out)
    seen = {}
    for subject in document["subjects"]:
        index = int(subject["ref"].rpartition("#")[2])
        io = subject["metrics_by_basis"]["measured"]["io_bidirectional_gbs"]
        assert io["basis"] == "measured" and "aggregate_io" in io["source"]
        seen[index] = io["value"]
    assert seen == expected


def test_p2p_records_keep_the_schema_round_trip():
    from results.files.schema import from_dict

    result = load(FIXTURE)
    again = from_dict(json.loads(json.dumps(to_dict(result))))
    assert [dataclasses.asdict(m) for m in again.measurements] == [dataclasses.asdict(m) for m in result.measurements]


@pytest.mark.gpu
def test_two_or_more_gpus_measure_the_matrix_and_the_aggregate(tmp_path, capsys):
    """GPU host with 2+ GPUs only: every pair and every GPU's all-peers case measured and verified,
    and aggregate_io built on the concurrent all-peers figure."""
    import torch

    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2+ GPUs")
    import subprocess
    import sys

    # As a user runs it: the command line, in its own process (issue 18, defect 1).
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--device", "cuda", "--mode", "smoke",
                           "--suite", "hostlink,p2p", "--out", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (path,) = tmp_path.glob("*.json")
    records = load(path).measurements
    n = torch.cuda.device_count()
    uni = [m for m in records if m.variant == "unidirectional"]
    bi = [m for m in records if m.variant == "bidirectional"]
    assert len(uni) == n * (n - 1) and len(bi) == n * (n - 1) // 2
    assert all(m.status == "ok" and m.extra["path"] for m in uni + bi)
    every = {m.params["device"]: m for m in records if m.variant == "all_peers"}
    assert sorted(every) == list(range(n)) and all(m.status == "ok" for m in every.values())
    for agg in (m for m in records if m.variant == "aggregate_io"):
        gpu = agg.device_index
        assert agg.extra["peers_from"] == every[gpu].key  # the concurrent figure, never a sum of pairs
        assert agg.rate >= every[gpu].rate
