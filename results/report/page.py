"""Everything `tppbench report` shows, as data: one frozen ReportData built from result files,
the thresholds package's verdicts (`thresholds.report_data`) and its catalog. No formatting here.

Sections: (1) TPP versus performance-density map with the 2023 rule's 3A090.a / .b regions,
(2) measured versus datasheet peak per precision, (3) bandwidth (device memory, host link,
peer-to-peer), (4) verdicts per regime, (5) telemetry notes and run context. The records live in
`results.report_model`, the sections read from result files in `results.report_sections`.
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any, Iterable, Mapping, Sequence

from results.report import sections as sections
from results.files import store
from thresholds.model import BOX_EFFECTS
from results.report.model import (
    INF, Band, BandPoint, HistoryStrip, MapPoint, Region, ReportData, Subject, VerdictRow,
)

MAP_RULE_SET = "us-2023-10"
BAND_RULE_SET = "us-2026-01"
BOX_RULE_SETS = (BAND_RULE_SET, "us-2026-232")  # drawn on the TPP x DRAM map: the band and the tariff boxes

# Fallback only when the thresholds package cannot give its rule data: the Oct 2023 AC/S IFR
# (88 FR 73458) ECCN 3A090 bands, ../shared/reference/regulations.md section 2.1.
#   (label, TPP from, TPP below, PD from, PD below)
REFERENCE_REGIONS = (
    ("3A090.a.1", 4800.0, INF, 0.0, INF),
    ("3A090.a.2", 1600.0, INF, 5.92, INF),
    ("3A090.b.1", 2400.0, 4800.0, 1.6, 5.92),
    ("3A090.b.2", 1600.0, INF, 3.2, 5.92),
)


# --------------------------------------------------------------------------- build


def build(
    paths: Sequence[str],
    *,
    rules: str | None = None,
    as_of: datetime.date | None = None,
    near_pct: float = 10.0,
    title: str | None = None,
    check: Any = None,
    catalog: Any = None,
    histories: Any = None,
) -> ReportData:
    """Load the files, ask `thresholds` for verdicts, histories and catalog, assemble the report's data.

    `check` / `catalog` / `histories` stand in for thresholds.report_data's functions (tests)."""
    if check is None or catalog is None or histories is None:
        from results.report import verdict_data as report_data

        check = check or report_data.check_subjects
        catalog = catalog or report_data.catalog_points
        histories = histories or report_data.subject_histories
    day = as_of or datetime.date.today()
    loaded = [(str(p), store.load(p)) for p in paths]
    doc = check([s for s, _ in loaded], rules=rules, as_of=day, near_pct=near_pct)
    by_ref = {s.get("ref"): s for s in doc.get("subjects", [])}
    regions, regions_source = map_regions()
    bands, bands_source = map_bands()
    history_by_ref = {h.get("ref"): h for h in histories([s for s, _ in loaded], near_pct=near_pct)}

    subjects: list[Subject] = []
    points: list[MapPoint] = []
    band_points: list[BandPoint] = []
    strips: list[HistoryStrip] = []
    verdicts: list[VerdictRow] = []
    for source, result in loaded:
        many = len(result.devices) > 1
        for device in result.devices:
            entry = by_ref.get(f"{source}#{device.index}", {})
            subject = Subject(
                id=f"s{len(subjects) + 1}", source=source, host=device.host or result.run.host,
                device_index=device.index, device_name=device.name,
                label=f"{device.name} on {device.host or result.run.host}" + (f" gpu{device.index}" if many else ""),
                catalog_id=entry.get("catalog_id"), match=entry.get("match"),
                notes=tuple(str(n) for n in entry.get("notes", ())),
            )
            subjects.append(subject)
            points.extend(_subject_points(subject, entry, regions))
            band_points.extend(_subject_band_points(subject, entry, bands))
            verdicts.extend(_verdicts(subject, entry))
            strip = _history_strip(subject, history_by_ref.get(f"{source}#{device.index}"))
            if strip is not None:
                strips.append(strip)
    points = _dedupe(points)
    raw_catalog = list(catalog())
    cat_points, off_map = _catalog_points(raw_catalog, regions)
    return ReportData(
        title=title or "tppbench report",
        generated_utc=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        as_of=day.isoformat(), sources=tuple(_source_label(s, r) for s, r in loaded), subjects=tuple(subjects),
        regions=regions, regions_source=regions_source, map_points=tuple(points) + cat_points,
        off_map=off_map,
        precision=_flag_above_peak(sections.precision(loaded, lambda s, i: _ratio_to_peak(by_ref.get(f"{s}#{i}", {})))),
        bandwidth=tuple(sections.bandwidth(loaded)), peers=tuple(sections.peers(loaded)),
        verdicts=tuple(verdicts), telemetry=tuple(sections.telemetry(loaded)), soaks=tuple(sections.soaks(loaded)),
        contexts=tuple(sections.context(s, r) for s, r in loaded), near_pct=near_pct,
        bands=bands, bands_source=bands_source,
        band_points=tuple(dict.fromkeys(band_points)) + _catalog_band_points(raw_catalog, bands),
        histories=tuple(strips), above_peak_note=_above_peak_note(),
    )


