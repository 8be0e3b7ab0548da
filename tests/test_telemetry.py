"""bench.telemetry: the NVML sampler (against a fake pynvml; no GPU here) and throttle flags."""

from __future__ import annotations

import itertools
import sys
import threading
import time
import types

import pytest

import bench
import fake_pynvml as fake
from bench import probe
from bench.telemetry import (
    CAP_REASONS_MASK,
    REASON_BITS,
    TelemetrySampler,
    decode_reasons,
    throttle_flags,
)
from results.files.schema import (
    DeviceInfo,
    Measurement,
    RangeSummary,
    RunInfo,
    RunResult,
    Telemetry,
    from_dict,
    to_dict,
)

SM, MEM, TEMP = fake.NVML_CLOCK_SM, fake.NVML_CLOCK_MEM, fake.NVML_TEMPERATURE_GPU


@pytest.fixture(autouse=True)
def fresh_nvml_session():
    probe.nvml_shutdown()
    yield
    probe.nvml_shutdown()
    assert not sampler_threads(), "a sampler thread outlived its test"


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tppbench-telemetry")]


def install(monkeypatch: pytest.MonkeyPatch, module: types.ModuleType | None) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", module)
    # The fakes are found by index (no torch CUDA here): that mapping holds only in PCI order.
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")


class Recorder:
    """Answers from a cycle of values and remembers what it answered."""

    def __init__(self, values):
        self._cycle = itertools.cycle(values)
        self.answered: list = []

    def __call__(self):
        value = next(self._cycle)
        self.answered.append(value)
        return value


def summary_of(values, scale=1.0) -> RangeSummary:
    scaled = [v * scale for v in values]
    return RangeSummary(min=min(scaled), mean=sum(scaled) / len(scaled), max=max(scaled))


# --------------------------------------------------------------------------- sampling


def test_changing_clocks_give_min_mean_max_and_decoded_reasons(monkeypatch):
    sm = Recorder([1980, 1800, 1710, 1500])
    mem = Recorder([2619, 2600])
    power_mw = Recorder([690_000, 700_500, 650_250])
    temp = Recorder([61, 63, 66])
    answers = fake.h100_answers(
        nvmlDeviceGetClockInfo={SM: sm, MEM: mem},
        nvmlDeviceGetPowerUsage=power_mw,
        # an older driver without field values: the 1-second average is read (and said so)
        nvmlDeviceGetFieldValues=fake.nvml_error(fake.NVML_ERROR_FUNCTION_NOT_FOUND),
        nvmlDeviceGetTemperature={TEMP: temp},
        nvmlDeviceGetCurrentClocksEventReasons=0x4 | 0x20,
    )
    install(monkeypatch, fake.make_pynvml([answers]))

    with TelemetrySampler(0, interval_s=0.01) as sampler:
        assert len(sampler_threads()) == 1
        time.sleep(0.25)
    t = sampler.telemetry

    assert t is not None and t.available and t.reason is None
    assert t.samples == len(sm.answered) >= 3
    assert t.sm_clock_mhz == pytest.approx(summary_of(sm.answered))
    assert t.mem_clock_mhz == pytest.approx(summary_of(mem.answered))
    assert t.power_w == pytest.approx(summary_of(power_mw.answered, 1e-3))
    assert t.temperature_c == pytest.approx(summary_of(temp.answered))
    assert t.sm_clock_mhz.min == 1500 and t.sm_clock_mhz.max == 1980
    assert t.throttle_reasons_mask == 0x24
    assert t.throttle_reasons == ("sw_power_cap", "sw_thermal_slowdown")
    assert throttle_flags(t, 1980) == ("power_capped", "throttled")
    assert sampler.power_source.startswith("nvmlDeviceGetPowerUsage: a 1-second average")


