"""A command reads and writes only through its :class:`Stdio`.

Most command-line tests run a command in the test process on streams of their own
(:mod:`.inprocess`); what they check holds for a real process only if nothing in the
command line reaches ``sys.stdout``, ``sys.stderr``, ``sys.stdin`` or ``os.environ``
past it. Those names appear in three places only: where the process's own are read
(``Stdio.of_process``), where argparse's choice of stream is mapped onto the command's
(a comparison), and the default of the option readers' warning stream.
"""

from __future__ import annotations

import ast
import io
from pathlib import Path

import freedompay_async.cli
from freedompay_async.cli._main import build_parser, run_command
from freedompay_async.cli._stdio import Stdio

CLI = Path(freedompay_async.cli.__file__).parent
PROCESS_WIDE = {("sys", "stdout"), ("sys", "stderr"), ("sys", "stdin"), ("os", "environ")}


def _uses(tree: ast.AST) -> list[tuple[ast.Attribute, ast.AST | None]]:
    """Every ``sys.stdout``-like attribute in ``tree``, with its parent node."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    return [
        (node, parents.get(node))
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and (node.value.id, node.attr) in PROCESS_WIDE
    ]


def _allowed(module: str, parent: ast.AST | None) -> bool:
    if module == "_stdio.py":
        return True
    if module == "_main.py":  # ``file is sys.stdout``: argparse's stream, mapped
        return isinstance(parent, ast.Compare)
    if module == "_options.py":  # ``sys.stderr if err is None else err``
        return isinstance(parent, ast.IfExp)
    return False


def test_no_module_of_the_command_line_reaches_the_process_streams_past_its_stdio() -> None:
    found = [
        f"{path.name}:{node.lineno}: {ast.unparse(node)}"
        for path in sorted(CLI.glob("*.py"))
        for node, parent in _uses(ast.parse(path.read_text(encoding="utf-8")))
        if not _allowed(path.name, parent)
    ]
    assert found == []


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return run_command(list(argv), Stdio(out, err, {})), out.getvalue(), err.getvalue()


def test_help_usage_errors_and_version_go_to_the_commands_own_streams() -> None:
    assert _run("--help")[:2] == (0, build_parser().format_help())
    rc, out, err = _run("cancel", "--journal", "j", "--nope")
    assert (rc, out) == (2, "") and "unrecognized arguments: --nope" in err
    rc, out, err = _run("--version")
    assert rc == 0 and out.startswith("freedompay-async ") and err == ""


def test_a_sub_subcommands_help_and_errors_go_to_the_commands_own_streams() -> None:
    rc, out, err = _run("journal", "show", "--help")
    assert rc == 0 and "usage: freedompay-async journal show" in out and err == ""
    rc, out, err = _run("journal", "show")
    assert rc == 2 and out == "" and "the following arguments are required: PATH" in err


def test_a_command_reads_its_own_environment_not_the_process_s() -> None:
    rc, _, err = _run("status", "--base-url", "kz", "--input", "ids.txt")
    assert rc == 2 and "no merchant id" in err


def test_the_environment_is_kept_out_of_the_repr() -> None:
    stdio = Stdio(io.StringIO(), io.StringIO(), {"FREEDOMPAY_SECRET_KEY": "canary-key"})
    assert "canary-key" not in repr(stdio)
