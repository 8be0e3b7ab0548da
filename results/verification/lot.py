"""A lot: every unit file read, one procedure and one model checked, each unit determined, and the
lot's counts, duplicates and outliers.

Choices (docs/verification.md): units measured with another procedure file, or of another model,
are refused with one line naming the files (a lot is one model under one procedure); a serial
seen more than once is its own determination, "duplicate serial", for every unit carrying it (a
cloned serial is a finding, not an input error)."""

from __future__ import annotations

import datetime
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from results.errors import TppbenchError
from results.files import store
from results.verification.declared import Declared
from results.verification.determine import (DUPLICATE, VERIFIED, ItemResult, determine_items,
                                            unit_determination)
from results.verification.evidence import Unit, units_of
from results.verification.procedure import Procedure
from results.verification.standing import Standing, consistent_parts, standings

MAD_TO_SIGMA = 0.6745


class LotError(TppbenchError):
    """A lot that cannot be judged as one (exit 1, one line)."""

    exit_code = 1


@dataclass(frozen=True)
class UnitReport:
    unit: Unit
    items: list[ItemResult]
    determination: str
    decided_by: str
    standings: list[Standing]
    consistent_with: list[str]
    consistent_count: int
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Lot:
    name: str
    procedure: Procedure
    declared: Declared
    units: list[UnitReport]
    outliers: list[str]
    created_utc: str

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for u in self.units:
            out[u.determination] = out.get(u.determination, 0) + 1
        return out

    @property
    def verified(self) -> bool:
        return all(u.determination == VERIFIED for u in self.units)


def read_units(paths: list[str], procedure: Procedure) -> list[Unit]:
    units: list[Unit] = []
    for text in paths:
        path = Path(text)
        raw = store.read_bytes(path)  # the bytes hashed are the bytes judged
        result = store.parse_bytes(raw, path)
        if not result.run.procedure:
            raise LotError(f"{path}: not measured with a procedure (run.procedure is empty); "
                           f"measure units with `tppbench run --procedure {procedure.id}`")
        units.extend(units_of(result, path, raw, procedure.determination.confidence))
    if not units:
        raise LotError("no unit files given")
    shas = {}
    for u in units:
        shas.setdefault(u.procedure.get("sha256"), []).append(u)
    if set(shas) != {procedure.sha256}:
        other = next(us for sha, us in shas.items() if sha != procedure.sha256)
        raise LotError(f"{other[0].file}: measured with procedure {other[0].procedure.get('id')} "
                       f"v{other[0].procedure.get('version')} (sha256 {str(other[0].procedure.get('sha256'))[:12]}), "
                       f"not {procedure.id} v{procedure.version} ({procedure.sha256[:12]}): a lot is judged under one "
                       f"procedure file; verify each procedure's units as their own lot")
    models = {}
    for u in units:
        models.setdefault(u.model, []).append(u)
    if len(models) > 1:
        names = "; ".join(f"{m} ({us[0].file.name}{' and others' if len(us) > 1 else ''})" for m, us in models.items())
        raise LotError(f"mixed models in one lot: {names}; verify each model as its own lot")
    return units


def _outliers(reports: list[UnitReport], threshold: float) -> list[str]:
    out = []
    if len(reports) < 3:
        return out
    items = {i.item for r in reports for i in r.items if i.measured is not None}
    for item in sorted(items):
        values = [(r, next(i.measured for i in r.items if i.item == item)) for r in reports
                  if any(i.item == item and i.measured is not None for i in r.items)]
        if len(values) < 3:
            continue
        xs = [v for _, v in values]
        med = statistics.median(xs)
        mad = statistics.median(abs(x - med) for x in xs)
        if mad == 0:
            continue
        for r, x in values:
            z = MAD_TO_SIGMA * (x - med) / mad
            if abs(z) >= threshold and math.isfinite(z):
                out.append(f"{r.unit.serial}: {item} {x:.4g} (robust z {z:+.1f}; lot median {med:.4g})")
    return out


def judge_lot(name: str, unit_paths: list[str], procedure: Procedure, declared: Declared,
              as_of: datetime.date | None = None) -> Lot:
    as_of = as_of or datetime.date.today()
    units = read_units(unit_paths, procedure)
    d = procedure.determination
    seen: dict[str, int] = {}
    for u in units:
        seen[u.serial] = seen.get(u.serial, 0) + 1
    reports = []
    for u in units:
        items = determine_items(u, declared, d)
        det, by = unit_determination(items, d)
        notes = []
        if seen[u.serial] > 1:
            det, by = DUPLICATE, f"serial {u.serial} appears {seen[u.serial]} times in the lot"
        if u.serial_source != "identity.serial":
            notes.append(f"no serial number recorded: the unit is named by {u.serial_source}")
        every, count = consistent_parts(u, limit=None)
        ids = every[:5]
        if declared.catalog_id and declared.catalog_id not in every:
            notes.append(f"the measured profile is not consistent with the declared part {declared.catalog_id}: "
                         f"a measured rate is above its datasheet peak x 1.05 (a relabelled or unlocked part?)")
        reports.append(UnitReport(u, items, det, by, standings(u, declared, as_of), ids, count, notes))
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Lot(name, procedure, declared, reports, _outliers(reports, d.outlier_robust_z), created)

