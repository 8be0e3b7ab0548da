"""Match a measured device to its catalog part: by PCI device id first, then by name."""

from __future__ import annotations

import re
from typing import Iterable

from results.files.schema import DeviceInfo
from thresholds.model import Part

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def normalize(name: str) -> str:
    return _NON_ALNUM.sub("", name.lower())


def _pci(device_id: str) -> tuple[str | None, str] | None:
    """'0x2330' -> (None, '2330'); NVML's 32-bit '0x233010de' -> ('10de', '2330')."""
    text = device_id.lower().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{1,8}", text):
        return None
    if len(text) > 4:
        text = text.rjust(8, "0")
        return text[4:], text[:4]
    return None, text.rjust(4, "0")


def match_part(device: DeviceInfo, catalog: Iterable[Part]) -> tuple[Part | None, str | None]:
    """(part, how it matched) or (None, None)."""
    parts = list(catalog)
    if device.pci_device_id:
        parsed = _pci(device.pci_device_id)
        if parsed is not None:
            vendor, dev = parsed
            hits = [
                (p, pid) for p in parts for pid in p.pci_ids
                if pid.endswith(":" + dev) and (vendor is None or pid.startswith(vendor + ":"))
            ]
            if len(hits) > 1:
                by_name = [(p, pid) for p, pid in hits if _name_matches(device.name, p)]
                hits = by_name if len(by_name) == 1 else []
            if len(hits) == 1:
                part, pid = hits[0]
                return part, f"PCI device id {device.pci_device_id} = {pid} ({part.pci_ids_source})"
    for part in parts:
        if _name_matches(device.name, part):
            return part, f"device name {device.name!r}"
    return None, None


def _name_matches(name: str, part: Part) -> bool:
    wanted = normalize(name)
    return bool(wanted) and wanted in {normalize(n) for n in (part.name, part.id, *part.aliases)}
