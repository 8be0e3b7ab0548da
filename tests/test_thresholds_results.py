"""Result files through thresholds/: catalog matching, peak-derived and measured bases, CPU runs,
`check` and `whatif` on result files (built with the schema dataclasses + results.store.save)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from results.files.schema import DeviceInfo, Measurement, RunInfo, RunResult
from results.files.store import save
from thresholds.load import load_catalog
from thresholds.match import match_part
from results.report.verdict_data import check_subjects
from thresholds.subjects import result_subjects

REPO = Path(__file__).resolve().parents[1]


def _run(backend: str, devices: tuple[DeviceInfo, ...], measurements: tuple[Measurement, ...]) -> RunResult:
    info = RunInfo(host="testhost", started_utc="2026-11-26T07:00:00Z", finished_utc="2026-11-26T07:01:00Z",
                   mode="smoke", argv=("tppbench", "run"), harness_version="0.1.0", backend=backend)
    return RunResult(run=info, devices=devices, measurements=measurements)


def _m(benchmark: str, variant: str, precision: str | None, rate: float, device: int | None = 0,
       status: str = "ok") -> Measurement:
    unit = "byte" if benchmark in ("memory", "hostlink", "p2p") else ("op" if precision == "int8" else "flop")
    return Measurement(
        key=f"{benchmark}/{variant}/{precision}", benchmark=benchmark, variant=variant, precision=precision,
        params={}, device_index=device, status=status, reason=None if status == "ok" else "skipped here",
        unit=unit, convention="test", work_per_call=1.0, times_s=(1.0 / rate,) if status == "ok" else (),
        rate=rate if status == "ok" else None,
    )


H100 = DeviceInfo(
    index=0, backend="cuda", name="NVIDIA H100 80GB HBM3", pci_device_id="0x2330", compute_capability="9.0",
    sm_count=132, sm_clock_max_mhz=1980, mem_clock_max_mhz=2619, memory_bus_width_bits=5120,
    pcie_gen_max=5, pcie_width_max=16,
    nvlink=tuple({"link": i, "state": "active", "version": 4} for i in range(18)),
)
CPU = DeviceInfo(index=0, backend="cpu", name="cpu", threads=2,
                 unavailable={"pci_device_id": "CPU backend", "sm_count": "CPU backend"})


@pytest.fixture()
def h100_file(tmp_path: Path) -> str:
    ms = (
        _m("matmul", "reference", "bf16", 700e12), _m("matmul", "sweep", "bf16", 760e12),
        _m("matmul", "reference", "fp8", 1300e12), _m("matmul", "reference", "int8", 1000e12, status="skipped"),
        _m("matmul", "reference", "fp32", 50e12), _m("memory", "copy", None, 2.9e12),
        _m("memory", "triad", None, 3.0e12), _m("hostlink", "bidirectional_pinned", None, 90e9),
    )
    return str(save(_run("cuda", (H100,), ms), tmp_path))


@pytest.fixture()
def cpu_file(tmp_path: Path) -> str:
    ms = (
        _m("matmul", "reference", "fp32", 40e9, device=None), _m("matmul", "sweep", "fp32", 55e9, device=None),
        _m("matmul", "reference", "bf16", 20e9, device=None),
        _m("matmul", "reference", "fp8", 0, device=None, status="skipped"),
        _m("memory", "copy", None, 12e9, device=None),
    )
    return str(save(_run("cpu", (CPU,), ms), tmp_path))


# --------------------------------------------------------------------------- matching


@pytest.mark.parametrize("pci, name, expected, how", [
    ("0x2330", "whatever", "h100-sxm", "PCI"),
    ("0x233010de", "whatever", "h100-sxm", "PCI"),  # NVML's 32-bit form: device << 16 | vendor
    ("0x2322", "NVIDIA H800 PCIe", "h800-pcie", "PCI"),
    (None, "NVIDIA GeForce RTX 4090 D", "rtx-4090-d", "name"),
    (None, "NVIDIA GeForce RTX 4090", "rtx-4090", "name"),
    ("0xffff", "NVIDIA H200", "h200", "name"),  # unknown id falls back to the name
    ("0x1020", "Gaudi2", "gaudi2", "PCI"),
    (None, "cpu", None, None),
    (None, "NVIDIA H100", None, None),  # ambiguous names never match by substring
])
def test_match_by_pci_id_then_name(pci, name, expected, how):
    device = DeviceInfo(index=0, backend="cuda", name=name, pci_device_id=pci)
    part, text = match_part(device, load_catalog())
    assert (part.id if part else None) == expected
    if how == "PCI":
        assert text.startswith("PCI device id")
    elif how == "name":
        assert text.startswith("device name")


# --------------------------------------------------------------------------- H100: three bases


def test_h100_result_has_three_bases_and_derived_tpp_within_10_pct(h100_file):
    (subject,) = result_subjects(h100_file)
    assert subject.part_id == "h100-sxm"
    assert [s.basis for s in subject.metric_sets] == ["peak-declared", "peak-derived", "measured"]
    derived = subject.basis("peak-derived").get("tpp")
    # 132 SMs x 1,980 MHz x 8,192 op/clk/SM x 8 bits = 17,128.6
    assert derived.value.lo == pytest.approx(132 * 1980e6 * 8192 * 8 / 1e12)
    assert abs(derived.value.lo - 15832) / 15832 < 0.10
    assert "1,980 MHz" in derived.note and "1,830 MHz" in derived.note and "+8.2%" in derived.note
    assert "132 SMs x 1,980 MHz" in derived.source
    assert derived.inputs["sm_clock_max_mhz"] == 1980
    # derived I/O: 18 NVLink4 links x 50 + PCIe Gen5 x16 = 900 + 128
    assert subject.basis("peak-derived").get("io_bidirectional_gbs").value.lo == pytest.approx(1028)
    mem = subject.basis("peak-derived").get("memory_bandwidth_gbs").value.lo
    assert mem == pytest.approx(2619e6 * 5120 / 8 * 2 / 1e9) and abs(mem - 3350) / 3350 < 0.01


def test_h100_measured_basis(h100_file):
    (subject,) = result_subjects(h100_file)
    measured = subject.basis("measured")
    tpp = measured.get("tpp")
    # max over precisions: bf16 max(700, 760) x 16 = 12,160 beats fp8 1,300 x 8 = 10,400
    assert tpp.value.lo == pytest.approx(760 * 16)
    assert tpp.inputs["precisions"] == ["bf16"]
    assert tpp.inputs["ratio_to_peak"]["bf16"] == pytest.approx(760 / 989.5, abs=1e-4)
    assert "int8" not in tpp.inputs["ratio_to_peak"]  # the skipped record does not count
    assert measured.get("memory_bandwidth_gbs").value.lo == pytest.approx(3000)
    io = measured.get("io_bidirectional_gbs")
    assert io.value.lo == pytest.approx(90) and io.value.hi == float("inf")  # host link only: lower bound
    assert "host link only" in io.source


def test_measured_io_from_p2p_aggregate_when_present(tmp_path):
    ms = (_m("p2p", "aggregate_io", None, 850e9), _m("hostlink", "bidirectional_pinned", None, 90e9))
    path = save(_run("cuda", (H100,), ms), tmp_path)
    (subject,) = result_subjects(str(path))
    io = subject.basis("measured").get("io_bidirectional_gbs")
    assert io.value.lo == io.value.hi == pytest.approx(850)


def test_measured_io_without_host_link_is_a_lower_bound(tmp_path):
    import dataclasses

    agg = dataclasses.replace(_m("p2p", "aggregate_io", None, 760e9), flags=("host_link_missing",))
    path = save(_run("cuda", (H100,), (agg,)), tmp_path)
    (subject,) = result_subjects(str(path))
    io = subject.basis("measured").get("io_bidirectional_gbs")
    assert io.value.lo == pytest.approx(760) and io.value.hi == float("inf")
    assert "lower bound" in io.source


def test_multi_host_file_matches_each_gpu_to_its_own_host(tmp_path):
    import dataclasses

    gpus = (dataclasses.replace(H100, host="node-a"), dataclasses.replace(H100, host="node-b"))
    ms = (dataclasses.replace(_m("p2p", "aggregate_io", None, 850e9), host="node-a"),
          dataclasses.replace(_m("p2p", "aggregate_io", None, 610e9), host="node-b"))
    path = save(_run("cuda", gpus, ms), tmp_path)
    seen = sorted(s.basis("measured").get("io_bidirectional_gbs").value.lo for s in result_subjects(str(path)))
    assert seen == [pytest.approx(610), pytest.approx(850)]


def test_measured_io_host_link_is_all_without_nvlink(tmp_path):
    l4 = DeviceInfo(index=0, backend="cuda", name="NVIDIA L4", pci_device_id="0x27b8", nvlink=None,
                    unavailable={"nvlink": "NVML: Not Supported"})
    path = save(_run("cuda", (l4,), (_m("hostlink", "bidirectional_pinned", None, 50e9),)), tmp_path)
    (subject,) = result_subjects(str(path))
    io = subject.basis("measured").get("io_bidirectional_gbs")
    assert io.value.lo == io.value.hi == pytest.approx(50)


def test_h100_result_verdicts_per_basis(h100_file):
    doc = check_subjects([h100_file], rules="us-2022-10,us-2023-10")
    (s,) = doc["subjects"]
    by = {(v["rule_set"], v["basis"]): v for v in s["verdicts"]}
    assert by[("us-2023-10", "peak-declared")]["paragraph"] == "3A090.a.1"
    assert by[("us-2023-10", "peak-derived")]["outcome"] == "controlled"
    assert by[("us-2023-10", "measured")]["outcome"] == "controlled"  # 12,160 >= 4,800 as measured
    # 2022 on the measured basis: I/O is only a lower bound (90 GB/s host link) -> undecided, not false
    assert by[("us-2022-10", "measured")]["outcome"] == "indeterminate"
    assert s["metrics"]["tpp"]["basis"] == "peak-declared"
    assert set(s["metrics_by_basis"]) == {"peak-declared", "peak-derived", "measured"}


def test_rate_limited_part_says_derived_does_not_apply(tmp_path):
    h20 = DeviceInfo(index=0, backend="cuda", name="NVIDIA H20", compute_capability="9.0", sm_count=78,
                     sm_clock_max_mhz=1980)
    (subject,) = result_subjects(str(save(_run("cuda", (h20,), ()), tmp_path)))
    note = subject.basis("peak-derived").get("tpp").note
    assert "exceeds 10%" in note and "declared" in note


def test_rate_limited_part_gets_no_derived_verdict(tmp_path, capsys):
    """An H20 has the H100's architecture but a rate-limited peak: the architecture table gives a
    TPP over 4,800, which must not turn into a 'controlled' verdict (nor `--fail-on` exit 3)."""
    h20 = DeviceInfo(index=0, backend="cuda", name="NVIDIA H20", compute_capability="9.0", sm_count=78,
                     sm_clock_max_mhz=1980)
    path = str(save(_run("cuda", (h20,), ()), tmp_path))
    (subject,) = result_subjects(path)
    derived = subject.basis("peak-derived")
    assert derived.get("tpp").value is None and "not used" in derived.get("tpp").missing
    assert derived.get("tpp").inputs["derived_tpp"] > 4800  # the number is kept, just not judged
    assert derived.get("performance_density").value is None
    doc = check_subjects([path], rules="us-2023-10")
    by = {v["basis"]: v for v in doc["subjects"][0]["verdicts"]}
    assert by["peak-declared"]["outcome"] == "not_controlled"
    assert by["peak-derived"]["outcome"] == "indeterminate"
    assert main(["check", path, "--rules", "us-2023-10", "--fail-on", "controlled"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("field, value", [("sm_clock_max_mhz", 0), ("sm_clock_max_mhz", -5), ("sm_count", 0)])
def test_unusable_probe_values_are_missing_not_a_traceback(tmp_path, capsys, field, value):
    from dataclasses import replace

    path = str(save(_run("cuda", (replace(H100, **{field: value}),), ()), tmp_path))
    (subject,) = result_subjects(path)
    assert field in subject.basis("peak-derived").get("tpp").missing
    assert main(["check", path, "--rules", "us-2023-10"]) == 0  # was AttributeError on None
    assert main(["whatif", path]) == 0
    capsys.readouterr()


def test_agreeing_derived_tpp_is_judged(h100_file):
    (subject,) = result_subjects(h100_file)
    tpp = subject.basis("peak-derived").get("tpp")
    assert tpp.value.lo == pytest.approx(132 * 1980e6 * 8192 / 1e12 * 8)  # +8.2 %: within 10 %
    assert "lower boost clock" in tpp.note


def test_unknown_compute_capability_is_missing_not_wrong(tmp_path):
    dev = DeviceInfo(index=0, backend="cuda", name="Mystery GPU", compute_capability="99.0", sm_count=10,
                     sm_clock_max_mhz=1000)
    (subject,) = result_subjects(str(save(_run("cuda", (dev,), ()), tmp_path)))
    tpp = subject.basis("peak-derived").get("tpp")
    assert tpp.value is None and "compute capability 99.0" in tpp.missing
    doc = check_subjects([str(save(_run("cuda", (dev,), ()), tmp_path))], rules="us-2023-10")
    assert doc["subjects"][0]["verdicts"][0]["outcome"] == "indeterminate"


# --------------------------------------------------------------------------- CPU


def test_cpu_result_flows_through_check_with_measured_verdicts(cpu_file, capsys):
    rc = main(["check", cpu_file, "--json", "--rules", "us-2022-10,us-2023-10,us-2026-01"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    (s,) = doc["subjects"]
    assert s["catalog_id"] is None
    assert list(s["metrics_by_basis"]) == ["measured"]
    tpp = s["metrics"]["tpp"]
    assert tpp["basis"] == "measured" and tpp["value"] == pytest.approx(55e9 / 1e12 * 32)
    verdicts = {v["rule_set"]: v for v in s["verdicts"]}
    assert all(v["basis"] == "measured" for v in s["verdicts"])
    # A measured TPP of 1.76 is only a lower bound of the peak: it decides no 3A090 paragraph,
    # so a CPU run is never reported as "not controlled" (the issue: measured never by itself)
    for rule_id in ("us-2023-10", "us-2022-10"):
        assert verdicts[rule_id]["outcome"] == "indeterminate", verdicts[rule_id]["reason"]
        assert "lower bound" in verdicts[rule_id]["reason"]
    assert any("theoretical peak" in n for n in verdicts["us-2023-10"]["notes"])
    assert all(c["result"] is not False for v in s["verdicts"] for c in v["clauses"] if c["comparator"] != "is")
    # DRAM 12 GB/s and TPP 1.76 as measured: the peak may be above the 2026 band's limits
    assert verdicts["us-2026-01"]["met"] is None and verdicts["us-2026-01"]["outcome"] == "indeterminate"


def test_cpu_result_text_output(cpu_file, capsys):
    assert main(["check", cpu_file, "--rules", "us-2023-10"]) == 0
    out = capsys.readouterr().out
    assert "measured" in out and "no catalog match" in out and "INDETERMINATE" in out
    assert "not controlled" not in out


def test_real_tppbench_run_output_if_available(tmp_path):
    """When `tppbench run` works in this tree, its real CPU smoke output must flow through check."""
    probe = subprocess.run([sys.executable, "-m", "bench", "run", "--help"], capture_output=True, text=True,
                           cwd=REPO)
    if probe.returncode != 0:
        pytest.skip("`tppbench run` is not available in this tree yet")
    out_dir = tmp_path / "runs"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--device", "cpu", "--mode", "smoke", "--suite", "matmul",
         "--out", str(out_dir)],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    if run.returncode != 0:
        pytest.skip(f"`tppbench run` failed here: {run.stderr.strip().splitlines()[-1:]}")
    files = sorted(out_dir.rglob("*.json"))
    assert files, "tppbench run wrote no result file"
    doc = check_subjects([str(files[-1])], rules="us-2023-10")
    verdicts = doc["subjects"][0]["verdicts"]
    assert verdicts and all(v["basis"] == "measured" for v in verdicts)
    assert verdicts[0]["outcome"] in ("not_controlled", "indeterminate")


# --------------------------------------------------------------------------- whatif on results


def test_whatif_with_measured_result(h100_file, capsys):
    assert main(["whatif", "h100-sxm", "--count", "50000", "--measured", h100_file]) == 0
    out = capsys.readouterr().out
    # 50,000 x 1,979 TOPS (fp8) = 9.895e19 < 1e20: EO 14110 cluster not reached at peak
    assert "aggregate peak 9.895e19" in out
    assert "50,531 devices at fp8 dense peak" in out  # ceil(1e20 / 1.979e15)
    # horizons at the fastest measured precision, fp8 1,300 TFLOPS: 1e26 / (50,000 x 1.3e15) / 86,400
    assert "17.8 d" in out and "measured 1.3e15 op/s (fp8" in out
    # 1e26 at peak: 1e26 / (50,000 x 1.979e15) / 86,400 = 11.7 days; 1e23 at peak = 16.8 minutes
    assert "11.7 d" in out and "0.3 h" in out
    # allocations are a peak quantity: 50,000 x 15,832 TPP vs the LPP and country caps
    assert "aggregate TPP 791,600,000 > 26,900,000" in out and "1,699 devices at most" in out


def test_whatif_result_subject_uses_derived_clock(h100_file, capsys):
    assert main(["whatif", h100_file]) == 0
    out = capsys.readouterr().out
    # own terms: SMs and clock from the probe (132 SMs, 1,980 MHz max SM clock)
    assert "of 132 SMs" in out and "max SM clock (NVML)" in out


def test_whatif_measured_file_without_matmul_is_an_error(tmp_path, capsys):
    path = save(_run("cpu", (CPU,), (_m("memory", "copy", None, 1e9, device=None),)), tmp_path)
    assert main(["whatif", "h100-sxm", "--measured", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no ok matmul record" in err[0]


def test_bad_result_file_is_one_line_exit_1(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"schema_version": 1, "run": ')
    proc = subprocess.run([sys.executable, "-m", "bench", "check", str(bad)], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "broken.json" in lines[0] and "Traceback" not in proc.stderr
