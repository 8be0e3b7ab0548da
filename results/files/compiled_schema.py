"""The checks of `results.schema.from_dict`, compiled: a file decoded and type-checked by msgspec.

`decode(raw)` returns the RunResult that `from_dict(json.loads(raw))` would return, or None when it
cannot tell quickly; it never refuses a file itself. The caller (`results.store.parse_bytes`) then
takes the reference path, which accepts the file or names its problem. So every refusal and every
message stays where it was, in `results.schema`, and this module only has to be no more lenient
than that one: whatever it accepts, `from_dict` accepts, giving an equal record with values of the
same types (the tests check this on every fixture, the hostile corpus and the fuzz examples).

How: msgspec structs that mirror the record dataclasses are generated from them and from the
schema's own field tables (`_KIND`, `_NESTED`, `MAX_*`), so a field added to a record is checked
here without an edit. msgspec checks in C the JSON types, ranges (`Meta` bounds), unknown fields,
required fields and nulls; the facts it cannot express are then checked by the schema's own
functions (`_check_run`, `_check_measurement`, `_check_free` for free-form objects). A file that
msgspec might not decode exactly as `json.loads` does goes the reference way untried: any run of
20+ digits (integers beyond 64 bits, long mantissas) and any `\\uD800`-`\\uDFFF` escape.

Measured on the 2-core VM (best of 15 passes over 300 synthetic 36 KB quick-mode files): 0.81 ms
per file on the reference path, 0.31 ms here with records, 0.21 ms as the document the fleet index
reads (it parses every file). msgspec is optional: without it (an offline GPU host) `decode`
always returns None and everything takes the reference path.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Annotated, Any, Callable, Literal, Optional

from results.files import schema
from results.files.schema import (MAX_INT, MAX_MAGNITUDE, DeviceInfo, Measurement, RunInfo, RunResult,
                            SchemaError)

try:
    import msgspec
except ImportError:  # optional: the reference path alone is correct, only slower
    msgspec = None

_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 20  # in the translated bytes: any run of 20 digits
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def decode(raw: bytes, *, records: bool = True) -> Any:
    """The validated RunResult of a result file's bytes, or None: use the reference path.

    records=False: for a file of the current version, the validated document itself instead, as
    msgspec structs with the records' field names (nested the same way, typed lists as tuples),
    for code that only reads attributes, like the fleet index's rows: building the frozen
    dataclasses costs about as much as the decoding. Older versions come back as a RunResult."""
    decoders = _decoders()
    if not decoders or long_digit_run(raw):
        return None
    if surrogate_escape(raw):
        return None
    for decoder in decoders:  # the current version first: one decode for a file written today
        try:
            document = decoder.decode(raw)
            if records or document.schema_version != schema.SCHEMA_VERSION:
                return _records(document)
            return _checked(document)
        except (msgspec.DecodeError, SchemaError, RecursionError, ValueError, TypeError):
            continue
    return None


def long_digit_run(raw: bytes) -> bool:
    """Whether the JSON text has a run of 20 or more digits: an integer beyond 64 bits or a long
    mantissa, which only `json.loads` turns into the values the reference checks are written for
    (orjson makes floats of such integers)."""
    return _LONG_DIGIT_RUN in raw.translate(_DIGITS_AS_ZERO)


def surrogate_escape(raw: bytes) -> bool:
    """Whether the JSON text has a `\\uD800`-`\\uDFFF` escape: a surrogate, paired (an astral
    character) or lone (not Unicode text, refused by the loader)."""
    return b"\\u" in raw and _SURROGATE_ESCAPE.search(raw) is not None


# --------------------------------------------------------------------------- the mirror types


@functools.cache
def _decoders() -> tuple:
    """A whole-document decoder per readable version, the current one first (none without msgspec).
    A version-1 file that carries a version-2 field has an unknown field for the version-1 one."""
    if msgspec is None:
        return ()
    decoders = []
    for version in sorted(schema.READABLE_VERSIONS, reverse=True):
        document = msgspec.defstruct(f"ResultDocumentV{version}", [  # unknown top-level names are
            ("schema_version", Literal[version]),                     # ignored, as from_dict does
            ("run", _mirror(RunInfo, version)),
            ("devices", tuple[_mirror(DeviceInfo, version), ...]),
            ("measurements", tuple[_mirror(Measurement, version), ...]),
        ])
        decoders.append(msgspec.json.Decoder(document))
    return tuple(decoders)


def _kind_types() -> dict[str, Any]:
    """msgspec type per `schema._KIND` kind, with the bounds `schema._check_value` applies."""
    from msgspec import Meta

    number = Annotated[float, Meta(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]
    return {
        "float": number,
        "int": Annotated[int, Meta(ge=-MAX_INT - 1, le=MAX_INT)],
        "index": Annotated[int, Meta(ge=0, le=MAX_INT)],
        "str": str,
        "bool": bool,
        "strs": tuple[str, ...],
        "times": tuple[Annotated[float, Meta(gt=0, le=MAX_MAGNITUDE)], ...],
        "object": dict[str, Any],  # contents: schema._check_free afterwards
        "objects": tuple[dict[str, Any], ...],
    }


@functools.cache
def _mirror(cls: type, version: int):
    """A msgspec struct with the dataclass's field names (those `version` has), defaults and nullability."""
    kinds = _kind_types()
    newer = schema.fields_newer_than(version, _RECORD_NAMES.get(cls, ""))
    fields = []
    for f in dataclasses.fields(cls):
        if f.name in newer:
            continue
        nested = schema._NESTED.get((cls, f.name))
        kind = schema._KIND.get(f.name, "free")
        value_type = _mirror(nested, version) if nested is not None else kinds.get(kind, Any)
        if "None" in str(f.type):
            value_type = Optional[value_type]
        if f.default is not dataclasses.MISSING:
            fields.append((f.name, value_type, f.default))
        elif f.default_factory is not dataclasses.MISSING:
            fields.append((f.name, value_type, msgspec.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, value_type))
    return msgspec.defstruct(f"{cls.__name__}V{version}", fields, kw_only=True, forbid_unknown_fields=True)


