"""The layers of docs/architecture.md, held by the import graph: routes → services → domain
operations + views → store engines. Read from the source (every ``import`` statement, function
-local ones included), so a test needs no running app and names the offending line."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import gateway

ROOT = Path(gateway.__file__).parent
HTTP = ("starlette", "gateway.http", "gateway.routes", "gateway.app", "gateway.errors")
ENGINES = ("gateway.store.sqlite", "gateway.store.postgres", "gateway.store.base")


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports (``from package import module`` names the module)."""
    module = _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in GRAPH_NAMES else target)
    return found


GRAPH_NAMES = {_module_of(path) for path in ROOT.rglob("*.py")}
GRAPH = {_module_of(path): _imports(path) for path in ROOT.rglob("*.py")}


def _in(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _reach(start: str) -> set[str]:
    """Every module ``start`` loads, directly or not (a package's ``__init__`` included)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        module = todo.pop()
        for target in GRAPH.get(module, ()):
            parents = [".".join(target.split(".")[:i]) for i in range(1, target.count(".") + 1)]
            for name in [*parents, target]:
                if name not in seen:
                    seen.add(name)
                    todo.append(name)
    return seen


def _layer(prefix: str) -> list[str]:
    return sorted(m for m in GRAPH if _in(m, prefix))


@pytest.mark.parametrize("module", _layer("gateway.store"))
def test_store_engines_know_no_domain(module: str) -> None:
    above = ("gateway.domain", "gateway.views", "gateway.services", *HTTP)
    assert sorted(t for t in GRAPH[module] if _in(t, *above)) == []


@pytest.mark.parametrize("module", _layer("gateway.domain"))
def test_domain_loads_no_http(module: str) -> None:
    assert sorted(t for t in _reach(module) if _in(t, *HTTP, "gateway.services")) == []


@pytest.mark.parametrize("module", _layer("gateway.views"))
def test_views_use_no_engine_and_no_http(module: str) -> None:
    assert sorted(t for t in GRAPH[module] if _in(t, *ENGINES)) == []
    assert sorted(t for t in _reach(module) if _in(t, *HTTP)) == []


LAYERED = ("gateway.routes", "gateway.services", "gateway.domain", "gateway.views", "gateway.store")


def test_no_import_cycle_between_modules() -> None:
    """Tarjan's strongly connected components: any of more than one module is a cycle (among
    the layered packages'; the realtime shell has its own)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in GRAPH.get(module, ()):
            if target not in GRAPH:
                continue
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1 and any(_in(m, *LAYERED) for m in component):
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert cycles == []


def test_every_module_imports() -> None:
    for info in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)


ROOTS = {
    "gateway.domain": "gateway.domain.errors.DomainError",
    "gateway.store": "gateway.store.base.StoreError",
    "gateway.broker": "gateway.broker.base.BrokerError",
    "gateway.webhooks": "gateway.webhooks.guard.UrlRefused",
}


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_one_exception_root_per_package(package: str) -> None:
    """Every exception a package defines descends from its one root (drawn in its docstring)."""
    module_name, _, root_name = ROOTS[package].rpartition(".")
    root = getattr(importlib.import_module(module_name), root_name)
    strays = []
    for module in _layer(package):
        for value in vars(importlib.import_module(module)).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module
                and not issubclass(value, root)
            ):
                strays.append(f"{module}.{value.__name__}")
    assert strays == []