def test_instant_power_is_read_where_the_driver_has_it(monkeypatch):
    """Issue 18, defect 6: nvmlDeviceGetPowerUsage is a trailing 1-second average on Ampere (except
    GA100) and newer, so a 0.3 s case carried its neighbours' power. NVML_FI_DEV_POWER_INSTANT first."""
    instant_mw = Recorder([650_000, 690_000])
    nvml = fake.make_pynvml([fake.h100_answers(nvmlDeviceGetFieldValues={186: instant_mw})])
    install(monkeypatch, nvml)
    with TelemetrySampler(0, interval_s=0.01) as sampler:
        time.sleep(0.1)
    t = sampler.telemetry
    assert t.power_w == pytest.approx(summary_of(instant_mw.answered[1:], 1e-3))  # the first: the probe
    assert sampler.power_source == "instant: nvmlDeviceGetFieldValues(NVML_FI_DEV_POWER_INSTANT)"
    assert nvml.calls.get("nvmlDeviceGetPowerUsage", 0) == 0


def test_a_board_without_the_instant_field_falls_back_to_the_average(monkeypatch):
    nvml = fake.make_pynvml([fake.h100_answers(nvmlDeviceGetFieldValues={186: fake.NOT_SUPPORTED})])
    install(monkeypatch, nvml)
    with TelemetrySampler(0, interval_s=0.01) as sampler:
        time.sleep(0.05)
    assert sampler.telemetry.power_w.mean == pytest.approx(512.345)
    assert sampler.power_source.startswith("nvmlDeviceGetPowerUsage")


def test_short_case_gets_start_and_stop_samples_and_idle_start_is_left_out(monkeypatch):
    answers = fake.h100_answers(
        nvmlDeviceGetClockInfo={SM: Recorder([345, 1980]), MEM: 2619},
        nvmlDeviceGetCurrentClocksEventReasons=Recorder([0x1, 0x0]),
    )
    install(monkeypatch, fake.make_pynvml([answers]))

    began = time.monotonic()
    sampler = TelemetrySampler(0, interval_s=60.0)
    sampler.start()
    t = sampler.stop()

    assert time.monotonic() - began < 5  # stop() does not wait out the interval
    assert t.samples == 2
    assert t.sm_clock_mhz == RangeSummary(min=1980.0, mean=1980.0, max=1980.0)  # busy sample only
    assert t.throttle_reasons_mask == 0x1 and t.throttle_reasons == ("gpu_idle",)
    assert throttle_flags(t, 1980) == ()
    assert sampler.stop() is t  # idempotent


def test_all_idle_samples_are_summarised_rather_than_dropped(monkeypatch):
    answers = fake.h100_answers(nvmlDeviceGetClockInfo={SM: 345, MEM: 2619},
                                nvmlDeviceGetCurrentClocksEventReasons=0x1)
    install(monkeypatch, fake.make_pynvml([answers]))
    with TelemetrySampler(0, interval_s=60.0) as sampler:
        pass
    assert sampler.telemetry.sm_clock_mhz == RangeSummary(345.0, 345.0, 345.0)
    assert throttle_flags(sampler.telemetry, 1980) == ()  # idleness, not a cap


def test_not_supported_quantity_is_reported_and_no_longer_queried(monkeypatch):
    nvml = fake.make_pynvml([fake.h100_answers(nvmlDeviceGetPowerUsage=fake.NOT_SUPPORTED,
                                               nvmlDeviceGetFieldValues={186: fake.NOT_SUPPORTED})])
    install(monkeypatch, nvml)
    with TelemetrySampler(0, interval_s=0.01) as sampler:
        time.sleep(0.1)
    t = sampler.telemetry
    assert t.available and t.power_w is None and t.sm_clock_mhz is not None
    assert t.reason == "not read: power_w (NVML: Not Supported)"
    assert nvml.calls["nvmlDeviceGetPowerUsage"] == 1


def test_older_driver_falls_back_to_throttle_reasons(monkeypatch):
    answers = fake.h100_answers(
        nvmlDeviceGetCurrentClocksEventReasons=fake.nvml_error(fake.NVML_ERROR_FUNCTION_NOT_FOUND),
        nvmlDeviceGetCurrentClocksThrottleReasons=0x40,
    )
    install(monkeypatch, fake.make_pynvml([answers]))
    with TelemetrySampler(0, interval_s=60.0) as sampler:
        pass
    assert sampler.telemetry.throttle_reasons == ("hw_thermal_slowdown",)


