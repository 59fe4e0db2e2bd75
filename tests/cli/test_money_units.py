"""In-process checks of the money batch's pieces: row keys, the money journal records,
how an outcome is classified, the durable intent write, the settle window options."""

from __future__ import annotations

import argparse
import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import freedompay_async as fp
from freedompay_async.cli import build_parser
from freedompay_async.cli._journal import Journal, JournalError, JournalHeader, read_state
from freedompay_async.cli._journal_summary import journal_summary
from freedompay_async.cli._money_journal import open_keys, read_money_journal
from freedompay_async.cli._money_outcome import (
    error_outcome,
    held_outcome,
    intent_record,
    result_outcome,
)
from freedompay_async.cli._op_money import MoneyOperation
from freedompay_async.cli._options import UsageError, job_from_args, settle_policy
from freedompay_async.cli._records import decode_record, encode_record, record_code
from freedompay_async.cli._refund_floor import RefundFloors
from freedompay_async.cli._rowinput import PlannedRow
from freedompay_async.cli._rowkeys import RowKeys, row_key, row_text
from freedompay_async.cli._rows import Row
from freedompay_async.cli._states import FINAL, code_of, state_of_code

from ..helpers import MERCHANT, SECRET, FakeClock

ROW = Row(700000042, Decimal("100"), "KZT")


def _planned(pid: int = 5, amount: str | None = "100", line: int = 2) -> PlannedRow:
    row = Row(pid, None if amount is None else Decimal(amount))
    return PlannedRow(row_key(row, 0), line, row)


# -- row keys --------------------------------------------------------------------------------


def test_a_row_key_is_pinned_and_fits_the_journal_map() -> None:
    assert row_text(ROW, 0) == "700000042|100.00|KZT|0"
    assert row_text(Row(5), 2) == "5|||2"
    # The rule of the docs, spelt out: BLAKE2b-64 of the text, shifted to 63 bits.
    import hashlib

    digest = hashlib.blake2b(b"700000042|100.00|KZT|0", digest_size=8).digest()
    assert row_key(ROW, 0) == int.from_bytes(digest, "big") >> 1
    assert 0 < row_key(ROW, 0) < 2**63


def test_equal_rows_are_distinct_movements_and_other_rows_change_no_key() -> None:
    keys = RowKeys()
    first = [
        keys.key(row) for row in (ROW, Row(1, Decimal(5)), Row(700000042, Decimal("100.00"), "KZT"))
    ]
    assert first[0] != first[2]  # equal content ("100" is "100.00"): the 1st and 2nd
    keys = RowKeys()
    moved = [keys.key(row) for row in (Row(9, Decimal(1)), ROW, ROW, Row(1, Decimal(5)))]
    assert moved[1:3] == [first[0], first[2]] and moved[3] == first[1]
    assert row_key(ROW, 0) != row_key(Row(700000042, Decimal(100)), 0)  # currency counts


# -- the records -----------------------------------------------------------------------------


def _records() -> list[dict[str, Any]]:
    planned = _planned()
    baseline = fp.RefundBaseline(Decimal("50.00"), [800000000001])
    intent = intent_record(planned, baseline, run="r1", now=lambda: "2026-12-02T06:00:00.123+00:00")
    result = fp.RefundResult(5, 800000000002, "ok", fp.RefundStatus.SUCCESS, "success", 2, True)
    done = result_outcome(planned, result, 1.25, run="r1", expected_refunded=Decimal("150"))
    error = fp.ConnectionLostError("lost", payment_id=5)
    unknown = error_outcome(planned, error, 3.0, run="r1")
    return [
        intent,
        dict(done.record),
        dict(unknown.record),
        dict(held_outcome(planned, run="r1").record),
    ]


