"""The project's import graph: no cycles, and layers that only import downwards.

Every ``.py`` file under ``features/``, ``training/`` and ``serving/`` is parsed
(never imported) and every import statement counts, those inside functions and
under ``if TYPE_CHECKING`` too: a lazy import still ties two modules together,
and only hides a cycle until someone moves it to the top of the file.

Layers (DESIGN.md section 1): ``features`` <- ``serving`` <- ``training``:
features imports neither serving nor training; serving imports no training.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "serving", "training")
#: What each package must never import (DESIGN.md section 1).
FORBIDDEN = {"features": {"serving", "training"}, "serving": {"training"}, "training": set()}


@dataclass(frozen=True)
class Import:
    """One import of a project module by another, where it is written."""

    importer: str
    imported: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} -> {self.imported}"


def module_name(path: Path, root: Path = ROOT) -> str:
    """``serving/api/deps.py`` -> ``serving.api.deps``; a package's ``__init__.py`` is
    the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    return {
        module_name(path, root): path
        for package in PACKAGES
        for path in sorted((root / package).rglob("*.py"))
    }


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The module an ``ImportFrom`` names, with relative levels resolved."""
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _deepest_known(name: str, modules: Mapping[str, Path]) -> str | None:
    """``name`` or its closest enclosing module that belongs to the project."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(importer: str, path: Path, modules: Mapping[str, Path]) -> Iterator[Import]:
    """The project modules ``path`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, importer, is_package)
            # ``from pkg import mod`` imports the module ``pkg.mod`` when there is one.
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        else:
            continue
        for name in names:
            target = _deepest_known(name, modules)
            if target is not None and target != importer:
                yield Import(importer, target, path, node.lineno)


def import_graph(root: Path = ROOT) -> tuple[dict[str, set[str]], list[Import]]:
    """``{module: modules it imports}`` over the project, and every import found."""
    modules = project_modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    found: list[Import] = []
    for name, path in modules.items():
        for edge in imports_of(name, path, modules):
            graph[name].add(edge.imported)
            found.append(replace(edge, path=path.relative_to(root)))
    return graph, found


def find_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one, e.g. ``[a, b, a]``.

    Tarjan's algorithm finds the components; a path around each is then walked
    inside its component, so the report names real import edges.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)

    cycles = []
    for component in components:
        members = set(component)
        start = min(component)
        if len(component) == 1 and start not in graph.get(start, ()):
            continue
        cycles.append(_walk_cycle(graph, start, members))
    return cycles


def _walk_cycle(graph: Mapping[str, set[str]], start: str, members: set[str]) -> list[str]:
    """A shortest path from ``start`` back to itself within ``members`` (breadth first)."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node] & members):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start] * 2
                if succ not in parents:
                    parents[succ] = node
                    following.append(succ)
        frontier = following
    raise AssertionError(f"{start} is in a cycle but no path returns to it")


def layering_violations(found: list[Import]) -> list[Import]:
    """Imports against features <- serving <- training."""
    return [
        edge
        for edge in found
        if edge.imported.split(".")[0] in FORBIDDEN[edge.importer.split(".")[0]]
    ]


# ---------------------------------------------------------------------------- tests


def test_the_project_has_no_import_cycle():
    graph, _ = import_graph()
    cycles = find_cycles(graph)
    assert not cycles, "Import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_imports_follow_the_layers():
    _, found = import_graph()
    violations = layering_violations(found)
    assert not violations, "Imports against features <- serving <- training:\n" + "\n".join(
        str(v) for v in violations
    )


def test_the_graph_sees_the_project():
    """The scan finds the modules and imports that are known to exist, lazy ones included."""
    graph, found = import_graph()
    assert {"features.spec", "serving.app", "training.cli", "serving.api.routes.route"} <= set(
        graph
    )
    assert "serving.api.deps" in graph["serving.app"]
    # `training.cli` imports `serving.commands` inside a function.
    assert "serving.commands" in graph["training.cli"]
    assert any(
        e.importer == "serving.api.main" and e.imported == "serving.api.routes.route" for e in found
    )


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c", "a"]]),
        ({"a": {"a"}}, [["a", "a"]]),
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b", "a"], ["c", "d", "c"]]),
        ({"a": {"b", "c"}, "b": {"c"}, "c": set()}, []),
    ],
    ids=["three modules", "self import", "two cycles", "diamond, no cycle"],
)
def test_the_cycle_detector_finds_made_up_cycles(graph, expected):
    assert sorted(find_cycles(graph)) == expected


def test_the_scan_finds_a_cycle_and_a_layer_violation_in_a_made_up_project(tmp_path):
    """The same scan as above, on files written here: a lazy import closing a cycle, a
    relative import, and features importing serving."""
    files = {
        "features/__init__.py": "",
        "features/spec.py": "def f():\n    from serving import app\n",
        "serving/__init__.py": "",
        "serving/app.py": "from .api import deps\n",
        "serving/api/__init__.py": "",
        "serving/api/deps.py": "import serving.reload\n",
        "serving/reload.py": "def later():\n    from serving.app import create_app\n",
        "training/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph, found = import_graph(tmp_path)
    assert find_cycles(graph) == [
        ["serving.api.deps", "serving.reload", "serving.app", "serving.api.deps"]
    ]
    violations = layering_violations(found)
    assert [(v.importer, v.imported, v.line) for v in violations] == [
        ("features.spec", "serving.app", 2)
    ]
