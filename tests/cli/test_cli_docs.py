"""The command line's shape: its documentation cannot drift from its parser, every
option has a help text, and no function of the ``cli`` package is long."""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterator
from pathlib import Path

import freedompay_async.cli as cli
from freedompay_async.cli import build_parser

DOCS = Path(__file__).resolve().parents[2] / "docs"
CLI_DOC = DOCS / "cli.md"
#: Options of other tools that appear in the guide's shell sessions.
OTHER_TOOLS = {"--from-literal", "--image"}


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse._SubParsersAction]:  # type: ignore[type-arg]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield action


def _commands() -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command, as "journal summary", with its parser."""
    stack = [("", build_parser())]
    while stack:
        prefix, parser = stack.pop()
        for action in _subparsers(parser):
            for name, sub in action.choices.items():
                full = f"{prefix} {name}".strip()
                yield full, sub
                stack.append((full, sub))


def _options(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                yield flag, action


def test_every_subcommand_and_option_is_in_the_cli_guide() -> None:
    text = CLI_DOC.read_text(encoding="utf-8")
    missing = [name for name, _ in _commands() if f"freedompay-async {name}" not in text]
    for name, parser in _commands():
        missing += [
            f"{name} {flag}"
            for flag, _ in _options(parser)
            if not re.search(rf"{re.escape(flag)}(?![\w-])", text)
        ]
    assert missing == []


def test_the_cli_guide_names_no_option_that_does_not_exist() -> None:
    known = {"--help", "--version"} | OTHER_TOOLS
    for _, parser in _commands():
        known |= {flag for flag, _ in _options(parser)}
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", CLI_DOC.read_text(encoding="utf-8")))
    assert sorted(named - known) == []


def test_every_option_has_a_help_text() -> None:
    silent = [
        f"{name} {flag}"
        for name, parser in _commands()
        for flag, action in _options(parser)
        if not action.help
    ]
    assert silent == []


def test_the_sandbox_help_names_every_endpoint() -> None:
    sandbox = dict(_commands())["sandbox"]
    text = " ".join(sandbox.format_help().split())
    assert all(path in text for path in ("/g2g/cancel", "status_v2", "clearing", "refund"))
    assert "/g2g/cancel sandbox" not in text


def test_every_link_between_the_docs_finds_its_anchor() -> None:
    def anchors(page: Path) -> set[str]:
        headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.MULTILINE)
        return {
            re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in headings
        }

    pages = [*DOCS.glob("*.md"), DOCS.parent / "README.md"]
    broken = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target, anchor in re.findall(r"\]\(([\w./-]*\.md)?#([\w-]+)\)", text):
            linked = (page.parent / target) if target else page
            if not linked.exists() or anchor not in anchors(linked):
                broken.append(f"{page.name}: {target}#{anchor}")
    assert broken == []


def test_no_function_of_the_cli_is_over_60_lines() -> None:
    long = []
    for path in Path(cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    long.append(f"{path.name}:{node.name} ({length} lines)")
    assert long == []
