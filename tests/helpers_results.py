"""Small builders of real result records for tests (no torch)."""

from __future__ import annotations

from results.files.schema import DeviceInfo, Measurement, RunInfo, RunResult
from results.analysis.stats import noise_flags, rates_from_times, summarize


def measurement(key: str = "matmul/bf16/m=64,n=64,k=64", times_s=(0.001, 0.0011, 0.00105),
                work: float = 2 * 64**3, **overrides) -> Measurement:
    parts = key.split("/")
    rates = rates_from_times(work, times_s)
    stats = summarize(rates)
    fields = dict(
        key=key, benchmark=parts[0], variant="reference" if parts[0] == "matmul" else parts[1],
        precision=parts[1] if parts[0] == "matmul" else None, params={}, device_index=0,
        status="ok", reason=None, unit="flop" if parts[0] == "matmul" else "byte",
        convention="test", work_per_call=work, times_s=tuple(times_s), rate=stats.median,
        stats=stats, flags=noise_flags(stats),
    )
    fields.update(overrides)
    return Measurement(**fields)


def run_result(measurements=None, host: str = "testhost", started: str = "2026-11-26T01:02:03.000000Z",
               **run_overrides) -> RunResult:
    run_fields = dict(host=host, started_utc=started, finished_utc=started, mode="smoke",
                      argv=("tppbench", "run"), harness_version="0.1.0", backend="cpu")
    run_fields.update(run_overrides)
    return RunResult(
        run=RunInfo(**run_fields),
        devices=(DeviceInfo(index=0, backend="cpu", name="Test CPU"),),
        measurements=tuple(measurements if measurements is not None else [measurement()]),
    )
