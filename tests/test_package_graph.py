"""The import graph of ``circinus`` has no cycle between its packages, nor between CLI modules.

The graph is read from the source with :mod:`ast`, without importing anything:

* a *node* is a subpackage of ``circinus`` (``circinus.report`` stands for every module under
  ``src/circinus/report``) or a top-level module (``circinus.planner``, ``circinus.errors``);
  ``circinus`` itself (its ``__init__``) is a node of its own;
* there is an edge ``A -> B`` when a module of ``A`` imports a module of ``B``, at module level
  or inside a function (an ``import`` statement, or ``importlib.import_module`` of a literal
  name); imports under ``if TYPE_CHECKING:`` are left out, since they never run.

``from circinus.x import name`` names the module ``circinus.x.name`` when that module exists and
``circinus.x`` otherwise; relative imports are resolved against the importing module.

A cycle between two distinct nodes fails the test with its path, e.g.
``circinus.report -> circinus.simulate -> circinus.report``. Within a package, modules may
import each other freely, except in ``circinus.cli``, whose modules form a graph of their own
that must be acyclic too: subcommand modules import ``circinus.cli.common``, ``circinus.cli.main``
imports the subcommands, never the reverse.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "circinus"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    """Module name -> file, for every module under ``src/circinus``."""
    return {_module_name(p): p for p in sorted((SRC / ROOT).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _literal_import(node: ast.AST) -> str | None:
    """``name`` for a call ``importlib.import_module("name")`` (or ``import_module("name")``)."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)):
        return None
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return node.args[0].value if called == "import_module" else None


def _import_nodes(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom | str]:
    """Every import under ``node`` that can run (not under ``if TYPE_CHECKING:``): the import
    statements, and the module names of literal ``import_module`` calls."""
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for stmt in node.orelse:
            yield from _import_nodes(stmt)
        return
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    literal = _literal_import(node)
    if literal is not None:
        yield literal
    for child in ast.iter_child_nodes(node):
        yield from _import_nodes(child)


def _imports(name: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The modules of ``circinus`` that module ``name`` (in ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for stmt in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(stmt, str):
            found.add(stmt)
            continue
        if isinstance(stmt, ast.Import):
            found.update(alias.name for alias in stmt.names)
            continue
        base = stmt.module or ""
        if stmt.level:
            anchor = package.split(".")[: len(package.split(".")) - (stmt.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in stmt.names:
            sub = f"{base}.{alias.name}"
            found.add(sub if sub in modules else base)
    return {m for m in found if m == ROOT or m.startswith(ROOT + ".")}


def _node(module: str) -> str:
    """The package-level node of ``module``: ``circinus.report.gather`` -> ``circinus.report``."""
    return ".".join(module.split(".")[:2])


def module_graph() -> dict[str, set[str]]:
    """Module -> the modules of ``circinus`` it imports."""
    modules = _sources()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def package_graph() -> dict[str, set[str]]:
    """Node -> the other nodes its modules import (see the module docstring)."""
    graph: dict[str, set[str]] = {}
    for module, targets in module_graph().items():
        src = _node(module)
        graph.setdefault(src, set()).update(_node(t) for t in targets if _node(t) != src)
    return graph


def cli_graph() -> dict[str, set[str]]:
    """Module of ``circinus.cli`` -> the modules of ``circinus.cli`` it imports."""
    inside = f"{ROOT}.cli"
    return {m: {t for t in targets if t.startswith(inside + ".") and t != m}
            for m, targets in module_graph().items() if m == inside or m.startswith(inside + ".")}


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one node, as the shortest cycle through
    each of its nodes, a closed path ``[a, b, ..., a]`` starting at its least node by name; no
    cycle twice (empty when the graph is acyclic)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm; the graphs are a few dozen nodes deep.
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found: list[list[str]] = []
    for component in sorted((c for c in components if len(c) > 1), key=min):
        for start in sorted(component):
            path = _shortest_cycle(graph, component, start)
            least = path.index(min(path))
            path = [*path[least:-1], *path[:least], path[least]]
            if path not in found:
                found.append(path)
    return found


def _shortest_cycle(graph: Mapping[str, set[str]], component: set[str], start: str) -> list[str]:
    """The shortest closed path from ``start`` back to it within ``component``."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph.get(v, set()) & component):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in parent:
                    parent[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"{sorted(component)} is not strongly connected")


def _describe(found: list[list[str]]) -> str:
    return "\n".join(" -> ".join(c) for c in found)


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c", "d"}, "c": {"a"}, "d": set(), "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": {"b"}, "x": {"y"}, "y": {"x"}}
    assert cycles(graph) == [["a", "b", "a"], ["b", "c", "b"], ["x", "y", "x"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_import_resolution(tmp_path: Path) -> None:
    pkg = tmp_path / "p"
    pkg.mkdir()
    (pkg / "m.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import circinus.errors\n"
        "from circinus.report import gather\n"
        "from . import sibling\n"
        "from .. import planner\n"
        "if TYPE_CHECKING:\n"
        "    from circinus.bench import scale\n"
        "else:\n"
        "    from circinus.plan import records\n"
        "def f() -> None:\n"
        "    from circinus.simulate.load import read_plan_file\n"
        "    importlib.import_module('circinus.profile')\n"
        "    importlib.import_module(name)\n")
    modules = {m: Path() for m in ("circinus.report.gather", "circinus.plan.records",
                                    "circinus.x.sibling", "circinus.planner")}
    found = _imports("circinus.x.m", pkg / "m.py", modules)
    assert found == {"circinus.errors", "circinus.report.gather", "circinus.x.sibling",
                     "circinus.planner", "circinus.plan.records", "circinus.simulate.load",
                     "circinus.profile"}


def test_no_cycle_between_packages() -> None:
    graph = package_graph()
    assert {"circinus.planner", "circinus.report", "circinus.cli"} <= set(graph)
    found = cycles(graph)
    assert not found, f"import cycles between packages of circinus:\n{_describe(found)}"


def test_no_cycle_between_cli_modules() -> None:
    graph = cli_graph()
    assert "circinus.cli.main" in graph
    found = cycles(graph)
    assert not found, f"import cycles between modules of circinus.cli:\n{_describe(found)}"
