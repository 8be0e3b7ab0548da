"""Resolve `compare`'s BASE argument: a result file, or a committed reference measurement.

    ref:auto      the newest reference file in the reference folder whose device model matches
                  the CURRENT files' device ("is my H100 normal?")
    ref:NAME      the reference file NAME (with or without .json) in that folder
    anything else a result-file path

The reference folder is `results/reference/` in the installed package, or `$TPPBENCH_REFERENCE_DIR`,
or the `--reference-dir` option (in that order of precedence: option, variable, package).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from results.files import store
from results.analysis.compare import Named
from results.errors import TppbenchError
from results.analysis.identity import model_name

REF_PREFIX = "ref:"
ENV_VAR = "TPPBENCH_REFERENCE_DIR"
PACKAGE_REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


class NoReferenceError(TppbenchError):
    exit_code = 1


def reference_dir(option: str | None = None) -> Path:
    if option:
        return Path(option)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else PACKAGE_REFERENCE_DIR


def is_reference(base: str) -> bool:
    return base.startswith(REF_PREFIX)


def resolve(base: str, currents: Sequence[Named], folder: Path) -> Named:
    """Load BASE. A `ref:` BASE is labelled `ref:<file name>` in the comparison."""
    if not is_reference(base):
        return Named(base, store.load(base))
    name = base[len(REF_PREFIX):]
    if name == "auto":
        return _auto(currents, folder)
    files = _reference_files(folder)
    for path in files:
        if name in (path.name, path.stem):
            return Named(f"{REF_PREFIX}{path.name}", store.load(path))
    raise NoReferenceError(
        f"no reference file {name!r} in {folder} (available: {_names(files)})"
    )


def _auto(currents: Sequence[Named], folder: Path) -> Named:
    models = {model_name(d) for c in currents for d in c.result.devices}
    names = sorted({d.name for c in currents for d in c.result.devices})
    if len(models) != 1:
        raise NoReferenceError(
            "ref:auto needs CURRENT files measured on one device model; "
            f"found {len(models)}: {', '.join(names) or 'none'}"
        )
    (model,) = models
    matches = []
    for path in _reference_files(folder):
        result = store.load(path)
        if any(model_name(d) == model for d in result.devices):
            matches.append((result.run.started_utc, path.name, path, result))
    if not matches:
        raise NoReferenceError(
            f"no reference measurement for {names[0]} in {folder} "
            f"(available: {_names(_reference_files(folder))})"
        )
    _, _, path, result = max(matches, key=lambda t: (t[0], t[1]))
    return Named(f"{REF_PREFIX}{path.name}", result)


def _reference_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def _names(files: Sequence[Path]) -> str:
    return ", ".join(p.name for p in files) or "none"