def test_money_records_round_trip_compact_with_the_row_first() -> None:
    for record in _records():
        compact = encode_record(record)
        assert list(compact)[:3] == ["w", "p", "s"]  # never the cancel's fast frame
        assert decode_record(json.loads(json.dumps(compact))) == record
        assert record_code(compact) == record_code(record)
        key, code = record_code(compact) or (0, 0)
        assert key == record["row"] and state_of_code(code) == record["state"]
    intent, done, unknown, held = _records()
    assert intent["baseline"] == {"refunded": "50.00", "refund_ids": [800000000001]}
    assert encode_record(intent)["s"] == "i" and encode_record(intent)["a"] == 0
    assert (done["state"], done["final"], done["settled_by"]) == ("done", True, "status")
    assert done["expected_refunded"] == "150.00" and done["refund_id"] == 800000000002
    assert (unknown["state"], unknown["final"]) == ("unknown", False)
    assert held["held_by"] and held["state"] == "held"


def test_a_cancel_record_cannot_carry_a_money_key() -> None:
    with pytest.raises(ValueError, match="collides"):
        encode_record({"payment_id": 1, "state": "cancelled", "w": 2})


def test_state_bytes_keep_every_state_and_the_final_bit_apart() -> None:
    for state in ("cancelled", "unknown", "done", "already_done", "held", "intent"):
        for final in (False, True):
            code = code_of(state, final)
            assert state_of_code(code) == state
            assert bool(code & FINAL) == (final or state in ("cancelled", "done", "already_done"))


def test_a_money_journal_is_read_by_row_even_in_blocks_of_one_state(tmp_path: Path) -> None:
    path = tmp_path / "refund.jsonl"
    journal, _ = Journal.open(path, header=JournalHeader("refund", "http://127.0.0.1:1", MERCHANT))
    rows = [_planned(pid=5, line=n) for n in range(2, 4)]
    rows[1] = PlannedRow(row_key(rows[1].row, 1), 3, rows[1].row)  # a second equal row
    try:
        for planned in rows:  # all "unknown": one state letter the cancel's frame knows
            journal.append(
                dict(error_outcome(planned, fp.ConnectionLostError("x"), 1.0, run="r").record)
            )
    finally:
        journal.close()
    with path.open("rb") as stream:
        state, _ = read_state(stream)
    assert dict(state.last) == {rows[0].key: "unknown", rows[1].key: "unknown"}
    assert open_keys(state) == {rows[0].key, rows[1].key}


def test_open_intents_and_refund_floors_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "refund.jsonl"
    journal, _ = Journal.open(path, header=JournalHeader("refund", "http://127.0.0.1:1", MERCHANT))
    first, second = _planned(5, "100", 2), _planned(6, "30", 3)
    baseline = fp.RefundBaseline(Decimal(0), [])
    result = fp.RefundResult(5, 7, "ok", fp.RefundStatus.SUCCESS, "success")
    try:
        journal.append(intent_record(first, baseline, run="r"))
        journal.append(
            dict(result_outcome(first, result, 0.1, run="r", expected_refunded=Decimal(100)).record)
        )
        journal.append(intent_record(second, baseline, run="r"))
    finally:
        journal.close()
    with path.open("rb") as stream:
        state, _ = read_state(stream)
    keys = open_keys(state)
    assert keys == {second.key}
    known = read_money_journal(path, keys)
    assert set(known.intents) == {second.key} and known.intents[second.key]["baseline"] == {
        "refunded": "0", "refund_ids": []}  # fmt: skip
    assert known.floors == {5: Decimal("100.00")}


async def test_journal_summary_counts_the_rows_of_a_money_journal(tmp_path: Path) -> None:
    import io

    path = tmp_path / "refund.jsonl"
    journal, _ = Journal.open(path, header=JournalHeader("refund", "http://127.0.0.1:1", MERCHANT))
    try:
        journal.append(intent_record(_planned(5), fp.RefundBaseline(), run="r"))
        journal.append(dict(held_outcome(_planned(6), run="r").record))
    finally:
        journal.close()
    out = io.StringIO()
    assert journal_summary([path], out, io.StringIO()) == 0
    summary = json.loads(out.getvalue())
    assert summary["states"] == {"done": 0, "already_done": 0, "held": 1, "failed": 0,
                                 "unknown": 0, "intent": 1}  # fmt: skip
    assert (summary["ids"], summary["retry"]) == (2, 2)


