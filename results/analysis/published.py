"""Published achieved figures per part ("is my GPU normal?"): results/reference/published/*.toml,
each row with its source and the source's own words. `verify` takes its "below expected" floors
from here; `run`, `show` and `check` print a measured rate as a multiple of the published one."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from thresholds.tomlreader import read_toml

PUBLISHED_DIR = Path(__file__).resolve().parents[1] / "reference" / "published"
KINDS = ("achieved", "floor")
# file stem -> (the field naming what was measured, the value key, the unit it is in)
_FILES = {"matmul": ("precision", "value_tflops", "TFLOP/s"), "memory": ("variant", "value_gbs", "GB/s"),
          "hostlink": ("variant", "value_gbs", "GB/s"), "collectives": ("operation", "value_gbs", "GB/s")}


@dataclass(frozen=True)
class PublishedFigure:
    benchmark: str  # matmul | memory | hostlink
    part: str  # catalog id
    what: str  # precision (matmul) or tppbench variant (memory, hostlink)
    value: float  # in `unit`
    unit: str  # TFLOP/s or GB/s
    kind: str  # achieved | floor
    tool: str
    source: str
    quote: str
    shape: str | None = None
    gpus: int | None = None  # collectives: the GPU count the busbw was measured over
    bytes: int | None = None  # collectives: the message size

    @property
    def value_per_s(self) -> float:
        """In the result file's rate unit (flop/s, byte/s)."""
        return self.value * (1e12 if self.unit == "TFLOP/s" else 1e9)


@functools.cache
def published_figures(folder: Path = PUBLISHED_DIR) -> tuple[PublishedFigure, ...]:
    out = []
    for stem, (what_key, value_key, unit) in _FILES.items():
        path = folder / f"{stem}.toml"
        if not path.is_file():
            continue
        t = read_toml(path)
        t.string("source_document")
        for row in t.tables("row", True):
            out.append(PublishedFigure(
                benchmark=stem, part=row.string("part"), what=row.string(what_key),
                value=row.number(value_key, minimum=0.0), unit=unit, kind=row.choice("kind", KINDS),
                tool=row.string("tool"), source=row.string("source"), quote=row.string("quote"),
                shape=row.string("shape", False),
                gpus=int(row.number("gpus", False)) if row.get("gpus", False) is not None else None,
                bytes=int(row.number("bytes", False)) if row.get("bytes", False) is not None else None,
            ))
            row.finish()
        t.finish()
    return tuple(out)


def published_for(part: str, benchmark: str, what: str, kind: str = "achieved") -> PublishedFigure | None:
    """The highest published figure of that kind for part/benchmark/what, or None."""
    rows = [f for f in published_figures() if (f.part, f.benchmark, f.what, f.kind) == (part, benchmark, what, kind)]
    return max(rows, key=lambda f: f.value, default=None)


def published_comparison(measurements, device_index: int | None, part: str) -> list[str]:
    """'bf16 0.93x the published h100-sxm figure (794.5 TFLOP/s, mamf-finder ...)' per precision or
    variant the device measured and the part has a published achieved figure for."""
    best: dict[tuple[str, str], float] = {}
    for m in measurements:
        if m.status != "ok" or not m.rate or (device_index is not None and m.device_index not in (device_index, None)):
            continue
        what = m.precision if m.benchmark == "matmul" else m.variant
        if m.benchmark in _FILES and m.benchmark != "collectives" and what:  # collectives: by size and GPUs
            best[(m.benchmark, what)] = max(best.get((m.benchmark, what), 0.0), m.rate)
    out = []
    for (benchmark, what), rate in sorted(best.items()):
        ref = published_for(part, benchmark, what)
        if ref is not None:
            out.append(f"{what} {rate / ref.value_per_s:.2f}x the published {part} figure "
                       f"({ref.value:g} {ref.unit}, {ref.tool.split(';')[0]})")
    return out
