"""Concurrent per-device measurement: one rank per GPU (or CPU slice) measuring at once, the
concurrency recorded in every record, host-link placement on the GPU's local CPUs, and the
all-GPU host-to-device total. Real processes (SIGTERM on this path: test_stop_signals.py)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

import fake_pynvml as fake
from bench import placement
from bench.kernels.hostlink import ALL_GPUS, TOTAL, all_gpus_totals
from bench.nvml import NVML
from results.files.schema import DeviceInfo, Measurement, RunInfo, RunResult, from_dict, to_dict
from results.files.store import load


def test_cpu_slices_are_disjoint_contiguous_and_cover_every_cpu():
    cpus = list(range(10))
    slices = [placement.cpu_slice(r, 3, cpus) for r in range(3)]
    assert slices == [(0, 1, 2), (3, 4, 5), (6, 7, 8, 9)]
    assert placement.cpu_slice(1, 2, [0, 1]) == (1,)
    assert placement.cpu_slice(3, 4, [0, 1]) == (1,)  # fewer CPUs than ranks: shared round-robin
    assert placement.format_cpu_set([7, 0, 1, 2, 5, 8]) == "0-2,5,7-8"
    assert placement.cpus_from_mask([0b1010, 1]) == (1, 3, 64)


def test_host_link_placement_comes_from_nvml_and_is_restored(monkeypatch, tmp_path):
    allowed = sorted(os.sched_getaffinity(0))
    target = allowed[-1]
    nvml = fake.make_pynvml([fake.h100_answers(nvmlDeviceGetCpuAffinity=[1 << target],
                                               nvmlDeviceGetNumaNodeId=1)])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # the fake is found by index
    sysfs = tmp_path / "devices" / "0000:18:00.0"  # the fake's bus id 00000000:18:00.0
    sysfs.mkdir(parents=True)
    (sysfs / "numa_node").write_text("0\n")
    monkeypatch.setattr(placement, "SYSFS_PCI", str(tmp_path / "devices"))
    NVML.shutdown()
    try:
        where = placement.gpu_local_placement(0)
        assert where.cpus == (target,) and where.reason is None
        # Issue 18, defect 9: the node of the GPU's PCI device from sysfs, NVML's under its own name
        assert where.numa_node == 0 and where.gpu_memory_numa_node == 1
        with placement.bound(where):
            assert os.sched_getaffinity(0) == {target}
        assert sorted(os.sched_getaffinity(0)) == allowed
        assert where.as_extra() == {"cpu_set": str(target), "numa_node": 0, "placement_note": None,
                                    "numa_node_source": f"sysfs {sysfs / 'numa_node'}",
                                    "gpu_memory_numa_node": 1}
    finally:
        NVML.shutdown()


def test_the_numa_node_of_a_pci_device_is_read_from_sysfs(tmp_path):
    (tmp_path / "0000:1b:00.0").mkdir()
    (tmp_path / "0000:1b:00.0" / "numa_node").write_text("1\n")
    (tmp_path / "0000:3d:00.0").mkdir()
    (tmp_path / "0000:3d:00.0" / "numa_node").write_text("-1\n")
    assert placement.sysfs_bus_id("00000000:1B:00.0") == "0000:1b:00.0"
    assert placement.pci_numa_node("00000000:1B:00.0", str(tmp_path))[0] == 1
    node, why = placement.pci_numa_node("00000000:3D:00.0", str(tmp_path))
    assert node is None and "no NUMA affinity" in why
    node, why = placement.pci_numa_node("00000000:99:00.0", str(tmp_path))
    assert node is None and "No such file" in why
    assert placement.pci_numa_node(None, str(tmp_path)) == (None, "no PCI bus id for the GPU")


def test_without_nvml_the_host_link_runs_unbound_and_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    NVML.shutdown()
    try:
        where = placement.gpu_local_placement(0)
    finally:
        NVML.shutdown()
    assert where.cpus is None and "not bound to the GPU's CPUs" in (where.reason or "")


def _h2d_all(gpu: int, rate: float | None, window: tuple[float, float], status: str = "ok") -> Measurement:
    return Measurement(key=f"hostlink/{ALL_GPUS}/bytes=1024", benchmark="hostlink", variant=ALL_GPUS,
                       precision=None, params={"bytes": 1024}, device_index=gpu, status=status,
                       reason=None if status == "ok" else "boom", unit="byte", convention="",
                       work_per_call=1024.0, rate=rate, host="node1", rank=gpu, concurrent_devices=2,
                       extra={"window_monotonic_s": list(window)})


def test_all_gpu_total_sums_concurrent_medians_and_reports_the_overlap():
    total, = all_gpus_totals([_h2d_all(0, 50e9, (10.0, 11.0)), _h2d_all(1, 40e9, (10.05, 11.05))], "node1")
    assert total.key == f"hostlink/{TOTAL}/bytes=1024,devices=2"
    assert total.status == "ok" and total.rate == 90e9 and total.concurrent_devices == 2
    assert total.extra["per_gpu"] == {"0": 50e9, "1": 40e9}
    assert total.extra["window_overlap"] == pytest.approx(0.95 / 1.05)
    assert total.flags == ()
    late, = all_gpus_totals([_h2d_all(0, 50e9, (10.0, 11.0)), _h2d_all(1, 40e9, (10.5, 11.5))], "node1")
    assert late.flags == ("partial_overlap",)  # the GPUs did not copy at the same time for long
    failed, = all_gpus_totals([_h2d_all(0, 50e9, (10.0, 11.0)), _h2d_all(1, None, (10.0, 11.0), "error")], "node1")
    assert failed.status == "error" and "GPU 1: error: boom" in (failed.reason or "")
    # the derived total (no samples of its own, work_per_call 0) is a record the loader accepts
    run = RunInfo(host="node1", started_utc="2026-11-29T10:00:00Z", finished_utc=None, mode="quick",
                  argv=(), harness_version="test")
    devices = tuple(DeviceInfo(index=i, backend="cuda", name="GPU") for i in (0, 1))
    records = tuple(dataclasses.replace(_h2d_all(i, 45e9, (10.0, 11.0)), times_s=(1024 / 45e9,)) for i in (0, 1))
    result = RunResult(run=run, devices=devices, measurements=records + (total,))
    assert from_dict(to_dict(result)).measurements[-1] == total


def tppbench(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"), **kwargs)


def test_nproc_2_on_the_cpu_measures_two_cpu_slices_at_once(tmp_path):
    proc = tppbench("run", "--device", "cpu", "--mode", "smoke", "--nproc", "2", "--suite", "memory",
                    "--only", "memory/read/*", "--out", str(tmp_path))
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    result = load(next(tmp_path.glob("*.json")))
    assert result.run.complete and result.run.world_size == 2
    records = sorted(result.measurements, key=lambda m: m.rank)
    assert [(m.rank, m.status, m.concurrent_devices) for m in records] == [(0, "ok", 2), (1, "ok", 2)]
    cpu_sets = [m.extra["cpu_set"] for m in records]
    allowed = sorted(os.sched_getaffinity(0))
    assert cpu_sets == [placement.format_cpu_set(placement.cpu_slice(r, 2, allowed)) for r in (0, 1)]


@pytest.mark.gpu
def test_host_link_placement_on_a_real_gpu_is_a_subset_of_the_allowed_cpus_or_says_why():
    where = placement.gpu_local_placement(0)
    if where.cpus is None:
        assert where.reason  # e.g. NVML Not Supported in a VM: recorded, never raised
    else:
        assert set(where.cpus) <= os.sched_getaffinity(0)


def test_the_numa_node_of_a_buffers_pages_is_read_from_numa_maps():
    """Issue 18, defect 7: host-link records say where their buffers' pages really are."""
    import torch

    buffer = torch.ones(16 << 20, dtype=torch.uint8)  # 16 MiB, touched: its own mapping, resident
    nodes = placement.pages_by_node(buffer.data_ptr())
    if nodes is None:
        pytest.skip("no /proc/self/numa_maps here (not Linux, or NUMA support off)")
    assert nodes and all(key.startswith("N") and count > 0 for key, count in nodes.items())
    assert sum(nodes.values()) > 0
    assert placement.pages_by_node(0) is None  # no mapping holds address 0


def test_the_pinned_pool_is_released_before_a_case_allocates(monkeypatch):
    """The pinned caching allocator would hand GPU k the blocks allocated under GPU 0's binding;
    release_pinned_pool empties it first (torch._C._host_emptyCache on a CUDA build)."""
    import torch

    from bench.kernels import hostlink

    calls = []
    monkeypatch.setattr(torch._C, "_host_emptyCache", lambda: calls.append("emptied"), raising=False)
    assert hostlink.release_pinned_pool().startswith("emptied before allocating") and calls == ["emptied"]
    monkeypatch.delattr(torch._C, "_host_emptyCache")
    assert "not emptied" in hostlink.release_pinned_pool()
