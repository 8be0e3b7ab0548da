"""Human wording of numbers, metric values and clauses (shared by reasons and renderers)."""

from __future__ import annotations

import math

from thresholds.model import BOX_EFFECTS, Clause, Interval, Verdict

LABELS = {
    "tpp": "TPP",
    "performance_density": "PD",
    "io_bidirectional_gbs": "I/O",
    "memory_bandwidth_gbs": "DRAM bandwidth",
    "interconnect_bandwidth_gbs": "interconnect bandwidth",
    "dram_plus_interconnect_gbs": "DRAM + interconnect",
    "memory_bandwidth_density_gbs_mm2": "memory bandwidth density",
    "datacenter": "datacenter",
    "bio_sequence_data": "biological sequence data",
    "aggregate_ops_per_s": "aggregate op/s",
    "aggregate_tpp": "aggregate TPP",
    "training_ops": "training compute",
    "training_compute_cost_usd": "training compute cost",
    "network_gbit_s": "networking",
}
SUFFIX = {
    "io_bidirectional_gbs": " GB/s", "memory_bandwidth_gbs": " GB/s",
    "interconnect_bandwidth_gbs": " GB/s", "dram_plus_interconnect_gbs": " GB/s",
    "memory_bandwidth_density_gbs_mm2": " GB/s/mm2", "aggregate_ops_per_s": "",
    "training_ops": " op", "training_compute_cost_usd": " USD", "network_gbit_s": " Gbit/s",
}
NEGATION = {">=": "<", ">": "<=", "<": ">=", "<=": ">"}


def num(x: float) -> str:
    """4,992 / 4,706.8 / 6.04 / 26,900,000 / 1e20 / 2.14e15."""
    if math.isinf(x):
        return "inf"
    a = abs(x)
    if a >= 1e9:
        mant, exp = f"{x:.3e}".split("e")
        mant = mant.rstrip("0").rstrip(".")
        return f"{mant}e{int(exp)}"
    if a >= 100:
        text = f"{x:,.1f}"
    elif a >= 1 or a == 0:
        text = f"{x:,.2f}"
    else:
        text = f"{x:.3g}"
        return text
    return text.rstrip("0").rstrip(".") if "." in text else text


def value_text(value: Interval | bool | None) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value.is_point:
        return num(value.lo)
    if not value.bounded:
        return f">= {num(value.lo)}"
    return f"{num(value.lo)}-{num(value.hi)}"


def flag_text(metric: str, value: bool | None) -> str:
    if metric == "datacenter":
        if value is None:
            return "datacenter design unknown"
        return "designed or marketed for datacenters" if value else "not designed or marketed for datacenters"
    label = LABELS.get(metric, metric)
    return f"{label} unknown" if value is None else (label if value else f"not {label}")


def clause_text(clause: Clause, value: Interval | bool | None, result: bool | None) -> str:
    """'TPP 4,992 >= 4,800' when true, 'TPP 4,992 < 4,800' when false, '... unknown' when undecided."""
    if clause.comparator == "is":
        if result is None:
            return flag_text(clause.metric, None)
        return flag_text(clause.metric, value if isinstance(value, bool) else None)
    label, suffix = LABELS.get(clause.metric, clause.metric), SUFFIX.get(clause.metric, "")
    threshold = num(float(clause.value)) + (" (unverified threshold [R])" if "R" in clause.tags else "")
    if value is None:
        return f"{label} unknown"
    shown = value_text(value)
    if result is None:
        return f"{label} {shown}{suffix} undecided against {clause.comparator} {threshold}{suffix}"
    op = clause.comparator if result else NEGATION[clause.comparator]
    return f"{label} {shown} {op} {threshold}{suffix}"


def tags_text(tags: tuple[str, ...]) -> str:
    return f"[{'/'.join(tags)}]" if tags else ""


def cell(v: Verdict) -> str:
    if not v.applicable:
        return "n/a"
    if v.effect in BOX_EFFECTS:
        text = {True: "inside", False: "outside", None: "?"}[v.met]
    elif v.outcome == "controlled":
        text = v.paragraph or "controlled"
    elif v.outcome == "indeterminate":
        text = "?"
    else:
        text = "not (Note 2)" if v.exemption and "Note 2" in v.exemption else "not"
    return text + ("~" if v.near_limit else "")
