"""Case sizes follow static facts only (mode, cache, total memory), never free memory."""

from __future__ import annotations

import pytest
import torch

from bench.backend import CPU_EMULATED_MATMUL_EDGE, CpuBackend, CudaBackend
from bench.kernels.matmul import MatmulBenchmark
from bench.kernels.memory import MemoryBenchmark
from bench.registry import Case, select
from bench.sizing import (BELOW_CACHE_FLAG, MIB, does_not_fit, flush_buffer_bytes, memory_buffer_size,
                          pow2_mib_at_least, pow2_mib_at_most)
from fake_cuda import FakeCuda

FAMILIES = ["matmul", "memory", "hostlink", "p2p"]


class Host(CpuBackend):
    """The real CPU backend with a chosen LLC and free memory (what differs between VMs and runs)."""

    def __init__(self, llc_bytes: int | None = None, free_bytes: int | None = None) -> None:
        super().__init__()
        self.llc_bytes, self.free_bytes = llc_bytes, free_bytes

    def cache_bytes(self) -> int:
        return self.llc_bytes if self.llc_bytes is not None else super().cache_bytes()

    def free_memory_bytes(self) -> int:
        return self.free_bytes if self.free_bytes is not None else super().free_memory_bytes()


def keys(backend, mode: str) -> list[str]:
    return [case.key for _, case in select(FAMILIES, backend, mode)]


def test_the_grid_is_power_of_two_mib():
    assert [pow2_mib_at_least(n) for n in (0, 1, MIB, MIB + 1, 3 * MIB, 480 * MIB)] == \
        [MIB, MIB, MIB, 2 * MIB, 4 * MIB, 512 * MIB]
    assert [pow2_mib_at_most(n) for n in (0, MIB, 3 * MIB, 2937061376, 3030384640)] == \
        [MIB, MIB, 2 * MIB, 2048 * MIB, 2048 * MIB]  # the two sizes issue 16 saw land on one grid point


@pytest.mark.parametrize("mode", ["smoke", "quick", "full"])
@pytest.mark.parametrize("llc_mib", [2, 32, 480])
def test_keys_do_not_move_when_free_memory_does(mode, llc_mib):
    free_values = (2 << 30, 3 << 30, 7 << 30, 23 << 30)
    plans = {tuple(keys(Host(llc_mib << 20, free), mode)) for free in free_values}
    assert len(plans) == 1, plans


def test_the_two_free_memory_readings_of_the_issue_give_one_key():
    """The regression this guards: two smoke runs a minute apart on the 480 MiB-LLC VM read
    MemAvailable as 23.50 and 24.24 GB, and 1/8 of it (the old cap) made two keys. Through the real
    backend and family, both readings now plan the one key held at the mode's cap."""
    plans = {tuple(c.key for c in MemoryBenchmark().cases(Host(480 * MIB, free), "smoke"))
             for free in (23_496_491_008, 24_243_077_120)}
    assert plans == {tuple(f"memory/{v}/bytes={256 * MIB}" for v in ("copy", "read", "write", "triad"))}


@pytest.mark.parametrize("llc_mib,mode,size_mib,held", [
    (32, "smoke", 256, None), (32, "quick", 256, None), (32, "full", 256, None),
    (480, "smoke", 256, "mode cap"), (480, "quick", 256, "mode cap"), (480, "full", 2048, "total memory"),
    (2, "smoke", 16, None), (2, "quick", 64, None), (2, "full", 256, None),
])
def test_memory_sizes_for_both_kinds_of_vm(llc_mib, mode, size_mib, held):
    sizes = CpuBackend().sizes(mode)
    plan = memory_buffer_size(sizes.memory_bytes, sizes.memory_max_bytes, llc_mib * MIB, 23 << 30)
    assert plan.bytes_per_buffer == size_mib * MIB and plan.limited_by == held
    assert plan.below_cache_multiple == (held is not None)


def test_gpu_sizes_follow_l2_and_total_memory_only():
    cuda = FakeCuda()
    backend = CudaBackend(0, cuda=cuda)
    first = [c.key for c in MemoryBenchmark().cases(backend, "quick") + MatmulBenchmark().cases(backend, "full")]
    cuda.mem_get_info = lambda device: (1 << 30, 80 << 30)  # nearly full now: sizes must not care
    second = [c.key for c in MemoryBenchmark().cases(backend, "quick") + MatmulBenchmark().cases(backend, "full")]
    assert first == second
    assert MemoryBenchmark().cases(backend, "smoke")[0].params["bytes"] == 512 * MIB  # 8 x 50 MiB L2 on the grid
    assert backend.flush_bytes() == 256 * MIB


def test_flush_buffer_sizes():
    assert flush_buffer_bytes(32 * MIB, MIB, 64 * MIB) == 64 * MIB
    assert flush_buffer_bytes(480 * MIB, MIB, 64 * MIB) == 64 * MIB
    assert flush_buffer_bytes(50 * MIB, 256 * MIB, None) == 256 * MIB
    assert flush_buffer_bytes(256 * MIB, 256 * MIB, None) == 512 * MIB  # MI300's Infinity Cache: 2x


