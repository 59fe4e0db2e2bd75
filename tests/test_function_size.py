"""No function in the package is over 60 lines: long functions become small objects.

A newcomer reads one function at a time; past a screen it stops being one thought.
The limit counts every line of the definition, docstring and decorators included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import freedompay_async

PACKAGE = Path(freedompay_async.__file__).parent
LIMIT = 60


def _long_functions(source: str, path: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = (node.end_lineno or node.lineno) - first + 1
            if length > LIMIT:
                found.append(f"{path}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_the_checker_finds_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    assert _long_functions(f"def long():\n{body}\n", "m.py") == ["m.py:1 long (61 lines)"]
    assert _long_functions(f"def short():\n{body[: body.rindex(chr(10))]}\n", "m.py") == []


def test_no_function_in_the_package_is_over_sixty_lines() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = str(path.relative_to(PACKAGE.parent))
        found += _long_functions(path.read_text(encoding="utf-8"), relative)
    assert found == []
