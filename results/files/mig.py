"""A MIG instance as a result file records it: DeviceInfo.mig_mode reads
"enabled; instance MIG-<uuid>, profile <g>g.<mem>gb, parent GPU-<uuid>" (bench.nvml writes it), and
DeviceInfo.uuid is the instance's MIG UUID, so `fleet` keeps the slices of one GPU apart."""

from __future__ import annotations

import re
from dataclasses import dataclass

from results.files.records import DeviceInfo

_TEXT = re.compile(r"^enabled; instance (\S+), profile (\S+), parent (\S+)$")
_PROFILE = re.compile(r"^(\d+)g\.(\d+)gb$")
# A100, H100, H200, B200: seven compute slices (GPCs) for MIG.
COMPUTE_SLICES = 7


@dataclass(frozen=True)
class MigInstance:
    uuid: str
    profile: str  # "1g.10gb"
    parent_uuid: str

    @property
    def compute_share(self) -> float | None:
        """The instance's share of the full GPU's compute (g of 7 slices), None when unknown."""
        match = _PROFILE.match(self.profile)
        return int(match.group(1)) / COMPUTE_SLICES if match else None


def mig_instance(device: DeviceInfo) -> MigInstance | None:
    match = _TEXT.match(device.mig_mode or "")
    return MigInstance(*match.groups()) if match else None
