"""The journal's promises, pinned one by one: fsync on close and in the background, and
the settled-state rules a resume relies on.

fsync is counted through a patched ``os.fsync`` that records the inode it was given (the
directory fsync on creation has another inode) and then really syncs.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

import freedompay_async as fp
from freedompay_async import CancelOutcome, OutcomeState
from freedompay_async.cli._journal import Journal, read_state
from freedompay_async.cli._outcome_record import outcome_record


class FsyncSpy:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.inodes: list[int] = []
        self.synced = asyncio.Event()
        self._real = os.fsync
        self._loop = asyncio.get_event_loop() if _running() else None
        monkeypatch.setattr(os, "fsync", self)

    def __call__(self, fd: int) -> None:
        self.inodes.append(os.fstat(fd).st_ino)
        self._real(fd)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.synced.set)

    def count(self, path: Path) -> int:
        inode = path.stat().st_ino
        return sum(1 for seen in self.inodes if seen == inode)


def _running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _outcome(pid: int, state: OutcomeState = OutcomeState.CANCELLED) -> CancelOutcome:
    error = None if state.settled else fp.ResponseTimeoutError("t", payment_id=pid)
    return CancelOutcome(pid, pid, state, 1, 0.01, error=error)


def _record(pid: int, state: OutcomeState, **override: Any) -> dict[str, Any]:
    record = outcome_record(_outcome(pid, state), run="test")
    record.update(override)
    return record


# --- fsync ----------------------------------------------------------------------------


def test_close_fsyncs_what_was_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j.jsonl"
    journal, _ = Journal.open(path)
    spy = FsyncSpy(monkeypatch)
    journal.append(_record(1, OutcomeState.CANCELLED))
    assert spy.count(path) == 0  # appended, not yet synced
    journal.close()
    assert spy.count(path) == 1


def test_close_without_writes_does_not_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.jsonl"
    journal, _ = Journal.open(path)
    spy = FsyncSpy(monkeypatch)
    journal.close()
    assert spy.count(path) == 0


async def test_aclose_fsyncs_what_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.jsonl"
    journal, _ = Journal.open(path, fsync_interval=3600)
    spy = FsyncSpy(monkeypatch)
    before = asyncio.all_tasks()
    journal.start()  # the background task will not wake within this test
    journal.start()  # idempotent: still one task
    assert len(asyncio.all_tasks() - before) == 1
    journal.append(_record(1, OutcomeState.CANCELLED))
    await journal.aclose()
    assert spy.count(path) == 1
    assert asyncio.all_tasks() == before  # the background task is gone


async def test_the_background_task_fsyncs_while_the_journal_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.jsonl"
    journal, _ = Journal.open(path, fsync_interval=0.01)
    spy = FsyncSpy(monkeypatch)
    journal.start()
    try:
        journal.append(_record(1, OutcomeState.CANCELLED))
        # Generous guard only against a hang; the test waits for the event, not a time.
        await asyncio.wait_for(spy.synced.wait(), timeout=10)
        assert spy.count(path) == 1  # synced by the background task, before any close
        await asyncio.sleep(0.05)  # more intervals pass: nothing new written, no fsync
        assert spy.count(path) == 1
    finally:
        await journal.aclose()
    assert spy.count(path) == 1  # nothing dirty left for close


# --- settled-state rules ------------------------------------------------------------


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _read(path: Path) -> Any:
    with path.open("rb") as stream:
        return read_state(stream)[0]


@pytest.mark.parametrize("state", [OutcomeState.CANCELLED, OutcomeState.ALREADY_CANCELLED])
def test_a_cancelled_record_without_final_counts_as_settled(
    tmp_path: Path, state: OutcomeState
) -> None:
    path = tmp_path / "j.jsonl"
    _write(path, [_record(5, state, final=False)])
    back = _read(path)
    assert 5 in back.settled
    assert back.state_of(5) == state.value


@pytest.mark.parametrize("later", [OutcomeState.UNKNOWN, OutcomeState.FAILED, OutcomeState.PENDING])
def test_a_later_non_final_record_never_unsettles_a_settled_id(
    tmp_path: Path, later: OutcomeState
) -> None:
    path = tmp_path / "j.jsonl"
    _write(path, [_record(6, OutcomeState.CANCELLED), _record(6, later, final=False)])
    back = _read(path)
    assert 6 in back.settled
    assert back.state_of(6) == "cancelled"


def test_a_later_final_record_is_the_current_state(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _write(
        path,
        [
            _record(7, OutcomeState.UNKNOWN, final=False),
            _record(7, OutcomeState.FAILED, final=True),
        ],
    )
    back = _read(path)
    assert 7 in back.settled and back.state_of(7) == "failed"


def test_non_final_records_are_not_settled_and_the_last_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    _write(
        path,
        [
            _record(8, OutcomeState.UNKNOWN, final=False),
            _record(8, OutcomeState.PENDING, final=False),
            _record(9, OutcomeState.FAILED, final=False),
        ],
    )
    back = _read(path)
    assert back.settled == set() and back.records == 3
    assert (back.state_of(8), back.state_of(9), back.state_of(10)) == ("pending", "failed", None)


def test_final_must_be_literally_true(tmp_path: Path) -> None:
    """A truthy non-boolean ``final`` (a hand-edited or foreign line) settles nothing."""
    path = tmp_path / "j.jsonl"
    _write(path, [_record(11, OutcomeState.UNKNOWN, final="yes")])
    assert 11 not in _read(path).settled


def test_lines_that_are_not_outcome_records_are_counted_bad(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    good = _record(12, OutcomeState.CANCELLED)
    _write(
        path,
        [
            good,
            {**good, "payment_id": True},  # a bool is not an id
            {**good, "payment_id": "12"},
            {**good, "state": "exploded"},
        ],
    )
    back = _read(path)
    assert back.bad_lines == [2, 3, 4]
    assert back.records == 1 and back.settled == {12}