def _flag_above_peak(bars: Iterable[Any]) -> tuple[Any, ...]:
    from thresholds.datasheet import is_above_peak

    return tuple(replace(b, above_peak=bool(b.peak) and is_above_peak(b.measured / b.peak)) for b in bars)


def _above_peak_note() -> str:
    from thresholds.datasheet import ABOVE_PEAK_CAUSES, ABOVE_PEAK_FRACTION

    return (f"above peak = measured over {ABOVE_PEAK_FRACTION * 100:.0f}% of the matched part's datasheet "
            f"peak: a warning, not a success; likely causes: {'; '.join(ABOVE_PEAK_CAUSES)}.")


def map_regions() -> tuple[tuple[Region, ...], str]:
    """The 2023 rule's device paragraphs as rectangles, from the thresholds rule data."""
    try:
        from thresholds.load import load_rules

        rule = next(r for r in load_rules() if r.id == MAP_RULE_SET)
    except (ImportError, StopIteration):
        return tuple(Region(*r) for r in REFERENCE_REGIONS), "reference/regulations.md section 2.1"
    regions = []
    for paragraph in rule.paragraphs:
        bounds = rectangle(paragraph, ("tpp", "performance_density"))
        if bounds is not None:
            regions.append(Region(paragraph.label, *bounds["tpp"], *bounds["performance_density"]))
    return tuple(regions), f"thresholds rule data {MAP_RULE_SET} ({rule.citation})"


def rectangle(paragraph: Any, metrics: tuple[str, str]) -> dict[str, list[float]] | None:
    """A paragraph whose clauses all bound `metrics` from below (>= or >) and above (<), as
    {metric: [from, below]}; None when it has any other clause or combines with 'any'.
    `strict_lower(paragraph)` says whether its lower bounds are strict (>)."""
    bounds = {m: [0.0, INF] for m in metrics}
    if paragraph.combine != "all":
        return None
    for clause in paragraph.clauses:
        if clause.metric not in bounds or isinstance(clause.value, bool):
            return None
        if clause.comparator in (">=", ">"):
            bounds[clause.metric][0] = float(clause.value)
        elif clause.comparator == "<":
            bounds[clause.metric][1] = float(clause.value)
        else:
            return None
    return bounds


def strict_lower(paragraph: Any) -> bool:
    return any(clause.comparator == ">" for clause in paragraph.clauses)


def map_bands() -> tuple[tuple[Band, ...], str]:
    """The 2026 rule's band and the Section 232 tariff boxes (TPP and DRAM-bandwidth clauses) as
    rectangles, from the rule data; () when the rule data has none."""
    try:
        from thresholds.load import load_rules

        rules = {r.id: r for r in load_rules()}
    except ImportError:
        return (), "no rule data for the 2026 band"
    bands, sources = [], []
    for rule_id in BOX_RULE_SETS:
        rule = rules.get(rule_id)
        if rule is None:
            continue
        sources.append(f"{rule_id} ({rule.citation})")
        for paragraph in rule.paragraphs:
            bounds = rectangle(paragraph, ("tpp", "memory_bandwidth_gbs")) if paragraph.effect in BOX_EFFECTS else None
            if bounds is not None:
                bands.append(Band(paragraph.label, *bounds["tpp"], *bounds["memory_bandwidth_gbs"],
                                  effect=paragraph.effect, lower_exclusive=strict_lower(paragraph)))
    if not sources:
        return (), "no rule data for the 2026 band"
    return tuple(bands), "thresholds rule data " + "; ".join(sources)


