"""The README's examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def python_block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    match = re.search(r"```python\n(.*?)\n```", section, re.S)
    assert match is not None
    return match.group(1)


async def test_the_callbacks_example_app_serves_the_sandbox(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FREEDOMPAY_SECRET_KEY", "readme-example-key")
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(python_block_after("### A complete aiohttp app"), "README.md", "exec"), namespace)
    demo = namespace["demo"]
    assert callable(demo)
    await demo()
    out = capsys.readouterr().out
    assert "paid: {'A-1001': 77}" in out
    assert "(400," in out  # the tampered redirect is refused
    assert "readme-example-key" not in out
