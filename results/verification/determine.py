"""Each unit's items against the declaration (docs/verification.md, "Determinations").

Statistic: the one-sided upper confidence bound of the median of the raw samples (results.
verification.bounds), at the procedure's confidence.
- consistent: upper bound <= declared x (1 + upper_tolerance), and not below the floor;
- exceeds declaration: upper bound above that: the specification is not verified;
- below expected: even the upper bound is below the floor (faulty, throttled or another part);
- not measured (with the reason), not declared.
Floors: the published achieved figure for the part x published_floor_fraction (results/reference/
published), else a published vendor floor as printed, else declared x spec_floor_fraction.
Capacity is exact (bytes verified): consistent when declared x 10^9 x capacity_floor_fraction <=
verified <= declared x 2^30 x (1 + capacity_upper_tolerance), since datasheets do not say whether
their GB is decimal or binary. TPP: the highest measured median x bit length, its bound likewise,
against the declared TPP (upper side only: the floors are per precision)."""

from __future__ import annotations

from dataclasses import dataclass

from results.analysis.published import published_for
from results.verification.declared import Declared
from results.verification.evidence import ItemMeasure, Unit
from results.verification.procedure import Determination
from thresholds.model import PRECISION_BITS, Interval

CONSISTENT, EXCEEDS, BELOW = "consistent", "exceeds declaration", "below expected"
NOT_MEASURED, NOT_DECLARED = "not measured", "not declared"
ITEM_DETERMINATIONS = (CONSISTENT, EXCEEDS, BELOW, NOT_MEASURED, NOT_DECLARED)
VERIFIED, DUPLICATE = "verified", "duplicate serial"
UNIT_DETERMINATIONS = (VERIFIED, EXCEEDS, BELOW, NOT_MEASURED, DUPLICATE)


@dataclass(frozen=True)
class ItemResult:
    item: str
    unit: str
    measured: float | None
    upper: float | None  # the statistic compared (capacity: the verified figure itself)
    declared: Interval | None
    limit: float | None  # declared x (1 + tolerance)
    floor: float | None
    floor_source: str | None
    determination: str
    reason: str
    key: str | None = None
    samples: int = 0


def _floor(declared: Declared, benchmark: str, what: str, d: Determination,
           declared_value: Interval | None) -> tuple[float | None, str | None]:
    part = declared.catalog_id
    if part is not None:
        achieved = published_for(part, benchmark, what, "achieved")
        if achieved is not None:
            return (achieved.value * d.published_floor_fraction,
                    f"{d.published_floor_fraction:g} x published {achieved.value:g} {achieved.unit} ({achieved.tool}; {achieved.source})")
        vendor = published_for(part, benchmark, what, "floor")
        if vendor is not None:
            return vendor.value, f"published floor {vendor.value:g} {vendor.unit} ({vendor.source})"
    if declared_value is not None:
        return declared_value.lo * d.spec_floor_fraction, f"{d.spec_floor_fraction:g} x the declared {declared_value.lo:g}"
    return None, None


def _rate_item(m: ItemMeasure, declared_value: Interval | None, floor: tuple[float | None, str | None],
               d: Determination) -> ItemResult:
    low, source = floor
    samples = m.bounds.n if m.bounds else 0
    if m.value is None:
        det = NOT_MEASURED if declared_value is not None else NOT_DECLARED
        why = m.reason or "not measured"
        return ItemResult(m.item, m.unit, None, None, declared_value, None, low, source, det,
                          why if det == NOT_MEASURED else f"not declared, and not measured: {why}", m.key)
    upper = m.bounds.upper if m.bounds else m.value
    bound_text = (f"upper {d.confidence:.0%} bound of the median {upper:.4g}" if m.bounds and m.bounds.exact
                  else f"largest sample {upper:.4g} (too few samples for a {d.confidence:.0%} bound)")
    if declared_value is None:
        return ItemResult(m.item, m.unit, m.value, upper, None, None, low, source, NOT_DECLARED,
                          f"measured {m.value:.4g} {m.unit}; the declaration has no figure", m.key, samples)
    limit = declared_value.hi * (1 + d.upper_tolerance)
    if upper > limit:
        det, why = EXCEEDS, f"{bound_text} > declared {declared_value.hi:g} x {1 + d.upper_tolerance:g} = {limit:.4g}"
    elif low is not None and upper < low:
        det, why = BELOW, f"{bound_text} < floor {low:.4g} ({source})"
    else:
        det, why = CONSISTENT, f"{bound_text} <= {limit:.4g}" + (f", >= floor {low:.4g}" if low is not None else ", no floor")
    return ItemResult(m.item, m.unit, m.value, upper, declared_value, limit, low, source, det, why, m.key, samples)