def test_older_pynvml_without_event_reasons_uses_throttle_reasons(monkeypatch):
    nvml = fake.make_pynvml([fake.h100_answers(nvmlDeviceGetCurrentClocksThrottleReasons=0x8)])
    del nvml.nvmlDeviceGetCurrentClocksEventReasons
    install(monkeypatch, nvml)
    with TelemetrySampler(0, interval_s=60.0) as sampler:
        pass
    assert sampler.telemetry.throttle_reasons_mask == 0x8


# --------------------------------------------------------------------------- failures, no leaks


def test_thread_stops_when_every_sample_raises(monkeypatch):
    def broken():
        raise RuntimeError("driver went away")

    answers = {name: broken for name in fake.h100_answers()}
    answers["nvmlDeviceGetUUID"] = "GPU-x"
    install(monkeypatch, fake.make_pynvml([answers]))

    with TelemetrySampler(0, interval_s=0.01) as sampler:
        time.sleep(0.05)
        assert len(sampler_threads()) == 1
    assert not sampler_threads()
    t = sampler.telemetry
    assert not t.available and t.samples == 0
    assert "RuntimeError: driver went away" in t.reason


def test_intermittent_failures_keep_the_good_samples(monkeypatch):
    calls = itertools.count()

    def flaky_sm():
        n = next(calls)
        if n % 2:
            raise fake.nvml_error(fake.NVML_ERROR_GPU_IS_LOST)
        return 1900 + n

    install(monkeypatch, fake.make_pynvml([fake.h100_answers(
        nvmlDeviceGetClockInfo={SM: flaky_sm, MEM: 2619})]))
    with TelemetrySampler(0, interval_s=0.01) as sampler:
        time.sleep(0.1)
    t = sampler.telemetry
    assert t.available and t.sm_clock_mhz is not None and t.sm_clock_mhz.min >= 1900
    assert t.samples >= 2


def test_exception_in_the_case_still_stops_the_sampler(monkeypatch):
    install(monkeypatch, fake.make_pynvml([fake.h100_answers()]))
    with pytest.raises(ValueError, match="case failed"):
        with TelemetrySampler(0, interval_s=0.01) as sampler:
            raise ValueError("case failed")
    assert not sampler_threads()
    assert sampler.telemetry is not None and sampler.telemetry.available


def test_single_use(monkeypatch):
    install(monkeypatch, fake.make_pynvml([fake.h100_answers()]))
    sampler = TelemetrySampler(0)
    with pytest.raises(RuntimeError):
        sampler.stop()
    sampler.start()
    with pytest.raises(RuntimeError):
        sampler.start()
    sampler.stop()


# --------------------------------------------------------------------------- no NVML


def without_energy(t: Telemetry) -> Telemetry:
    """The NVML part of a record (the energy fields are the energy counter's: tested below)."""
    import dataclasses

    return dataclasses.replace(t, energy_j=None, energy_window_s=None, energy_source=None,
                               energy_reason=None, power_source=None)


def test_without_pynvml_no_thread_and_a_reason(monkeypatch):
    install(monkeypatch, None)
    with TelemetrySampler(0) as sampler:
        assert not sampler_threads()
    t = sampler.telemetry
    assert without_energy(t) == Telemetry(available=False, reason=t.reason)
    assert t.energy_j is None and t.energy_reason == "no energy counter (no NVML)"
    assert t.reason.startswith("NVML unavailable: pynvml not importable")


def test_library_not_found(monkeypatch):
    install(monkeypatch, fake.make_pynvml(
        [fake.h100_answers()], init_error=fake.ERROR_CLASSES["NVMLError_LibraryNotFound"]()))
    with TelemetrySampler(0) as sampler:
        assert not sampler_threads()
    assert sampler.telemetry.reason == (
        "NVML unavailable: nvmlInit failed: NVML Shared Library Not Found")


def test_cpu_backend_never_touches_nvml(monkeypatch):
    nvml = fake.make_pynvml([fake.h100_answers()])
    install(monkeypatch, nvml)
    with TelemetrySampler(0, backend="cpu") as sampler:
        assert not sampler_threads()
    assert without_energy(sampler.telemetry) == Telemetry(available=False, reason="CPU backend: no NVML telemetry")
    with TelemetrySampler(None) as sampler:  # how the runner asks on the CPU backend
        assert not sampler_threads()
    assert without_energy(sampler.telemetry) == Telemetry(available=False, reason="CPU backend: no NVML telemetry")
    assert nvml.calls == {}


