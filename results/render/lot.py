"""`verify`'s lot as text (the terminal), a JSON document and CSV rows (for the lab's own systems)."""

from __future__ import annotations

import csv
import io
from typing import Any

from results.verification.determine import ITEM_DETERMINATIONS, UNIT_DETERMINATIONS
from results.verification.lot import Lot

LOT_FORMAT_VERSION = 1


def number_text(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def declared_text(i) -> str:
    if i.declared is None:
        return "-"
    d = i.declared
    return f"{d.lo:g}" if d.lo == d.hi else f"{d.lo:g}-{d.hi:g}"


def render_lot_text(lot: Lot) -> str:
    p, dec = lot.procedure, lot.declared
    out = [f"lot {lot.name}: {len(lot.units)} unit(s) of {lot.units[0].unit.model}, procedure {p.id} v{p.version} "
           f"(sha256 {p.sha256[:12]}), declared: {dec.ref} ({dec.name})",
           "determination: upper {:.0%} confidence bound of the median vs declared x (1 + {:g}); floors from "
           "published figures x {:g} or declared x {:g}".format(
               p.determination.confidence, p.determination.upper_tolerance,
               p.determination.published_floor_fraction, p.determination.spec_floor_fraction),
           ""]
    width = max(len(u.unit.serial) for u in lot.units)
    out.append(f"{'serial':<{width}}  {'determination':<20}  decided by / file")
    for u in lot.units:
        out.append(f"{u.unit.serial:<{width}}  {u.determination:<20}  {u.decided_by or '-'}  [{u.unit.file.name}]")
    out.append("")
    out.append("counts: " + ", ".join(f"{k} {lot.counts.get(k, 0)}" for k in UNIT_DETERMINATIONS if lot.counts.get(k)))
    if lot.outliers:
        out.append("outliers (robust z): " + "; ".join(lot.outliers))
    for u in lot.units:
        out.append("")
        out.append(f"== {u.unit.label}: {u.determination}")
        for i in u.items:
            out.append(f"   {i.item:<18} measured {number_text(i.measured):>9} {i.unit:<7} declared {declared_text(i):>9}  "
                       f"{i.determination}: {i.reason}")
        for s in u.standings:
            out.append(f"   {s.rule}: declared {s.declared}, measured {s.measured}")
        if u.consistent_count:
            out.append(f"   measured profile consistent with {u.consistent_count} catalog part(s), tightest: "
                       + ", ".join(u.consistent_with))
        for note in u.notes:
            out.append(f"   note: {note}")
    return "\n".join(out) + "\n"


def lot_document(lot: Lot) -> dict[str, Any]:
    p, dec = lot.procedure, lot.declared

    def item(i) -> dict[str, Any]:
        return {"item": i.item, "unit": i.unit, "measured": i.measured, "upper_bound": i.upper,
                "declared": None if i.declared is None else [i.declared.lo, i.declared.hi],
                "limit": i.limit, "floor": i.floor, "floor_source": i.floor_source,
                "determination": i.determination, "reason": i.reason, "record": i.key, "samples": i.samples}

    return {
        "lot_format_version": LOT_FORMAT_VERSION, "lot": lot.name, "created_utc": lot.created_utc,
        "procedure": {**p.record(), "determination": vars(p.determination) | {"required": list(p.determination.required)}},
        "declared": {"ref": dec.ref, "name": dec.name, "file": str(dec.file), "sha256": dec.sha256},
        "verified": lot.verified, "counts": lot.counts, "outliers": lot.outliers,
        "determinations": {"unit": list(UNIT_DETERMINATIONS), "item": list(ITEM_DETERMINATIONS)},
        "units": [{
            "serial": u.unit.serial, "serial_source": u.unit.serial_source, "model": u.unit.model,
            "file": str(u.unit.file), "sha256": u.unit.sha256, "device_index": u.unit.device_index,
            "determination": u.determination, "decided_by": u.decided_by,
            "identity": dict(u.unit.identity), "items": [item(i) for i in u.items],
            "standing": [vars(s) for s in u.standings],
            "consistent_with": u.consistent_with, "consistent_count": u.consistent_count, "notes": u.notes,
        } for u in lot.units],
    }


CSV_COLUMNS = ("lot", "serial", "file", "unit_determination", "item", "measured", "unit", "upper_bound",
               "declared_lo", "declared_hi", "limit", "floor", "determination", "reason")


def lot_csv(lot: Lot) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for u in lot.units:
        for i in u.items:
            w.writerow([lot.name, u.unit.serial, u.unit.file.name, u.determination, i.item,
                        "" if i.measured is None else repr(i.measured), i.unit,
                        "" if i.upper is None else repr(i.upper),
                        "" if i.declared is None else repr(i.declared.lo), "" if i.declared is None else repr(i.declared.hi),
                        "" if i.limit is None else repr(i.limit), "" if i.floor is None else repr(i.floor),
                        i.determination, i.reason])
    return buf.getvalue()
