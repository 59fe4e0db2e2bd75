"""A real process started with one of its standard descriptors closed (``>&-``, ``2>&-``,
``<&-``: a cron line, a supervisor that closes what it does not forward).

Only a real process shows this: a command run in the test process (``inprocess``)
always has streams. A process started without descriptor 0, 1 or 2 hands that number
to the first socket or file it opens: uvloop then aborts the process (SIGABRT, exit
134) when it closes such a socket, after the run's work and summary, so the exit code
the operator's scheduler sees is not the run's; and with standard input closed, the
input read was whatever the program had opened as descriptor 0.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from freedompay_async.sandbox import SandboxGateway

from .test_cli import SETTLED, cancel_args, cli_env, read_journal, write_ids


async def _run_closed(redirect: str, *args: str) -> tuple[int, str]:
    """``python -m freedompay_async ARGS`` with ``redirect`` (a shell redirection that
    closes a descriptor); its exit status and what it wrote on the streams left."""
    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", f'exec "$@" {redirect}', "sh", sys.executable, "-m", "freedompay_async",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=cli_env(),
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@pytest.mark.parametrize("redirect", ["<&-", ">&-", "2>&-"])
async def test_a_run_without_a_standard_descriptor_exits_with_its_own_code(
    served: tuple[SandboxGateway, str], tmp_path: Path, redirect: str
) -> None:
    gw, url = served
    ids = range(7_100_001, 7_100_031)
    gw.add_payments(ids)
    journal = tmp_path / "j.jsonl"
    src = write_ids(tmp_path / "ids.txt", ids)
    rc, shown = await _run_closed(redirect, *cancel_args(url, journal, "-i", str(src)))
    assert rc == 0, shown
    records = read_journal(journal)
    assert sorted(records) == list(ids)
    assert all(entries[-1]["state"] in SETTLED for entries in records.values())


async def test_a_run_with_standard_input_closed_reads_no_ids(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    """No ``--input``, standard input closed: an empty input (exit 2), not a read of
    whatever the process opened as descriptor 0."""
    _, url = served
    rc, shown = await _run_closed("<&-", *cancel_args(url, tmp_path / "j.jsonl"))
    assert rc == 2, shown
    assert "holds no payment ids" in shown, shown


async def test_a_dry_run_without_standard_output_ends_without_a_traceback(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    """The plan goes to standard output: closed, it is dropped, and the run still ends
    with its own exit code (it raised AttributeError on None)."""
    gw, url = served
    ids = range(7_100_101, 7_100_106)
    gw.add_payments(ids)
    src = write_ids(tmp_path / "ids.txt", ids)
    args = cancel_args(url, tmp_path / "j.jsonl", "-i", str(src), "--dry-run")
    rc, shown = await _run_closed(">&-", *args)
    assert rc == 0, shown
    assert "Traceback" not in shown
