"""No import cycle in ``crdtsync/``, and the query and mutation layers never import each other.

The graph is built statically with :mod:`ast` from the source files, without importing them:

- Every ``import`` and ``from ... import`` statement counts, **including those inside
  functions and methods** (a lazy import still ties the two modules together; deferring it
  only hides the cycle from the interpreter). Imports under ``if TYPE_CHECKING:`` do **not**
  count: they never run, and type annotations may name any layer.
- Importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first, so an edge to a
  module is also an edge to each of its parent packages inside ``crdtsync`` (this is how a
  package ``__init__`` that re-exports names closes a circle at runtime), except the importing
  module's own ancestors: they are already being imported when it runs.
- ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``.

The test fails on any cycle and prints one cycle per strongly connected component.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "crdtsync"
PACKAGE = "crdtsync"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, skipping the bodies of ``if TYPE_CHECKING:`` (not their else)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _with_parents(target: str, modules: dict[str, Path]) -> set[str]:
    parts = target.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules}


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        for node in _import_nodes(tree):
            targets: set[str] = set()
            if isinstance(node, ast.Import):
                for alias in node.names:
                    targets.add(alias.name)
            else:
                base = _resolve(module, is_package, node)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in modules else base)
            for target in targets:
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    graph[module] |= _with_parents(target, modules) - _with_parents(module, modules)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module (or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1 or node in graph[node]:
                        out.append(sorted(comp))
    return out


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle through the first module of ``component`` (breadth-first)."""
    members = set(component)
    start = component[0]
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [*reversed(path), start]
                if child not in prev:
                    prev[child] = node
                    nxt.append(child)
        frontier = nxt
    return component  # pragma: no cover (a component always has a cycle)


def describe(graph: dict[str, set[str]]) -> list[str]:
    return [" -> ".join(a_cycle(graph, comp)) for comp in strongly_connected(graph)]


def test_no_import_cycle_in_crdtsync() -> None:
    cycles = describe(import_graph())
    assert not cycles, "import cycles in crdtsync/:\n" + "\n".join(cycles)


ALLOWED: set[tuple[str, str]] = set()  # no exceptions: the lower layers never name the client
LOWER = ["crdtsync.core", "crdtsync.query", "crdtsync.mutations", "crdtsync.normalize"]


@pytest.mark.parametrize(("a", "b"), [("crdtsync.query", "crdtsync.mutations"),
                                      ("crdtsync.mutations", "crdtsync.query"),
                                      ("crdtsync.normalize", "crdtsync.query"),
                                      ("crdtsync.normalize", "crdtsync.mutations"),
                                      ("crdtsync.core", "crdtsync.query"),
                                      ("crdtsync.core", "crdtsync.mutations"),
                                      ("crdtsync.core", "crdtsync.normalize"),
                                      *((low, "crdtsync.client") for low in LOWER)])
def test_layer_does_not_import(a: str, b: str) -> None:
    graph = import_graph()
    bad = sorted(f"{m} -> {t}" for m, targets in graph.items() if m == a or m.startswith(a + ".")
                 for t in targets if (t == b or t.startswith(b + ".")) and (m, t) not in ALLOWED)
    assert not bad, f"{a} must not import {b}:\n" + "\n".join(bad)


# -- the checker itself ----------------------------------------------------------------------
def test_checker_finds_a_cycle_and_ignores_type_checking(tmp_path: Path) -> None:
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    assert describe(graph) == ["p.a -> p.b -> p.c -> p.a"]
    assert describe({"p.a": {"p.b"}, "p.b": set()}) == []
    src = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import x\nelse:\n    from . import y\n" \
          "def f():\n    from . import z\n"
    found = {n.names[0].name for n in _import_nodes(ast.parse(src)) if isinstance(n, ast.ImportFrom) and n.level}
    assert found == {"y", "z"}


def test_checker_sees_parent_packages() -> None:
    graph = import_graph()
    # offline.dehydrate imports crdtsync.query.filters: crdtsync/query/__init__ runs first
    assert {"crdtsync.query.filters", "crdtsync.query"} <= graph["crdtsync.offline.dehydrate"]
    # ... but a module's own ancestors are no edges (they are being imported already)
    assert "crdtsync" not in graph["crdtsync.query.query"]
    assert "crdtsync.query" not in graph["crdtsync.query.query"]
