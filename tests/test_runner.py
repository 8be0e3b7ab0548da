"""The runner: each case on its own device, and one failing case never ends the run."""

from __future__ import annotations

import contextlib

import pytest

from bench.backend import CpuBackend
from bench.measurement import not_run
from bench.probe import probe_cpu_device
from bench.registry import Case
from bench.runner import PlannedDevice, RunOptions, execute, run_case


class TrackedCpuBackend(CpuBackend):
    """The real CPU backend, counting how deep inside `selected()` the caller is."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0

    @contextlib.contextmanager
    def selected(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1


class ScriptedBenchmark:
    """A family whose cases do what the test says: record whether the device was selected, or raise."""

    name = "scripted"

    def __init__(self, failures: dict[str, BaseException]) -> None:
        self.failures = failures
        self.selected_during_run: list[bool] = []

    def run(self, case: Case, backend, mode: str):
        self.selected_during_run.append(backend.depth > 0)
        if case.variant in self.failures:
            raise self.failures[case.variant]
        return not_run(case, backend.device_index, "skipped", "scripted", unit="byte")


def _execute(bench: ScriptedBenchmark, backend: CpuBackend, variants: list[str]):
    cases = tuple((bench, Case("scripted", v)) for v in variants)
    options = RunOptions(backend_kind="cpu", mode="smoke", suites=())
    return execute(options, [PlannedDevice(backend, probe_cpu_device(), cases)])


def test_every_case_runs_with_its_device_selected():
    backend = TrackedCpuBackend()
    bench = ScriptedBenchmark({})
    result = _execute(bench, backend, ["a", "b"])
    assert bench.selected_during_run == [True, True]
    assert backend.depth == 0  # and deselected afterwards
    assert [m.status for m in result.measurements] == ["skipped", "skipped"]


@pytest.mark.parametrize("error", [KeyError("peers"), IndexError("list index out of range"),
                                   ZeroDivisionError("float division by zero"), OSError(28, "No space")])
def test_any_exception_of_one_case_is_an_error_record_and_the_run_goes_on(error):
    bench = ScriptedBenchmark({"bad": error})
    result = _execute(bench, TrackedCpuBackend(), ["bad", "good"])
    assert result.run.complete
    bad, good = result.measurements
    assert bad.status == "error" and bad.reason.startswith(type(error).__name__)
    assert good.status == "skipped"  # the case after the failure still ran


def test_ctrl_c_still_ends_the_run():
    bench = ScriptedBenchmark({"b": KeyboardInterrupt()})
    result = _execute(bench, TrackedCpuBackend(), ["a", "b", "c"])
    assert not result.run.complete and "interrupted" in result.run.incomplete_reason
    assert [m.variant for m in result.measurements] == ["a"]


@pytest.mark.gpu
def test_a_gpu_is_timed_on_its_own_stream_whatever_device_is_current():
    """2+ GPUs: the runner measures GPU 0 while another GPU is torch's current device (as after
    planning several GPUs). Events on the wrong device's stream would time nothing, giving a rate
    far above any GPU's peak."""
    import torch

    from bench.backend import CudaBackend
    from bench.kernels.matmul import MatmulBenchmark

    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2+ GPUs")
    first, second = CudaBackend(0), CudaBackend(1)
    torch.cuda.set_device(1)
    assert torch.cuda.current_device() == 1  # constructing backends leaves the current device alone
    case = Case("matmul", "reference", {"m": 4096, "n": 4096, "k": 4096}, "bf16")
    m = run_case(MatmulBenchmark(), case, first, probe_cpu_device(), "smoke")
    assert torch.cuda.current_device() == 1
    assert m.status == "ok", m.reason
    assert 1e12 < m.rate < 5e15  # no GPU does 5 PFLOP/s dense bf16
    with first.selected():
        assert torch.cuda.current_device() == 0
    del second


def test_a_failing_derive_step_keeps_the_measured_records(monkeypatch):
    from bench.registry import families

    p2p = families()["p2p"]

    def broken(measurements, host):
        raise KeyError("src")

    monkeypatch.setattr(p2p, "derive", broken)
    bench = ScriptedBenchmark({})
    cases = ((bench, Case("scripted", "a")),)
    options = RunOptions(backend_kind="cpu", mode="smoke", suites=("p2p",))
    result = execute(options, [PlannedDevice(TrackedCpuBackend(), probe_cpu_device(), cases)])
    first, derived = result.measurements
    assert first.variant == "a" and first.status == "skipped"
    assert derived.key == "p2p/derived" and derived.status == "error" and "KeyError" in derived.reason
