"""Turn a SUBJECT argument into Subjects: a catalog id, a spec file (.toml) or a result file
(.json, one Subject per device it measured)."""

from __future__ import annotations

from pathlib import Path

from results.files import store
from results.analysis.published import published_comparison
from results.files.schema import RunResult
from thresholds.derived import derived_metrics
from thresholds.errors import SubjectError
from thresholds.load import load_catalog, load_derivation, load_spec
from thresholds.match import match_part
from thresholds.measured import measured_metrics
from thresholds.metrics import declared_metrics
from thresholds.model import DeviceFacts, MetricSet, Part, Subject


def find_part(part_id: str, catalog: tuple[Part, ...] | None = None) -> Part | None:
    wanted = part_id.lower()
    for part in catalog or load_catalog():
        if part.id == wanted:
            return part
    return None


def catalog_subject(part: Part) -> Subject:
    declared, facts = declared_metrics(part, f"catalog {part.id}")
    return Subject(
        name=part.name, kind="catalog", ref=part.id, metric_sets=(declared,), part_id=part.id,
        facts=facts, gaps=part.gaps,
        notes=tuple(f"{n.text} [{'/'.join(n.tags)}]" for n in part.notes),
    )


def spec_subject(path: str) -> Subject:
    part = load_spec(path)
    declared, facts = declared_metrics(part, f"spec file {path}")
    return Subject(name=part.name, kind="spec", ref=str(path), metric_sets=(declared,), facts=facts)


def result_subjects(path: str) -> list[Subject]:
    return subjects_of_result(store.load(path), path)


def subjects_of_result(result: RunResult, path: str) -> list[Subject]:
    """One Subject per device of an already loaded result (`path` names it in sources)."""
    catalog = load_catalog()
    tables = load_derivation()
    subjects = []
    for device in result.devices:
        part, how = match_part(device, catalog)
        sets: list[MetricSet] = []
        notes: list[str] = []
        declared = None
        facts = DeviceFacts()
        if part is not None:
            declared, facts = declared_metrics(part, f"catalog {part.id}")
            sets.append(declared)
        else:
            notes.append(f"no catalog match for {device.name!r} (PCI id {device.pci_device_id or 'unknown'}): "
                         f"no declared peak, no die area, datacenter design unknown")
        derived, dfacts = derived_metrics(device, tables, part, declared)
        if device.backend == "cuda":
            sets.append(derived)
            notes.extend(derived.notes)
        measured, mfacts = measured_metrics(result, device, part, declared or derived, path)
        if measured is not None:
            sets.append(measured)
        if part is not None:
            published = published_comparison(result.measurements, device.index, part.id)
            if published:
                notes.append("published: " + "; ".join(published))
        facts = DeviceFacts(
            sm_count=dfacts.sm_count or facts.sm_count,
            clock_mhz=dfacts.clock_mhz or facts.clock_mhz,
            clock_source=dfacts.clock_source or facts.clock_source,
            peak_ops_per_s=facts.peak_ops_per_s or dfacts.peak_ops_per_s,
            peak_ops_precision=facts.peak_ops_precision or dfacts.peak_ops_precision,
            measured_ops_per_s=mfacts.measured_ops_per_s,
            measured_ops_precision=mfacts.measured_ops_precision,
        )
        if not sets:
            notes.append("no metric on any basis")
        subjects.append(Subject(
            name=device.name, kind="result", ref=f"{path}#{device.index}",
            metric_sets=tuple(sets), part_id=part.id if part else None, match=how, facts=facts,
            notes=tuple(notes), gaps=part.gaps if part else (),
        ))
    if not subjects:
        raise SubjectError(f"{path}: result file lists no device")
    return subjects


def resolve(text: str) -> list[Subject]:
    lowered = text.lower()
    if lowered.endswith(".json"):
        return result_subjects(text)
    if lowered.endswith(".toml"):
        return [spec_subject(text)]
    part = find_part(text)
    if part is not None:
        return [catalog_subject(part)]
    if Path(text).exists():
        raise SubjectError(f"{text}: not a spec file (.toml) or result file (.json)")
    raise SubjectError(
        f"unknown subject {text!r}: not a catalog id (see `tppbench devices`), "
        f"a spec file (.toml) or a result file (.json)")
