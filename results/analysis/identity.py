"""Who measured what: a measurement's device, its alignment slot, and a device's model identity.

Case keys (`matmul/bf16/m=8192,n=8192,k=8192`) do not name a device, so a run over eight GPUs
holds each key eight times. A *slot* (rank, device index) tells those apart; `compare` aligns
on (key, slot) and `fleet` groups GPUs by `gpu_id`.
"""

from __future__ import annotations

import re

from results.files.schema import DeviceInfo, Measurement, RunResult

Slot = tuple[int | None, int | None]  # (rank, device_index); (None, None) for a device-less case

_SPACES = re.compile(r"\s+")


def slot(measurement: Measurement) -> Slot:
    return (measurement.rank, measurement.device_index)


def slot_label(s: Slot) -> str:
    """`gpu1`, `rank3/gpu1`, or `` for a device-less slot."""
    rank, index = s
    text = "" if index is None else f"gpu{index}"
    return f"rank{rank}/{text}" if rank is not None else text


def device_of(result: RunResult, measurement: Measurement) -> DeviceInfo | None:
    """The DeviceInfo a measurement ran on: same index, and same host when both name one.

    A measurement without a device index (the CPU backend) belongs to the run's only device."""
    if measurement.device_index is None:
        return result.devices[0] if len(result.devices) == 1 else None
    fallback = None
    for device in result.devices:
        if device.index != measurement.device_index:
            continue
        if measurement.host is None or device.host is None or device.host == measurement.host:
            return device
        fallback = fallback or device
    return fallback


def model_name(device: DeviceInfo | None) -> str | None:
    """A device's model identity for "same part?" tests: its name, case and spacing folded."""
    if device is None:
        return None
    return _SPACES.sub(" ", device.name.strip()).lower()


def gpu_id(host: str, device: DeviceInfo | None, device_index: int | None) -> str:
    """A stable per-GPU identity across runs: its UUID when known, else host#index."""
    if device is not None and device.uuid:
        return device.uuid
    return f"{host}#{'-' if device_index is None else device_index}"


def measurement_host(result: RunResult, measurement: Measurement) -> str:
    return measurement.host or result.run.host