def test_real_pynvml_on_this_machine():
    fake.skip_if_real_nvml_works()
    with TelemetrySampler(0) as sampler:
        pass
    assert not sampler.telemetry.available
    assert sampler.telemetry.reason.startswith("NVML unavailable")


# --------------------------------------------------------------------------- pure parts


def _t(mask=0, sm_mean=None, available=True):
    clock = RangeSummary(min=sm_mean, mean=sm_mean, max=sm_mean) if sm_mean is not None else None
    return Telemetry(available=available, samples=2, sm_clock_mhz=clock,
                     throttle_reasons_mask=mask, throttle_reasons=decode_reasons(mask))


@pytest.mark.parametrize(
    ("telemetry", "sm_max", "flags"),
    [
        (None, 1980, ()),
        (Telemetry(available=False, reason="CPU backend"), 1980, ()),
        (_t(0, 1980), 1980, ()),
        (_t(0x4, 1980), 1980, ("power_capped",)),  # sw power cap: expected, not a problem
        (_t(0x4, 1500), 1980, ("power_capped",)),  # the cap explains the lower clock
        (_t(0x4 | 0x20, 1500), 1980, ("power_capped", "throttled")),  # and thermal slowdown: a problem
        (_t(0x8, 1980), 1980, ("throttled",)),
        (_t(0x20, 1980), 1980, ("throttled",)),
        (_t(0x40, 1980), 1980, ("throttled",)),
        (_t(0x80, 1980), 1980, ("throttled",)),
        (_t(0x1 | 0x4, 1980), None, ("power_capped",)),
        (_t(0x10 | 0x100, 1980), 1980, ()),  # sync boost, display clock: not caps
        (_t(0, 1782.0), 1980, ()),  # exactly 90 %
        (_t(0, 1781.9), 1980, ("throttled",)),
        (_t(0x2, 1500), 1980, ("throttled",)),  # application clocks set low
        (_t(0x1, 345), 1980, ()),  # idle only
        (_t(0, 1000), None, ()),  # max clock unknown: only the mask can tell
        (_t(0, None), 1980, ()),
    ],
)
def test_throttle_flags(telemetry, sm_max, flags):
    assert throttle_flags(telemetry, sm_max) == flags


def test_decode_reasons():
    assert decode_reasons(0) == ()
    assert decode_reasons(0x1FF) == tuple(name for name, _ in REASON_BITS)
    assert decode_reasons(0x4 | 0x200 | 0x400) == ("sw_power_cap", "unknown_0x200", "unknown_0x400")
    assert CAP_REASONS_MASK == 0x4 | 0x8 | 0x20 | 0x40 | 0x80


def test_reason_bits_match_pynvml():
    real = pytest.importorskip("pynvml")
    names = {
        "gpu_idle": "GpuIdle", "applications_clocks_setting": "ApplicationsClocksSetting",
        "sw_power_cap": "SwPowerCap", "hw_slowdown": "HwSlowdown", "sync_boost": "SyncBoost",
        "sw_thermal_slowdown": "SwThermalSlowdown", "hw_thermal_slowdown": "HwThermalSlowdown",
        "hw_power_brake_slowdown": "HwPowerBrakeSlowdown",
        "display_clock_setting": "DisplayClockSetting",
    }
    for ours, bit in REASON_BITS:
        assert getattr(real, f"nvmlClocksEventReason{names[ours]}") == bit
        assert getattr(real, f"nvmlClocksThrottleReason{names[ours]}") == bit