def _inside(bands: Iterable[Band], tpp: float, dram: float) -> tuple[str, ...]:
    return tuple(b.label for b in bands if b.contains(tpp, dram))


def _subject_band_points(subject: Subject, entry: Mapping[str, Any], bands: Sequence[Band]) -> list[BandPoint]:
    out = []
    for basis, metrics in (entry.get("metrics_by_basis") or {}).items():
        tpp, dram = _value(metrics.get("tpp")), _value(metrics.get("memory_bandwidth_gbs"))
        if tpp is None or dram is None or tpp <= 0 or dram <= 0:
            continue
        out.append(BandPoint(f"{subject.device_name} ({basis})", tpp, dram, basis,
                             inside=_inside(bands, tpp, dram)))
    return out


def _catalog_band_points(raw: Iterable[Mapping[str, Any]], bands: Sequence[Band]) -> tuple[BandPoint, ...]:
    placed = {}
    for part in raw:
        tpp, dram = part.get("tpp"), part.get("memory_bandwidth_gbs")
        if isinstance(tpp, (int, float)) and isinstance(dram, (int, float)) and tpp > 0 and dram > 0:
            placed[part.get("id")] = (part, float(tpp), float(dram))
    points = []
    for part, tpp, dram in placed.values():
        rng = part.get("memory_bandwidth_gbs_range")
        parent = placed.get(part.get("variant_of"))
        points.append(BandPoint(str(part.get("name") or part.get("id")), tpp, dram, "catalog",
                                dram_range=tuple(rng) if rng else None, inside=_inside(bands, tpp, dram),
                                cut_from=(parent[1], parent[2]) if parent else None))
    return tuple(points)


def _history_strip(subject: Subject, doc: Mapping[str, Any] | None) -> HistoryStrip | None:
    """thresholds' `history --json` entry as a strip: a row per regime, a column per date."""
    if not doc or not doc.get("rows"):
        return None
    regimes = tuple(str(r) for r in doc.get("regimes", ()))
    rows = doc["rows"]
    cells, classes = [], []
    for rid in regimes:
        outcomes = [row.get("outcomes", {}).get(rid) or {} for row in rows]
        cells.append(tuple(str(o.get("cell", "-")) for o in outcomes))
        classes.append(tuple(_strip_class(o) for o in outcomes))
    changes = tuple((str(row.get("date")), line) for row in rows for line in row.get("changes", ()))
    return HistoryStrip(subject.id, subject.label, doc.get("basis"), regimes,
                        tuple(str(row.get("date")) for row in rows), tuple(cells), tuple(classes), changes)


def _strip_class(outcome: Mapping[str, Any]) -> str:
    if not outcome.get("in_force"):
        return "none"
    if outcome.get("effect") in BOX_EFFECTS:
        return {True: "inside", False: "outside"}.get(outcome.get("met"), "indeterminate")
    return str(outcome.get("outcome") or "indeterminate")


def _in_regions(regions: Iterable[Region], tpp: float, pd: float | None) -> tuple[str, ...]:
    if pd is None:
        return ()
    return tuple(r.label for r in regions if r.contains(tpp, pd))


def _subject_points(subject: Subject, entry: Mapping[str, Any], regions: Sequence[Region]) -> list[MapPoint]:
    out = []
    for basis, metrics in (entry.get("metrics_by_basis") or {}).items():
        tpp = _value(metrics.get("tpp"))
        if tpp is None:
            continue
        pd = _value(metrics.get("performance_density"))
        out.append(MapPoint(f"{subject.device_name} ({basis})", tpp, pd, basis,
                            regions=_in_regions(regions, tpp, pd)))
    return out


