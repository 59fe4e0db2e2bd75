"""The journal line for every kind of outcome, the writer, and the open/lock errors.

``outcome_record`` is what a rerun and an operator read back; every field is pinned.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import freedompay_async as fp
from freedompay_async import CancelOutcome, CancelResult, OutcomeState, RevokeStatus
from freedompay_async.cli._journal import (
    HEADER_MAGIC,
    JOURNAL_VERSION,
    Journal,
    JournalError,
    JournalHeader,
    read_state,
)
from freedompay_async.cli._outcome_record import journal_final, outcome_record

NOW = "2026-01-02T03:04:05.678+00:00"


def _record(outcome: CancelOutcome) -> dict[str, object]:
    return outcome_record(outcome, run="run1", now=lambda: NOW)


def test_a_cancelled_outcome() -> None:
    result = CancelResult(
        payment_id=5,
        revoke_id=6,
        status="ok",
        revoke_status=RevokeStatus.SUCCESS,
        revoke_status_raw="success",
        attempts=2,
        confirmed_on_retry=True,
    )
    outcome = CancelOutcome(5, 5, OutcomeState.CANCELLED, 2, 0.123456, result=result)
    assert _record(outcome) == {
        "payment_id": 5,
        "state": "cancelled",
        "final": True,
        "attempts": 2,
        "elapsed": 0.1235,
        "revoke_id": 6,
        "revoke_status": "success",
        "confirmed_on_retry": True,
        "error_type": None,
        "error_code": None,
        "error_description": None,
        "http_status": None,
        "time": NOW,
        "run": "run1",
    }


def test_a_gateway_error_outcome() -> None:
    # Signed and bound (confirmed by status): a refusal for good.
    error = fp.PaymentNotFoundError(
        11068, "Платёж не найден", payment_id=8, signed=True, bound=True
    )
    outcome = CancelOutcome(8, 8, OutcomeState.FAILED, 1, 0.5, error=error)
    record = _record(outcome)
    assert {k: record[k] for k in record if k not in ("time", "run")} == {
        "payment_id": 8,
        "state": "failed",
        "final": True,
        "attempts": 1,
        "elapsed": 0.5,
        "revoke_id": None,
        "revoke_status": None,
        "confirmed_on_retry": False,
        "error_type": "PaymentNotFoundError",
        "error_code": 11068,
        "error_description": "Платёж не найден",
        "http_status": None,
    }


def test_a_reply_error_outcome_keeps_status_and_message() -> None:
    error = fp.MalformedReplyError("gateway answered HTTP 502", payment_id=9, http_status=502)
    outcome = CancelOutcome(9, 9, OutcomeState.UNKNOWN, 4, 1.0, error=error)
    record = _record(outcome)
    assert (record["state"], record["final"], record["http_status"]) == ("unknown", False, 502)
    assert (record["error_type"], record["error_description"]) == (
        "MalformedReplyError",
        "gateway answered HTTP 502",
    )
    assert record["error_code"] is None


def test_a_transport_error_outcome_has_no_http_status() -> None:
    error = fp.ResponseTimeoutError("no reply within 20.0s", payment_id=3)
    record = _record(CancelOutcome(3, 3, OutcomeState.UNKNOWN, 1, 20.0, error=error))
    assert (record["error_type"], record["error_description"]) == (
        "ResponseTimeoutError",
        "no reply within 20.0s",
    )
    assert record["http_status"] is None and record["final"] is False


@pytest.mark.parametrize(
    "error",
    [
        fp.InvalidRequestSignatureError(1100, "bad sig", signed=True),
        fp.UnknownMerchantError(9998, "who", signed=True),
        fp.ConfigurationError("bad url"),
        fp.SessionClosedError("closed"),
    ],
)
def test_run_errors_are_never_final_even_when_the_outcome_says_so(
    error: fp.FreedomPayError,
) -> None:
    outcome = CancelOutcome(1, 1, OutcomeState.FAILED, 1, 0.0, error=error)
    assert journal_final(outcome) is False


def test_a_payment_error_is_final_as_the_outcome_says() -> None:
    error = fp.PaymentNotFoundError(11068, "x", signed=True, bound=True)
    outcome = CancelOutcome(1, 1, OutcomeState.FAILED, 1, 0.0, error=error)
    assert outcome.final is True and journal_final(outcome) is True
    # Signed but naming no payment (the documented error shape), unconfirmed by status:
    # it could be a reply captured for another payment, so a rerun asks again.
    unbound = fp.PaymentNotFoundError(11068, "x", signed=True)
    outcome = CancelOutcome(1, 1, OutcomeState.FAILED, 1, 0.0, error=unbound)
    assert outcome.final is False and journal_final(outcome) is False
    assert journal_final(CancelOutcome(1, 1, OutcomeState.CANCELLED, 1, 0.0)) is True
    assert journal_final(CancelOutcome(1, 1, OutcomeState.PENDING, 1, 0.0)) is False


def test_the_default_clock_writes_utc_milliseconds() -> None:
    record = outcome_record(CancelOutcome(1, 1, OutcomeState.CANCELLED, 1, 0.0), run="r")
    stamp = str(record["time"])
    assert stamp.endswith("+00:00") and len(stamp) == len(NOW) and stamp[19] == "."


# --- the writer ------------------------------------------------------------------------


def test_append_writes_one_compact_utf8_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal, state = Journal.open(path)
    assert state.records == 0 and state.repaired_tail is None and state.bad_lines == []
    journal.append({"payment_id": 1, "state": "cancelled", "note": "Отмена"})
    journal.append({"payment_id": 2, "state": "unknown"})
    assert journal.lines_written == 2
    journal.close()
    journal.close()  # idempotent
    raw = path.read_bytes().split(b"\n")
    assert len(raw) == 3 and raw[2] == b""  # two lines, each ended
    for line in raw[:2]:
        assert b", " not in line and b'": ' not in line  # compact separators
        assert isinstance(json.loads(line), dict)
    assert "Отмена".encode() in raw[0]  # UTF-8, not \\u escapes
    again, state = Journal.open(path)
    again.close()
    assert (state.records, state.state_of(1), state.state_of(2)) == (2, "cancelled", "unknown")
    with pytest.raises(JournalError) as info:
        journal.append({"payment_id": 3, "state": "unknown"})
    assert str(info.value) == "journal is closed"


def test_reopening_reads_what_was_written_and_appends_after_it(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal, _ = Journal.open(path)
    journal.append({"payment_id": 1, "state": "cancelled", "final": True})
    journal.close()
    journal, state = Journal.open(path)
    assert (state.records, state.settled, state.state_of(1)) == (1, {1}, "cancelled")
    journal.append({"payment_id": 2, "state": "failed", "final": False})
    journal.close()
    assert len(path.read_bytes().splitlines()) == 2


def test_sync_fsyncs_only_when_dirty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j.jsonl"
    journal, _ = Journal.open(path)
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    journal.sync()
    assert calls == []
    journal.append({"payment_id": 1, "state": "cancelled"})
    journal.sync()
    journal.sync()
    assert len(calls) == 1
    journal.close()
    assert len(calls) == 1  # nothing new since the sync
    journal.sync()  # closed: a no-op, no error
    assert len(calls) == 1


def test_a_second_run_cannot_open_a_journal_in_use(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    journal, _ = Journal.open(path)
    try:
        with pytest.raises(JournalError) as info:
            Journal.open(path)
        assert str(info.value) == f"journal {str(path)!r} is in use by another run"
    finally:
        journal.close()
    Journal.open(path)[0].close()  # released on close


def test_a_directory_is_not_a_journal(tmp_path: Path) -> None:
    with pytest.raises(JournalError) as info:
        Journal.open(tmp_path)
    assert "cannot open journal" in str(info.value) or "not a regular file" in str(info.value)


def test_a_missing_directory_says_it_cannot_open(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "j.jsonl"
    with pytest.raises(JournalError) as info:
        Journal.open(path)
    assert str(info.value) == f"cannot open journal {str(path)!r}: No such file or directory"


def test_a_torn_tail_is_dropped_and_a_whole_unterminated_record_completed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.jsonl"
    good = json.dumps({"payment_id": 1, "state": "cancelled", "final": True})
    path.write_text(good + "\n" + '{"payment_id": 2, "sta', encoding="utf-8")
    journal, state = Journal.open(path)
    journal.close()
    assert state.repaired_tail == "line 2: dropped a torn record"
    assert path.read_text(encoding="utf-8") == good + "\n"
    path.write_text(good + "\n" + good.replace("1", "3"), encoding="utf-8")
    journal, state = Journal.open(path)
    journal.close()
    assert state.repaired_tail == "line 2: completed an unterminated record"
    assert state.settled == {1, 3}
    assert path.read_text(encoding="utf-8").endswith("}\n")


def test_blank_lines_are_skipped_and_garbage_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    good = json.dumps({"payment_id": 1, "state": "cancelled"})
    path.write_bytes(b"\n  \n" + good.encode() + b"\n[1,2]\n\xff\xfe\nnot json\n")
    with path.open("rb") as stream:
        state = read_state(stream)[0]
    assert state.bad_lines == [4, 5, 6] and state.records == 1


# --- the header --------------------------------------------------------------------------


def test_the_header_record_and_back() -> None:
    header = JournalHeader("cancel", "http://gw", 1234, started="2026-01-01T00:00:00.000+00:00")
    record = header.as_record()
    assert record == {
        "journal": HEADER_MAGIC,
        "version": JOURNAL_VERSION,
        "operation": "cancel",
        "base_url": "http://gw",
        "merchant_id": 1234,
        "started": "2026-01-01T00:00:00.000+00:00",
    }
    assert JournalHeader.from_record(record) == header
    assert JournalHeader.from_record({**record, "version": 99}) == JournalHeader(
        "cancel", "http://gw", 1234, started=header.started, version=99
    )


def test_a_header_without_start_or_version_gets_the_defaults() -> None:
    record = {"journal": HEADER_MAGIC, "operation": "cancel", "base_url": "u", "merchant_id": 5}
    back = JournalHeader.from_record({**record, "started": 17, "version": "2"})
    assert back == JournalHeader("cancel", "u", 5, started="", version=JOURNAL_VERSION)


@pytest.mark.parametrize(
    "change",
    [
        {"journal": "something-else"},
        {"operation": 1},
        {"base_url": None},
        {"merchant_id": "5"},
        {"merchant_id": True},
    ],
)
def test_a_record_that_is_not_a_header(change: dict[str, object]) -> None:
    record = {"journal": HEADER_MAGIC, "operation": "cancel", "base_url": "u", "merchant_id": 5}
    assert JournalHeader.from_record({**record, **change}) is None
    assert JournalHeader.from_record({k: v for k, v in record.items() if k != "journal"}) is None


def test_differs_from_names_each_difference() -> None:
    mine = JournalHeader("cancel", "http://a", 1, started="t1")
    assert mine.differs_from(JournalHeader("cancel", "http://a", 1, started="t2")) == []
    other = JournalHeader("refund", "http://b", 2)
    assert mine.differs_from(other) == [
        "base_url 'http://a' (journal) vs 'http://b' (this run)",
        "merchant_id 1 (journal) vs 2 (this run)",
        "operation 'cancel' (journal) vs 'refund' (this run)",
    ]


def test_a_new_header_is_stamped_now_in_utc() -> None:
    stamp = JournalHeader("cancel", "u", 1).started
    assert stamp.endswith("+00:00") and stamp[19] == "." and len(stamp) == 29


def test_a_new_journal_gets_its_header_first_and_private_permissions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.jsonl"
    header = JournalHeader("cancel", "http://gw", 1234, started="t")
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), real(fd))[1])
    journal, state = Journal.open(path, header=header)
    assert state.header == header and journal.path == path
    assert journal.fsync_interval == 1.0
    journal.close()
    assert path.stat().st_ino in synced  # the header is durable before any outcome
    assert tmp_path.stat().st_ino in synced  # and so is the new directory entry
    assert path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[0]) == header.as_record()
    journal, state = Journal.open(path, header=JournalHeader("cancel", "http://other", 1))
    journal.close()
    assert state.header == header and state.bad_lines == [] and state.records == 0
    assert len(path.read_bytes().splitlines()) == 1  # not written twice


def test_a_header_only_counts_on_the_first_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    header = JournalHeader("cancel", "http://gw", 1, started="t").as_record()
    record = {"payment_id": 1, "state": "cancelled", "final": True}
    path.write_text(json.dumps(record) + "\n" + json.dumps(header) + "\n", encoding="utf-8")
    journal, state = Journal.open(path)
    journal.close()
    assert state.header is None and state.bad_lines == [2] and state.settled == {1}
    broken = {**header, "merchant_id": "x"}  # looks like a header but is not one
    path.write_text(json.dumps(broken) + "\n" + json.dumps(record) + "\n", encoding="utf-8")
    with path.open("rb") as stream:
        state, _ = read_state(stream)
    assert state.header is None and state.bad_lines == [1]
    assert state.header_error == "line 1 looks like a journal header but is not one"
    with pytest.raises(JournalError, match="looks like a journal header but is not one"):
        Journal.open(path)  # a damaged header is refused, never guessed


def test_a_fifo_is_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    with pytest.raises(JournalError) as info:
        Journal.open(path)
    assert str(info.value) == f"journal {str(path)!r} is not a regular file"


def test_an_existing_journal_with_a_torn_tail_is_repaired_durably(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"payment_id": 1, "state": "cancelled"}\n{"pay', encoding="utf-8")
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), real(fd))[1])
    journal, _ = Journal.open(path)
    journal.close()
    assert synced.count(path.stat().st_ino) == 1 and tmp_path.stat().st_ino not in synced
