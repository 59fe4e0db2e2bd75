"""The house by layer: every module imports only its own layer or the layers below it.

The layers, from the ground up, are listed in ``docs/development.md``. A module that
imports a higher layer (or any import circle between layers) fails here, with the
file and the import named.
"""

from __future__ import annotations

import ast
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
