"""Arrow schemas of the index's two tables and the conversion of parsed runs into them.

Measurements: one row per measurement, the columns of `results.frame.COLUMNS` (the same row
builder `fleet` uses over raw files, so both read the same values) plus run time, position in
the file and more of the measurement's statistics and telemetry. Files: one row per result file
with its fingerprint (size, mtime, sha256), whether it was indexed or skipped as bad (and why),
and the run's host, time, device models and versions.
"""

from __future__ import annotations

import datetime
from typing import Any, Sequence

import pyarrow as pa

from results.analysis.frame import COLUMNS, rows
from results.analysis.identity import device_of
from results.files.schema import RunResult
from results.files.store import slug

UTC_TIME = pa.timestamp("us", tz="UTC")

_FRAME_TYPES = {
    "device_index": pa.int64(), "power_limit_w": pa.float64(), "rate": pa.float64(),
    "busbw": pa.float64(), "n_samples": pa.int64(), "cv": pa.float64(), "throttled": pa.bool_(),
    "sm_clock_mean_mhz": pa.float64(), "method_version": pa.int64(),
}
EXTRA_MEASUREMENT_FIELDS = (
    pa.field("run_time", UTC_TIME),  # started_utc as a timestamp (partition month comes from it)
    pa.field("row_in_file", pa.int32()),  # position of the measurement in its file
    pa.field("rate_mean", pa.float64()),  # statistics of the per-sample rates (rate = their median)
    pa.field("rate_min", pa.float64()),
    pa.field("rate_max", pa.float64()),
    pa.field("rate_p10", pa.float64()),
    pa.field("rate_p90", pa.float64()),
    pa.field("rate_stdev", pa.float64()),
    pa.field("sm_clock_max_mhz", pa.float64()),  # NVML telemetry while the case ran
    pa.field("mem_clock_mean_mhz", pa.float64()),
    pa.field("power_mean_w", pa.float64()),
    pa.field("temperature_max_c", pa.float64()),
    # the job scheduler's facts (run.scheduler), beside device_uuid and host, so rows join with
    # dcgm-exporter's per-job data
    pa.field("scheduler", pa.string()),  # slurm | kubernetes
    pa.field("job_id", pa.string()),
    pa.field("array_task_id", pa.string()),
    pa.field("step_id", pa.string()),
    pa.field("scheduler_node", pa.string()),  # Slurm's node name, or the pod
    pa.field("job_completion_index", pa.string()),  # Kubernetes Indexed Job
)
MEASUREMENTS = pa.schema(
    [pa.field(name, _FRAME_TYPES.get(name, pa.string())) for name in COLUMNS] + list(EXTRA_MEASUREMENT_FIELDS)
)

FILES = pa.schema([
    pa.field("path", pa.string()),  # absolute path of the result file
    pa.field("size_bytes", pa.int64()),
    pa.field("mtime_ns", pa.int64()),
    pa.field("sha256", pa.string()),
    pa.field("status", pa.string()),  # indexed | skipped (a bad file: not re-read until it changes)
    pa.field("problem", pa.string()),  # why it was skipped
    pa.field("host", pa.string()),
    pa.field("label", pa.string()),
    pa.field("started_utc", pa.string()),
    pa.field("run_time", UTC_TIME),
    pa.field("mode", pa.string()),
    pa.field("backend", pa.string()),
    pa.field("driver", pa.string()),
    pa.field("cuda", pa.string()),
    pa.field("torch", pa.string()),
    pa.field("harness_version", pa.string()),
    pa.field("device_names", pa.list_(pa.string())),  # device models in the run
    pa.field("devices", pa.int64()),
    pa.field("measurements", pa.int64()),
    pa.field("parts", pa.list_(pa.string())),  # index part files holding its measurement rows
])

UNKNOWN = "unknown"


def run_time(started_utc: str | None) -> datetime.datetime | None:
    if not started_utc:
        return None
    try:
        value = datetime.datetime.fromisoformat(started_utc)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def partition(month: datetime.datetime | None, device_name: str | None) -> str:
    """Hive-style partition folder of a row: month of the run and device model (slug)."""
    month_text = month.strftime("%Y-%m") if month is not None else UNKNOWN
    return f"month={month_text}/model={slug(device_name, limit=60) if device_name else UNKNOWN}"


def _range(summary: Any, field: str) -> float | None:
    return getattr(summary, field) if summary is not None else None


def measurement_rows(result: RunResult, source: str) -> dict[str, list[tuple]]:
    """The run's measurement rows (MEASUREMENTS column order), grouped by partition folder."""
    when = run_time(result.run.started_utc)
    grouped: dict[str, list[tuple]] = {}
    sched = result.run.scheduler or {}
    job = (sched.get("name"), sched.get("job_id"), sched.get("array_task_id"), sched.get("step_id"),
           sched.get("node") or sched.get("pod"), sched.get("job_completion_index"))
    job = tuple(None if v is None else str(v) for v in job)
    name_at = COLUMNS.index("device_name")
    folders: dict[str | None, str] = {}  # device name -> partition folder (one strftime and slug per model)
    for ordinal, (row, m) in enumerate(zip(rows(result, source), result.measurements)):
        stats, tel = m.stats, m.telemetry
        extra = (
            when, ordinal,
            stats.mean if stats else None, stats.min if stats else None, stats.max if stats else None,
            stats.p10 if stats else None, stats.p90 if stats else None, stats.stdev if stats else None,
            _range(tel.sm_clock_mhz if tel else None, "max"),
            _range(tel.mem_clock_mhz if tel else None, "mean"),
            _range(tel.power_w if tel else None, "mean"),
            _range(tel.temperature_c if tel else None, "max"),
            *job,
        )
        name = row[name_at]
        folder = folders.get(name)
        if folder is None:
            folder = folders[name] = partition(when, name)
        grouped.setdefault(folder, []).append(row + extra)
    return grouped


def file_row(result: RunResult | None, path: str, size: int, mtime_ns: int, sha256: str,
             problem: str | None, parts: Sequence[str]) -> tuple:
    """One FILES row: a parsed run (indexed) or a bad file (result None, skipped with `problem`)."""
    if result is None:
        return (path, size, mtime_ns, sha256, "skipped", problem) + (None,) * 13 + (list(parts),)
    run = result.run
    names = sorted({d.name for d in result.devices}
                   | {dev.name for m in result.measurements if (dev := device_of(result, m)) is not None})
    return (path, size, mtime_ns, sha256, "indexed", None, run.host, run.label, run.started_utc,
            run_time(run.started_utc), run.mode, run.backend, run.driver, run.cuda, run.torch,
            run.harness_version, names, len(result.devices), len(result.measurements), list(parts))


def table(schema: pa.Schema, row_tuples: Sequence[tuple]) -> pa.Table:
    """Row tuples (schema column order) -> an Arrow table; NaN floats become nulls."""
    columns = list(zip(*row_tuples)) if row_tuples else [()] * len(schema)
    return pa.Table.from_arrays(
        [pa.array(list(values), type=f.type, from_pandas=True) for values, f in zip(columns, schema)],
        schema=schema,
    )
