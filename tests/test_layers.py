"""Imports run one way: a module knows its own layer and those below it, never one above,
and no modules import each other in a circle (imports made only for type checking, or
inside functions, count too).

    composition   app.main, app.cli, app.server, app.openapi, app.__main__, app.migrations
    HTTP edge     app.api
    domain        app.domain
    platform      app.platform: no FastAPI, no Starlette, no uvicorn
"""

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.databases import PROJECT_ROOT

APP = PROJECT_ROOT / "app"
LAYERS = {"app.platform": 0, "app.domain": 1, "app.api": 2}
COMPOSITION = 3
HTTP_PACKAGES = ("fastapi", "starlette", "uvicorn", "httptools")
# The route modules: what a newcomer copies to write a route.
ROUTES = ("app.api.users", "app.api.items", "app.api.auth", "app.api.health", "app.api.metrics")


def _module(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(path): path for path in APP.rglob("*.py")}


def _layer(module: str) -> int:
    for package, layer in LAYERS.items():
        if module == package or module.startswith(package + "."):
            return layer
    return COMPOSITION


def _imports(path: Path) -> Iterator[tuple[str, ast.ImportFrom | ast.Import]]:
    """Every module `path` imports, wherever the import statement is."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                yield (submodule if submodule in MODULES else node.module), node


def _graph() -> dict[str, set[str]]:
    return {
        module: {target for target, _ in _imports(path) if target in MODULES and target != module}
        for module, path in MODULES.items()
    }


def test_the_layers_are_the_packages_we_think() -> None:
    layered = {_layer(module) for module in MODULES}
    assert layered == {0, 1, 2, COMPOSITION}
    assert "app.platform.sessions" in MODULES  # the session kinds live in the platform


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [
        f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
        for module, targets in _graph().items()
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    graph = _graph()
    circles: list[list[str]] = []
    # Tarjan's strongly connected components: a component of more than one module is
    # a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert circles == []


def test_the_platform_knows_nothing_of_http() -> None:
    found = [
        f"{module} imports {target}"
        for module, path in MODULES.items()
        if _layer(module) == 0
        for target, _ in _imports(path)
        if target.split(".")[0] in HTTP_PACKAGES
    ]
    assert found == []


def test_no_route_module_renames_what_it_imports_of_the_app() -> None:
    renamed = [
        f"{module}: {alias.name} as {alias.asname}"
        for module in ROUTES
        for target, node in _imports(MODULES[module])
        if target.startswith("app")
        for alias in node.names
        if alias.asname
    ]
    assert renamed == []
