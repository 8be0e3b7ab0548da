"""Every kernel in smoke mode on the CPU with real torch."""

from __future__ import annotations

import pytest
import torch

from bench.backend import CpuBackend
from bench.kernels import matmul as matmul_mod
from bench.kernels.hostlink import HostLinkBenchmark
from bench.kernels.matmul import MatmulBenchmark
from bench.kernels.memory import MemoryBenchmark
from bench.registry import Case, select


@pytest.fixture(scope="module")
def cpu() -> CpuBackend:
    return CpuBackend()


def _matmul_case(precision: str, edge: int = 128) -> Case:
    return Case("matmul", "reference", {"m": edge, "n": edge, "k": edge}, precision)


@pytest.mark.parametrize("precision", ["fp64", "fp32", "fp16", "bf16", "fp8", "int8"])
def test_matmul_precisions_measure_on_cpu(cpu, precision):
    m = MatmulBenchmark().run(_matmul_case(precision), cpu, "smoke")
    assert m.status == "ok", m.reason
    assert m.rate > 0 and m.stats.median == m.rate
    assert m.work_per_call == 2 * 128**3
    assert m.unit == ("op" if precision == "int8" else "flop")
    assert len(m.times_s) == m.stats.n >= 1
    assert m.timing.l2_flushed and m.timing.clock == "perf_counter"
    assert m.key == f"matmul/{precision}/m=128,n=128,k=128"


@pytest.mark.parametrize("precision", ["tf32", "fp4"])
def test_cpu_skips_what_it_cannot_run_with_a_reason(cpu, precision):
    m = MatmulBenchmark().run(_matmul_case(precision), cpu, "smoke")
    assert m.status == "skipped" and m.rate is None
    assert precision in m.reason.lower() or "compute capability" in m.reason


def _wrong_float_mm(ops):
    torch.matmul(ops.a, ops.b.flip(1), out=ops.out)  # columns of B reversed: a plausible bug


def _wrong_int_mm(ops):
    torch._int_mm(ops.a, ops.b, out=ops.out)
    ops.out[0, 0] += 1  # one element off


@pytest.mark.parametrize("precision,wrong", [("bf16", _wrong_float_mm), ("fp32", _wrong_float_mm),
                                             ("int8", _wrong_int_mm)])
def test_correctness_check_catches_a_wrong_kernel(cpu, monkeypatch, precision, wrong):
    monkeypatch.setitem(matmul_mod.KERNELS, precision, wrong)
    m = MatmulBenchmark().run(_matmul_case(precision), cpu, "smoke")
    assert m.status == "error"
    assert m.reason.startswith("correctness check failed")
    assert m.rate is None and len(m.times_s) >= 1  # samples kept, no number reported


def test_unwritten_output_is_caught(cpu, monkeypatch):
    monkeypatch.setitem(matmul_mod.KERNELS, "fp32", lambda ops: None)
    m = MatmulBenchmark().run(_matmul_case("fp32"), cpu, "smoke")
    assert m.status == "error" and "NaN" in m.reason


def test_operands_are_random_not_zero(cpu):
    ops = matmul_mod.make_operands("int8", 64, 64, 64, cpu.device, seed=1)
    assert ops.a.to(torch.float32).std() > 10 and (ops.a != 0).float().mean() > 0.9
    ops = matmul_mod.make_operands("fp8", 64, 64, 64, cpu.device, seed=1)
    assert ops.b.stride() == (1, 64)  # column-major B, as _scaled_mm requires


def test_tf32_mode_is_restored(cpu):
    before = torch.get_float32_matmul_precision()
    with matmul_mod.float32_mode("tf32"):
        assert torch.get_float32_matmul_precision() == "high"
    with matmul_mod.float32_mode("fp32"):
        assert torch.get_float32_matmul_precision() == "highest"
    assert torch.get_float32_matmul_precision() == before


def test_shape_fits_small_memory():
    assert matmul_mod.fitted_shape("fp64", 8192, 8192, 8192, total_bytes=64 << 20) == (1024, 1024, 1024)
    assert matmul_mod.fitted_shape("bf16", 8192, 8192, 8192, total_bytes=80 << 30) == (8192, 8192, 8192)


@pytest.mark.parametrize("variant,factor", [("copy", 2), ("read", 1), ("write", 1), ("triad", 3)])
def test_memory_variants(cpu, variant, factor):
    size = 8 << 20
    m = MemoryBenchmark().run(Case("memory", variant, {"bytes": size}), cpu, "smoke")
    assert m.status == "ok", m.reason
    assert m.work_per_call == factor * size and m.unit == "byte"
    assert m.rate > 1e8  # > 0.1 GB/s: any working memory system
    assert "bytes" in m.convention


