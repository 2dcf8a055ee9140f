"""The package's import graph: layers point one way (laws ← fitting ← adapters), and no module imports itself back.

Every import counts, including the ones inside functions (a lazy import hides a circle, it does not
remove it). A module ``a.b.c`` also depends on its packages ``a.b`` and ``a`` (Python runs their
``__init__`` first).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "scaling_callback"
PACKAGE = "scaling_callback"


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in modules else base)
    edges = set()
    for target in targets:
        while target and target not in modules:
            target = target.rsplit(".", 1)[0] if "." in target else ""
        if target and target.startswith(PACKAGE) and target != name:
            edges.add(target)
    return edges


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    for name in modules:  # importing a.b.c runs a.b's __init__ first
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        if parent in modules and parent != PACKAGE:
            graph[name].add(parent)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges between modules, where a package's ``__init__`` re-exporting its own modules is no circle."""
    return {name: {t for t in edges if not name.startswith(t + ".")} for name, edges in graph.items()}


def test_no_import_circle_anywhere_in_the_package():
    assert _cycles(_without_package_inits(_graph())) == []


def test_laws_and_fitting_import_nothing_from_the_adapters():
    graph = _graph()
    for name, edges in graph.items():
        if name.startswith(f"{PACKAGE}.laws"):
            assert all(e.startswith(f"{PACKAGE}.laws") or e == f"{PACKAGE}.errors" for e in edges), (name, edges)
        if name.startswith(f"{PACKAGE}.fitting"):
            allowed = (f"{PACKAGE}.laws", f"{PACKAGE}.fitting", f"{PACKAGE}.errors")
            assert all(e.startswith(allowed) for e in edges), (name, edges)


def test_stopping_reads_no_store_and_no_callback():
    for name, edges in _graph().items():
        if name.startswith(f"{PACKAGE}.stopping"):
            assert not any(e.startswith((f"{PACKAGE}.store", f"{PACKAGE}.callback")) for e in edges), (name, edges)
