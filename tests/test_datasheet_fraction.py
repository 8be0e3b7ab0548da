"""`run`/`show` print each rate as a fraction of the matched part's datasheet peak."""

from __future__ import annotations

import dataclasses

import pytest
from rich.console import Console

from helpers_results import measurement, run_result
from results.files.schema import DeviceInfo
from results.render.run_summary import print_summary
from thresholds.datasheet import peak_fractions

H100 = DeviceInfo(index=0, backend="cuda", name="NVIDIA H100 80GB HBM3", pci_device_id="0x2330")


def _h100_run(device=H100):
    bf16 = measurement("matmul/bf16/m=8192,n=8192,k=8192", times_s=(2 * 8192**3 / 776e12,) * 3,
                       work=2 * 8192**3)
    copy = measurement("memory/copy/bytes=1073741824", times_s=(2 * 2**30 / 3.0e12,) * 3, work=2 * 2**30)
    h2d = measurement("hostlink/h2d_pinned/bytes=268435456", times_s=(2**28 / 55.2e9,) * 3, work=2**28)
    skipped = dataclasses.replace(measurement("matmul/fp4/m=8192,n=8192,k=8192"), status="skipped",
                                  reason="no fp4", rate=None, stats=None, times_s=())
    result = run_result([bf16, copy, h2d, skipped], backend="cuda")
    return dataclasses.replace(result, devices=(device,))


def test_fractions_of_the_h100_datasheet():
    fractions = peak_fractions(_h100_run())
    assert fractions[0].part_id.startswith("h100")
    assert fractions[0].fraction == pytest.approx(776 / 989.5, rel=1e-6)  # bf16 dense peak
    assert fractions[1].fraction == pytest.approx(3.0 / 3.35, rel=1e-6)  # HBM3 3,350 GB/s
    assert fractions[2].fraction == pytest.approx(55.2 / 64, rel=1e-6)  # Gen5 x16: 128 GB/s both ways
    assert 3 not in fractions  # skipped: no rate, no fraction


def test_summary_shows_the_column_only_for_a_catalog_part():
    console = Console(record=True, width=220)
    print_summary(_h100_run(), console)
    text = console.export_text()
    assert "of peak" in text and "78%" in text and "90%" in text
    console = Console(record=True, width=220)
    print_summary(_h100_run(DeviceInfo(index=0, backend="cpu", name="Some CPU")), console)
    assert "of peak" not in console.export_text()


def test_a_host_wide_total_gets_no_fraction_of_one_gpus_link():
    """Issue 18, defect 8: `hostlink/h2d_pinned_all_gpus_total` (the sum over the host's GPUs) was
    compared with one GPU's PCIe rate and shown as ~690 % above peak in every multi-GPU summary."""
    from bench.kernels.hostlink import all_gpus_totals

    devices = tuple(dataclasses.replace(H100, index=g) for g in range(8))
    per_gpu = [dataclasses.replace(measurement("hostlink/h2d_pinned_all_gpus/bytes=268435456",
                                               times_s=(2**28 / 55e9,) * 3, work=2**28),
                                   device_index=g, params={"bytes": 2**28},
                                   extra={"window_monotonic_s": [0.0, 1.0]}) for g in range(8)]
    records = per_gpu + all_gpus_totals(per_gpu, "testhost")
    assert records[-1].variant == "h2d_pinned_all_gpus_total" and records[-1].rate == pytest.approx(8 * 55e9)
    result = dataclasses.replace(run_result(records, backend="cuda"), devices=devices)
    fractions = peak_fractions(result)
    assert all(fractions[i].fraction == pytest.approx(55 / 64, rel=1e-6) for i in range(8))  # each GPU: 86 %
    assert len(records) - 1 not in fractions  # before the fix: 6.88, "above peak"


def test_a_mig_slice_is_compared_with_its_share_of_the_part():
    """Issue 18, defect 10: "of peak" of a 1g.10gb slice against its 1/7 of an H100's compute; its
    memory and host-link figures get no fraction (the slice's share of those is not one number)."""
    slice_ = dataclasses.replace(H100, uuid="MIG-abc", name="NVIDIA H100 80GB HBM3 MIG 1g.10gb",
                                 mig_mode="enabled; instance MIG-abc, profile 1g.10gb, parent GPU-def")
    bf16 = measurement("matmul/bf16/m=8192,n=8192,k=8192", times_s=(2 * 8192**3 / 110e12,) * 3, work=2 * 8192**3)
    copy = measurement("memory/copy/bytes=1073741824", times_s=(2 * 2**30 / 0.4e12,) * 3, work=2 * 2**30)
    result = dataclasses.replace(run_result([bf16, copy], backend="cuda"), devices=(slice_,))
    fractions = peak_fractions(result)
    assert fractions[0].fraction == pytest.approx(110 / (989.5 / 7), rel=1e-6)  # 78 %, not 11 %
    assert 1 not in fractions


def test_fleet_keeps_the_slices_of_one_gpu_apart():
    from results.analysis.identity import gpu_id

    a = dataclasses.replace(H100, uuid="MIG-aaa", mig_mode="enabled; instance MIG-aaa, profile 3g.40gb, parent GPU-p")
    b = dataclasses.replace(H100, index=1, uuid="MIG-bbb", mig_mode="enabled; instance MIG-bbb, profile 3g.40gb, parent GPU-p")
    assert gpu_id("h", a, 0) != gpu_id("h", b, 1)