@pytest.mark.parametrize("llc_mib", [None, 32, 480])  # this host's LLC, a small one, a current Xeon's
@pytest.mark.parametrize("mode", ["smoke", "quick", "full"])
def test_memory_buffers_exceed_cache_eightfold(llc_mib, mode):
    """Buffers are 8x the LLC on the power-of-two MiB grid -- unless the mode's cap or the total
    memory holds them below that, and then (and only then) the plan says which one did."""
    from bench.sizing import memory_buffer_size

    class Host(CpuBackend):
        def cache_bytes(self) -> int:
            return super().cache_bytes() if llc_mib is None else llc_mib << 20

    host = Host()
    cases = MemoryBenchmark().cases(host, mode)
    assert {c.variant for c in cases} == {"copy", "read", "write", "triad"}
    size = cases[0].params["bytes"]
    assert {c.params["bytes"] for c in cases} == {size}
    assert size & (size - 1) == 0 and size % (1 << 20) == 0  # a power of two MiB
    sizes = host.sizes(mode)
    plan = memory_buffer_size(sizes.memory_bytes, sizes.memory_max_bytes, host.cache_bytes(),
                              host.total_memory_bytes())
    assert plan.bytes_per_buffer == size
    if size >= 8 * host.cache_bytes():
        assert plan.limited_by is None or plan.wanted_bytes == size
        assert not plan.below_cache_multiple
    else:
        assert plan.below_cache_multiple and plan.limited_by in ("mode cap", "total memory")
        cap = min(x for x in (sizes.memory_max_bytes, host.total_memory_bytes() // 8) if x is not None)
        assert size <= cap < 2 * size  # held at the cap, on the grid: not shrunk further


def test_hostlink_is_skipped_on_cpu_with_reason(cpu):
    cases = HostLinkBenchmark().cases(cpu, "smoke")
    assert len(cases) == 6  # 5 per-GPU cases + h2d_pinned_all_gpus (planned only when GPUs measure at once)
    for case in cases:
        m = HostLinkBenchmark().run(case, cpu, "smoke")
        assert m.status == "skipped" and "host link" in m.reason
        assert m.convention  # the convention is stated even for a skipped case


def test_select_by_glob(cpu):
    chosen = select(["matmul", "memory"], cpu, "smoke", only="matmul/bf16/*")
    assert [c.key for _, c in chosen] == ["matmul/bf16/m=256,n=256,k=256"]
    keys = [c.key for _, c in select(["matmul"], cpu, "full")]
    assert len(keys) == len(set(keys))  # sweep shapes never duplicate the reference key


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["bf16", "fp8", "int8", "tf32"])
def test_matmul_on_gpu(precision):
    from bench.backend import CudaBackend

    m = MatmulBenchmark().run(_matmul_case(precision, 1024), CudaBackend(0), "smoke")
    assert m.status in ("ok", "skipped"), m.reason
    if m.status == "ok":
        assert m.timing.clock == "cuda_event" and m.rate > 1e12


@pytest.mark.gpu
def test_hostlink_on_gpu():
    from bench.backend import CudaBackend

    backend = CudaBackend(0)
    for case in HostLinkBenchmark().cases(backend, "smoke"):
        m = HostLinkBenchmark().run(case, backend, "smoke")
        assert m.status == "ok", m.reason
        assert m.rate > 1e9


def test_sweep_shapes_halved_to_fit_memory_never_repeat_a_key():
    from bench.backend import _CUDA_SWEEP, ModeSizes

    class SmallGpuSizes(CpuBackend):  # the real CPU backend, planning a GPU's full sweep in 6 GB
        def total_memory_bytes(self) -> int:
            return 6 << 30

        def matmul_edge_cap(self, precision: str) -> int | None:
            return None  # a GPU's plan: no emulated precision

        def sizes(self, mode: str) -> ModeSizes:
            return ModeSizes(8192, _CUDA_SWEEP, 1 << 30, 1 << 28, 0.0)

    keys = [c.key for c in MatmulBenchmark().cases(SmallGpuSizes(), "full")]
    assert len(keys) == len(set(keys))  # fp64 12288^3 halves to 6144^3, already in the sweep
    assert "matmul/fp64/m=6144,n=6144,k=6144" in keys


def test_every_kernel_has_an_operand_layout_and_the_operands_follow_it(cpu):
    """One table says how A and B are stored per precision; fp8 and int8 need B column-major
    ("TN": cuBLASLt's int8 and fp8 kernels; pytorch/pytorch#169956)."""
    assert set(matmul_mod.OPERAND_LAYOUT) == set(matmul_mod.KERNELS)
    assert matmul_mod.OPERAND_LAYOUT["int8"] == matmul_mod.OPERAND_LAYOUT["fp8"] == ("row", "col")
    for precision, (layout_a, layout_b) in matmul_mod.OPERAND_LAYOUT.items():
        ops = matmul_mod.make_operands(precision, 96, 64, 80, cpu.device, seed=3)
        assert ops.a.shape == (96, 80) and ops.b.shape == (80, 64)
        assert (matmul_mod.layout_of(ops.a), matmul_mod.layout_of(ops.b)) == (layout_a, layout_b), precision
        matmul_mod.KERNELS[precision](ops)
        assert matmul_mod.check(precision, ops) is None, precision


def test_full_sweep_has_the_best_h100_int8_shape():
    from bench.backend import _CUDA_SWEEP

    assert (8192, 8192, 16384) in _CUDA_SWEEP