def test_telemetry_survives_the_result_file_round_trip(monkeypatch):
    install(monkeypatch, fake.make_pynvml([fake.h100_answers(
        nvmlDeviceGetCurrentClocksEventReasons=0x5)]))
    with TelemetrySampler(0, interval_s=60.0) as sampler:
        pass
    run = RunInfo(host="h", started_utc="2025-01-01T00:00:00Z", finished_utc=None, mode="smoke",
                  argv=(), harness_version=bench.__version__)
    m = Measurement(key="matmul/bf16", benchmark="matmul", variant="ref", precision="bf16",
                    params={}, device_index=0, status="ok", reason=None, unit="flop",
                    convention="2mnk", work_per_call=1.0, times_s=(1.0,), rate=1.0,
                    telemetry=sampler.telemetry)
    device = DeviceInfo(index=0, backend="cuda", name="NVIDIA H100 80GB HBM3")  # the loader checks device_index
    back = from_dict(to_dict(RunResult(run=run, devices=(device,), measurements=(m,))))
    assert back.measurements[0].telemetry == sampler.telemetry


# --------------------------------------------------------------------------- energy per case


def _counter(*values_mj: int):
    it = iter(values_mj)
    return lambda: next(it)


def test_energy_is_the_counter_difference_over_the_case(monkeypatch):
    answers = fake.h100_answers(nvmlDeviceGetTotalEnergyConsumption=_counter(5_000_000, 5_000_000, 5_350_000))
    install(monkeypatch, fake.make_pynvml([answers]))
    with TelemetrySampler(0, interval_s=10.0) as sampler:
        pass
    t = sampler.telemetry
    assert t.energy_j == pytest.approx(350.0) and t.energy_window_s > 0 and t.energy_reason is None
    assert t.energy_source.startswith("nvmlDeviceGetTotalEnergyConsumption (mJ")
    assert t.power_source.startswith("instant")  # field 186 answered, so power_w is the instant reading


@pytest.mark.parametrize("counter, words", [
    (_counter(9_000_000, 9_000_000, 1_000), "went backwards"),
    (fake.NOT_SUPPORTED, "Not Supported (the energy counter needs Volta or newer)"),
])
def test_energy_that_cannot_be_trusted_is_unavailable_with_the_reason(monkeypatch, counter, words):
    install(monkeypatch, fake.make_pynvml([fake.h100_answers(nvmlDeviceGetTotalEnergyConsumption=counter)]))
    with TelemetrySampler(0, interval_s=10.0) as sampler:
        pass
    assert sampler.telemetry.energy_j is None and words in sampler.telemetry.energy_reason
    assert sampler.telemetry.available  # the rest of the telemetry is unaffected


def test_rapl_package_zones_are_summed_and_a_wrap_is_undone(tmp_path):
    from bench.energy import rapl_energy_window

    for n, (start, name) in enumerate(((262_000_000_000, "package-0"), (5_000_000, "package-1"))):
        zone = tmp_path / f"intel-rapl:{n}"
        zone.mkdir()
        (zone / "name").write_text(name + "\n")
        (zone / "energy_uj").write_text(f"{start}\n")
        (zone / "max_energy_range_uj").write_text("262143328850\n")
    (tmp_path / "intel-rapl:0:0").mkdir()  # a sub-zone (core): not counted twice
    window = rapl_energy_window(tmp_path)
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("1000000\n")  # wrapped past 262,143 J
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("15000000\n")  # +10 J
    e = window.finish()
    assert e.energy_j == pytest.approx((262_143_328_850 - 262_000_000_000 + 1_000_000 + 10_000_000) / 1e6)
    assert e.source == "RAPL powercap intel-rapl:0, intel-rapl:1 (energy_uj)"
    none = rapl_energy_window(tmp_path / "absent").finish()
    assert none.energy_j is None and "no RAPL powercap interface" in none.reason


def test_clock_event_residency_is_differenced_in_seconds(monkeypatch):
    """Fields 74 (sw_power_cap) and 270 (hw_thermal_slowdown) in ns; 271 unsupported: left out."""
    values = {74: iter([1_000_000_000, 1_750_000_000]), 270: iter([5, 5])}
    answers = fake.h100_answers(nvmlDeviceGetFieldValues={
        186: 498_765, 74: lambda: next(values[74]), 270: lambda: next(values[270])})
    install(monkeypatch, fake.make_pynvml([answers]))
    with TelemetrySampler(0, interval_s=10.0) as sampler:
        pass
    assert sampler.residency_s == {"sw_power_cap": pytest.approx(0.75), "hw_thermal_slowdown": 0.0}
