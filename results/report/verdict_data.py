"""Library entry points for other tools (the HTML report): the `check --json` document and the
catalog's points for the TPP x PD and TPP x DRAM maps, and `tppbench history --json` per subject.
Never imports torch."""

from __future__ import annotations

import datetime

from thresholds.check import document, run_check
from thresholds.history import history, history_json
from thresholds.load import load_catalog, load_rules
from results.render.verdict_json import value_json
from thresholds.subjects import catalog_subject, resolve


def check_subjects(subjects: list[str], rules: str | None = None,
                   as_of: datetime.date | None = None, near_pct: float = 10.0) -> dict:
    """Exactly the `tppbench check --json` document: {"subjects": [...]}.

    `rules`: None (regimes in force on `as_of`, default today), "all", or "id,id,...".
    Raises a results.errors.TppbenchError subclass on bad input (message is one line)."""
    return document(run_check(list(subjects), rules, as_of, near_pct))


def subject_histories(subjects: list[str], near_pct: float = 10.0) -> list[dict]:
    """Exactly the `tppbench history --json` entries ({"ref", "regimes", "rows": [...]}) for
    every subject the arguments name (one per measured device of a result file)."""
    rules = load_rules()
    return [history_json(history(s, rules, near_pct)) for text in subjects for s in resolve(text)]


def catalog_points() -> list[dict]:
    """One point per catalog part: id, name, vendor, tpp, performance_density (None when the die
    area is unpublished), datacenter, plus *_range ([lo, hi]) where the figure is a published range."""
    points = []
    for part in load_catalog():
        metrics = catalog_subject(part).primary
        point = {"id": part.id, "name": part.name, "vendor": part.vendor}
        for key in ("tpp", "performance_density", "io_bidirectional_gbs", "memory_bandwidth_gbs"):
            value, value_range = value_json(metrics.get(key).value)
            point[key] = value
            if value_range is not None:
                point[f"{key}_range"] = value_range
        point["datacenter"] = metrics.get("datacenter").value
        point["variant_of"] = part.variant_of
        points.append(point)
    return points
