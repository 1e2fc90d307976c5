"""The app's packages import each other in one direction only: no cycle between `app.*` packages.

Every `import`/`from ... import` in every module counts, including those inside functions: a function-level
import hides a cycle from the interpreter at import time, not from the design (`app.ops.reindex` and
`app.worker.tasks` used to import each other that way). The graph is read from the source with `ast`, so the
check needs none of the optional dependencies installed and sees modules that are never imported by a test.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"

# What each layer may import besides itself: core is the bottom, services sits on it, the processes on top.
# The dev-only top-level modules (app.local, app.dev_*) are free to wire everything together.
ALLOWED = {
    "app.core": set(),
    "app.services": {"app.core"},
    "app.embedder": {"app.core", "app.services"},
    "app.api": {"app.core", "app.services"},
    "app.worker": {"app.core", "app.services"},
    "app.ops": {"app.core", "app.services", "app.worker"},
}


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path) -> Iterator[str]:
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target
            # `from app.services import factory` names a submodule, not an attribute.
            yield from (f"{target}.{alias.name}" for alias in node.names)


def _package(module: str, root: Path) -> str | None:
    """`app.api.routers.chat` -> `app.api`; top-level modules (`app.local`) are their own node."""
    parts = module.split(".")
    if parts[0] != "app" or len(parts) < 2:
        return None
    if (root / parts[1]).is_dir() or (root / f"{parts[1]}.py").is_file():
        return f"app.{parts[1]}"
    return None


def package_graph(root: Path = APP) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        source = _package(_module_name(path, root), root)
        if source is None:  # app/__init__.py
            continue
        edges = graph.setdefault(source, set())
        for target in (_package(module, root) for module in _imports(path, root)):
            if target is not None and target != source:
                edges.add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one package (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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


def test_the_graph_sees_function_level_imports(tmp_path: Path) -> None:
    """The checker itself: the old worker <-> ops circle, written inside functions, is a cycle."""
    root = tmp_path / "app"
    for package, body in {
        "worker": "def job():\n    from app.ops.reindex import Reindexer\n",
        "ops": "def main():\n    from app.worker.tasks import build_indexer\n",
    }.items():
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
        (root / package / "mod.py").write_text(body)
    assert cycles(package_graph(root)) == [["app.ops", "app.worker"]]


def test_no_cycle_between_app_packages() -> None:
    found = cycles(package_graph())
    assert not found, f"import cycles between app packages: {found}"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_lower_layers_do_not_import_upper_ones(package: str) -> None:
    extra = package_graph().get(package, set()) - ALLOWED[package]
    assert not extra, f"{package} imports {sorted(extra)} (allowed: {sorted(ALLOWED[package]) or 'nothing'})"