def _tpp_item(unit: Unit, declared: Declared, d: Determination) -> ItemResult:
    best = None
    for key, m in unit.measures.items():
        if not key.startswith("matmul/") or m.value is None:
            continue
        bits = PRECISION_BITS[key.split("/")[1]]
        upper = (m.bounds.upper if m.bounds else m.value) * bits
        if best is None or m.value * bits > best[0]:
            best = (m.value * bits, upper, key, m)
    if best is None:
        return ItemResult("tpp", "TPP", None, None, declared.tpp, None, None, None, NOT_MEASURED,
                          "no matmul precision measured", None)
    value, upper, key, m = best
    samples = m.bounds.n if m.bounds else 0
    if declared.tpp is None:
        return ItemResult("tpp", "TPP", value, upper, None, None, None, None, NOT_DECLARED,
                          f"measured TPP {value:.4g} ({key}); no declared TPP", m.key, samples)
    limit = declared.tpp.hi * (1 + d.upper_tolerance)
    det = EXCEEDS if upper > limit else CONSISTENT
    why = (f"{key} x {PRECISION_BITS[key.split('/')[1]]} bits: upper bound {upper:.4g} "
           f"{'>' if det == EXCEEDS else '<='} declared TPP {declared.tpp.hi:g} x {1 + d.upper_tolerance:g} = {limit:.4g}")
    return ItemResult("tpp", "TPP", value, upper, declared.tpp, limit, None, None, det, why, m.key, samples)


def _capacity_item(m: ItemMeasure, declared: Declared, d: Determination) -> ItemResult:
    cap = declared.memory_capacity_gb
    if m.value is None or (m.detail or {}).get("bounded"):
        reason = m.reason or "not measured"
        det = NOT_DECLARED if cap is None else NOT_MEASURED
        return ItemResult("capacity", "GB", m.value, None, cap, None, None, None, det, reason, m.key)
    if cap is None:
        return ItemResult("capacity", "GB", m.value, m.value, None, None, None, None, NOT_DECLARED,
                          f"verified {m.value:.4g} GB usable; no declared capacity", m.key, 1)
    limit = cap.hi * (1 << 30) / 1e9 * (1 + d.capacity_upper_tolerance)
    low = cap.lo * d.capacity_floor_fraction
    gib = m.value * 1e9 / (1 << 30)
    if m.value > limit:
        det, why = EXCEEDS, f"verified {m.value:.4g} GB ({gib:.4g} GiB) > declared {cap.hi:g} read as GiB x {1 + d.capacity_upper_tolerance:g} = {limit:.4g} GB"
    elif m.value < low:
        det, why = BELOW, f"verified {m.value:.4g} GB ({gib:.4g} GiB) < {d.capacity_floor_fraction:g} x declared {cap.lo:g} GB = {low:.4g} GB"
    else:
        det, why = CONSISTENT, f"verified {m.value:.4g} GB ({gib:.4g} GiB) within [{low:.4g}, {limit:.4g}] GB"
    return ItemResult("capacity", "GB", m.value, m.value, cap, limit, low, f"{d.capacity_floor_fraction:g} x declared",
                      det, why, m.key, 1)


def determine_items(unit: Unit, declared: Declared, d: Determination) -> list[ItemResult]:
    out = [_tpp_item(unit, declared, d)]
    for key, m in unit.measures.items():
        if key.startswith("matmul/"):
            precision = key.split("/")[1]
            value = declared.dense_tops.get(precision)
            out.append(_rate_item(m, value, _floor(declared, "matmul", precision, d, value), d))
    memory = unit.measures["memory_bandwidth"]
    variant = memory.key.split("/")[1] if memory.key else "copy"
    out.append(_rate_item(memory, declared.memory_bandwidth_gbs,
                          _floor(declared, "memory", variant, d, declared.memory_bandwidth_gbs), d))
    out.append(_rate_item(unit.measures["interconnect"], declared.interconnect_gbs,
                          (declared.interconnect_gbs.lo * d.spec_floor_fraction, f"{d.spec_floor_fraction:g} x declared")
                          if declared.interconnect_gbs else (None, None), d))
    out.append(_capacity_item(unit.measures["capacity"], declared, d))
    return out


def _required(item: str) -> str:
    return "tpp" if item.startswith("matmul/") else item


def unit_determination(items: list[ItemResult], d: Determination) -> tuple[str, str]:
    """(determination, the items that decided it)."""
    for det in (EXCEEDS, BELOW):
        hits = [i.item for i in items if i.determination == det]
        if hits:
            return det, ", ".join(hits)
    missing = [i.item for i in items if i.determination == NOT_MEASURED and _required(i.item) in d.required
               and not i.item.startswith("matmul/")]
    if missing:
        return NOT_MEASURED, ", ".join(missing)
    return VERIFIED, ""