_RECORD_NAMES = {RunInfo: "run", DeviceInfo: "device", Measurement: "measurement", schema.Telemetry: "telemetry"}


# --------------------------------------------------------------------------- mirror -> records


@functools.cache
def _free_fields(cls: type) -> tuple[tuple[str, int, bool], ...]:
    """The record's free-form fields (no declared type: params, extra, env, ...) as (name, depth at
    which `schema._check_free` checks the contents, whether the records hold a list as a tuple)."""
    free = []
    for f in dataclasses.fields(cls):
        kind = schema._KIND.get(f.name, "free")
        if (cls, f.name) in schema._NESTED or kind in _TYPED_KINDS:
            continue
        free.append((f.name, 2 if kind == "objects" else 1, kind not in ("object", "objects")))
    return tuple(free)


_TYPED_KINDS = ("float", "int", "index", "str", "bool", "strs", "times")  # checked by msgspec alone


def _check_free_value(value: Any, depth: int) -> None:
    """`schema._check_free` over one free-form field's value; its message is not kept (a refusal
    here only sends the file the reference way)."""
    if depth == 2:  # a list of objects, each checked as schema._check_value's "objects"
        for item in value:
            schema._check_free(item, "", 2)
    else:
        schema._check_free(value, "", 1)


@functools.cache
def _converter(cls: type) -> Callable[[Any], Any]:
    """mirror struct -> the frozen dataclass `cls` with its values, built without __init__ (every
    field is there, with the dataclass's own defaults; the records have no __post_init__)."""
    fields = dataclasses.fields(cls)
    nested = tuple((name, _converter(sub)) for (owner, name), sub in schema._NESTED.items() if owner is cls)
    free = _free_fields(cls)
    as_tuples = [name for name, _, as_tuple in free if as_tuple]
    defaulted = [f for f in fields
                 if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING]
    count, asdict, new = len(fields), msgspec.structs.asdict, object.__new__

    def convert(mirror: Any) -> Any:
        values = asdict(mirror)
        if len(values) < count:  # an older record: what later versions added takes its default
            values = {**{f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
                         for f in defaulted}, **values}
        for name, sub in nested:
            if values[name] is not None:
                values[name] = sub(values[name])
        if free:
            for name, depth, _ in free:
                if values[name]:  # None, {} and [] hold nothing to check (most `extra` fields)
                    _check_free_value(values[name], depth)
            for name in as_tuples:
                if type(values[name]) is list:
                    values[name] = tuple(values[name])
        record = new(cls)
        record.__dict__.update(values)
        return record

    return convert


@functools.cache
def _checker(cls: type) -> Callable[[Any], None]:
    """The checks `_converter(cls)` makes, on the mirror struct itself (nothing built)."""
    nested = tuple((name, _checker(sub)) for (owner, name), sub in schema._NESTED.items()
                   if owner is cls and _has_free_fields(sub))
    free = _free_fields(cls)

    def check(mirror: Any) -> None:
        for name, sub in nested:
            value = getattr(mirror, name)
            if value is not None:
                sub(value)
        for name, depth, _ in free:
            value = getattr(mirror, name)
            if value:
                _check_free_value(value, depth)

    return check


def _has_free_fields(cls: type) -> bool:
    return bool(_free_fields(cls)) or any(
        _has_free_fields(sub) for (owner, _), sub in schema._NESTED.items() if owner is cls)


def _records(document: Any) -> RunResult:
    run = _converter(RunInfo)(document.run)
    schema._check_run(run)
    devices = tuple(map(_converter(DeviceInfo), document.devices))
    measurements = tuple(map(_converter(Measurement), document.measurements))
    _check_measurements(devices, measurements)
    return RunResult(run=run, devices=devices, measurements=measurements, schema_version=schema.SCHEMA_VERSION)


def _checked(document: Any) -> Any:
    """The current-version document, checked as `_records` checks it, not converted."""
    _checker(RunInfo)(document.run)
    schema._check_run(document.run)
    for device in document.devices:
        _checker(DeviceInfo)(device)
    check_measurement = _checker(Measurement)
    for m in document.measurements:
        check_measurement(m)
    _check_measurements(document.devices, document.measurements)
    return document


def _check_measurements(devices: Any, measurements: Any) -> None:
    indices = {d.index for d in devices}
    for i, m in enumerate(measurements):
        schema._check_measurement(m, f"measurements[{i}]", indices)
