"""The house by layer: every module imports only its own layer or the layers below it.

The layers, from the ground up, are listed in ``docs/development.md``. A module that
imports a higher layer (or any import circle between layers) fails here, with the
file and the import named. Within a layer no module may take part in an import
circle either: every import statement counts, at the top, inside a function or under
``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import freedompay_async

PACKAGE = Path(freedompay_async.__file__).parent

#: Layer of each top-level module or package, lowest first; equal numbers may not
#: import each other.
LAYERS: dict[str, int] = {
    "_version": 0,
    "_exceptions": 0,
    "_argtypes": 0,
    "_config": 1,
    "_wire": 2,
    "_coordination": 2,
    "_transport": 3,
    "_layers": 3,
    "_operations": 3,
    "_settling": 4,
    "otel": 4,
    "coordination": 4,
    "redis": 4,
    "_direct": 5,
    "_session": 6,
    "callbacks": 7,
    "sandbox": 7,
    "__init__": 8,
    "cli": 9,
    "__main__": 10,
}


def _top(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py") if len(relative.parts) == 1 else relative.parts[0]


def _imported_tops(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = path.relative_to(PACKAGE).parent.parts
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[: len(here) - (node.level - 1)])
                parts = base + (node.module.split(".") if node.module else [])
                if not parts:  # ``from . import x`` at the package root
                    parts = [alias.name for alias in node.names]
                found.add(parts[0])
            elif node.module and node.module.startswith("freedompay_async."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("freedompay_async."):
                    found.add(alias.name.split(".")[1])
    return found


def test_every_module_has_a_layer() -> None:
    tops = {_top(p) for p in PACKAGE.rglob("*.py")}
    assert tops <= set(LAYERS), f"modules with no layer: {sorted(tops - set(LAYERS))}"


def test_no_import_runs_up_or_across_a_layer() -> None:
    wrong: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        mine = _top(path)
        for other in _imported_tops(path) - {mine}:
            if other in LAYERS and LAYERS[other] >= LAYERS[mine]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {other}")
    assert wrong == []


def test_the_layers_the_docs_name_are_the_packages() -> None:
    text = (PACKAGE.parent / "docs" / "development.md").read_text(encoding="utf-8")
    for name in ("_wire/", "_transport/", "_layers/", "_operations/", "_settling/", "_direct/"):
        assert f"`{name}`" in text


# -- import circles among modules ---------------------------------------------------------


def _module_name(path: str) -> str:
    """``a/b/c.py`` -> ``a.b.c``; ``a/b/__init__.py`` -> ``a.b``."""
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.Import | ast.ImportFrom, package: list[str], known: set[str]) -> set[str]:
    """The known modules one import statement names (a package's ``__init__`` for a
    name it holds, the submodule for a module)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in known}
    base = package[: len(package) - node.level + 1] if node.level else []
    target = ".".join(base + (node.module.split(".") if node.module else []))
    found = set()
    for alias in node.names:
        name = f"{target}.{alias.name}"
        if name in known:
            found.add(name)
        elif target in known:
            found.add(target)
    return found


def import_graph(sources: Mapping[str, str]) -> dict[str, set[str]]:
    """Module -> the modules it imports, among ``sources`` (path relative to the
    package's parent -> source text), counting every import statement in a file."""
    known = {_module_name(path) for path in sources}
    graph: dict[str, set[str]] = {}
    for path, text in sources.items():
        name = _module_name(path)
        package = name.split(".") if path.endswith("__init__.py") else name.split(".")[:-1]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges |= _targets(node, package, known)
        graph[name] = edges - {name}
    return graph


def import_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: each a sorted group of modules that reach each
    other (strongly connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _package_sources() -> dict[str, str]:
    root = PACKAGE.parent
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_no_import_circles_among_modules() -> None:
    assert import_cycles(import_graph(_package_sources())) == []


def test_the_cycle_check_finds_lazy_and_type_checking_imports() -> None:
    sources = {
        "pkg/__init__.py": "",
        "pkg/a.py": "def f():\n    from .b import g  # imported here\n    return g\n",
        "pkg/b.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from pkg.a import f\n"
            "def g(): ...\n"
        ),
        "pkg/c.py": "from . import a\n",
    }
    graph = import_graph(sources)
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.c"] == {"pkg.a"}
    assert import_cycles(graph) == [["pkg.a", "pkg.b"]]
    sources["pkg/b.py"] = "def g(): ...\n"
    assert import_cycles(import_graph(sources)) == []
