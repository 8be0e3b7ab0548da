"""The pieces of `verify` on their own: median bounds against the binomial, the capacity kernel on
real CPU tensors (an allocator that refuses, a word that reads back wrong), capacity and rate
determinations at their edges, and the published figures against their source text."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from bench.backend import make_backend
from bench.kernels import capacity
from bench.registry import Case
from results.analysis.published import published_figures, published_for
from results.verification.bounds import median_bounds
from results.verification.determine import BELOW, CONSISTENT, EXCEEDS, _capacity_item, _rate_item
from results.verification.evidence import ItemMeasure
from results.verification.procedure import load_procedure
from thresholds.model import Interval

NEXT = Path(__file__).resolve().parents[2] / "shared" / "reference" / "next-capabilities.md"
D = load_procedure("lab").determination


@pytest.mark.parametrize("n", [5, 10, 21, 100, 999])
def test_upper_bound_rank_is_the_smallest_with_the_binomial_coverage(n):
    b = median_bounds([float(i) for i in range(1, n + 1)], 0.95)
    u = int(b.upper)  # samples are 1..n, so the bound is its own rank
    coverage = lambda r: sum(math.comb(n, k) for k in range(r)) / 2 ** n
    assert coverage(u) >= 0.95 > coverage(u - 1)
    assert b.exact and b.lower == n + 1 - u and b.lower <= b.median <= b.upper


def test_too_few_samples_give_the_extremes_and_say_so():
    b = median_bounds([3.0, 1.0, 2.0], 0.95)
    assert (b.lower, b.median, b.upper, b.exact) == (1.0, 2.0, 3.0, False)


def _cpu_case(bound: int, chunk: int) -> Case:
    return Case("capacity", "verified", {"chunk_bytes": chunk, "bound_bytes": bound})


def test_capacity_shrinks_chunks_when_the_allocator_refuses(monkeypatch):
    """bound 0 (the GPU path) on real CPU tensors, with an allocator that gives 40 MiB in all."""
    given = {"bytes": 0}
    real = capacity._allocate

    def allocate(words, device):
        if given["bytes"] + words * 8 > 40 << 20:
            return None
        given["bytes"] += words * 8
        return real(words, device)

    monkeypatch.setattr(capacity, "_allocate", allocate)
    m = capacity.CapacityBenchmark().run(_cpu_case(0, 16 << 20), make_backend("cpu"), "lab")
    # 16 + 16 MiB; 16 refused, so 4 + 4 MiB; 4 refused, 1 refused: 40 MiB filled. The last
    # (smallest) chunk is released for the check's workspace: 36 MiB verified
    assert m.status == "ok", m.reason
    assert m.extra["verified_bytes"] == 36 << 20 and m.extra["released_for_check_bytes"] == 4 << 20
    assert "refused a 1 MiB chunk" in m.extra["stop_reason"]


def test_capacity_names_a_word_that_reads_back_wrong(monkeypatch):
    real_fill = capacity._fill

    def bad_fill(t, i):
        real_fill(t, i)
        if i == 1:
            t[12345] ^= 1  # one flipped bit
    monkeypatch.setattr(capacity, "_fill", bad_fill)
    m = capacity.CapacityBenchmark().run(_cpu_case(32 << 20, 8 << 20), make_backend("cpu"), "lab")
    assert m.status == "error" and "1 word(s) read back wrong in chunk(s) [1]" in m.reason
    assert m.extra["verified_bytes"] == 24 << 20


def test_capacity_pattern_tells_chunks_apart():
    a, b = torch.empty(1000, dtype=torch.int64), torch.empty(1000, dtype=torch.int64)
    capacity._fill(a, 0)
    capacity._fill(b, 1)
    assert len(set(a.tolist())) == 1000 and not set(a.tolist()) & set(b.tolist())
    assert capacity._mismatches(a, 0) == 0 and capacity._mismatches(a, 1) == 1000


def _cap(verified_gb: float, declared_gb: float):
    m = ItemMeasure("capacity", "GB", value=verified_gb, detail={"bounded": False})
    from types import SimpleNamespace
    return _capacity_item(m, SimpleNamespace(memory_capacity_gb=Interval.point(declared_gb)), D)


def test_capacity_edges_read_gb_both_ways():
    # 149.7 GB verified (139.4 GiB): above 141 decimal GB, within 141 GiB x 1.02: consistent
    assert _cap(149.7, 141).determination == CONSISTENT
    assert _cap(141 * 1.073741824 * 1.02 + 0.01, 141).determination == EXCEEDS  # more than even 141 GiB allows
    assert _cap(141 * 0.9 - 0.01, 141).determination == BELOW
    assert _cap(141 * 0.9 + 0.01, 141).determination == CONSISTENT


def test_rate_edges():
    from results.verification.bounds import MedianBounds

    def item(upper: float, declared: float, floor: float | None):
        m = ItemMeasure("matmul/bf16", "TFLOP/s", value=upper, bounds=MedianBounds(20, upper, upper, upper, 0.95, True))
        return _rate_item(m, Interval.point(declared), (floor, "test floor"), D).determination

    assert item(105.0, 100.0, 50.0) == CONSISTENT  # exactly declared x 1.05
    assert item(105.001, 100.0, 50.0) == EXCEEDS
    assert item(49.999, 100.0, 50.0) == BELOW
    assert item(60.0, 100.0, None) == CONSISTENT


def test_every_published_figure_stands_in_its_source_text():
    if not NEXT.is_file():
        pytest.skip("../shared/reference/next-capabilities.md not beside the checkout")
    text = NEXT.read_text()
    rows = published_figures()
    assert len(rows) >= 25
    for f in rows:
        assert f.quote in text, f.quote
        printed = {f"{f.value:g}", f"{f.value / 1000:.2f}", f"{f.value * 1000:,.0f}"}
        assert any(re.search(rf"(?<![\d.,]){re.escape(p)}(?![\d])", f.quote) for p in printed), (f.value, f.quote)
    assert published_for("h100-sxm", "matmul", "bf16").value == 794.5
    assert published_for("mi300x", "memory", "copy", "floor").value == 4177.285
    busbw = published_for("h100-sxm", "collectives", "all_reduce")
    assert (busbw.value, busbw.gpus, busbw.bytes) == (478.87, 8, 8_000_000_000)
    assert published_for("mi300x", "collectives", "all_reduce", "floor").value == 304.0


def test_run_show_and_check_state_measured_rates_against_published_figures(tmp_path, capsys):
    import sys as _sys
    _sys.path.insert(0, str(Path(__file__).parent / "data" / "results"))
    import synth

    from bench.cli import main
    from results.files import store

    result = synth.h100_run(1, "h")
    path = store.save(result, tmp_path)
    bf16 = max(m.rate for m in result.measurements if m.precision == "bf16" and m.status == "ok")
    expected = f"bf16 {bf16 / 794.5e12:.2f}x the published h100-sxm figure (794.5 TFLOP/s, mamf-finder"
    assert main(["show", str(path)]) == 0  # show ends with the verdict block run ends with
    assert expected in capsys.readouterr().out
    main(["check", str(path)])
    assert expected in " ".join(capsys.readouterr().out.split())
