"""The CUDA path's control flow, checked on the CPU with a recording stand-in for torch.cuda.

What these prove: events are recorded on the measured GPU's stream, the cache flush and the spin
are queued before every start event, the host never waits inside a timed region, each GPU is the
current device while it is measured, and the free-memory figure counts the caching allocator's
idle blocks. What they cannot prove (a GPU must): that the spin really hides the launch gap and
that the numbers are right -- `scripts/gpu-check.sh` and the tests marked `gpu` do that.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bench.backend import Budget, CudaBackend
from bench.registry import Case
from bench.runner import PlannedDevice, RunOptions, execute, run_case
from bench.timing import SPIN_BEFORE_START_CYCLES, measure
from fake_cuda import FakeCuda, RecordingFlush
from results.files.schema import DeviceInfo, Measurement

BUDGET = Budget(warmup_s=0.125, measure_s=1.0, max_case_s=5.0, min_samples=5, max_samples=20,
                min_sample_s=2**-10)


def fake_backend(cuda: FakeCuda, index: int) -> CudaBackend:
    backend = CudaBackend(index, cuda=cuda)
    backend._flush_buffer = RecordingFlush(cuda)  # type: ignore[assignment]
    backend.now = lambda: cuda.t  # type: ignore[method-assign]  # the host clock: synthetic too
    return backend


def kernel(cuda: FakeCuda, cost_s: float):
    def fn() -> None:
        cuda.note("call", cuda.current_stream())
        cuda.t += cost_s
    return fn


def timed_regions(log):
    """(what was queued since the previous region, the region) per sample: a region runs from a
    start event's record to the end event's record."""
    records = [i for i, c in enumerate(log) if c.what == "record"]
    regions, previous_end = [], 0
    for start, end in zip(records[::2], records[1::2]):
        regions.append((log[previous_end:start], log[start:end + 1]))
        previous_end = end + 1
    return regions


def test_each_sample_flushes_spins_then_starts_on_the_measured_gpu():
    cuda = FakeCuda(device_count=2)
    backend = fake_backend(cuda, 1)
    with backend.selected():
        times, timing = measure(kernel(cuda, 2**-7), backend, BUDGET, flush_cache=True)
    regions = timed_regions(cuda.log)
    assert len(regions) == len(times) == 20 and timing.calls_per_sample == 1
    for before, region in regions:
        assert [c.what for c in before][-2:] == ["flush", "spin"]  # queued right before the start event
        spin = before[-1]
        assert spin.stream == "1/default" and spin.detail == SPIN_BEFORE_START_CYCLES
        assert before[-2].stream == "1/default"
        assert region[0].stream == region[-1].stream == "1/default"  # both events on GPU 1's stream
        inside = [c.what for c in region[1:-1]]
        assert inside == ["call"]  # no host synchronisation, no flush, no spin inside the region
    assert all(c.device == 1 for c in cuda.log)  # GPU 1 current throughout, never GPU 0
    assert times[0] == 2**-7


def test_batched_samples_keep_the_host_out_of_the_region():
    cuda = FakeCuda()
    backend = fake_backend(cuda, 0)
    with backend.selected():
        _times, timing = measure(kernel(cuda, 2**-17), backend, BUDGET, flush_cache=False)
    assert timing.calls_per_sample == 128
    for before, region in timed_regions(cuda.log):
        assert [c.what for c in before][-1] == "spin"
        assert "flush" not in [c.what for c in before]
        assert [c.what for c in region[1:-1]] == ["call"] * 128


def test_the_host_waits_for_the_end_event_only_after_the_region():
    cuda = FakeCuda()
    backend = fake_backend(cuda, 0)
    measure(kernel(cuda, 2**-7), backend, BUDGET, flush_cache=True)
    whats = cuda.whats()
    first_record = whats.index("record")
    assert "synchronize" not in whats[first_record:]  # samples never call a device-wide sync
    for i, what in enumerate(whats):
        if what == "event_synchronize":
            assert whats[i - 1] == "record"  # right after the end event, never before it


def test_free_memory_counts_the_caching_allocators_idle_blocks():
    cuda = FakeCuda(free_bytes=10 << 30, reserved_bytes=30 << 30, allocated_bytes=4 << 30)
    backend = fake_backend(cuda, 0)
    assert backend.free_memory_bytes() == (10 + 30 - 4) << 30


class RecordingFamily:
    """A device-scope family whose case records which device is current while it runs."""

    name = "recording"

    def __init__(self, cuda: FakeCuda) -> None:
        self.cuda = cuda
        self.seen: list[tuple[str, int]] = []

    def run(self, case: Case, backend: CudaBackend, mode: str) -> Measurement:
        self.seen.append((case.key, self.cuda.current_device))
        with self.cuda.stream(self.cuda.Stream()):  # work on a side stream of the current GPU
            times, timing = measure(kernel(self.cuda, 2**-7), backend, BUDGET, flush_cache=False)
        from bench.measurement import measured

        return measured(case, backend.device_index, times_s=times, timing=timing, work_per_call=1.0,
                        unit="byte", convention="one byte per call")


def device_info(index: int) -> DeviceInfo:
    return DeviceInfo(index=index, backend="cuda", name="Fake H100")


def test_each_gpu_is_current_while_its_cases_run():
    cuda = FakeCuda(device_count=3)
    family = RecordingFamily(cuda)
    planned = [PlannedDevice(fake_backend(cuda, i), device_info(i),
                             ((family, Case("recording", f"gpu{i}", {"bytes": 1})),))
               for i in (2, 1)]
    options = RunOptions(backend_kind="cuda", mode="smoke", suites=())
    result = execute(options, planned)
    assert family.seen == [("recording/gpu2/bytes=1", 2), ("recording/gpu1/bytes=1", 1)]
    assert cuda.current_device == 0  # restored afterwards
    assert [m.device_index for m in result.measurements] == [2, 1]
    assert all(m.status == "ok" for m in result.measurements)
    # a stream the case makes current belongs to that case's GPU, and the sample events are
    # recorded on it: the stream the measured work runs on
    records = [c for c in cuda.log if c.what == "record"]
    assert {c.stream for c in records} == {"2/side1", "1/side2"}


def test_run_case_restores_the_previous_device_after_an_error():
    cuda = FakeCuda(device_count=2)

    class Failing(RecordingFamily):
        def run(self, case, backend, mode):
            self.seen.append((case.key, self.cuda.current_device))
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    family = Failing(cuda)
    result = run_case(family, Case("recording", "x", {"bytes": 1}), fake_backend(cuda, 1), device_info(1),
                      "smoke")
    assert family.seen == [("recording/x/bytes=1", 1)] and cuda.current_device == 0
    assert result.status == "error" and "illegal memory access" in (result.reason or "")
    assert dataclasses.asdict(result)["device_index"] == 1
    assert torch.cuda.is_available() is False  # the real torch.cuda was never needed


class _RocmCuda(FakeCuda):
    def __init__(self, arch: str, major: int, minor: int) -> None:
        super().__init__()
        self.arch, self.major, self.minor = arch, major, minor

    def get_device_properties(self, device: object):
        import types

        return types.SimpleNamespace(name="AMD Instinct", major=self.major, minor=self.minor, L2_cache_size=4 << 20,
                                     multi_processor_count=304, total_memory=192 << 30, gcnArchName=self.arch)


def test_rocm_gates_read_the_gfx_architecture_not_hips_major_minor():
    """Issue 18, ROCm gates: gfx942 reports 9.4, so the CUDA gate (>= 8.9) passed fp8 and the case
    then errored in float8_e4m3fn, which gfx942 lacks; gfx90a reports 9.0 and passed it with no fp8
    hardware. Now the fp8 type and the gate follow the gfx architecture."""
    import torch

    from bench.backend import CudaBackend

    mi300 = CudaBackend(0, cuda=_RocmCuda("gfx942:sramecc+:xnack-", 9, 4), hip_version="6.4.0")
    assert mi300.precision_unsupported("fp8") is None and mi300.fp8_dtype() == torch.float8_e4m3fnuz
    mi355 = CudaBackend(0, cuda=_RocmCuda("gfx950:sramecc+:xnack-", 9, 5), hip_version="7.0.0")
    assert mi355.precision_unsupported("fp8") is None and mi355.fp8_dtype() == torch.float8_e4m3fn
    mi250 = CudaBackend(0, cuda=_RocmCuda("gfx90a:sramecc+:xnack-", 9, 0), hip_version="6.4.0")
    assert "gfx942 (e4m3fnuz) or gfx950" in mi250.precision_unsupported("fp8") and "gfx90a" in mi250.precision_unsupported("fp8")
    assert "xf32" in mi300.precision_unsupported("tf32")
    h100 = CudaBackend(0, cuda=FakeCuda(), hip_version="")  # a CUDA build: the CUDA gates, e4m3fn
    assert h100.precision_unsupported("fp8") is None and h100.fp8_dtype() == torch.float8_e4m3fn


def test_on_rocm_the_recorded_compute_capability_is_the_gfx_architecture():
    import types

    from bench.probe import compute_capability

    props = types.SimpleNamespace(major=9, minor=4, gcnArchName="gfx942:sramecc+:xnack-")
    assert compute_capability(props, hip_version="6.4.0") == "gfx942:sramecc+:xnack-"
    assert compute_capability(types.SimpleNamespace(major=9, minor=0), hip_version="") == "9.0"


def test_fp8_e4m3fnuz_operands_check_against_float64_on_the_cpu():
    import torch

    from bench.kernels import matmul

    ops = matmul.make_operands("fp8", 64, 64, 64, torch.device("cpu"), seed=1, fp8_dtype=torch.float8_e4m3fnuz)
    assert ops.a.dtype == torch.float8_e4m3fnuz
    reference = (matmul._exact_float64(ops.a) @ matmul._exact_float64(ops.b)) * float(ops.scale_a) * float(ops.scale_b)
    ops.out.copy_(reference.to(torch.bfloat16))  # what a correct kernel writes
    assert matmul.check("fp8", ops) is None


class _TimedSleepCuda(_RocmCuda):
    """A ROCm stand-in whose `_sleep` advances the clock as a 100 MHz timer would (CDNA's
    s_memrealtime), so the calibration has a rate to find."""

    def _sleep(self, cycles: int) -> None:
        super()._sleep(cycles)
        self.t += cycles / 100e6


def test_rocm_spin_is_calibrated_and_the_flush_covers_the_infinity_cache():
    from bench.backend import SPIN_REFERENCE_HZ

    cuda = _TimedSleepCuda("gfx942:sramecc+:xnack-", 9, 4)
    mi300 = CudaBackend(0, cuda=cuda, hip_version="6.4.0")
    assert mi300.spin_scale() == pytest.approx(100e6 / SPIN_REFERENCE_HZ)
    mi300.queue_spin(250_000)
    assert cuda.log[-1].what == "spin" and cuda.log[-1].detail == int(250_000 * 100e6 / SPIN_REFERENCE_HZ)
    assert mi300.flush_bytes() == 512 << 20  # 2 x the 256 MB Infinity Cache, not 2 x one XCD's 4 MB L2
    h100 = CudaBackend(0, cuda=FakeCuda(), hip_version="")
    assert h100.spin_scale() == 1.0 and h100.flush_bytes() == 256 << 20