# -- outcomes --------------------------------------------------------------------------------


def _claim(kind: type[fp.GatewayError], code: int, **kw: Any) -> fp.GatewayError:
    return kind(code, "claim", payment_id=5, **kw)


_BOUND = {"signed": True, "bound": True}
_NOT_DONE = fp.NotDoneError(
    "revoked", state="revoked", payment_status_raw="revoked", operation="refund"
)
_UNCONFIRMED = fp.UnconfirmedReplyError(_claim(fp.AlreadyRefundedError, 11018, signed=True))


@pytest.mark.parametrize(
    ("error", "state", "final", "permanent"),
    [
        (_claim(fp.AlreadyRefundedError, 11018, **_BOUND), "already_done", True, False),
        (_claim(fp.AlreadyClearedError, 10036, **_BOUND), "already_done", True, False),
        (_UNCONFIRMED, "unknown", False, False),
        (fp.UnsettledError("not settled"), "unknown", False, False),
        (fp.ResponseTimeoutError("slow"), "unknown", False, False),
        (_NOT_DONE, "failed", True, True),
        (_claim(fp.GatewayDeclinedError, 10020, **_BOUND), "failed", True, True),
        (_claim(fp.GatewayDeclinedError, 10020, signed=True), "failed", False, True),
        (fp.ConnectError("refused"), "failed", False, False),
        (_claim(fp.InvalidRequestSignatureError, 1100, **_BOUND), "failed", False, False),
    ],
)
def test_how_an_error_is_classified(
    error: fp.FreedomPayError, state: str, final: bool, permanent: bool
) -> None:
    if isinstance(error, fp.UnconfirmedReplyError | fp.ResponseTimeoutError):
        error.maybe_processed = True
    outcome = error_outcome(_planned(), error, 0.5, run="r")
    assert (outcome.state, outcome.final, outcome.permanent) == (state, final, permanent)
    assert outcome.record["final"] is final and outcome.key == _planned().key
    assert outcome.settled is (state == "already_done")
    if state == "unknown":
        assert outcome.rerun_as == "unknown"


_CLEARED = fp.ClearResult(5, None, Decimal(100), "ok", fp.ClearingStatus.COMPLETED, "1")
_NOT_CLEARED = fp.ClearResult(5, None, None, "ok", fp.ClearingStatus.NOT_COMPLETED, "0")


@pytest.mark.parametrize(
    ("result", "state", "final"),
    [
        (_CLEARED, "done", True),
        (_NOT_CLEARED, "unknown", False),
        (fp.RefundResult(5, 9, "ok", fp.RefundStatus.SUCCESS, "success"), "done", True),
        (fp.RefundResult(5, None, "ok", fp.RefundStatus.PENDING, "pending"), "unknown", False),
        (fp.RefundResult(5, None, "ok", fp.RefundStatus.ERROR, "error"), "failed", True),
    ],
)
def test_how_a_result_is_classified(result: Any, state: str, final: bool) -> None:
    outcome = result_outcome(_planned(), result, 0.1, run="r", expected_refunded=Decimal(100))
    assert (outcome.state, outcome.final) == (state, final)
    if isinstance(result, fp.RefundResult):
        assert ("expected_refunded" in outcome.record) is (state == "done")


def test_an_abandoned_row_is_unknown_once_its_intent_was_journaled() -> None:
    operation = MoneyOperation("refund", run="r")
    planned = _planned()
    operation.rows = {planned.key: planned}
    assert operation.abandoned(planned.key).state == "failed"  # never sent
    assert operation.abandoned(planned.key).final is False
    operation.sending.add(planned.key)
    assert operation.abandoned(planned.key).state == "unknown"
    assert operation.plan(planned.key) == "line 2: refund payment 5 100.00"


