"""The result-file vocabulary: frozen records and their only JSON boundary (to_dict / from_dict).

Every record here is what one `tppbench run` stores. Other tools read these files, so the
top-level names (`schema_version`, `run`, `devices`, `measurements`) and the per-measurement
names are a public contract: change them only with a SCHEMA_VERSION bump and an upgrade step
in `results.store`.

Units are SI base units unless a name says otherwise: seconds (`times_s`), bytes, flop, op;
rates are per second (flop/s, op/s, byte/s).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools

from typing import Any, Mapping

from results.files.records import (  # noqa: F401 - the records and the version, re-exported
    FIELDS_NEW_IN, READABLE_VERSIONS, SCHEMA_VERSION, DeviceInfo, Measurement, RangeSummary, RunInfo,
    RunResult, Stats, Telemetry, Timing, fields_newer_than)
from results.terminal import short_repr

# Limits for untrusted files (checked by from_dict). A rate is at most ~1e16/s today, so 1e30
# leaves room while keeping sums, ratios, TPP and plot limits finite (1e308 overflowed them).
MAX_MAGNITUDE = 1e30
MAX_INT = 2**63 - 1  # integers fit a signed 64-bit column (pandas Int64, Parquet)
MAX_NESTING = 16  # levels of lists and objects inside a free-form field (params, extra, ...)

STATUSES = ("ok", "skipped", "error")


class SchemaError(ValueError):
    """A dict does not have the shape a record needs; the message names the field."""


# --------------------------------------------------------------------------- JSON boundary


def to_dict(result: RunResult) -> dict[str, Any]:
    """RunResult -> plain JSON-able dict (tuples become lists, nested records become dicts)."""
    return {
        "schema_version": result.schema_version,
        "run": _plain(result.run),
        "devices": [_plain(d) for d in result.devices],
        "measurements": [_plain(m) for m in result.measurements],
    }


def from_dict(data: Any) -> RunResult:
    """Plain dict -> RunResult; raises SchemaError naming the first bad field.

    Checks types and the facts a reader relies on: every number is finite and at most
    MAX_MAGNITUDE in size (integers: 0 to 2**63-1), free-form objects (params, extra, env,
    unavailable, nvlink entries) are nested at most MAX_NESTING levels, `started_utc` and
    `finished_utc` are ISO 8601 timestamps, `device_index` names a device in `devices`, raw
    times are above 0 s, and an `ok` record has a positive rate and the samples behind it: raw
    `times_s`; or, for a record imported from another tool's output (which prints no raw
    samples), `stats` with n >= 1; or none for a record derived from others in the file, which
    did no work of its own (`work_per_call` 0, e.g. p2p `aggregate_io`)."""
    if not isinstance(data, dict):
        raise SchemaError(f"top level must be an object, got {type(data).__name__}")
    for name in ("schema_version", "run", "devices", "measurements"):
        if name not in data:
            raise SchemaError(f"missing top-level field '{name}'")
    version = data["schema_version"]
    if type(version) is not int or version not in READABLE_VERSIONS:  # not true, not 1.0
        raise SchemaError(f"schema_version must be one of the integers {list(READABLE_VERSIONS)}, "
                          f"got {short_repr(version)}")
    if type(data["devices"]) is not list:
        raise SchemaError("'devices' must be a list")
    if type(data["measurements"]) is not list:
        raise SchemaError("'measurements' must be a list")
    if version < SCHEMA_VERSION:
        _refuse_newer_fields(data, version)
    run = _build(RunInfo, data["run"], "run")
    _check_run(run)
    devices = tuple(_build(DeviceInfo, d, f"devices[{i}]") for i, d in enumerate(data["devices"]))
    indices = {d.index for d in devices}
    measurements = tuple(
        _build(Measurement, m, f"measurements[{i}]") for i, m in enumerate(data["measurements"])
    )
    for i, m in enumerate(measurements):
        _check_measurement(m, f"measurements[{i}]", indices)
    # a version-1 file is upgraded on reading: its records are version-2 records with the defaults
    return RunResult(run=run, devices=devices, measurements=measurements, schema_version=SCHEMA_VERSION)


def _refuse_newer_fields(data: dict, version: int) -> None:
    """An older file may not use what a later version added (only reached for older files)."""
    records = [("run", data["run"], "run")]
    records += [(f"devices[{i}]", d, "device") for i, d in enumerate(data["devices"])]
    records += [(f"measurements[{i}]", m, "measurement") for i, m in enumerate(data["measurements"])]
    records += [(f"measurements[{i}].telemetry", m["telemetry"], "telemetry") for i, m in enumerate(data["measurements"])
                if type(m) is dict and type(m.get("telemetry")) is dict]
    for where, raw, record in records:
        if type(raw) is dict:
            for name in fields_newer_than(version, record):
                if name in raw:
                    added = next(v for v, table in FIELDS_NEW_IN.items() if name in table.get(record, ()))
                    raise SchemaError(f"{where}.{name} is new in schema_version {added}, but the file says {version}")


def _check_run(run: RunInfo) -> None:
    for name in ("started_utc", "finished_utc"):
        value = getattr(run, name)
        if value is None:
            continue
        try:
            datetime.datetime.fromisoformat(value)
        except ValueError:
            raise SchemaError(f"run.{name} must be an ISO 8601 timestamp like 2026-11-26T07:15:02Z, "
                              f"got {short_repr(value)}") from None
    if run.world_size < 1:
        raise SchemaError(f"run.world_size must be at least 1, got {run.world_size}")


def _check_measurement(m: Measurement, where: str, device_indices: set[int]) -> None:
    if m.status not in STATUSES:
        raise SchemaError(f"{where}.status must be one of {STATUSES}, got {short_repr(m.status)}")
    if m.device_index is not None and m.device_index not in device_indices:
        known = ", ".join(map(str, sorted(device_indices))) or "none"
        raise SchemaError(f"{where}.device_index {m.device_index} names no device in the file "
                          f"(device indices: {known})")
    if m.concurrent_devices is not None and m.concurrent_devices < 1:
        raise SchemaError(f"{where}.concurrent_devices must be at least 1 (the GPUs measured at once, "
                          f"this one included), got {m.concurrent_devices}")
    if m.status != "ok":
        return
    if m.rate is None:
        raise SchemaError(f"{where} has status ok but no rate")
    if not m.rate > 0:
        raise SchemaError(f"{where} has status ok but its rate {m.rate!r} is not positive")
    if not m.times_s and (m.stats is None or m.stats.n < 1) and m.work_per_call != 0:
        raise SchemaError(f"{where} has status ok but no samples (empty times_s and no stats)")


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# Nested record types per (record, field): used by _build to rebuild dataclasses from dicts.
_NESTED: dict[tuple[type, str], type] = {
    (Measurement, "stats"): Stats,
    (Measurement, "telemetry"): Telemetry,
    (Measurement, "timing"): Timing,
    (Telemetry, "sm_clock_mhz"): RangeSummary,
    (Telemetry, "mem_clock_mhz"): RangeSummary,
    (Telemetry, "power_w"): RangeSummary,
    (Telemetry, "temperature_c"): RangeSummary,
}

# Expected JSON types by field name (a name means the same thing in every record that has it).
# None is accepted wherever the dataclass default allows it; a missing required field is caught
# separately.
_FLOAT_FIELDS = {
    "work_per_call", "rate", "busbw", "busbw_factor", "median", "mean", "min", "max", "p10",
    "p90", "iqr", "stdev", "cv", "warmup_s", "power_limit_w", "energy_j", "energy_window_s",
}
_INT_FIELDS = {
    "n", "samples", "calls_per_sample", "warmup_calls", "world_size", "schema_version",
    "device_index", "rank", "index", "method_version", "throttle_reasons_mask", "threads",
    "concurrent_devices",
    "sm_count", "sm_clock_max_mhz", "sm_clock_app_mhz", "mem_clock_max_mhz", "mem_clock_app_mhz",
    "memory_total_bytes", "memory_bus_width_bits", "l2_cache_bytes", "pcie_gen_current",
    "pcie_gen_max", "pcie_width_current", "pcie_width_max",
}
_BOOL_FIELDS = {"complete", "available", "l2_flushed"}
_STR_FIELDS = {
    "source",
    "key", "benchmark", "variant", "status", "unit", "convention", "host", "name", "backend",
    "mode", "started_utc", "finished_utc", "harness_version", "clock", "precision", "reason",
    "incomplete_reason", "label", "git_commit", "cpu_model", "os", "python", "torch", "cuda", "hip", "rocm",
    "driver", "nccl", "pci_device_id", "pci_bus_id", "uuid", "compute_capability", "ecc_mode",
    "mig_mode", "energy_source", "energy_reason", "power_source",
}
_STR_LIST_FIELDS = {"flags", "argv", "suites", "hosts", "throttle_reasons"}


_OBJECT_FIELDS = {"params", "extra", "unavailable", "env", "imported_from", "identity", "procedure", "scheduler"}
_KIND: dict[str, str] = {
    **dict.fromkeys(_FLOAT_FIELDS, "float"), **dict.fromkeys(_INT_FIELDS, "int"),
    **dict.fromkeys(_BOOL_FIELDS, "bool"), **dict.fromkeys(_STR_FIELDS, "str"),
    **dict.fromkeys(_STR_LIST_FIELDS, "strs"), **dict.fromkeys(_OBJECT_FIELDS, "object"),
    "times_s": "times", "nvlink": "objects",
    # indices and counts a reader uses to look things up: never negative
    **dict.fromkeys(("device_index", "rank", "index", "n", "world_size"), "index"),
}
_NUMBER_TYPES = {int, float}
_LEAF_TYPES = {str, bool, type(None)}  # free-form values that need no further check


_MISSING = object()


@functools.cache
def _layout(cls: type) -> tuple[frozenset[str], tuple[tuple, ...]]:
    """Per record type: its field names, and per field (name, required, nullable, nested type,
    plain, low, high): a value of type `plain` within [low, high] (no bounds: None) is taken as
    it is; anything else goes through _check_value."""
    plain = {"str": (str, None, None), "bool": (bool, None, None), "float": (float, -MAX_MAGNITUDE, MAX_MAGNITUDE),
             "int": (int, -MAX_INT - 1, MAX_INT), "index": (int, 0, MAX_INT)}
    fields = dataclasses.fields(cls)
    return frozenset(f.name for f in fields), tuple(
        (f.name, f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
         "None" in str(f.type), _NESTED.get((cls, f.name)), *plain.get(_KIND.get(f.name, ""), (None, None, None)))
        for f in fields
    )


def _build(cls: type, raw: Any, where: str) -> Any:
    if type(raw) is not dict:
        raise SchemaError(f"{where} must be an object, got {type(raw).__name__}")
    names, layout = _layout(cls)
    if not raw.keys() <= names:
        raise SchemaError(f"{where} has unknown field {short_repr(sorted(raw.keys() - names)[0])}")
    kwargs: dict[str, Any] = {}
    for name, required, nullable, nested, plain, low, high in layout:
        value = raw.get(name, _MISSING)
        if value is _MISSING:
            if required:
                raise SchemaError(f"{where} is missing field '{name}'")
            continue
        kind_of_value = type(value)
        if kind_of_value is plain and (low is None or low <= value <= high):
            pass  # the common case, inline (the fleet index parses 100,000s of files): in range, as is
        elif value is None:
            if not nullable:
                raise SchemaError(f"{where}.{name} must not be null")
        elif nested is not None:
            value = _build(nested, value, f"{where}.{name}")
        else:
            value = _check_value(name, value, where)
        kwargs[name] = value
    return cls(**kwargs)


def _check_value(name: str, value: Any, where: str) -> Any:
    """A field's JSON value checked by the field's kind; returns it in the record's form."""
    kind = _KIND.get(name, "free")
    kind_of_value = type(value)
    if kind == "float":
        if kind_of_value in _NUMBER_TYPES:
            if -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:
                return float(value)
            raise SchemaError(f"{where}.{name} must be a finite number of size at most {MAX_MAGNITUDE:g}, "
                              f"got {short_repr(value)}")
        raise SchemaError(f"{where}.{name} must be a number, got {kind_of_value.__name__}")
    if kind == "int" or kind == "index":
        if kind_of_value is int:
            if (0 if kind == "index" else -MAX_INT - 1) <= value <= MAX_INT:
                return value
            span = "from 0 to 2**63-1" if kind == "index" else "that fits 64 bits"
            raise SchemaError(f"{where}.{name} must be an integer {span}, got {short_repr(value)}")
        raise SchemaError(f"{where}.{name} must be an integer, got {kind_of_value.__name__}")
    if kind == "str":
        if kind_of_value is str:
            return value
        raise SchemaError(f"{where}.{name} must be a string, got {kind_of_value.__name__}")
    if kind == "bool":
        if kind_of_value is bool:
            return value
        raise SchemaError(f"{where}.{name} must be true or false, got {kind_of_value.__name__}")
    if kind == "strs":
        if kind_of_value is list and all(type(v) is str for v in value):
            return tuple(value)
        raise SchemaError(f"{where}.{name} must be a list of strings")
    if kind == "times":
        return _times(value, f"{where}.{name}")
    if kind == "object":
        if kind_of_value is not dict:
            raise SchemaError(f"{where}.{name} must be an object, got {kind_of_value.__name__}")
        _check_free(value, f"{where}.{name}", 1)
        return value
    if kind == "objects":
        if kind_of_value is not list:
            raise SchemaError(f"{where}.{name} must be a list, got {kind_of_value.__name__}")
        for i, item in enumerate(value):
            if type(item) is not dict:
                raise SchemaError(f"{where}.{name}[{i}] must be an object, got {type(item).__name__}")
            _check_free(item, f"{where}.{name}[{i}]", 2)
        return tuple(value)
    _check_free(value, f"{where}.{name}", 1)  # a field without a declared kind: limits only
    return tuple(value) if kind_of_value is list else value


