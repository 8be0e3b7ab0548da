"""Importers of other tools' output: nccl-tests logs, nvbandwidth runs (text and -j JSON), mamf-finder logs.

One module per tool, each a pure `parse(text, source) -> Imported` plus `detect(text) -> bool`; the
`tppbench import` command picks one and saves its RunResult like `run` does. Importers never invent
a number the tool did not print: samples the tool does not print stay absent (`times_s` empty,
`stats` None), and every derived figure states how it was derived in its `convention`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

FORMATS = ("nccl-tests", "nvbandwidth", "mamf-finder")


def importer(name: str) -> ModuleType:
    """The module of one format name ("nccl-tests" -> results.importers.nccl_tests)."""
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}")
    return importlib.import_module(f"results.importers.{name.replace('-', '_')}")