def _value(metric: Any) -> float | None:
    if not isinstance(metric, Mapping):
        return None
    value = metric.get("value")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _dedupe(points: list[MapPoint]) -> list[MapPoint]:
    """One point per (label, kind) for declared/derived peaks; measured points kept per device."""
    seen: set[tuple] = set()
    out = []
    for p in points:
        ident = (p.label, p.kind, p.tpp, p.pd)
        if ident not in seen:
            seen.add(ident)
            out.append(p)
    return out


def _catalog_points(raw: Iterable[Mapping[str, Any]], regions: Sequence[Region]) -> tuple[tuple[MapPoint, ...], tuple[str, ...]]:
    points, off = [], []
    for part in raw:
        tpp = part.get("tpp")
        pd = part.get("performance_density")
        name = str(part.get("name") or part.get("id"))
        if tpp is None:
            off.append(f"{name} (no published TPP)")
            continue
        if pd is None:
            off.append(f"{name} (TPP {tpp:,.0f}; die area unpublished)")
            continue
        rng = part.get("performance_density_range")
        points.append(MapPoint(name, float(tpp), float(pd), "catalog",
                               pd_range=tuple(rng) if rng else None,
                               regions=_in_regions(regions, float(tpp), float(pd))))
    return tuple(points), tuple(off)


def _verdicts(subject: Subject, entry: Mapping[str, Any]) -> list[VerdictRow]:
    above = _above_peak(entry)
    rows = []
    for v in entry.get("verdicts", ()):
        nearest = v.get("nearest") or None
        words = ""
        if nearest:
            words = (f"{nearest.get('metric')} {_num(nearest.get('value'))} vs "
                     f"{nearest.get('comparator', '')} {_num(nearest.get('threshold'))} "
                     f"({_signed(nearest.get('margin_pct'))}, {nearest.get('paragraph') or '-'})")
        rows.append(VerdictRow(
            subject=subject.id, rule_set=str(v.get("rule_set")), basis=str(v.get("basis")),
            outcome=str(v.get("outcome")), paragraph=v.get("paragraph"),
            applicable=bool(v.get("applicable", True)), in_force=v.get("in_force"),
            near_limit=bool(v.get("near_limit")), nearest=words,
            reason=(above if v.get("basis") == "measured" else "") + str(v.get("reason") or ""),
        ))
    return rows


def _above_peak(entry: Mapping[str, Any]) -> str:
    """'ABOVE PEAK (bf16): ' when thresholds flagged measured rates over the datasheet peak."""
    measured = (entry.get("metrics_by_basis") or {}).get("measured") or {}
    flagged = [str(p) for p in ((measured.get("tpp") or {}).get("inputs") or {}).get("above_peak") or ()]
    if ((measured.get("memory_bandwidth_gbs") or {}).get("inputs") or {}).get("above_peak") is True:
        flagged.append("device memory")
    return f"ABOVE PEAK ({', '.join(flagged)}; see section 2): " if flagged else ""


def _num(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _signed(value: Any) -> str:
    return f"{value:+.1f}%" if isinstance(value, (int, float)) else "-"

def _ratio_to_peak(entry: Mapping[str, Any]) -> dict[str, float]:
    """thresholds' measured/peak ratio per precision (its measured TPP inputs)."""
    measured = (entry.get("metrics_by_basis") or {}).get("measured") or {}
    inputs = (measured.get("tpp") or {}).get("inputs") or {}
    ratios = inputs.get("ratio_to_peak") or {}
    return {str(k): float(v) for k, v in ratios.items() if isinstance(v, (int, float)) and v > 0}


def _source_label(path: str, result: Any) -> str:
    """A result file's name, saying so when `tppbench import` made it from another tool's output."""
    if result.run.source != "imported":
        return path
    tool = result.run.imported_from.get("tool") or "another tool"
    return f"{path} (imported from {tool} output {result.run.imported_from.get('file', '')})".replace(" )", ")")
