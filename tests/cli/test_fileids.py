"""A regular file's ids: counted and deduplicated, sent once each in input order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from freedompay_async.cli._fileids import FileIds
from freedompay_async.cli._input import Item, parse_plain
from freedompay_async.cli._journal import JournalState


def _open(path: Path, text: str, bad: list[Item]) -> FileIds:
    path.write_text(text)

    def valid(item: Item) -> int | None:
        if item[1] is None:
            bad.append(item)
        return item[1]

    return FileIds(os.open(path, os.O_RDONLY), parse_plain, valid)


def test_ids_are_sent_once_in_input_order_and_settled_ones_skipped(tmp_path: Path) -> None:
    bad: list[Item] = []
    files = _open(tmp_path / "ids.txt", "30\n10\n30\nx\n20\n10\n40\n", bad)
    assert (files.unique, files.valid_ids) == (4, 6)
    assert [item[0] for item in bad] == [4]
    state = JournalState()
    state.add({"payment_id": 20, "state": "cancelled", "final": True})
    state.add({"payment_id": 40, "state": "failed", "final": True})
    state.add({"payment_id": 30, "state": "unknown", "final": False})
    counts = files.select(state.ids)
    assert sum(counts.values()) == 4
    assert files.to_send == 2
    assert list(files.skipped_unsettled()) == [40]  # failed for good: skipped, not settled
    assert list(files.remaining()) == [30, 10]
    files.close()


def test_ids_not_handed_out_include_one_taken_then_dropped(tmp_path: Path) -> None:
    files = _open(tmp_path / "ids.txt", "".join(f"{n}\n" for n in range(1, 8)), [])
    files.select(JournalState().ids)
    ids = files.remaining()
    taken = [next(ids), next(ids), next(ids)]  # the consumer keeps two, drops the third
    assert taken == [1, 2, 3]
    assert list(files.not_handed(2)) == [3, 4, 5, 6, 7]
    files.close()


def test_nothing_to_send_means_no_second_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _open(tmp_path / "ids.txt", "5\n6\n", [])
    state = JournalState()
    for pid in (5, 6):
        state.add({"payment_id": pid, "state": "already_cancelled", "final": True})
    files.select(state.ids)
    assert files.to_send == 0

    def no_rewind(*args: object) -> int:
        raise AssertionError("the file was read again")

    monkeypatch.setattr(files._stream, "seek", no_rewind)
    assert list(files.remaining()) == []
    files.close()
