"""The outcome-truth findings, end to end over loopback: each one as it was found.

A man in the middle (``mitm.py``) sits between a real ``AsyncSession`` and a served
``SandboxGateway`` where a finding needs one (a reply rewritten, a genuine reply
replayed); the money findings need only the sandbox's own faults and status lag. Each
test asserts what the client reports *and* what the gateway's ledger shows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

import freedompay_async as fp
from freedompay_async._wire.xml import parse_xml_fields
from freedompay_async.sandbox import Fault, FaultPlan, SandboxGateway

from ..helpers import MERCHANT, SECRET, SIGNER, FakeClock, on_clock
from .mitm import Forward, Mitm, Reply, append_before_close, garbage

#: Status every 0.05-0.2 s, for 2 s after the last send: longer than any lag or
#: processing delay below, far shorter than the 60 s default.
SETTLE = fp.SettlePolicy(window=2.0, poll_initial=0.05, poll_max=0.2)
#: For a reading that can never settle: give up after half a second.
HOPELESS = fp.SettlePolicy(window=0.5, poll_initial=0.05, poll_max=0.1)
#: Requests about one payment 0.01 s apart: spacing is not the subject here.
SPACING = fp.PaymentSpacing(0.01)

#: A signed-looking revoke entry under a nested pg_sig: the signature skips every
#: pg_sig subtree, so the reply still verifies with it appended.
NESTED_REVOKE = (
    b"<pg_revoked_payments><pg_sig><pg_payment_id>1</pg_payment_id>"
    b"<pg_payment_status>success</pg_payment_status></pg_sig></pg_revoked_payments>"
)


def session(
    url: str,
    clock: FakeClock | None,
    *,
    attempt_timeout: float = 10.0,
    settle: fp.SettlePolicy = SETTLE,
) -> fp.AsyncSession:
    """Retries without real waits; spacing and settling in virtual time on ``clock`` (the
    sandbox's too, so its status lag passes as the session waits), or in real time where
    the sandbox takes real time (``None``)."""
    retry_clock = FakeClock()
    return fp.AsyncSession(
        fp.Credentials(MERCHANT, SECRET),
        base_url=url,
        retry=fp.RetryPolicy(attempts=3, attempt_timeout=attempt_timeout, sleep=retry_clock.sleep),
        spacing=SPACING if clock is None else on_clock(SPACING, clock),
        settle=settle if clock is None else on_clock(settle, clock),
    )


@pytest.fixture
def gateway_clock(clock: FakeClock) -> FakeClock:
    """The shared sandbox's status lag and ledger times on the settle loop's clock."""
    return clock


@pytest.fixture
async def mitm(served: tuple[SandboxGateway, str]) -> AsyncIterator[Mitm]:
    """A man in the middle in front of the shared sandbox (ids 1..2000 held)."""
    _gateway, url = served
    proxy = Mitm(url)
    async with proxy.serve():
        yield proxy


# -- a pg_sig nested in a reply ----------------------------------------------------------------


async def test_a_nested_pg_sig_still_verifies_but_is_never_read(
    served: tuple[SandboxGateway, str], mitm: Mitm, clock: FakeClock
) -> None:
    gateway, _url = served
    mitm.rules["status_v2"] = append_before_close(NESTED_REVOKE)
    async with session(mitm.url, clock) as s:
        with pytest.raises(fp.MalformedReplyError) as info:
            await s.status(101)
    assert "pg_sig" in str(info.value)
    # The premise: the rewritten reply is the gateway's signature over what it sent.
    (reply, *_) = mitm.replies("status_v2", 101)
    rewritten = mitm.exchanges[0].reply.body
    assert NESTED_REVOKE in rewritten and NESTED_REVOKE not in reply.body
    _root, fields = parse_xml_fields(rewritten)
    assert SIGNER.verify("status_v2", fields, str(dict(fields)["pg_sig"]))
    assert gateway.ledger[101].state == "held"


async def test_cancels_dropped_and_status_rewritten_never_report_a_cancel(
    served: tuple[SandboxGateway, str], mitm: Mitm, clock: FakeClock
) -> None:
    gateway, _url = served
    mitm.rules["cancel"] = garbage  # never forwarded
    mitm.rules["status_v2"] = append_before_close(NESTED_REVOKE)
    async with session(mitm.url, clock, settle=HOPELESS) as s:
        (outcome,) = [o async for o in s.cancel_many([102], concurrency=1)]
    assert outcome.state is fp.OutcomeState.UNKNOWN and not outcome.final
    assert outcome.result is None and outcome.settled_by is None
    assert isinstance(outcome.error, fp.MalformedReplyError)
    entry = gateway.ledger[102]
    assert (entry.state, entry.cancel_requests) == ("held", 0)
    assert entry.status_requests > 0  # status was asked, and none of it was believed


# -- a genuine 10033 replayed for another payment ----------------------------------------------


async def test_a_replayed_10033_never_settles_a_held_payment(
    served: tuple[SandboxGateway, str], mitm: Mitm, clock: FakeClock
) -> None:
    gateway, _url = served
    async with session(mitm.url, clock) as s:
        await s.cancel(103)
        with pytest.raises(fp.UnconfirmedReplyError):
            await s.cancel(103, reconcile=False)
    (*_, captured) = mitm.replies("cancel", 103)
    assert b"<pg_error_code>10033</pg_error_code>" in captured.body  # genuine and signed

    async def replay_once(payment_id: int | None, forward: Forward) -> Reply:
        if payment_id == 104 and not any(e.payment_id == 104 for e in mitm.exchanges):
            return captured  # the held payment's first cancel never reaches the gateway
        return await forward()

    mitm.rules["cancel"] = replay_once
    async with session(mitm.url, clock) as s:
        result = await s.cancel(104)
    # Not "already cancelled": status showed it held, so the cancel went out again.
    assert result.revoke_status is fp.RevokeStatus.SUCCESS and not result.confirmed_by_status
    assert result.signed and result.revoke_id == gateway.ledger[104].revoke_id
    entry = gateway.ledger[104]
    assert (entry.state, entry.cancellations, entry.cancel_requests) == ("cancelled", 1, 1)
    assert entry.status_requests >= 1
    sent = [e.forwarded for e in mitm.exchanges if (e.script, e.payment_id) == ("cancel", 104)]
    assert sent == [False, True]  # the replayed reply, then the cancel that did it


async def test_a_replayed_10033_in_a_batch_is_a_cancel_not_already_cancelled(
    served: tuple[SandboxGateway, str], mitm: Mitm, clock: FakeClock
) -> None:
    gateway, _url = served
    async with session(mitm.url, clock) as s:
        await s.cancel(105)
        with pytest.raises(fp.UnconfirmedReplyError):
            await s.cancel(105, reconcile=False)
    (*_, captured) = mitm.replies("cancel", 105)
    replayed: set[int | None] = set()

    async def replay_once(payment_id: int | None, forward: Forward) -> Reply:
        if payment_id in (106, 107) and payment_id not in replayed:
            replayed.add(payment_id)
            return captured
        return await forward()

    mitm.rules["cancel"] = replay_once
    async with session(mitm.url, clock) as s:
        outcomes = {o.payment_id: o async for o in s.cancel_many([106, 107], concurrency=2)}
    for pid in (106, 107):
        assert outcomes[pid].state is fp.OutcomeState.CANCELLED, outcomes[pid]
        assert outcomes[pid].settled_by == "resent"
        assert gateway.ledger[pid].state == "cancelled"
        assert gateway.ledger[pid].cancel_requests == 1


# -- money that moves slowly or silently -------------------------------------------------------


def money_gateway(
    *, processing_delay: float = 2.5, status_lag: float = 0.3, clock: FakeClock | None = None
) -> SandboxGateway:
    gateway = SandboxGateway(
        MERCHANT,
        SECRET,
        faults=FaultPlan(processing_delay=processing_delay),
        status_lag=status_lag,
        clock=clock,
    )
    gateway.add_payments(range(1, 11))
    return gateway


async def test_a_slow_refund_is_refunded_once_and_confirmed_by_status() -> None:
    # Real time throughout: the sandbox's processing delay is a real wait, which a
    # settle window in virtual time would not outlast.
    gateway = money_gateway(processing_delay=0.4, status_lag=0.1)
    async with gateway.serve() as url, session(url, None, attempt_timeout=0.3) as s:
        await s.clear(1)
        # the refund's baseline status, then the refund: applied 0.4 s after it arrived,
        # after the attempt timed out (both timers run on the one event loop, in order)
        gateway.inject(1, None, Fault.SLOW_PROCESSING)
        result = await s.refund(1, "100.00")
    entry = gateway.ledger[1]
    assert entry.refund_requests == 1 and len(entry.refunds) == 1  # never sent twice
    assert entry.refund_amount == Decimal("100.00")
    assert result.confirmed_by_status and result.refund_status is fp.RefundStatus.SUCCESS
    assert result.refund_id == entry.refunds[0][0]


@pytest.mark.parametrize("fault", [Fault.LOST_REPLY, Fault.RESET_AFTER])
async def test_a_clearing_whose_reply_is_lost_while_status_lags_is_confirmed(
    fault: Fault, clock: FakeClock
) -> None:
    gateway = money_gateway(status_lag=0.5, clock=clock)
    gateway.inject(2, fault)
    async with gateway.serve() as url, session(url, clock, attempt_timeout=0.3) as s:
        result = await s.clear(2, "400.00")  # never a final error
    entry = gateway.ledger[2]
    assert (entry.state, entry.clearings, entry.clearing_requests) == ("cleared", 1, 1)
    assert entry.status_requests >= 2  # the first reading, within the lag, showed it held
    assert result.confirmed_by_status and result.clearing_amount == Decimal("400.00")


async def test_refunds_read_as_sizes_partly_then_fully_refunded(clock: FakeClock) -> None:
    gateway = money_gateway(status_lag=0, clock=clock)
    async with gateway.serve() as url, session(url, clock) as s:
        await s.clear(3)
        await s.refund(3, "250.00")
        part = await s.status(3)
        await s.refund(3, "750.00")
        full = await s.status(3)
    assert part.state is fp.PaymentState.PARTIALLY_REFUNDED and part.paid
    assert part.refunded == part.refund_amount == Decimal("250.00")
    assert [r.amount for r in part.refund_payments] == [Decimal("250.00")]
    assert full.state is fp.PaymentState.REFUNDED
    assert full.refunded == Decimal("1000.00")
    assert [r.amount for r in full.refund_payments] == [Decimal("250.00"), Decimal("750.00")]
    assert gateway.ledger[3].refund_amount == Decimal("1000.00")


@pytest.mark.parametrize("fault", [Fault.LOST_REPLY, Fault.RESET_AFTER])
async def test_a_refund_whose_reply_is_lost_is_confirmed_by_status(
    fault: Fault, clock: FakeClock
) -> None:
    gateway = money_gateway(status_lag=0.3, clock=clock)
    async with gateway.serve() as url, session(url, clock, attempt_timeout=0.3) as s:
        await s.clear(4)
        await s.refund(4, "100.00")
        # Let status show that refund before the next one reads its baseline (one read
        # within the lag is stale: see the last test).
        await clock.sleep(gateway.status_lag)
        gateway.inject(4, None, fault)  # the next refund's baseline status, then its reply lost
        result = await s.refund(4, "300.00")
    entry = gateway.ledger[4]
    assert [amount for _, amount in entry.refunds] == [Decimal("100.00"), Decimal("300.00")]
    assert entry.refund_requests == 2
    assert result.confirmed_by_status and result.refund_status is fp.RefundStatus.SUCCESS
    assert result.refund_id == entry.refunds[-1][0]


# -- found while writing these: a refund baseline read within the status lag ------------------


async def test_a_refund_right_after_an_equal_one_is_not_confirmed_by_the_first(
    clock: FakeClock,
) -> None:
    gateway = money_gateway(status_lag=0.3, clock=clock)
    async with gateway.serve() as url, session(url, clock) as s:
        await s.clear(5)
        await clock.sleep(gateway.status_lag)
        first = await s.refund(5, "200.00")
        # At once, within the lag: the baseline status (which does not show the first
        # refund yet), then the second refund's HTTP 503, which the gateway never acted on.
        gateway.inject(5, None, Fault.HTTP_503)
        try:
            second: fp.RefundResult | fp.FreedomPayError = await s.refund(5, "200.00")
        except fp.FreedomPayError as exc:
            second = exc
    entry = gateway.ledger[5]
    assert entry.refunds[0][0] == first.refund_id
    # The session completes the stale baseline with the refund it made, so the first
    # refund surfacing in status is never taken for the second's proof: status shows
    # no trace of the second for a whole window, and it is sent again, for real.
    assert isinstance(second, fp.RefundResult) and not second.confirmed_by_status
    assert second.refund_id != first.refund_id
    assert [rid for rid, _ in entry.refunds] == [first.refund_id, second.refund_id]
