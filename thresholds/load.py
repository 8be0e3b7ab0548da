"""Parse and validate rule, catalog, derivation and spec files (TOML, read with stdlib tomllib).

Validation is strict: an unknown key, metric, comparator, unit, precision or tag is an error that
names the file and the key (`DataFileError`, exit 1). Nothing in a file is ever evaluated as code.
"""

from __future__ import annotations

import functools
import math
import os
import re
from pathlib import Path
from typing import Any, Callable

from thresholds.errors import DataFileError
from thresholds.model import (
    COMPARATORS, EFFECTS, FLAG_METRICS, PRECISION_BITS, SCOPES, STATUSES, UNITS,
    Architecture, ArchitectureCheck, Clause, DerivationTables, Figure, Interval, LicenceNote, Note,
    Paragraph, Part, RateTable, RuleSet,
)
from thresholds.tomlreader import Table, read_toml

PACKAGE_DIR = Path(__file__).resolve().parent
DERIVATION_FILE = "derivation.toml"
_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_PCI_ID = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{4}$")
# Ceiling for a part's figures (TOPS, GB/s, mm2, MHz, SM count): far above any real part, and low
# enough that TPP (x 64), sums and whatif aggregates stay finite floats (1e307 TOPS gave inf TPP
# and a JSON traceback). Die areas below AREA_MIN_MM2 would overflow performance density.
FIGURE_MAX = 1e9
AREA_MIN_MM2 = 1e-3


def rules_dir() -> Path:
    """thresholds/rules, or $TPPBENCH_RULES_DIR when set (to try a new or changed regime)."""
    return Path(os.environ.get("TPPBENCH_RULES_DIR") or PACKAGE_DIR / "rules")


def devices_dir() -> Path:
    """thresholds/devices, or $TPPBENCH_DEVICES_DIR when set."""
    return Path(os.environ.get("TPPBENCH_DEVICES_DIR") or PACKAGE_DIR / "devices")


