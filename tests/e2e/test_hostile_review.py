"""Hostile review: a man in the middle against the money path, each finding as a test.

Every test here runs a real ``AsyncSession`` against a served ``SandboxGateway`` over
loopback, with the man in the middle of ``mitm.py`` where the attack needs one. A
finding still open is ``xfail(strict=True)``: the fix turns it into a pass. Each test
asserts both what the client reports and what the gateway's ledger shows.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

import freedompay_async as fp
from freedompay_async.sandbox import SandboxGateway

from ..helpers import MERCHANT, SECRET, FakeClock
from .mitm import Forward, Mitm, Reply

#: Status every 0.05-0.2 s for 1 s after the last send.
SETTLE = fp.SettlePolicy(window=1.0, poll_initial=0.05, poll_max=0.2)


def session(url: str, *, attempt_timeout: float = 5.0, **kw: object) -> fp.AsyncSession:
    """Retries without real waits, requests about one payment 0.01 s apart, fast settling."""
    clock = FakeClock()
    kw.setdefault("settle", SETTLE)
    return fp.AsyncSession(
        fp.Credentials(MERCHANT, SECRET),
        base_url=url,
        retry=fp.RetryPolicy(attempts=3, attempt_timeout=attempt_timeout, sleep=clock.sleep),
        spacing=fp.PaymentSpacing(0.01),
        **kw,  # type: ignore[arg-type]
    )


def money_gateway(*, status_lag: float = 0.0) -> SandboxGateway:
    gateway = SandboxGateway(MERCHANT, SECRET, status_lag=status_lag)
    gateway.add_payments(range(1, 11))
    return gateway



async def forward_then_garble(_payment_id: int | None, forward: Forward) -> Reply:
    """The request reaches the gateway (which acts); the client gets a 502 page."""
    await forward()
    return Reply(502, b"<html>bad gateway</html>", "text/html")


# -- a genuine refund reply of an earlier refund, replayed ----------------------------------


@pytest.mark.xfail(
    strict=True,
    reason="a signed refund reply of an earlier refund of the same payment, replayed to a "
    "later refund that never reached the gateway, is believed: the later refund is "
    "reported done with the earlier refund's id",
)
async def test_a_replayed_refund_reply_of_an_earlier_refund_is_not_a_new_refund() -> None:
    gateway = money_gateway()
    async with gateway.serve() as url:
        mitm = Mitm(url)
        async with mitm.serve(), session(mitm.url) as s:
            await s.clear(1)
            first = await s.refund(1, "100.00")
            (captured,) = mitm.replies("refund", 1)

            async def replay(_payment_id: int | None, _forward: Forward) -> Reply:
                return captured  # the second refund never reaches the gateway

            mitm.rules["refund"] = replay
            try:
                second: fp.RefundResult | fp.FreedomPayError = await s.refund(1, "300.00")
            except fp.FreedomPayError as exc:
                second = exc
    entry = gateway.ledger[1]
    assert [amount for _, amount in entry.refunds] == [Decimal("100.00")]  # premise
    assert first.refund_id == entry.refunds[0][0]
    # The replayed reply names a refund the baseline already lists: it is no proof of
    # this refund. Whatever the client reports, it is not "refunded 300".
    assert not (
        isinstance(second, fp.RefundResult)
        and second.refund_status is fp.RefundStatus.SUCCESS
    ), f"the replay was believed: {second!r}"


# -- a stale status reply of the same payment, replayed while a refund settles ------------


@pytest.mark.xfail(
    strict=True,
    reason="while a refund whose reply was lost is settled, a man in the middle replays "
    "the payment's own earlier signed status reply (the baseline's): a whole window of "
    "'untouched' readings, so the refund is sent again and money moves twice",
)
async def test_a_replayed_baseline_status_never_sends_a_refund_twice() -> None:
    gateway = money_gateway()
    async with gateway.serve() as url:
        mitm = Mitm(url)
        async with mitm.serve(), session(mitm.url, settle=SETTLE) as s:
            await s.clear(2)
            # The refund's baseline: a genuine status reply, captured as it passes.
            stale: list[Reply] = []

            async def capture_then_replay(_payment_id: int | None, forward: Forward) -> Reply:
                if not stale:
                    stale.append(await forward())
                    return stale[0]
                return stale[0]  # every later reading is the baseline's, replayed

            mitm.rules["status_v2"] = capture_then_replay
            mitm.rules["refund"] = forward_then_garble
            try:
                outcome: object = await s.refund(2, "100.00")
            except fp.FreedomPayError as exc:
                outcome = exc
    entry = gateway.ledger[2]
    assert entry.refund_requests >= 1 and len(entry.refunds) >= 1  # premise: it happened
    assert len(entry.refunds) == 1, f"refunded twice; the client got {outcome!r}"