def _times(value: Any, path: str) -> tuple[float, ...]:
    """Raw sample times: numbers above 0 s and finite (checked with min/max, in C, not per item)."""
    if type(value) is not list or not set(map(type, value)) <= _NUMBER_TYPES:
        raise SchemaError(f"{path} must be a list of numbers")
    if value and not (min(value) > 0 and max(value) <= MAX_MAGNITUDE):
        bad = min(value) if not min(value) > 0 else max(value)
        raise SchemaError(f"{path} must hold finite times above 0 seconds, got {short_repr(bad)}")
    return tuple(map(float, value))


def _check_free(value: Any, where: str, depth: int) -> None:
    """A free-form JSON value (params, extra, ...): numbers finite and in range, nesting bounded."""
    kind_of_value = type(value)
    if kind_of_value in _LEAF_TYPES:
        return
    if kind_of_value is int:
        if -MAX_INT - 1 <= value <= MAX_INT:
            return
        raise SchemaError(f"{where} must be an integer that fits 64 bits, got {short_repr(value)}")
    if kind_of_value is float:
        if -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:
            return
        raise SchemaError(f"{where} must be a finite number of size at most {MAX_MAGNITUDE:g}, got {short_repr(value)}")
    if depth > MAX_NESTING:
        raise SchemaError(f"{where} is nested more than {MAX_NESTING} levels deep")
    if kind_of_value is dict:
        items = value.items()
    elif kind_of_value is list:
        items = enumerate(value)
    else:
        raise SchemaError(f"{where} holds a {kind_of_value.__name__}, which JSON cannot")
    for key, item in items:  # leaves and in-range numbers inline (most params are flat): no call
        kind_of_item = type(item)
        if kind_of_item in _LEAF_TYPES:
            continue
        if kind_of_item is int and -MAX_INT - 1 <= item <= MAX_INT:
            continue
        if kind_of_item is float and -MAX_MAGNITUDE <= item <= MAX_MAGNITUDE:
            continue
        _check_free(item, f"{where}.{key}" if kind_of_value is dict else f"{where}[{key}]", depth + 1)
