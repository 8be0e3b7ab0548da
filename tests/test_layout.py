"""The house rules of the layout (docs/design.md): no import circles between modules, rooms of at
most ten modules at results/'s top level, no module over about 400 lines, NVML called in one place.

Imports are read with `ast` from the source, every `import` and `from ... import` at any depth
(a lazy import inside a function still ties two modules together)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "results", "thresholds")
# The plugin pattern: bench.registry imports the kernels so they register; each kernel module
# imports bench.registry for `register`. Documented in docs/design.md; the only allowed circle.
PLUGIN_EDGES = {("bench.registry", f"bench.kernels.{k}") for k in ("capacity", "collectives", "hostlink", "matmul", "memory", "p2p", "soak")}
MAX_MODULE_LINES = 420  # "about 400"


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                targets.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets.add(module)
            for alias in node.names:
                targets.add(f"{module}.{alias.name}")  # `from results.files import store`
    edges = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name and not name.startswith(target + "."):
            edges.add(target)  # a package's __init__ that a submodule imports is no circle
    return edges


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: {t for t in imports_of(name, path, known) if (name, t) not in PLUGIN_EDGES}
            for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_between_modules():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_plugin_registration_is_the_circle_it_claims_to_be():
    found = modules()
    raw = {name: imports_of(name, path, set(found)) for name, path in found.items()}
    for registry, kernel in PLUGIN_EDGES:
        assert kernel in raw[registry] and registry in raw[kernel]


def test_results_has_at_most_ten_modules_at_its_top_level():
    top = sorted(p.name for p in (ROOT / "results").glob("*.py"))
    assert len(top) <= 10, top


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_about_400_lines(package):
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / package).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_nvml_is_read_in_one_place():
    callers = sorted(str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                     if ".nvmlDevice" in p.read_text() or "import pynvml" in p.read_text())
    assert callers and all(c.startswith("bench/nvml/") for c in callers), callers


def test_amdsmi_is_read_in_one_place():
    callers = sorted(str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                     if ".amdsmi_get" in p.read_text() or "import amdsmi" in p.read_text()
                     or 'import_module("amdsmi")' in p.read_text())
    assert callers and all(c.startswith("bench/amdsmi/") for c in callers), callers


def test_thresholds_holds_no_text_or_json_rendering():
    names = {p.stem for p in (ROOT / "thresholds").glob("*.py")}
    assert not names & {"render", "text", "serialize", "report_data", "verdict_block", "commands"}


def test_the_layout_in_docs_design_lists_every_module():
    text = (ROOT / "docs" / "design.md").read_text()
    block = text.split("## Layout", 1)[1].split("```")[1]
    listed, folder = set(), None
    for line in block.splitlines():
        if line.endswith("/") and not line.startswith(" "):
            folder = line.rstrip("/")
        elif line.startswith("  ") and line.split():
            listed.add(f"{folder}/{line.split()[0]}")
    actual = {str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    assert sorted(actual - listed) == [] and sorted(listed - actual) == []