def test_a_memory_case_that_does_not_fit_is_skipped_with_needed_and_free_not_resized():
    host = Host(free_bytes=100 * MIB)
    case = MemoryBenchmark().cases(host, "smoke")[0]
    record = MemoryBenchmark().run(case, host, "smoke")
    assert record.status == "skipped" and record.key == case.key
    assert "does not fit" in record.reason and "GB of memory and 0.10 GB is free" in record.reason


def test_a_matmul_case_that_does_not_fit_is_skipped_with_needed_and_free():
    host = Host(free_bytes=1 * MIB)
    case = Case("matmul", "reference", {"m": 1024, "n": 1024, "k": 1024}, "fp32")
    record = MatmulBenchmark().run(case, host, "smoke")
    assert record.status == "skipped" and "does not fit" in record.reason and "fp32 1024x1024x1024" in record.reason


def test_a_buffer_held_below_8x_the_cache_is_flagged_in_the_record():
    huge = Host(llc_bytes=480 * MIB)  # a current Xeon's L3, on this host's real memory
    case = next(c for c in MemoryBenchmark().cases(huge, "smoke") if c.variant == "write")
    assert case.params["bytes"] == 256 * MIB
    record = MemoryBenchmark().run(case, huge, "smoke")
    assert record.status == "ok", record.reason
    assert BELOW_CACHE_FLAG in record.flags
    assert record.extra["cache_multiple"] == pytest.approx(256 / 480, abs=1e-3)
    assert "below 8x" in record.extra["below_cache_note"] and "mode cap" in record.extra["below_cache_note"]
    small = Host(llc_bytes=1 * MIB)
    record = MemoryBenchmark().run(Case("memory", "write", {"bytes": 16 * MIB}), small, "smoke")
    assert record.status == "ok" and BELOW_CACHE_FLAG not in record.flags and "below_cache_note" not in record.extra


def test_emulated_cpu_precisions_use_a_fixed_smaller_shape():
    cpu = CpuBackend()
    by_precision = {c.precision: c for c in MatmulBenchmark().cases(cpu, "quick") if c.variant == "reference"}
    for precision, edge in CPU_EMULATED_MATMUL_EDGE.items():
        assert by_precision[precision].key == f"matmul/{precision}/m={edge},n={edge},k={edge}"
    assert by_precision["bf16"].key == "matmul/bf16/m=1024,n=1024,k=1024"
    full = [c for c in MatmulBenchmark().cases(cpu, "full") if c.precision == "fp8"]
    assert all(int(c.params["m"]) * int(c.params["n"]) * int(c.params["k"]) <= 256 ** 3 for c in full)
    assert len({c.key for c in full}) == len(full)
    gpu = {c.precision: c for c in MatmulBenchmark().cases(CudaBackend(0, cuda=FakeCuda()), "quick")}
    assert gpu["fp8"].key == "matmul/fp8/m=8192,n=8192,k=8192"  # the rule is the CPU backend's only


def test_no_cpu_quick_case_is_sized_for_a_call_past_two_seconds():
    """The sizes behind 'no single torch call on the CPU path runs past ~2 s in quick mode': memory
    buffers at most 256 MiB (torch.rand of one: ~0.6 s on 2 cores), native matmuls at most 1024^3,
    emulated ones 256^3. A rule of sizes, asserted without timing anything."""
    for llc in (2 * MIB, 32 * MIB, 480 * MIB):
        for _, case in select(["matmul", "memory"], Host(llc), "quick"):
            if case.benchmark == "memory":
                assert case.params["bytes"] <= 256 * MIB
            else:
                m, n, k = (int(case.params[x]) for x in "mnk")
                limit = CPU_EMULATED_MATMUL_EDGE.get(case.precision, 1024)
                assert m * n * k <= limit ** 3, case.key


def test_does_not_fit_names_both_figures():
    assert does_not_fit(10, 10) is None
    text = does_not_fit(3 << 30, 1 << 30, "triad")
    assert text.startswith("does not fit: triad needs 3.22 GB") and "1.07 GB is free" in text


def test_a_memory_figure_below_8x_the_cache_is_not_taken_for_dram_without_saying_so():
    from helpers_results import measurement, run_result
    from thresholds.measured import measured_metrics

    flagged = measurement("memory/copy/bytes=268435456", work=2 * 256 * MIB, flags=(BELOW_CACHE_FLAG,))
    result = run_result([flagged])
    metrics, _ = measured_metrics(result, result.devices[0], None, None, "this file")
    assert "may be a cache figure" in metrics.values["memory_bandwidth_gbs"].source
    assert any("below 8x the last-level cache" in note for note in metrics.notes)
    clean = run_result([measurement("memory/copy/bytes=268435456", work=2 * 256 * MIB)])
    metrics, _ = measured_metrics(clean, clean.devices[0], None, None, "this file")
    assert "cache figure" not in metrics.values["memory_bandwidth_gbs"].source