# -- the durable intent ----------------------------------------------------------------------


async def test_append_durable_returns_once_an_fsync_covers_the_line(tmp_path: Path) -> None:
    journal, _ = Journal.open(tmp_path / "j.jsonl")
    try:
        await asyncio.gather(*(journal.append_durable({"payment_id": n, "state": "unknown"})
                               for n in range(1, 21)))  # fmt: skip
        assert journal.lines_written == journal.lines_synced == 20
        journal.append({"payment_id": 99, "state": "unknown"})
        assert journal.lines_synced == 20  # a plain append is not waited for
        await journal.append_durable({"payment_id": 100, "state": "unknown"})
        assert journal.lines_synced == 22
    finally:
        await journal.aclose()
    with pytest.raises(JournalError, match="closed"):
        await journal.append_durable({"payment_id": 101, "state": "unknown"})


# -- a refund's baseline and its floor -------------------------------------------------------


class _Status:
    """What a session's refund_baseline sees: status lagging behind a refund."""

    def __init__(self, totals: list[str], clock: FakeClock) -> None:
        self.totals = totals
        self.reads = 0
        self.settle = fp.SettlePolicy(window=5, poll_initial=0.5, poll_max=1, clock=clock,
                                      sleep=clock.sleep)  # fmt: skip

    async def refund_baseline(self, payment_id: int) -> fp.RefundBaseline:
        total = self.totals[min(self.reads, len(self.totals) - 1)]
        self.reads += 1
        return fp.RefundBaseline(Decimal(total), [])


async def test_a_baseline_is_read_again_until_status_shows_the_earlier_refund() -> None:
    clock = FakeClock()
    floors = RefundFloors({5: Decimal(100)})
    session = _Status(["0", "0", "100.00"], clock)
    baseline = await floors.baseline(session, 5)  # type: ignore[arg-type]
    assert baseline is not None and baseline.refunded == 100 and session.reads == 3
    # Never shown within a window: no baseline (the row is held for a rerun).
    stale = _Status(["0"], clock)
    assert await floors.baseline(stale, 5) is None  # type: ignore[arg-type]
    # No floor for a payment the batch never refunded: one read.
    fresh = _Status(["20"], clock)
    assert (await floors.baseline(fresh, 6)) == fp.RefundBaseline(Decimal(20), [])  # type: ignore[arg-type]
    floors.raise_to(6, Decimal(50))
    floors.raise_to(6, Decimal(30))
    assert floors.floors[6] == 50


# -- the settle window options ---------------------------------------------------------------


def test_settle_policy_from_the_options() -> None:
    assert settle_policy() == fp.SettlePolicy()
    short = settle_policy(2.0, 0.05)
    assert (short.window, short.poll_initial, short.poll_max) == (2.0, 0.05, 0.5)
    slow = settle_policy(300.0, None)
    assert (slow.poll_initial, slow.poll_max) == (2.0, 15.0)
    assert settle_policy(1.0, 3.0).poll_max == 3.0  # never below the first wait


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_the_settle_options_reach_the_job_and_only_the_acting_commands() -> None:
    env = {"FREEDOMPAY_MERCHANT_ID": str(MERCHANT), "FREEDOMPAY_SECRET_KEY": SECRET}
    for command in ("cancel", "clear", "refund"):
        args = _args(command, "--base-url", "kz", "--input", "x.csv", "--journal", "j",
                     "--settle-window", "7", "--settle-poll", "0.3")  # fmt: skip
        job = job_from_args(args, env)
        assert (job.settle.window, job.settle.poll_initial, job.settle.poll_max) == (7, 0.3, 1.75)
    with pytest.raises(SystemExit):
        _args("status", "--settle-window", "7")
    with pytest.raises(SystemExit):
        _args("refund", "--input", "x.csv", "--journal", "j", "--settle-window", "0")
    with pytest.raises(UsageError, match=r"window|poll"):
        settle_policy(float("nan"), 1.0)
