"""The CPU's identity as the lab procedure records it (a GPU's comes from bench.nvml.identity):
what the host's firmware tables (DMI, /sys/class/dmi/id) and /etc/machine-id say. Many VMs and
containers have no DMI tables and DMI serials need root: such a field reads "unavailable: <why>".
Nothing raises; torch-free."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DMI = Path("/sys/class/dmi/id")
# identity field -> DMI file
_DMI_FILES = {
    "serial": "product_serial", "board_part_number": "board_name", "board_serial": "board_serial",
    "product_name": "product_name", "product_uuid": "product_uuid", "bios_version": "bios_version",
}


def _read(path: Path) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return f"unavailable: no {path}"
    except OSError as exc:
        return f"unavailable: {path}: {exc.strerror or type(exc).__name__}"
    return text or f"unavailable: {path} is empty"


def cpu_identity(dmi: Path = DMI, machine_id: Path = Path("/etc/machine-id")) -> dict[str, Any]:
    """Serial, board, BIOS and machine ids of this host (each read, or "unavailable: <why>")."""
    identity: dict[str, Any] = {name: _read(dmi / file) for name, file in _DMI_FILES.items()}
    identity["machine_id"] = _read(machine_id)
    identity["source"] = "DMI" if dmi.is_dir() else "none (no DMI tables)"
    return identity
