"""The command line runs on uvloop when the speed extra is installed, and says which loop."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from freedompay_async.cli._loop import event_loop_factory
from freedompay_async.cli._report import BatchReport, running_loop_name
from freedompay_async.sandbox import SandboxGateway

from .test_cli import cancel_args, cli, cli_env, read_journal, write_ids


def test_uvloop_is_chosen_when_importable_and_asyncio_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uvloop = pytest.importorskip("uvloop")
    assert event_loop_factory() is uvloop.new_event_loop
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import now raises ImportError
    assert event_loop_factory() is asyncio.new_event_loop


def test_the_report_names_the_loop_it_ran_on() -> None:
    uvloop = pytest.importorskip("uvloop")

    async def made() -> BatchReport:
        return BatchReport("journal", "run")

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        on_uvloop = runner.run(made())
    on_asyncio = asyncio.run(made())
    assert (on_uvloop.event_loop, on_asyncio.event_loop) == ("uvloop", "asyncio")
    assert "event loop  uvloop (the speed extra)" in on_uvloop.render()
    assert "event loop  asyncio" in on_asyncio.render()
    assert on_uvloop.as_dict()["event_loop"] == "uvloop"
    assert running_loop_name() == "asyncio"  # no loop running: the default


async def test_a_real_run_on_uvloop_cancels_and_says_so(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    pytest.importorskip("uvloop")
    gw, url = served
    ids = list(range(3_000_001, 3_000_051))
    gw.add_payments(ids)
    src = write_ids(tmp_path / "ids.txt", ids)
    journal = tmp_path / "journal.jsonl"
    run = await cli(*cancel_args(url, journal, "--input", str(src)), env=cli_env())
    assert run.rc == 0, run.err
    assert "event loop  uvloop (the speed extra)" in run.out
    assert set(read_journal(journal)) == set(ids)
    assert all(gw.ledger[pid].state == "cancelled" for pid in ids)
