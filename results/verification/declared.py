"""What the exporter declared for the units (`verify --declared PART_ID|SPEC.toml`): TPP, dense
rates per precision, DRAM bandwidth, capacity and interconnect, from a catalog part or a spec
sheet in the format `check` reads (plus `memory_capacity_gb` and `catalog_part`). A figure the
declaration lacks is "not declared", never an error."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from thresholds.errors import DataFileError
from thresholds.load import load_catalog, load_spec
from thresholds.metrics import declared_metrics
from thresholds.model import Interval, Part
from thresholds.subjects import catalog_subject, find_part, spec_subject
from thresholds.model import Subject


@dataclass(frozen=True)
class Declared:
    ref: str  # "catalog h200" or "spec file lot/spec.toml"
    name: str
    part: Part
    subject: Subject  # for `check` on the declared basis
    catalog_id: str | None  # the catalog part (published floors, identity)
    tpp: Interval | None
    dense_tops: Mapping[str, Interval]  # TFLOPS / TOPS per precision
    memory_bandwidth_gbs: Interval | None
    memory_capacity_gb: Interval | None
    interconnect_gbs: Interval | None
    file: Path  # the spec file, or the catalog file holding the part (hashed into the manifest)
    sha256: str


def _interval(fig) -> Interval | None:
    return fig.value if fig is not None and isinstance(fig.value, Interval) else None


def load_declared(text: str) -> Declared:
    path = Path(text)
    if text.endswith(".toml") or path.is_file():
        part = load_spec(path)
        subject = spec_subject(str(path))
        catalog_id = part.catalog_part
        if catalog_id is not None and find_part(catalog_id) is None:
            raise DataFileError(path, "catalog_part", f"{catalog_id!r} is not a catalog id (see `tppbench devices`)")
        ref, file = f"spec file {path}", path
    else:
        found = find_part(text)
        if found is None:
            ids = ", ".join(p.id for p in load_catalog()[:6])
            raise DataFileError(text, None, f"not a catalog part id or a spec file (.toml); ids look like {ids}, ...")
        part, subject, catalog_id = found, catalog_subject(found), found.id
        ref, file = f"catalog {found.id}", Path(found.path)
    metrics, _ = declared_metrics(part, ref)
    tpp = metrics.get("tpp").value
    interconnect = metrics.get("interconnect_bandwidth_gbs").value
    return Declared(
        ref=ref, name=part.name, part=part, subject=subject, catalog_id=catalog_id,
        tpp=tpp if isinstance(tpp, Interval) else None,
        dense_tops={p: f.value for p, f in part.dense_tops.items() if isinstance(f.value, Interval)},
        memory_bandwidth_gbs=_interval(part.memory_bandwidth_gbs),
        memory_capacity_gb=_interval(part.memory_capacity_gb),
        interconnect_gbs=interconnect if isinstance(interconnect, Interval) else None,
        file=file, sha256=hashlib.sha256(file.read_bytes()).hexdigest(),
    )
