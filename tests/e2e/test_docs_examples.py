"""Every Python example in README.md and docs/*.md is a complete program that runs as written.

Each ```python block is compiled, then run as a process of its own against a sandbox
gateway served by this test on loopback, with the environment the examples read
(``FREEDOMPAY_BASE_URL``, ``FREEDOMPAY_MERCHANT_ID``, ``FREEDOMPAY_SECRET_KEY``) pointing
at it. The sandbox's merchant id and key differ from the examples' defaults, so an
example that ignores the environment fails. The README's quickstart is also
type-checked with ``mypy --strict`` from a directory outside the project, as a user's
program would be.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from freedompay_async.sandbox import SandboxGateway

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)

#: Not the examples' default (1000): an example must take it from the environment.
MERCHANT_ID = 4242
SECRET_KEY = "docs-examples-key"  # the sandbox's throwaway key
#: Held payments; the sandbox also holds any other id on its first request (auto_hold).
HELD = range(1, 1001)
#: Generous: no example needs more than a few seconds. Only a hang ends here.
RUN_TIMEOUT = 60.0
MYPY_TIMEOUT = 600.0


class Example(NamedTuple):
    page: str  # relative to the project root, e.g. "docs/guide.md"
    number: int  # 1-based, among the page's python blocks
    line: int  # the page's line of the block's first code line
    source: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.number}"

    def padded(self) -> str:
        """The source, shifted down so tracebacks give the page's own line numbers."""
        return "\n" * (self.line - 1) + self.source


def collect() -> list[Example]:
    found = []
    for path in PAGES:
        text = path.read_text(encoding="utf-8")
        page = path.relative_to(ROOT).as_posix()
        for number, match in enumerate(FENCE.finditer(text), 1):
            line = text.count("\n", 0, match.start(1)) + 1
            found.append(Example(page, number, line, match.group(1)))
    return found


EXAMPLES = collect()


def test_the_pages_are_found() -> None:
    pages = {path.relative_to(ROOT).as_posix() for path in PAGES}
    assert {"README.md", "docs/guide.md", "docs/callbacks.md"} <= pages
    assert any(example.page == "README.md" for example in EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.id)
def test_example_compiles(example: Example) -> None:
    compile(example.padded(), example.page, "exec")


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.id)
async def test_example_runs(example: Example, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example.padded(), encoding="utf-8")
    gateway = SandboxGateway(MERCHANT_ID, SECRET_KEY, auto_hold=True)
    gateway.add_payments(HELD)
    async with gateway.serve() as url:
        env = {
            **os.environ,
            "FREEDOMPAY_BASE_URL": url,
            "FREEDOMPAY_MERCHANT_ID": str(MERCHANT_ID),
            "FREEDOMPAY_SECRET_KEY": SECRET_KEY,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            cwd=tmp_path,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(RUN_TIMEOUT):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            pytest.fail(f"{example.id} (line {example.line}) did not end within {RUN_TIMEOUT} s")
    assert proc.returncode == 0, (
        f"{example.id} (line {example.line}) exited with {proc.returncode}\n"
        f"--- stdout ---\n{out.decode(errors='replace')}\n"
        f"--- stderr ---\n{err.decode(errors='replace')}"
    )
    assert out.strip(), f"{example.id} (line {example.line}) printed nothing"
    assert SECRET_KEY.encode() not in out + err, f"{example.id} printed the secret key"


def test_quickstart_type_checks_from_outside_the_project(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[dev]' installs it)")
    quickstart = next(example for example in EXAMPLES if example.page == "README.md")
    (tmp_path / "quickstart.py").write_text(quickstart.source, encoding="utf-8")
    env = {name: value for name, value in os.environ.items() if name != "MYPYPATH"}
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", ".mypy_cache", "quickstart.py"],
        cwd=tmp_path,  # outside the project: the package must be found where it is installed
        env=env,
        capture_output=True,
        text=True,
        timeout=MYPY_TIMEOUT,
        check=False,
    )
    assert run.returncode == 0, f"mypy --strict on the README quickstart:\n{run.stdout}{run.stderr}"
