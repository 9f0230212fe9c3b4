"""The package's shape: no import circle between modules or packages, and imports between the
layers of docs/architecture.md point one way (down)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sidecar"
DOC = ROOT / "docs" / "architecture.md"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(tree: ast.AST, modules: Iterable[str]) -> set[str]:
    """Every sidecar module a file imports, anywhere in it (functions and TYPE_CHECKING too)."""
    known = set(modules)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {
        name: imported(ast.parse(path.read_text(), str(path)), modules) - {name}
        for name, path in modules.items()
    }


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def collapsed(graph: Mapping[str, set[str]], package: str) -> dict[str, set[str]]:
    """The graph between the direct children of ``package`` (each child package as one node)."""

    def child(name: str) -> str | None:
        if not name.startswith(package + "."):
            return None
        return package + "." + name[len(package) + 1 :].split(".")[0]

    out: dict[str, set[str]] = {}
    for src, targets in graph.items():
        a = child(src)
        if a is None:
            continue
        out.setdefault(a, set())
        for target in targets:
            b = child(target)
            if b is not None and b != a:
                out[a].add(b)
    return out


def packages() -> list[str]:
    return sorted(module_name(init) for init in PACKAGE.rglob("__init__.py"))


def layers() -> list[list[str]]:
    """The rows of the layer table in docs/architecture.md, top (imports most) first."""
    text = DOC.read_text()
    table = text.split("<!-- layers -->")[1].split("<!-- /layers -->")[0]
    rows = [line for line in table.splitlines() if line.startswith("|")][2:]
    return [re.findall(r"`(sidecar[\w.]*)`", row) for row in rows]


def unit_of(module: str, units: Iterable[str]) -> str | None:
    matches = [u for u in units if module == u or module.startswith(u + ".")]
    return max(matches, key=len) if matches else None


def test_no_import_circle_between_modules() -> None:
    """No two sidecar modules import each other, directly or through others."""
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("package", packages())
def test_no_import_circle_between_packages(package: str) -> None:
    """Inside every package, its modules and subpackages import each other one way only."""
    assert cycles(collapsed(import_graph(), package)) == []


def test_every_module_is_in_a_layer() -> None:
    """docs/architecture.md places every module of the package in exactly one layer."""
    units = [unit for row in layers() for unit in row]
    assert len(units) == len(set(units))
    graph = import_graph()
    # A package whose __init__ imports nothing (a docstring only) needs no layer of its own.
    placed = [m for m in graph if graph[m] or all_modules()[m].name != "__init__.py"]
    assert [m for m in placed if unit_of(m, units) is None] == []


def test_imports_point_down_the_layers() -> None:
    """A module imports only from its own unit or from units in lower layers."""
    rank = {unit: i for i, row in enumerate(layers()) for unit in row}
    wrong = []
    for src, targets in import_graph().items():
        a = unit_of(src, rank)
        for target in targets:
            b = unit_of(target, rank)
            if a and b and a != b and rank[b] <= rank[a]:
                wrong.append(f"{src} -> {target}")
    assert sorted(wrong) == []


def test_the_checks_catch_a_circle_and_an_upward_import() -> None:
    """The checks themselves: a two-module circle is found, and so is a package-level one."""
    graph = {"p.a.x": {"p.b.y"}, "p.b.y": {"p.a.z"}, "p.a.z": set()}
    assert cycles(graph) == []
    assert cycles(collapsed(graph, "p")) == [["p.a", "p.b"]]
    assert cycles({"m": {"n"}, "n": {"m"}}) == [["m", "n"]]
