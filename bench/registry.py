"""Benchmark families, their cases, and selection by family name and case-key glob."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from bench.backend import Backend
from results.files.keys import case_key
from results.files.schema import Measurement


@dataclass(frozen=True)
class Case:
    """Identity of one measurement; `key` is stable across hosts and runs."""

    benchmark: str
    variant: str
    params: Mapping[str, Any] = field(default_factory=dict)
    precision: str | None = None

    @property
    def key(self) -> str:
        return case_key(self.benchmark, self.variant, self.params, self.precision)


class Benchmark(Protocol):
    name: str

    def cases(self, backend: Backend, mode: str) -> Sequence[Case]: ...

    def run(self, case: Case, backend: Backend, mode: str) -> Measurement: ...


_REGISTRY: dict[str, Benchmark] = {}


def register(benchmark: Benchmark) -> Benchmark:
    _REGISTRY[benchmark.name] = benchmark
    return benchmark


def _load_builtin() -> None:
    # Importing a kernels module registers its families (one registration line each).
    from bench.kernels import capacity, collectives, hostlink, matmul, memory, p2p, soak  # noqa: F401


def families() -> dict[str, Benchmark]:
    _load_builtin()
    return dict(_REGISTRY)


def key_selected(key: str, only: str | None, patterns: Sequence[str] = ()) -> bool:
    """A case key passes --only (one glob) and, under a procedure, one of its case globs."""
    if only is not None and not fnmatch.fnmatchcase(key, only):
        return False
    return not patterns or any(fnmatch.fnmatchcase(key, p) for p in patterns)


def select(
    suites: Sequence[str], backend: Backend, mode: str, only: str | None = None,
    patterns: Sequence[str] = (), settings: Mapping[str, Any] | None = None,
) -> list[tuple[Benchmark, Case]]:
    """Cases of the named families, in family order, filtered by a glob over case keys (and by a
    procedure's case globs). A family with `takes_settings` gets the run's settings (the soak's
    duration and precisions)."""
    known = families()
    chosen: list[tuple[Benchmark, Case]] = []
    for name in suites:
        bench = known[name]
        planned = (bench.cases(backend, mode, dict(settings or {}))  # type: ignore[call-arg]
                   if getattr(bench, "takes_settings", False) else bench.cases(backend, mode))
        for case in planned:
            if key_selected(case.key, only, patterns):
                chosen.append((bench, case))
    return chosen
