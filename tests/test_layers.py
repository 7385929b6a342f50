"""The layers of docs/architecture.md, held by the import graph: routes → services → domain
operations + views → store engines. Read from the source (every ``import`` statement, function
-local ones included), so a test needs no running app and names the offending line."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import client_sdk
import gateway

ROOT = Path(gateway.__file__).parent
# The HTTP machinery, which no layer below the routes may load, even through another module.
HTTP = ("starlette", "uvicorn", "gateway.http", "gateway.routes", "gateway.app", "gateway.edge")
# The HTTP edge's errors (each carries a status): what the domain and views must not raise.
# (``gateway.settings`` roots its error there, so a module may load it without naming it.)
HTTP_ERRORS = ("gateway.errors",)
ENGINES = ("gateway.store.sqlite", "gateway.store.postgres", "gateway.store.base")


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below ``node``, less the bodies of ``if TYPE_CHECKING:`` (imports that only
    annotations use, never loaded at run time)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _walk(other)
            continue
        yield child
        yield from _walk(child)


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports (``from package import module`` names the module)."""
    module = _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _walk(ast.parse(path.read_text(), str(path))):
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
    assert sorted(t for t in GRAPH[module] if _in(t, *HTTP_ERRORS)) == []


@pytest.mark.parametrize("module", _layer("gateway.views"))
def test_views_use_no_engine_and_no_http(module: str) -> None:
    assert sorted(t for t in GRAPH[module] if _in(t, *ENGINES, *HTTP_ERRORS)) == []
    assert sorted(t for t in _reach(module) if _in(t, *HTTP)) == []


@pytest.mark.parametrize("module", _layer("gateway.services"))
def test_services_never_see_a_request(module: str) -> None:
    """Services take and return Structs (an upload is ``attachments.Upload``, not Starlette's)."""
    assert sorted(t for t in _reach(module) if _in(t, *HTTP)) == []


@pytest.mark.parametrize("module", _layer("gateway.realtime.core"))
def test_the_realtime_core_is_sans_io(module: str) -> None:
    """Bytes, time and store results in, actions and frames out: no event loop, no broker, no
    store, no server (websockets' masking helper is a pure function)."""
    shell = ("asyncio", "anyio", "gateway.broker", "gateway.store", "gateway.domain", *HTTP)
    # Its own imports: each core module is checked, and Python loading the parent package
    # (the shell's __init__) on the way in is not the core depending on it.
    assert sorted(t for t in GRAPH[module] if _in(t, *shell)) == []


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
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert cycles == []


# Each module on its own: the gateway's and the SDK's modules are dropped from sys.modules
# before each import, so an import that works only after another module was loaded (a cycle
# broken by import order) fails here. gateway.metrics registers its collectors in
# prometheus_client's process-wide registry at import, as that library intends; each import
# starts from an empty registry.
ISOLATED_IMPORTS = """
import importlib, sys
from prometheus_client import REGISTRY
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ("gateway", "client_sdk")]:
        del sys.modules[loaded]
    for collector in list(REGISTRY._collector_to_names):
        REGISTRY.unregister(collector)
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_on_its_own() -> None:
    names = [
        info.name
        for package, prefix in ((gateway, "gateway."), (client_sdk, "client_sdk."))
        for info in pkgutil.walk_packages(package.__path__, prefix)
        if not info.name.endswith("__main__")
    ]
    result = subprocess.run(
        [sys.executable, "-c", ISOLATED_IMPORTS, *names],
        cwd=ROOT.parent, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


ROOTS = {
    "gateway": "gateway.errors.GatewayError",  # the top-level modules (edge, settings, ...)
    "gateway.domain": "gateway.domain.errors.DomainError",
    "gateway.store": "gateway.store.base.StoreError",
    "gateway.broker": "gateway.broker.base.BrokerError",
    "gateway.webhooks": "gateway.webhooks.guard.UrlRefused",
    "gateway.realtime": "gateway.realtime.core.errors.RealtimeError",
    "client_sdk": "client_sdk.errors.InboxError",
}


def _members(package: str) -> list[str]:
    if package == "gateway":  # its own modules; each subpackage has its own root
        top = [m for m in GRAPH if m.count(".") == 1 and not m.endswith("__main__")]
        return [m for m in top if m.rpartition(".")[2] not in SUBPACKAGES]
    if package == "client_sdk":
        return [info.name for info in pkgutil.walk_packages(client_sdk.__path__, "client_sdk.")]
    return _layer(package)


SUBPACKAGES = {path.name for path in ROOT.iterdir() if (path / "__init__.py").exists()}


@pytest.mark.parametrize("package", sorted(ROOTS))
def test_one_exception_root_per_package(package: str) -> None:
    """Every exception a package defines descends from its one root (drawn in its docstring)."""
    module_name, _, root_name = ROOTS[package].rpartition(".")
    root = getattr(importlib.import_module(module_name), root_name)
    strays = []
    members = _members(package)
    assert members, f"{package} has no module: the rule would hold of nothing"
    for module in members:
        for value in vars(importlib.import_module(module)).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module
                and not issubclass(value, root)
            ):
                strays.append(f"{module}.{value.__name__}")
    assert strays == []
