"""A unit's standing under the 2026 boxes (us-2026-01's review band, us-2026-232's tariff boxes):
judged on the declared basis, with the unit's measured figures as corroboration; and the catalog
parts its measured profile is consistent with ("an H20 that measures bf16 at 700 TFLOP/s is not an
H20")."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from thresholds.datasheet import ABOVE_PEAK_FRACTION
from results.render.verdict_text import cell
from results.verification.declared import Declared
from results.verification.evidence import Unit
from thresholds.check import check_subject
from thresholds.load import load_catalog, load_rules
from thresholds.measured import measured_metrics
from thresholds.metrics import declared_metrics
from thresholds.model import Subject

STANDING_RULES = ("us-2026-01", "us-2026-232")


@dataclass(frozen=True)
class Standing:
    rule: str
    declared: str  # "inside" / "outside" / "?"
    measured: str
    reason: str


def standings(unit: Unit, declared: Declared, as_of: datetime.date) -> list[Standing]:
    rules = tuple(r for r in load_rules() if r.id in STANDING_RULES)
    device = next(d for d in unit.result.devices if d.index == unit.device_index)
    peak, _ = declared_metrics(declared.part, declared.ref)
    measured, _ = measured_metrics(unit.result, device, declared.part, peak, str(unit.file))
    sets = (peak,) if measured is None else (peak, measured)
    subject = Subject(name=declared.name, kind="result", ref=str(unit.file), metric_sets=sets)
    checked = check_subject(subject, rules, as_of, 10.0)
    out = []
    for rule in rules:
        by_basis = {v.basis: v for v in checked.verdicts if v.rule_set == rule.id}
        d, m = by_basis.get(peak.basis), by_basis.get("measured")
        out.append(Standing(rule.id, cell(d) if d else "?", cell(m) if m else "not measured",
                            d.reason if d else "no declared figures"))
    return out


def consistent_parts(unit: Unit, limit: int | None = 5) -> tuple[list[str], int]:
    """Catalog parts whose datasheet peaks the unit's measured medians stay within (x 1.05) for
    every precision both have, and for DRAM bandwidth; tightest first. Returns (the first `limit`
    ids, or all of them for None, and how many there are)."""
    fits = []
    for part in load_catalog():
        ratios = []
        for key, m in unit.measures.items():
            if m.value is None:
                continue
            if key.startswith("matmul/"):
                fig = part.dense_tops.get(key.split("/")[1])
            elif key == "memory_bandwidth":
                fig = part.memory_bandwidth_gbs
            else:
                continue
            if fig is not None and fig.value.hi > 0:
                ratios.append(m.value / fig.value.hi)
        if ratios and max(ratios) <= ABOVE_PEAK_FRACTION:
            fits.append((-max(ratios), part.id))
    fits.sort()
    return [pid for _, pid in fits[:limit]], len(fits)  # fits[:None] is every fit
