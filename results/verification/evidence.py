"""One unit's evidence from a result file of a procedure run: who it is (serial, model, identity)
and what was measured for each item, with the raw samples' median and its confidence bounds.

A file holds one unit per measured device. The unit is named by `identity.serial`; where the
identity has no serial (a CPU host without DMI tables, a GPU whose NVML says "Not Supported") the
UUID, then the machine id, stand in, and `serial_source` says which."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from results.analysis.stats import rates_from_times
from results.files.schema import DeviceInfo, Measurement, RunResult
from results.verification.bounds import MedianBounds, median_bounds
from thresholds.model import PRECISION_BITS

MEMORY_VARIANTS = ("read", "write", "copy")  # the procedure's device-memory cases
_SERIAL_KEYS = ("serial", "uuid", "machine_id", "product_uuid")


@dataclass(frozen=True)
class ItemMeasure:
    """A measured figure in its display unit (TFLOP/s or TOP/s, GB/s, GB), or why there is none."""

    item: str  # "matmul/bf16", "memory_bandwidth", "interconnect", "capacity"
    unit: str
    value: float | None = None  # the median (capacity: the bytes verified, in GB)
    bounds: MedianBounds | None = None  # of the median, in `unit`
    key: str | None = None  # the record the figure comes from
    reason: str | None = None  # why not measured
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Unit:
    file: Path
    sha256: str
    serial: str
    serial_source: str  # "identity.serial", "identity.uuid", ...
    model: str
    device_index: int
    backend: str
    procedure: Mapping[str, Any]
    identity: Mapping[str, Any]
    measures: Mapping[str, ItemMeasure]
    result: RunResult
    peers: int  # other devices measured in the same file

    @property
    def label(self) -> str:
        return f"{self.serial} ({self.file.name}, device {self.device_index})"


def _usable(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != "" and value != "Not Supported" and not value.startswith("unavailable")


def unit_serial(device: DeviceInfo) -> tuple[str | None, str]:
    for key in _SERIAL_KEYS:
        if _usable(device.identity.get(key)):
            return str(device.identity[key]).strip(), f"identity.{key}"
    if device.uuid:
        return device.uuid, "uuid"
    reasons = "; ".join(f"{k}: {device.identity.get(k)}" for k in _SERIAL_KEYS if k in device.identity)
    return None, reasons or "no identity recorded"


def _bounds(m: Measurement, scale: float, confidence: float) -> MedianBounds | None:
    rates = rates_from_times(m.work_per_call, m.times_s)
    if not rates:
        return None
    b = median_bounds(rates, confidence)
    return MedianBounds(b.n, b.median / scale, b.lower / scale, b.upper / scale, b.confidence, b.exact)


def _best(records: Sequence[Measurement], item: str, unit: str, scale: float, confidence: float,
          missing: str) -> ItemMeasure:
    ok = [m for m in records if m.status == "ok" and m.rate and m.times_s]
    if not ok:
        reasons = "; ".join(f"{m.key}: {m.reason}" for m in records if m.reason)
        return ItemMeasure(item, unit, reason=reasons or missing)
    best = max(ok, key=lambda m: m.rate or 0.0)
    b = _bounds(best, scale, confidence)
    return ItemMeasure(item, unit, value=b.median if b else best.rate / scale, bounds=b, key=best.key,
                       detail={"records": len(ok), "samples": b.n if b else 0})


def unit_measures(result: RunResult, device: DeviceInfo, confidence: float) -> dict[str, ItemMeasure]:
    single = len(result.devices) == 1  # the CPU backend's records carry no device index
    own = [m for m in result.measurements
           if m.device_index == device.index or (m.device_index is None and single)]
    out: dict[str, ItemMeasure] = {}
    for precision in PRECISION_BITS:
        records = [m for m in own if m.benchmark == "matmul" and m.precision == precision]
        if records:
            unit = "TOP/s" if records[0].unit == "op" else "TFLOP/s"
            out[f"matmul/{precision}"] = _best(records, f"matmul/{precision}", unit, 1e12, confidence,
                                               "no matmul record")
    memory = [m for m in own if m.benchmark == "memory" and m.variant in MEMORY_VARIANTS]
    out["memory_bandwidth"] = _best(memory, "memory_bandwidth", "GB/s", 1e9, confidence,
                                    "no device-memory record (read, write or copy)")
    peers = [m for m in own if m.benchmark == "p2p" and m.variant == "all_peers"]
    out["interconnect"] = _best(peers, "interconnect", "GB/s", 1e9, confidence,
                                "no p2p/all_peers record: a single-device host or the CPU backend has no peers")
    out["capacity"] = _capacity(own)
    return out


def _capacity(own: Sequence[Measurement]) -> ItemMeasure:
    records = [m for m in own if m.benchmark == "capacity"]
    ok = [m for m in records if m.status == "ok" and "verified_bytes" in m.extra]
    if not ok:
        reason = "; ".join(f"{m.key}: {m.reason}" for m in records if m.reason) or "no capacity record"
        return ItemMeasure("capacity", "GB", reason=reason)
    m = ok[0]
    verified = float(m.extra["verified_bytes"])
    detail = {k: m.extra.get(k) for k in ("verified_bytes", "total_bytes", "free_bytes_before",
                                            "not_verified_bytes", "stop_reason", "bounded", "bound_reason")}
    if m.extra.get("bounded"):
        return ItemMeasure("capacity", "GB", value=verified / 1e9, key=m.key, detail=detail,
                           reason=f"a bounded check ({verified / (1 << 20):.0f} MiB verified): "
                                  f"{m.extra.get('bound_reason') or 'the whole capacity was not checked'}")
    return ItemMeasure("capacity", "GB", value=verified / 1e9, key=m.key, detail=detail)


def units_of(result: RunResult, path: Path, raw: bytes, confidence: float) -> list[Unit]:
    sha = hashlib.sha256(raw).hexdigest()
    out = []
    for device in result.devices:
        serial, source = unit_serial(device)
        if serial is None:
            from results.errors import ResultFileError

            raise ResultFileError(path, f"device {device.index} has no serial number, UUID or machine id "
                                        f"to name the unit ({source})")
        out.append(Unit(file=path, sha256=sha, serial=serial, serial_source=source, model=device.name,
                        device_index=device.index, backend=device.backend, procedure=dict(result.run.procedure),
                        identity=dict(device.identity), measures=unit_measures(result, device, confidence),
                        result=result, peers=len(result.devices) - 1))
    return out
