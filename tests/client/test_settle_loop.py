"""The settle loop, rule by rule: an outcome left open is settled only by status.

Every case runs on a scripted in-memory gateway in virtual time (``scripted.py``):
status may lag, a refund may land late, a reply may be replayed from another payment.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

import freedompay_async as fp
from freedompay_async._session.batch import run_cancel_many
from freedompay_async._settling.loop import Settled, SettledBy

from ..helpers import FakeClock
from .scripted import (
    PID,
    Gateway,
    after,
    cancelled,
    error,
    lost,
    refunded,
    status,
    timed_out,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def batch(gw: Gateway, ids: list[int] | None = None) -> list[fp.CancelOutcome]:
    async with gw.session() as fp_session:
        async with asyncio.timeout(60):  # guards against a hang only; never reached
            return [o async for o in fp_session.cancel_many(ids or [PID], concurrency=2)]


# -- cancel ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "state", "settled_by", "cancels"),
    [
        ([status("revoked")], fp.OutcomeState.CANCELLED, "status", 1),
        ([status(revoked=True)], fp.OutcomeState.CANCELLED, "status", 1),
        ([status("success")], fp.OutcomeState.CANCELLED, "resent", 2),
        ([status("success", pg_captured="1")], fp.OutcomeState.FAILED, "status", 1),
        ([status("failed")], fp.OutcomeState.FAILED, "status", 1),
        ([status("pending")], fp.OutcomeState.UNKNOWN, None, 1),
        ([status("new")], fp.OutcomeState.UNKNOWN, None, 1),
        ([lost], fp.OutcomeState.UNKNOWN, None, 1),
    ],
)
async def test_a_lost_cancel_is_settled_by_what_status_says(
    clock: FakeClock,
    statuses: list[object],
    state: fp.OutcomeState,
    settled_by: str | None,
    cancels: int,
) -> None:
    gw = Gateway(clock, cancel=[lost, cancelled()], status=statuses)  # type: ignore[arg-type]
    [outcome] = await batch(gw)
    assert (outcome.state, outcome.settled_by) == (state, settled_by)
    assert gw.seen["cancel"] == cancels
    if state is fp.OutcomeState.FAILED:
        assert isinstance(outcome.error, fp.NotCancelledError) and outcome.final
    if state is fp.OutcomeState.UNKNOWN:
        assert isinstance(outcome.error, fp.ConnectionLostError)
        assert gw.seen["status"] > 3  # watched over the whole window, then given up


async def test_a_pending_cancel_is_confirmed_by_status_not_left_pending(clock: FakeClock) -> None:
    gw = Gateway(clock, cancel=[cancelled("pending")],
                 status=[status("success"), status("revoked")])  # fmt: skip
    async with gw.session() as s:
        result = await s.cancel(PID)
    assert result.confirmed_by_status and result.revoke_status is fp.RevokeStatus.SUCCESS
    assert gw.seen["cancel"] == 1  # a pending cancel is watched, never sent again at once


async def test_a_revoke_status_error_is_not_cancelled_for_cancel_and_for_a_batch(
    clock: FakeClock,
) -> None:
    gw = Gateway(clock, cancel=[cancelled("error")], status=[status("success")])
    async with gw.session() as s:
        with pytest.raises(fp.NotCancelledError) as raised:
            await s.cancel(PID)
    assert not raised.value.outcome_unknown and raised.value.payment_id == PID
    gw = Gateway(clock, cancel=[cancelled("error")], status=[status("success")])
    [outcome] = await batch(gw)
    assert outcome.state is fp.OutcomeState.FAILED and gw.seen["status"] == 0


async def test_a_replayed_already_cancelled_never_settles_a_held_payment(
    clock: FakeClock,
) -> None:
    # A genuine 10033 names no payment: replayed for a payment still held, it claims
    # what status denies. The cancel is sent again and really cancels.
    gw = Gateway(clock, cancel=[error(10033), cancelled()], status=[status("success")])
    [outcome] = await batch(gw)
    assert (outcome.state, outcome.settled_by) == (fp.OutcomeState.CANCELLED, "resent")
    assert gw.seen["cancel"] == 2


async def test_a_repeated_cancel_is_already_cancelled_once_status_confirms_it(
    clock: FakeClock,
) -> None:
    gw = Gateway(clock, cancel=[error(10033)], status=[status("revoked")])
    async with gw.session() as s:
        with pytest.raises(fp.AlreadyCancelledError) as raised:
            await s.cancel(PID)
    assert raised.value.bound and raised.value.signed and not raised.value.outcome_unknown
    gw = Gateway(clock, cancel=[error(10033)], status=[status("revoked")])
    [outcome] = await batch(gw)
    assert outcome.state is fp.OutcomeState.ALREADY_CANCELLED and outcome.final
    assert outcome.settled_by == "status"


async def test_without_reconcile_a_claim_naming_no_payment_stays_unconfirmed(
    clock: FakeClock,
) -> None:
    gw = Gateway(clock, cancel=[error(10033)], status=[status("revoked")])
    async with gw.session() as s:
        with pytest.raises(fp.UnconfirmedReplyError) as raised:
            await s.cancel(PID, reconcile=False)
    assert raised.value.outcome_unknown and raised.value.claimed_code == 10033
    assert not isinstance(raised.value, fp.AlreadyCancelledError) and gw.seen["status"] == 0


async def test_an_already_cancelled_that_names_the_payment_is_believed_at_once(
    clock: FakeClock,
) -> None:
    gw = Gateway(clock, cancel=[error(10033, pid=PID)], status=[status("success")])
    async with gw.session() as s:
        with pytest.raises(fp.AlreadyCancelledError) as raised:
            await s.cancel(PID)
    assert raised.value.bound and gw.seen["status"] == 0


async def test_already_cancelled_after_a_lost_attempt_confirms_this_call(clock: FakeClock) -> None:
    gw = Gateway(clock, cancel=[lost, error(10033)], status=[status("success"), status("revoked")])
    async with gw.session() as s:
        result = await s.cancel(PID)
    assert result.confirmed_by_status and gw.seen["cancel"] == 2


@pytest.mark.parametrize(
    ("gone", "final"), [(status("success", pg_captured="1"), True), (status("success"), False)]
)
async def test_a_refusal_naming_no_payment_stands_only_as_far_as_status_agrees(
    clock: FakeClock, gone: object, final: bool
) -> None:
    gw = Gateway(clock, cancel=[error(9013)], status=[gone])  # type: ignore[list-item]
    [outcome] = await batch(gw)
    assert outcome.state is fp.OutcomeState.FAILED and outcome.settled_by == "status"
    assert isinstance(outcome.error, fp.GatewayDeclinedError) and outcome.error.code == 9013
    assert not outcome.error.outcome_unknown
    # Captured: the hold went another way, final. Held: not cancelled, but the reason is
    # only the unbound reply's word, so a rerun tries again.
    assert outcome.final is final and gw.seen["cancel"] == 1


async def test_a_forged_status_is_never_believed(clock: FakeClock) -> None:
    genuine = status("revoked")(None).body  # type: ignore[arg-type]
    start = genuine.index(b"<pg_sig>") + len(b"<pg_sig>")
    wrong = b"0" if genuine[start : start + 1] != b"0" else b"1"
    body = genuine[:start] + wrong + genuine[start + 1 :]
    gw = Gateway(clock, cancel=[lost], status=[lambda r: fp.HttpResponse(200, body)])
    [outcome] = await batch(gw)
    assert outcome.state is fp.OutcomeState.UNKNOWN and gw.seen["cancel"] == 1


async def test_a_resend_that_is_lost_again_asks_status_again(clock: FakeClock) -> None:
    gw = Gateway(clock, cancel=[lost, lost, cancelled()], status=[status("success")])
    [outcome] = await batch(gw)
    assert (outcome.state, outcome.settled_by) == (fp.OutcomeState.CANCELLED, "resent")
    assert (gw.seen["cancel"], gw.seen["status"]) == (3, 2) and outcome.attempts == 5


async def test_resends_are_bounded(clock: FakeClock) -> None:
    gw = Gateway(clock, cancel=[lost], status=[status("success")])
    [outcome] = await batch(gw)
    assert outcome.state is fp.OutcomeState.UNKNOWN
    assert gw.seen["cancel"] == 1 + fp.SettlePolicy().resends


async def test_an_unsigned_not_found_settles_nothing(clock: FakeClock) -> None:
    from freedompay_async._wire.xml import render_response

    from ..helpers import error_fields

    unsigned = render_response(error_fields(11068))
    gw = Gateway(clock, cancel=[lost], status=[lambda r: fp.HttpResponse(200, unsigned)])
    [outcome] = await batch(gw)
    assert (outcome.state, outcome.settled_by) == (fp.OutcomeState.UNKNOWN, None)
    assert isinstance(outcome.error, fp.ConnectionLostError) and gw.seen["status"] == 1


@pytest.mark.parametrize(
    "settled",
    [
        Settled(None, None, SettledBy.STATUS, None, 2),  # neither result nor error
        Settled(None, fp.ConnectionLostError("x"), SettledBy.STATUS, object(), 2),  # type: ignore[arg-type]
    ],
)
async def test_a_broken_settle_step_is_an_internal_error_not_a_dead_worker(
    settled: Settled[fp.CancelResult],
) -> None:
    async def cancel(request: fp.CancelRequest) -> fp.CancelResult:
        raise fp.ConnectionLostError("dropped after sending", payment_id=request.payment_id)

    async def settle(request: fp.CancelRequest, first: object) -> Settled[fp.CancelResult]:
        return settled

    async with asyncio.timeout(60):  # guards against a hang only; never reached
        outcomes = [o async for o in run_cancel_many(cancel, [1, 2, 3], concurrency=1,
                                                     settle=settle)]  # fmt: skip
    assert [o.payment_id for o in outcomes] == [1, 2, 3]
    assert all(isinstance(o.error, fp.InternalError) for o in outcomes)
    assert {o.state for o in outcomes} == {fp.OutcomeState.UNKNOWN}


# -- clearing ---------------------------------------------------------------------------


async def test_a_lost_clearing_is_confirmed_once_status_catches_up(clock: FakeClock) -> None:
    # Status lags the clearing by a few seconds (seen live): "held" at first.
    lagging = after(clock, 5, status("success", pg_captured="1", pg_clearing_amount="1000.00"),
                    status("success"))  # fmt: skip
    gw = Gateway(clock, clearing=[lost], status=[lagging])
    async with gw.session() as s:
        result = await s.clear(PID)
    assert result.confirmed_by_status and result.completed and gw.seen["clearing"] == 1


async def test_a_clearing_answered_already_cleared_is_confirmed_by_status(
    clock: FakeClock,
) -> None:
    # Status lags for longer than the window: the clearing goes out again, the gateway
    # answers 10036 (naming no payment), and status, caught up, confirms it.
    lagging = after(clock, 80, status("success", pg_captured="1"), status("success"))
    gw = Gateway(clock, clearing=[timed_out, error(10036, script="clearing")], status=[lagging])
    async with gw.session() as s:
        result = await s.clear(PID)
    assert result.confirmed_by_status and gw.seen["clearing"] == 2
    first, second = [t for op, t in gw.times if op == "clearing"]
    assert second - first >= fp.SettlePolicy().window  # never sent again within the window


async def test_a_clearing_of_a_cleared_payment_is_already_cleared_once_confirmed(
    clock: FakeClock,
) -> None:
    gw = Gateway(clock, clearing=[error(10036, script="clearing")],
                 status=[status("success", pg_captured="1")])  # fmt: skip
    async with gw.session() as s:
        with pytest.raises(fp.AlreadyClearedError) as raised:
            await s.clear(PID)
    assert raised.value.bound and not raised.value.outcome_unknown


async def test_an_unconfirmed_already_cleared_is_never_reported_as_one(clock: FakeClock) -> None:
    gw = Gateway(clock, clearing=[error(10036, script="clearing")], status=[lost])
    async with gw.session() as s:
        with pytest.raises(fp.FreedomPayError) as raised:
            await s.clear(PID)
    assert not isinstance(raised.value, fp.AlreadyClearedError)
    assert raised.value.outcome_unknown and gw.seen["clearing"] == 1


async def test_a_capture_of_another_amount_does_not_confirm_the_clearing(
    clock: FakeClock,
) -> None:
    gw = Gateway(clock, clearing=[lost],
                 status=[status("success", pg_captured="1", pg_clearing_amount="900.00")])
    async with gw.session() as s:
        with pytest.raises(fp.ConnectionLostError) as raised:
            await s.clear(PID, "500.00")
    assert raised.value.outcome_unknown and gw.seen["clearing"] == 1
    assert "settling clearing" in "".join(raised.value.__notes__)


async def test_a_clearing_of_a_cancelled_payment_is_not_done(clock: FakeClock) -> None:
    gw = Gateway(clock, clearing=[lost], status=[status("success", revoked=True)])
    async with gw.session() as s:
        with pytest.raises(fp.NotDoneError) as raised:
            await s.clear(PID)
    assert raised.value.state == "revoked" and not raised.value.outcome_unknown


# -- refund ---------------------------------------------------------------------------


async def test_a_slow_refund_is_never_sent_twice(clock: FakeClock) -> None:
    # The gateway takes longer than the attempt's timeout and status shows nothing for
    # a while; the refund lands before the window is over.
    landed = after(clock, 8, status("success", pg_captured="1",
                                    refunds=[(71, "success", "-100.00")]),
                   status("success", pg_captured="1"))  # fmt: skip
    gw = Gateway(clock, refund=[timed_out], status=[status("success", pg_captured="1"), landed])
    async with gw.session() as s:
        result = await s.refund(PID, "100.00")
    assert result.confirmed_by_status and result.refund_id == 71
    assert gw.seen["refund"] == 1


async def test_a_refund_that_left_no_trace_for_a_whole_window_is_sent_again(
    clock: FakeClock,
) -> None:
    gw = Gateway(clock, refund=[lost, refunded()], status=[status("success", pg_captured="1")])
    async with gw.session() as s:
        result = await s.refund(PID, "100.00")
    assert not result.confirmed_by_status and result.refund_id == 71
    # Its attempts: both sends and the settling status queries (not the baseline read).
    assert gw.seen["refund"] == 2 and result.attempts == 2 + gw.seen["status"] - 1


@pytest.mark.parametrize(
    "trace",
    [
        [(70, "success", "-1.00"), (71, "pending", "-2.00")],  # listed, not counted yet
        [(70, "success", "-1.00"), (71, "error", "-2.00")],  # any new entry may still act
        [(70, "process", "-1.00")],  # no new entry, but one not settled
        [(70, "success", "-1.00"), (71, "success", "-2.00"), (72, "success", "-2.00")],
    ],
)
async def test_a_trace_that_is_not_proof_never_sends_a_refund_again(
    clock: FakeClock, trace: list[tuple[int, str, str]]
) -> None:
    before = status("success", pg_captured="1", refunds=[(70, "success", "-1.00")])
    gw = Gateway(clock, refund=[lost],
                 status=[before, status("success", pg_captured="1", refunds=trace)])  # fmt: skip
    async with gw.session() as s:
        with pytest.raises(fp.ConnectionLostError) as raised:
            await s.refund(PID, "2.00")
    assert raised.value.outcome_unknown and gw.seen["refund"] == 1


async def test_negative_refund_amounts_confirm_a_refund(clock: FakeClock) -> None:
    before = status("success", pg_captured="1", refunds=[(70, "success", "-10.00")])
    now = status("success", pg_captured="1",
                 refunds=[(70, "success", "-10.00"), (71, "success", "-40.00")])  # fmt: skip
    gw = Gateway(clock, refund=[lost], status=[before, now])
    async with gw.session() as s:
        result = await s.refund(PID, "40.00")
    assert result.confirmed_by_status and result.refund_id == 71 and gw.seen["refund"] == 1


async def test_already_refunded_is_believed_once_status_confirms_it(clock: FakeClock) -> None:
    full = status("success", pg_captured="1", pg_clearing_amount="1000.00",
                  refunds=[(70, "success", "-1000.00")])  # fmt: skip
    gw = Gateway(clock, refund=[error(11018, script="refund")], status=[full])
    async with gw.session() as s:
        with pytest.raises(fp.AlreadyRefundedError) as raised:
            await s.refund(PID, "10.00")
    assert raised.value.bound and gw.seen["refund"] == 1


async def test_a_refused_refund_stands_after_a_quiet_window(clock: FakeClock) -> None:
    gw = Gateway(clock, refund=[error(10020, script="refund")],
                 status=[status("success", pg_captured="1")])  # fmt: skip
    async with gw.session() as s:
        start = clock.now
        with pytest.raises(fp.GatewayDeclinedError) as raised:
            await s.refund(PID, "5000.00")
    assert raised.value.code == 10020 and not raised.value.outcome_unknown
    assert not raised.value.bound and gw.seen["refund"] == 1
    assert clock.now - start >= fp.SettlePolicy().window


async def test_a_refund_whose_baseline_cannot_be_read_is_not_sent(clock: FakeClock) -> None:
    gw = Gateway(clock, refund=[refunded()], status=[error(9998, script="status_v2")])
    async with gw.session() as s:
        with pytest.raises(fp.UnknownMerchantError) as raised:
            await s.refund(PID, "10.00")
    assert not raised.value.outcome_unknown and gw.seen["refund"] == 0
    assert "not sent" in "".join(raised.value.__notes__)


async def test_a_resumed_refund_is_sent_only_after_a_quiet_window(clock: FakeClock) -> None:
    gw = Gateway(clock, refund=[refunded()], status=[status("success", pg_captured="1")])
    async with gw.session() as s:
        start = clock.now
        baseline = fp.RefundBaseline()
        result = await s.refund(PID, "10.00", baseline=baseline, resume=True)
    assert gw.seen["refund"] == 1 and result.refund_id == 71
    [(_, sent)] = [(op, t) for op, t in gw.times if op == "refund"]
    assert sent - start >= fp.SettlePolicy().window


async def test_a_resumed_refund_that_happened_is_confirmed_without_sending(
    clock: FakeClock,
) -> None:
    done = status("success", pg_captured="1", refunds=[(71, "success", "-10.00")])
    gw = Gateway(clock, refund=[refunded()], status=[done])
    async with gw.session() as s:
        result = await s.refund(PID, "10.00", baseline=fp.RefundBaseline(), resume=True)
    assert result.confirmed_by_status and gw.seen["refund"] == 0


async def test_a_resumed_refund_needs_its_baseline(clock: FakeClock) -> None:
    gw = Gateway(clock, refund=[refunded()], status=[status("success")])
    async with gw.session() as s:
        with pytest.raises(fp.ValidationError):
            await s.refund(PID, "10.00", resume=True)
    assert gw.seen["refund"] == 0


async def test_a_refund_needs_an_amount(clock: FakeClock) -> None:
    gw = Gateway(clock, refund=[refunded()], status=[status("success")])
    async with gw.session() as s:
        with pytest.raises(fp.ValidationError, match="needs an amount"):
            await s.refund(PID)  # type: ignore[call-overload]
    assert not gw.seen


def test_a_refund_baseline_round_trips_through_json() -> None:
    baseline = fp.RefundBaseline(Decimal("10.50"), frozenset({71, 70}))
    assert fp.RefundBaseline.from_json(baseline.to_json()) == baseline
    assert baseline.to_json() == {"refunded": "10.50", "refund_ids": [70, 71]}
    for bad in ({}, {"refunded": "x", "refund_ids": []}, {"refunded": "1", "refund_ids": "71"}):
        with pytest.raises(fp.ValidationError):
            fp.RefundBaseline.from_json(bad)


def test_the_settle_policy_refuses_nonsense() -> None:
    for bad in ({"window": -1}, {"resends": -1}, {"poll_factor": 0.5}, {"resends": True}):
        with pytest.raises(fp.ConfigurationError):
            fp.SettlePolicy(**bad)  # type: ignore[arg-type]


def test_recent_refunds_complete_a_baseline_that_status_lags_behind() -> None:
    from freedompay_async._settling.memory import RecentRefunds

    clock = FakeClock()
    memory = RecentRefunds(horizon=60.0, clock=clock)
    memory.remember(PID, 71, Decimal("200.00"))
    memory.remember(PID, None, Decimal("5.00"))  # no id: cannot be told apart, not kept
    stale = fp.RefundBaseline(Decimal("10.00"), frozenset({70}))
    known = memory.known(PID)
    assert known == ((71, Decimal("200.00")),) and memory.known(PID + 1) == ()
    completed = stale.with_refunds(known)
    assert completed == fp.RefundBaseline(Decimal("210.00"), frozenset({70, 71}))
    assert completed.with_refunds(known) == completed  # status caught up: nothing added
    clock.now += 61
    assert memory.known(PID) == () and len(memory) == 0  # aged out, dropped
