"""The verdict block `run` and `show` end with, and the above_peak flag (issue 10).

Result files here are synthetic (tests/data/results/synth.py, labelled "synthetic" in the file) or
a CPU device record: the block only reads files and the catalog, so no GPU is needed to check it."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "data" / "results"))
import synth  # noqa: E402

from bench.cli import main  # noqa: E402
from results.files import store  # noqa: E402
from results.files.schema import DeviceInfo  # noqa: E402
from thresholds.datasheet import ABOVE_PEAK_FRACTION, peak_fractions  # noqa: E402
from results.report.verdict_data import check_subjects  # noqa: E402
from results.render.verdict_block import verdict_block  # noqa: E402


def _block(capsys, path) -> list[str]:
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    start = out.index("Export-control verdicts")
    return out[start:].splitlines()


def test_cpu_result_file_has_no_catalog_match(tmp_path, capsys):
    cpu = DeviceInfo(index=0, backend="cpu", name="AMD EPYC test CPU")
    result = replace(synth.h100_run(11, scale={k: 1e-3 for k in ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8")}),
                     devices=(cpu,))
    result = replace(result, measurements=tuple(m for m in result.measurements if m.benchmark != "hostlink"))
    path = store.save(result, tmp_path)
    block = _block(capsys, path)
    assert block[1] == "device 0 AMD EPYC test CPU: no catalog match"
    assert any(line.startswith("  us-2023-10: undecided (measured basis: a lower bound)") for line in block)
    measured = next(line for line in block if line.startswith("  measured: "))
    assert "no declared figure to compare with" in measured and "TPP 12.44 (bf16 0.777 TOPS x 16)" in measured  # synthetic: 776.4e12 x 1e-3
    assert not any("peak-declared" in line for line in block)
    assert 3 <= len(block) - 1 <= 6


def test_synthetic_gpu_file_matching_a_catalog_part(tmp_path, capsys):
    path = store.save(synth.h100_run(12), tmp_path)  # synthetic H100 SXM file, matched by PCI id 0x2330
    block = _block(capsys, path)
    assert block[1] == "device 0 NVIDIA H100 80GB HBM3: catalog h100-sxm (matched by PCI device id 0x2330 = 10de:2330)"
    assert block[2] == "  peak-declared: TPP 15,832, PD 19.45, I/O 1,028 GB/s, DRAM 3,350 GB/s"
    assert block[3].startswith("  us-2023-10: CONTROLLED 3A090.a.1; nearest PD 19.45 vs >= 5.92 (+228.5%")
    assert block[4].startswith("  us-2026-01: inside case-by-case review band (China/Macau); nearest TPP 15,832 vs < 21,000 (-24.6%)")
    assert block[5].startswith("  us-2026-232: outside the tariff boxes; nearest TPP 15,832 vs < 17,500 (-9.5%)")
    measured = block[6]
    assert measured.startswith("  measured: TPP 12,378.3 (bf16 773.6 TOPS x 16) = 78%") and "% of peak-declared 15,832" in measured
    assert "DRAM 3,2" in measured and "% of peak-declared 3,350" in measured
    assert not any("ABOVE PEAK" in line for line in block)
    # the only near-limit figure: TPP 15,832 is 9.5 % below the edge of the first Section 232 box
    assert [line for line in block if "near limit" in line] == [
        "  near limit: TPP 15,832 is -9.5% from 17,500 (us-2026-232 Section 232 box 1) (within 10%)"]


def test_near_limit_line_for_an_a800(tmp_path, capsys):
    result = synth.h100_run(13, name="NVIDIA A800-SXM4-80GB", label="synthetic A800 test data")
    devices = tuple(replace(d, pci_device_id="0x20f310de", compute_capability="8.0", sm_count=108,
                            sm_clock_max_mhz=1410) for d in result.devices)
    scale = {k: 0.25 for k in ("fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8")}
    result = replace(synth.h100_run(13, name="NVIDIA A800-SXM4-80GB", scale=scale), devices=devices)
    block = _block(capsys, store.save(result, tmp_path))
    assert "catalog a800-sxm (matched by PCI device id 0x20f310de = 10de:20f3)" in block[1]
    near = next(line for line in block if line.startswith("  near limit: "))
    assert "PD 6.04 is +2.1% from 5.92 (us-2023-10 3A090.a.2)" in near


def test_a_rate_above_the_datasheet_peak_is_flagged_not_celebrated(tmp_path, capsys):
    result = synth.h100_run(14, scale={"bf16": 3.0})  # 2,329 TFLOP/s bf16 on a 989.5 peak: 235 %
    path = store.save(result, tmp_path)
    fractions = peak_fractions(result)
    bf16 = next(f for i, f in fractions.items() if result.measurements[i].precision == "bf16")
    assert bf16.fraction > ABOVE_PEAK_FRACTION and bf16.above_peak
    assert not any(f.above_peak for i, f in fractions.items() if result.measurements[i].precision == "fp16")
    assert main(["show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "235% !" in out and "! = above_peak" in out
    above = next(line for line in out.splitlines() if line.startswith("  ABOVE PEAK:"))
    for cause in ("misidentified part", "sparse or fast-accumulate kernel", "counting convention",
                  "clock above the datasheet's"):
        assert cause in above
    doc = check_subjects([str(path)], rules="us-2023-10")
    tpp = doc["subjects"][0]["metrics_by_basis"]["measured"]["tpp"]
    assert tpp["inputs"]["above_peak"] == ["bf16"] and "bf16 235% (ABOVE PEAK)" in tpp["source"]
    measured_verdict = next(v for v in doc["subjects"][0]["verdicts"] if v["basis"] == "measured")
    assert any(n.startswith("above_peak: bf16 measured 235%") for n in measured_verdict["notes"])


def test_device_memory_above_the_datasheet_peak_is_flagged(tmp_path):
    for scale, above in (({"write": 2.0}, True), (None, False)):  # synthetic write 6,520 or 3,260 GB/s on 3,350
        path = store.save(synth.h100_run(16, scale=scale), tmp_path)
        doc = check_subjects([str(path)], rules="us-2023-10")
        mem = doc["subjects"][0]["metrics_by_basis"]["measured"]["memory_bandwidth_gbs"]
        assert mem["inputs"]["above_peak"] is above
        assert mem["inputs"]["ratio_to_peak"] == (1.9517 if above else 0.9758)
        assert mem["source"].endswith("195% of declared (ABOVE PEAK)" if above else "98% of declared")
        measured_verdict = next(v for v in doc["subjects"][0]["verdicts"] if v["basis"] == "measured")
        notes = [n for n in measured_verdict["notes"] if n.startswith("above_peak: memory/write measured 195%")]
        assert len(notes) == (1 if above else 0)


def test_the_block_never_fails_for_want_of_a_catalog(tmp_path, monkeypatch):
    monkeypatch.setenv("TPPBENCH_DEVICES_DIR", str(tmp_path / "missing"))
    lines = verdict_block(synth.h100_run(15), "x.json")
    assert len(lines) == 1 and lines[0].startswith("Export-control verdicts: not available (")


def test_run_ends_with_the_verdict_block(tmp_path, capsys):
    """A real CPU run (torch kernels, smoke sizes, one case): the block follows the summary table."""
    code = main(["run", "--device", "cpu", "--mode", "smoke", "--only", "matmul/bf16/*", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    table_end = out.index("1 ok, 0 skipped, 0 error")
    block_start = out.index("Export-control verdicts (device-level regimes in force on")
    assert table_end < block_start < out.index("wrote ")
    block = out[block_start:out.index("wrote ")].splitlines()
    assert block[1].startswith("device 0 ") and block[1].endswith(": no catalog match")
    assert block[-1].startswith("  measured: TPP ") and "(bf16 " in block[-1]