def _toml_files(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise DataFileError(folder, None, f"{what} folder not found")
    return sorted(p for p in folder.glob("*.toml") if p.name != DERIVATION_FILE)


# --------------------------------------------------------------------------- rules


def _clauses(t: Table) -> tuple[str, tuple[Clause, ...]]:
    has_all, has_any = "all" in t.data, "any" in t.data
    if has_all == has_any:
        raise DataFileError(t.path, t.where or None, "needs exactly one of 'all' or 'any' (a list of clauses)")
    combine = "all" if has_all else "any"
    raw = t.get(combine, True)
    if not isinstance(raw, list):
        raise t.fail(combine, "must be a list of clause tables")
    return combine, tuple(_clause(Table(t.path, c, f"{t.key(combine)}[{i}]")) for i, c in enumerate(raw))


def _clause(t: Table) -> Clause:
    metric = t.choice("metric", tuple(UNITS))
    comparator = t.choice("comparator", COMPARATORS)
    note = t.string("note", False)
    tags = t.tags("tag", False)
    raw_value = t.get("value", True)
    unit = t.string("unit", False)
    if metric in FLAG_METRICS:
        if comparator != "is":
            raise t.fail("comparator", f"metric '{metric}' is a flag: use comparator \"is\"")
        if not isinstance(raw_value, bool):
            raise t.fail("value", f"metric '{metric}' is a flag: value must be true or false")
        if unit not in (None, "flag"):
            raise t.fail("unit", f"unknown unit {unit!r} for metric '{metric}' (expected \"flag\" or none)")
        value: float | bool = raw_value
        unit = "flag"
    else:
        if comparator == "is":
            raise t.fail("comparator", f"comparator \"is\" is for flag metrics; '{metric}' is numeric")
        value = t.check_number("value", raw_value)
        if not value > 0:  # every numeric metric (TPP, GB/s, op/s, ...) is a quantity >= 0
            raise t.fail("value", f"a threshold on '{metric}' must be > 0, got {value:g}")
        if unit is None:
            raise DataFileError(t.path, t.where, f"missing key 'unit' (metric '{metric}' is in {UNITS[metric]})")
        if unit != UNITS[metric]:
            raise t.fail("unit", f"unknown unit {unit!r} for metric '{metric}' (expected {UNITS[metric]!r})")
    t.finish()
    return Clause(metric, comparator, value, unit, note, tags)


def _paragraph(t: Table, exemption: bool) -> Paragraph:
    label = t.string("label")
    scope = t.choice("scope", SCOPES)
    effect = "exemption" if exemption else t.choice("effect", EFFECTS)
    text = t.string("text", False) or ""
    tags = t.tags("tag", False)
    scope_note = t.string("scope_note", False)
    scope_tags = t.tags("scope_note_tag", False)
    combine, clauses = _clauses(t)
    t.finish()
    if scope_note and scope_tags:
        scope_note = f"{scope_note} [{'/'.join(scope_tags)}]"
    return Paragraph(label, scope, effect, combine, clauses, text, tags, scope_note)


def _notes(t: Table, name: str) -> tuple[Note, ...]:
    out = []
    raw = t.get(name, False) or []
    if not isinstance(raw, list):
        raise t.fail(name, "must be a list of {text, tag} tables")
    for i, item in enumerate(raw):
        n = Table(t.path, item, f"{t.key(name)}[{i}]")
        out.append(Note(n.string("text"), n.tags("tag")))
        n.finish()
    return tuple(out)


def load_rule_file(path: Path) -> RuleSet:
    t = read_toml(path)
    rule_id = t.string("id")
    if rule_id != path.stem:
        raise t.fail("id", f"id {rule_id!r} must match the file name {path.stem!r}")
    title = t.string("title")
    citation = t.string("citation")
    citation_tags = t.tags("citation_tag")
    url = t.string("url", False)
    status = t.choice("status", STATUSES)
    status_note = t.string("status_note", False)
    effective_from = t.date("effective_from", status != "proposed")
    proposed_on = t.date("proposed_on", status == "proposed")
    status_date = t.date("status_date", status in ("superseded", "revoked", "not enforced"))
    if status == "in force" and status_date is not None:
        raise t.fail("status_date", "a regime 'in force' has no end date")
    if effective_from and status_date and status_date < effective_from:
        raise t.fail("status_date", "ends before effective_from")
    notes = _notes(t, "notes")
    paragraphs = tuple(_paragraph(p, False) for p in t.tables("paragraph", True))
    if not paragraphs:
        raise DataFileError(path, "paragraph", "a regime needs at least one [[paragraph]]")
    labels = [p.label for p in paragraphs]
    if len(set(labels)) != len(labels):
        raise DataFileError(path, "paragraph", "duplicate paragraph label")
    exemptions = tuple(_paragraph(p, True) for p in t.tables("exemption"))
    licence = []
    for n in t.tables("licence_note"):
        refs = n.strings("paragraphs", True)
        for ref in refs:
            if ref not in labels:
                raise n.fail("paragraphs", f"unknown paragraph {ref!r} (this file has: {', '.join(labels)})")
        text = n.string("text")
        tags = n.tags("tag")
        since = n.date("effective_from", False)
        combine, clauses = _clauses(n)
        n.finish()
        licence.append(LicenceNote(refs, text, tags, combine, clauses, since))
    t.finish()
    return RuleSet(
        id=rule_id, title=title, citation=citation, citation_tags=citation_tags, status=status,
        effective_from=effective_from, status_date=status_date, paragraphs=paragraphs,
        exemptions=exemptions, licence_notes=tuple(licence), notes=notes, url=url,
        status_note=status_note, proposed_on=proposed_on, path=str(path),
    )


@functools.lru_cache(maxsize=8)
def _load_rules_cached(folder: str) -> tuple[RuleSet, ...]:
    rules = [load_rule_file(p) for p in _toml_files(Path(folder), "rules")]
    if not rules:
        raise DataFileError(folder, None, "no rule files (*.toml)")
    return tuple(sorted(rules, key=lambda r: (r.effective_from or r.proposed_on, r.id)))


def load_rules(folder: Path | None = None) -> tuple[RuleSet, ...]:
    """Every regime in `folder` (default: thresholds/rules), oldest first."""
    return _load_rules_cached(str(folder or rules_dir()))


# --------------------------------------------------------------------------- catalog and specs


def _figure(t: Table, name: str, kind: str = "number", require_source: bool = True) -> Figure | None:
    raw = t.get(name, False)
    if raw is None:
        return None
    f = Table(t.path, raw, t.key(name))
    note = f.string("note", False)
    tags = f.tags("tag", require_source)
    source = f.string("source", require_source) or ""
    if kind == "flag":
        value: Interval | bool = f.boolean("value")
    elif "value" in f.data:
        value = Interval.point(f.number("value", minimum=0.0, maximum=FIGURE_MAX))
    elif "at_least" in f.data:  # a published lower bound ("> 10,000"): [lo, +inf)
        value = Interval(f.number("at_least", minimum=0.0, maximum=FIGURE_MAX), math.inf)
    else:
        lo, hi = f.number("min", minimum=0.0, maximum=FIGURE_MAX), f.number("max", minimum=0.0, maximum=FIGURE_MAX)
        if hi < lo:
            raise f.fail("max", f"max {hi:g} is below min {lo:g}")
        value = Interval(lo, hi)
    f.finish()
    return Figure(value, tags, source, note)


def _positive(t: Table, name: str, least: float = 0.0) -> Figure | None:
    fig = _figure(t, name)
    if fig is not None and not fig.value.lo > least:
        raise t.fail(name, f"must be > {least:g} (omit the key when unknown)")
    return fig


def _figures(t: Table, name: str, allowed: tuple[str, ...] | None) -> dict[str, Figure]:
    table = t.table(name)
    if table is None:
        return {}
    out = {}
    for key in list(table.data):
        if allowed is not None and key not in allowed:
            raise table.fail(key, f"unknown precision '{key}' (expected one of: {', '.join(allowed)})")
        fig = _figure(table, key)
        if isinstance(fig.value, Interval) and fig.value.hi > 0:
            out[key] = fig
    table.finish()
    return out


def _part(t: Table, path: Path) -> Part:
    part_id = t.string("id")
    if not _ID.match(part_id):
        raise t.fail("id", f"id {part_id!r} must be lower-case letters, digits, '-' or '.'")
    name = t.string("name")
    vendor = t.string("vendor")
    aliases = t.strings("aliases")
    pci_ids = tuple(p.lower() for p in t.strings("pci_ids"))
    for pid in pci_ids:
        if not _PCI_ID.match(pid):
            raise t.fail("pci_ids", f"PCI id {pid!r} must be 'vvvv:dddd' (vendor:device, hex)")
    pci_source = t.string("pci_ids_source", bool(pci_ids))
    gaps = t.strings("gaps")
    notes = _notes(t, "notes")
    variant_of = t.string("variant_of", False)
    part = Part(
        id=part_id, name=name, vendor=vendor,
        datacenter=_figure(t, "datacenter", "flag"),
        dense_tops=_figures(t, "dense_tops", tuple(PRECISION_BITS)),
        io_gbs=_figures(t, "io_gbs", None),
        die_area_mm2=_positive(t, "die_area_mm2", AREA_MIN_MM2),  # divides TPP: omit the key when unknown
        memory_bandwidth_gbs=_figure(t, "memory_bandwidth_gbs"),
        sm_count=_positive(t, "sm_count"),
        boost_clock_mhz=_positive(t, "boost_clock_mhz"),
        memory_capacity_gb=_positive(t, "memory_capacity_gb"),
        aliases=aliases, pci_ids=pci_ids, pci_ids_source=pci_source, gaps=gaps, notes=notes,
        path=str(path), variant_of=variant_of,
    )
    t.finish()
    return part


@functools.lru_cache(maxsize=8)
def _load_catalog_cached(folder: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    seen: dict[str, str] = {}
    for path in _toml_files(Path(folder), "devices"):
        t = read_toml(path)
        for p in t.tables("part", True):
            part = _part(p, path)
            if part.id in seen:
                raise p.fail("id", f"duplicate part id {part.id!r} (also in {seen[part.id]})")
            seen[part.id] = str(path)
            parts.append(part)
        t.finish()
    if not parts:
        raise DataFileError(folder, None, "no catalog parts ([[part]] in *.toml)")
    for part in parts:
        if part.variant_of is not None and (part.variant_of not in seen or part.variant_of == part.id):
            raise DataFileError(part.path, f"part {part.id}: variant_of",
                                f"unknown part {part.variant_of!r} (must be another catalog id)")
    return tuple(parts)


def load_catalog(folder: Path | None = None) -> tuple[Part, ...]:
    """Every catalog part in `folder` (default: thresholds/devices), in file order."""
    return _load_catalog_cached(str(folder or devices_dir()))


def load_spec(path: str | os.PathLike[str]) -> Part:
    """A spec file (the issue's format, keys exactly as documented) as an untagged Part."""
    path = Path(path)
    t = read_toml(path)
    source = f"spec file {path}"
    name = t.string("name")
    datacenter = t.boolean("datacenter", False)
    area = t.number("die_area_mm2", False, minimum=0.0, maximum=FIGURE_MAX)
    if area is not None and area <= AREA_MIN_MM2:
        raise t.fail("die_area_mm2", f"must be > {AREA_MIN_MM2:g} (omit the key when unknown)")
    memory = t.number("memory_bandwidth_gbs", False, minimum=0.0, maximum=FIGURE_MAX)
    capacity = t.number("memory_capacity_gb", False, minimum=0.0, maximum=FIGURE_MAX)
    catalog_part = t.string("catalog_part", False)  # the catalog part this sheet describes (verify's floors)
    if capacity is not None and capacity <= 0:
        raise t.fail("memory_capacity_gb", "must be > 0 (omit the key when unknown)")
    tops: dict[str, Figure] = {}
    dense = t.table("dense_tops")
    if dense is not None:
        for key in list(dense.data):
            if key not in PRECISION_BITS:
                raise dense.fail(key, f"unknown precision '{key}' (expected one of: {', '.join(PRECISION_BITS)})")
            value = dense.number(key, minimum=0.0, maximum=FIGURE_MAX)
            if value > 0:
                tops[key] = Figure(Interval.point(value), (), source)
        dense.finish()
    links: dict[str, Figure] = {}
    io = t.table("io_gbs")
    if io is not None:
        for key in list(io.data):
            links[key] = Figure(Interval.point(io.number(key, minimum=0.0, maximum=FIGURE_MAX)), (), source)
        io.finish()
    t.finish()

    def fig(value: Any) -> Figure | None:
        if value is None:
            return None
        return Figure(value if isinstance(value, bool) else Interval.point(value), (), source)

    return Part(
        id=path.stem, name=name, vendor="", datacenter=fig(datacenter), dense_tops=tops,
        io_gbs=links, die_area_mm2=fig(area), memory_bandwidth_gbs=fig(memory),
        memory_capacity_gb=fig(capacity), path=str(path), catalog_part=catalog_part,
    )


# --------------------------------------------------------------------------- derivation tables


def _rate_table(t: Table, name: str, key_check: Callable[[str], bool]) -> RateTable:
    r = t.table(name, True)
    tags, source = r.tags("tag"), r.string("source")
    rates_t = r.table("rates", True)
    rates = {}
    for key in list(rates_t.data):
        if not key_check(key):
            raise rates_t.fail(key, "unknown key (expected a generation number)")
        rates[key] = rates_t.number(key, minimum=0.0, maximum=FIGURE_MAX)
    rates_t.finish()
    r.finish()
    return RateTable(rates, tags, source)


@functools.lru_cache(maxsize=8)
def _load_derivation_cached(folder: str) -> DerivationTables:
    path = Path(folder) / DERIVATION_FILE
    t = read_toml(path)
    archs: dict[str, Architecture] = {}
    for a in t.tables("architecture", True):
        cc = a.string("compute_capability")
        if not re.match(r"^\d+\.\d+$", cc):
            raise a.fail("compute_capability", f"must look like '9.0', got {cc!r}")
        name, tags, source = a.string("name"), a.tags("tag"), a.string("source")
        notes = a.string("notes", False)
        ops_t = a.table("dense_ops_per_clock_per_sm", True)
        ops = {}
        for key in list(ops_t.data):
            if key not in PRECISION_BITS:
                raise ops_t.fail(key, f"unknown precision '{key}' (expected one of: {', '.join(PRECISION_BITS)})")
            ops[key] = ops_t.number(key, minimum=0.0, maximum=FIGURE_MAX)
            if not ops[key] > 0:
                raise ops_t.fail(key, "must be > 0 (omit a precision the architecture lacks)")
        ops_t.finish()
        checks = []
        for c in a.tables("check"):
            precisions = c.strings("precisions", True)
            for p in precisions:
                if p not in ops:
                    raise c.fail("precisions", f"precision {p!r} has no ops-per-clock entry")
            checks.append(ArchitectureCheck(
                c.string("part"), int(c.number("sm_count", minimum=1)), c.number("clock_mhz", minimum=1),
                precisions, c.tags("tag"), c.string("source"),
            ))
            c.finish()
        a.finish()
        archs[cc] = Architecture(cc, name, ops, tags, source, notes, tuple(checks))
    digits = str.isdigit
    nvlink = _rate_table(t, "nvlink_link_gbs", digits)
    pcie = _rate_table(t, "pcie_lane_gbs", digits)
    m = t.table("memory", True)
    transfers = m.number("transfers_per_clock", minimum=1)
    mem_tags, mem_source = m.tags("tag"), m.string("source")
    m.finish()
    t.finish()
    return DerivationTables(archs, nvlink, pcie, transfers, mem_tags, mem_source)


def load_derivation(folder: Path | None = None) -> DerivationTables:
    return _load_derivation_cached(str(folder or devices_dir()))
