"""AMD GPUs under ROCm, on this CPU machine: the amdsmi provider driven by tests/fake_amdsmi.py
(whose names are checked against the real PyPI amdsmi 7.0.2 source), with torch.version.hip set
as a ROCm build sets it. Real torch throughout; only amdsmi is faked."""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from pathlib import Path

import pytest
import torch

import fake_amdsmi as fake
from bench import probe
from bench.amdsmi import AMDSMI, celsius


@pytest.fixture(autouse=True)
def rocm(monkeypatch):
    monkeypatch.setattr(torch.version, "hip", "6.2.41133-dd7f95766", raising=False)
    AMDSMI.shutdown()
    yield
    AMDSMI.shutdown()


def install(monkeypatch, module) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", module)


def props(bus: int, uuid: str | None = None) -> types.SimpleNamespace:
    """torch.cuda.get_device_properties on an MI300X (ROCm/ROCm#4203): gfx942, 304 CUs."""
    return types.SimpleNamespace(name="AMD Instinct MI300X", major=9, minor=4, gcnArchName="gfx942:sramecc+:xnack-",
                                 multi_processor_count=304, total_memory=205_822_885_888, L2_cache_size=4 << 20,
                                 uuid=uuid, pci_domain_id=0, pci_bus_id=bus, pci_device_id=0)


def test_fake_names_are_the_real_packages():
    spec = importlib.util.find_spec("amdsmi")  # finds the installed package without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("PyPI amdsmi is not installed (pip install -e .[test] installs it)")
    source = Path(next(iter(spec.submodule_search_locations))) / "amdsmi_interface.py"
    tree = ast.parse(source.read_text())
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    exc = ast.parse((source.parent / "amdsmi_exception.py").read_text())
    defined |= {n.name for n in exc.body if isinstance(n, ast.ClassDef)}
    assert set(fake.FUNCTIONS) <= defined, sorted(set(fake.FUNCTIONS) - defined)
    assert set(fake.ENUMS) <= defined, sorted(set(fake.ENUMS) - defined)
    text = source.read_text()
    for member in ("INIT_AMD_GPUS", "GFX =", "MEM =", "HOTSPOT", "CURRENT =", "VRAM"):
        assert member in text, member
    for key in ("'energy_accumulator'", "'counter_resolution'", '"current_socket_power"', '"average_socket_power"'):
        assert key in text, key


def test_identity_comes_from_the_handle_with_torchs_bdf_not_the_position(monkeypatch):
    first, second = fake.mi300x("0000:05:00.0", "692327000111"), fake.mi300x("0000:65:00.0", "692327000222")
    install(monkeypatch, fake.make_amdsmi([first, second]))
    info = probe.probe_cuda_device(0, props(0x65))  # HIP device 0 is the GPU at bus 0x65
    ident = info.identity
    assert ident["serial"] == "692327000222" and ident["source"] == "amdsmi"
    assert ident["vbios_version"] == "022.040.003.043.000001" and ident["driver_version"] == "6.8.5"
    assert ident["power_limit_enforced_w"] == 750.0  # µW -> W
    assert ident["memory_total_bytes"] == 205_822_885_888 and ident["gfx_target"] == "gfx942"
    assert info.pci_device_id == "0x74a11002" and info.compute_capability == "gfx942:sramecc+:xnack-"
    from thresholds.load import load_catalog
    from thresholds.match import match_part

    part, how = match_part(info, load_catalog())
    assert part is not None and part.id == "mi300x" and "1002:74a1" in how


def test_no_bdf_match_is_not_guessed(monkeypatch):
    install(monkeypatch, fake.make_amdsmi([fake.mi300x("0000:05:00.0", "1")]))
    ident = probe.probe_cuda_device(0, props(0x99)).identity
    assert ident["source"] == "none" and "none is guessed" in ident["serial"]


def test_the_pypi_wheel_without_rocm_leaves_telemetry_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "amdsmi", None)  # not importable at all (ImportError)
    ident = probe.probe_cuda_device(0, props(5)).identity
    assert ident["serial"].startswith("unavailable: amdsmi unavailable: not importable")
    AMDSMI.shutdown()
    install(monkeypatch, fake.make_amdsmi([], init_error=fake.AmdSmiLibraryException(8)))
    from bench.telemetry import TelemetrySampler

    monkeypatch.setattr("bench.nvml.torch_cuda_props", lambda i: (props(5), None))
    with TelemetrySampler(0) as sampler:
        pass
    assert not sampler.telemetry.available and "amdsmi_init failed" in sampler.telemetry.reason


def test_the_real_wheels_keyerror_at_import_is_a_reason_not_a_crash(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake_import(name, *a, **k):
        if name == "amdsmi":
            raise KeyError("libamd_smi.so")  # what amdsmi 7.0.2 raises at import without ROCm
        return real(name, *a, **k)

    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)
    monkeypatch.setattr(importlib, "import_module", fake_import)
    ident = probe.probe_cuda_device(0, props(5)).identity
    assert "not importable (KeyError: 'libamd_smi.so')" in ident["serial"]


def test_samples_power_in_watts_temperature_in_celsius_and_energy_in_joules(monkeypatch):
    dev = fake.mi300x("0000:05:00.0", "3")
    dev["energy"] = [{"energy_accumulator": 1_000_000, "counter_resolution": 15.259, "timestamp": 1},
                     {"energy_accumulator": 1_000_000, "counter_resolution": 15.259, "timestamp": 1},
                     {"energy_accumulator": 21_000_000, "counter_resolution": 15.259, "timestamp": 2}]
    install(monkeypatch, fake.make_amdsmi([dev]))
    monkeypatch.setattr("bench.nvml.torch_cuda_props", lambda i: (props(5), None))
    from bench.telemetry import TelemetrySampler

    with TelemetrySampler(0, interval_s=10.0) as sampler:
        pass
    t = sampler.telemetry
    assert t.available and t.power_w.mean == 512.0 and t.temperature_c.mean == 61.0
    assert t.sm_clock_mhz.mean == 2100.0 and t.power_source == "amdsmi current_socket_power (W)"
    assert t.energy_j == pytest.approx(20_000_000 * 15.259 / 1e6) and "µJ" in t.energy_source
    assert "no bit-for-bit match" in t.reason  # no clock-event mask from amdsmi


def test_the_odd_mi250_die_reports_no_power(monkeypatch):
    dev = fake.mi300x("0000:05:00.0", "4")
    dev["power"] = {k: "N/A" for k in dev["power"]}
    install(monkeypatch, fake.make_amdsmi([dev]))
    monkeypatch.setattr("bench.nvml.torch_cuda_props", lambda i: (props(5), None))
    from bench.telemetry import TelemetrySampler

    with TelemetrySampler(0, interval_s=10.0) as sampler:
        pass
    assert sampler.telemetry.power_w is None and sampler.telemetry.sm_clock_mhz is not None


@pytest.mark.parametrize("raw, expected", [(61_000, 61.0), (61, 61.0), (105.5, 105.5), (199_000, 199.0)])
def test_temperature_units_follow_plausibility(raw, expected):
    assert celsius(raw) == expected


def test_a_rocm_run_records_backend_rocm_and_the_hip_version(monkeypatch):
    host = probe.probe_host()
    assert host["hip"] == "6.2.41133-dd7f95766"
    assert "rocm" in host
