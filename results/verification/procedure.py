"""The fixed, versioned test procedure (results/verification/procedures/*.toml): what `run
--procedure` measures per backend, and the tolerances `verify` decides with. Torch-free."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from thresholds.errors import DataFileError
from thresholds.tomlreader import read_toml

PROCEDURES_DIR = Path(__file__).resolve().parent / "procedures"
BACKENDS = ("cuda", "cpu")
ITEMS = ("tpp", "memory_bandwidth", "capacity", "interconnect")


@dataclass(frozen=True)
class Profile:
    mode: str
    suites: tuple[str, ...]
    cases: tuple[str, ...]  # globs over case keys; a case runs if it matches one
    time_limit_s: float


@dataclass(frozen=True)
class Determination:
    confidence: float
    upper_tolerance: float
    published_floor_fraction: float
    spec_floor_fraction: float
    capacity_floor_fraction: float
    capacity_upper_tolerance: float
    outlier_robust_z: float
    required: tuple[str, ...]


@dataclass(frozen=True)
class Procedure:
    id: str
    version: int
    title: str
    path: Path
    sha256: str
    profiles: Mapping[str, Profile]
    determination: Determination

    def record(self) -> dict[str, Any]:
        """What every result file measured with this procedure carries in `run.procedure`."""
        return {"id": self.id, "version": self.version, "sha256": self.sha256, "file": self.path.name}


def procedure_path(name_or_path: str) -> Path:
    """`lab` names a shipped procedure; anything with a '/' or ending .toml is a file."""
    if "/" in name_or_path or name_or_path.endswith(".toml"):
        return Path(name_or_path)
    return PROCEDURES_DIR / f"{name_or_path}.toml"


def load_procedure(name_or_path: str) -> Procedure:
    path = procedure_path(name_or_path)
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in PROCEDURES_DIR.glob("*.toml")))
        raise DataFileError(path, None, f"no such procedure (shipped: {shipped}; or give a .toml file)")
    t = read_toml(path)
    pid = t.string("id")
    version = t.number("version", minimum=1)
    if version != int(version):
        raise t.fail("version", "must be a whole number")
    title = t.string("title")
    profiles_t = t.table("profile", True)
    profiles = {}
    for backend in list(profiles_t.data):
        if backend not in BACKENDS:
            raise profiles_t.fail(backend, f"unknown backend (expected one of: {', '.join(BACKENDS)})")
        p = profiles_t.table(backend, True)
        profiles[backend] = Profile(p.string("mode"), p.strings("suites", True), p.strings("cases", True),
                                    p.number("time_limit_s", minimum=1.0))
        p.finish()
    profiles_t.finish()
    d = t.table("determination", True)
    fraction = {"minimum": 0.0, "maximum": 1.0}
    required = d.strings("required", True)
    for item in required:
        if item not in ITEMS:
            raise d.fail("required", f"unknown item {item!r} (expected some of: {', '.join(ITEMS)})")
    determination = Determination(
        confidence=d.number("confidence", minimum=0.5, maximum=0.999),
        upper_tolerance=d.number("upper_tolerance", **fraction),
        published_floor_fraction=d.number("published_floor_fraction", **fraction),
        spec_floor_fraction=d.number("spec_floor_fraction", **fraction),
        capacity_floor_fraction=d.number("capacity_floor_fraction", **fraction),
        capacity_upper_tolerance=d.number("capacity_upper_tolerance", **fraction),
        outlier_robust_z=d.number("outlier_robust_z", minimum=1.0, maximum=100.0),
        required=required,
    )
    d.finish()
    t.finish()
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return Procedure(pid, int(version), title, path.resolve(), sha, profiles, determination)
