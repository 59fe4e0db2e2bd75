"""Hostile review of the Merchant API family: a man in the middle against init_payment
and its settle path, each finding as a test.

A real ``AsyncSession(api="merchant")`` talks to a served ``SandboxGateway`` over
loopback through the proxy of ``mitm.py``. A finding still open is
``xfail(strict=True)``: the fix turns it into a pass.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from aiohttp import web

import freedompay_async as fp
from freedompay_async.sandbox import SandboxGateway

from ..helpers import MERCHANT, SECRET, SIGNER, FakeClock, on_clock, serve
from .mitm import Forward, Mitm, Reply

SHORT = fp.SettlePolicy(window=0.4, poll_initial=0.05, poll_max=0.1)
INIT, STATUS2 = "init_payment.php", "get_status2.php"


def session(url: str) -> fp.AsyncSession:
    """Spacing and settling in virtual time: the settle windows cost no real time."""
    clock = FakeClock()
    return fp.AsyncSession(
        fp.Credentials(MERCHANT, SECRET),
        base_url=url,
        api="merchant",
        settle=on_clock(SHORT, clock),
        retry=fp.RetryPolicy(attempt_timeout=0.5, wait_initial=0.01, wait_max=0.02),
        spacing=on_clock(fp.PaymentSpacing(0.01), clock),
    )


def payments_of(gateway: SandboxGateway, order_id: str) -> list[int]:
    return [pid for pid in gateway.ledger if gateway.ledger[pid].order_id == order_id]


async def forward_then_garble(_payment_id: int | None, forward: Forward) -> Reply:
    """The init reaches the gateway (a payment is made); the client gets a 502 page."""
    await forward()
    return Reply(502, b"<html>bad gateway</html>", "text/html")


def always(reply: Reply):  # type: ignore[no-untyped-def]
    async def rule(_payment_id: int | None, _forward: Forward) -> Reply:
        return reply

    return rule


def upstream_of(mitm: Mitm, script: str) -> Reply:
    """The gateway's own last reply to ``script``."""
    replies = [e.upstream for e in mitm.exchanges if e.script == script and e.upstream]
    assert replies, f"no {script} reply captured"
    return replies[-1]


async def order(s: fp.AsyncSession, order_id: str) -> fp.PaymentPage:
    return await s.init_payment(order_id=order_id, amount="150", description=f"Order {order_id}")


# -- 1. a replayed "no such payment" settles a lost init as "none was created" ---------------


async def test_a_replayed_no_such_payment_never_settles_a_lost_init_as_not_created() -> None:
    gateway = SandboxGateway(MERCHANT, SECRET)
    async with gateway.serve() as url:
        mitm = Mitm(url)
        async with mitm.serve(), session(mitm.url) as s:
            with pytest.raises(fp.PaymentNotFoundError):
                await s.status_by_order("NO-SUCH-ORDER")  # a genuine signed "payment 0"
            mitm.rules[INIT] = forward_then_garble
            mitm.rules[STATUS2] = always(upstream_of(mitm, STATUS2))
            with pytest.raises(fp.FreedomPayError) as info:
                await order(s, "B-1")
    (made,) = payments_of(gateway, "B-1")  # the init was acted on: a payment exists
    assert made and gateway.requests_by_operation[INIT] == 1
    # Told "outcome known, none was created", the caller sends it again: a second payment.
    assert info.value.outcome_unknown, f"reported as not created: {info.value!r}"


# -- 2. a replayed get_status2 reply of another order names that order's payment -------------


async def test_a_replayed_order_status_of_another_order_never_names_its_payment() -> None:
    gateway = SandboxGateway(MERCHANT, SECRET)
    async with gateway.serve() as url:
        mitm = Mitm(url)
        async with mitm.serve(), session(mitm.url) as s:
            other = await order(s, "A-1")
            await s.status_by_order("A-1")  # a genuine signed reply naming A-1's payment
            mitm.rules[INIT] = forward_then_garble
            mitm.rules[STATUS2] = always(upstream_of(mitm, STATUS2))
            with pytest.raises(fp.FreedomPayError) as info:
                await order(s, "B-1")
    (made,) = payments_of(gateway, "B-1")
    error = info.value
    # The library tells the caller to cancel the payment it names: here, order A-1's.
    assert getattr(error, "payment_id", None) != other.payment_id, (
        f"order B-1 settled as A-1's payment {other.payment_id} (B-1's is {made}): {error!r}"
    )


# -- 3. a replayed init_payment reply: the payment page of another order ---------------------


@pytest.mark.xfail(
    strict=True,
    reason="known limit (docs/reliability.md): init_payment believes a replayed signed "
    "init reply of another order (the "
    "reply names no order and is not checked against status): the page of A-1 for B-1",
)
async def test_a_replayed_init_reply_is_not_the_page_of_a_new_order() -> None:
    gateway = SandboxGateway(MERCHANT, SECRET)
    async with gateway.serve() as url:
        mitm = Mitm(url)
        async with mitm.serve(), session(mitm.url) as s:
            other = await order(s, "A-1")
            mitm.rules[INIT] = always(upstream_of(mitm, INIT))  # B-1 never reaches it
            try:
                page: fp.PaymentPage | fp.FreedomPayError = await order(s, "B-1")
            except fp.FreedomPayError as exc:
                page = exc
    assert payments_of(gateway, "B-1") == []
    # The merchant would store A-1's payment for B-1 and send B-1's buyer to pay A-1.
    assert not (isinstance(page, fp.PaymentPage) and page.payment_id == other.payment_id), (
        f"the replayed page of A-1 was returned for B-1: {page!r}"
    )


# -- 4. one notification at two workers sharing the documented database store --------------


@pytest.mark.xfail(
    strict=True,
    reason="known limit (docs/callbacks.md): two workers sharing one AnswerStore "
    "(the documented several-process set-up) "
    "both miss on get() and both call on_result: the app sees one notification twice",
)
async def test_one_notification_at_two_workers_sharing_a_store_reaches_the_app_once() -> None:
    shared = fp.MemoryAnswerStore()  # stands for the database store both workers use
    calls: list[int] = []

    async def on_result(notify: fp.ResultNotify) -> fp.CallbackAnswer:
        calls.append(notify.payment_id)
        await asyncio.sleep(0.1)  # the shop's own work: ship the goods
        return "ok"

    def worker() -> web.Application:
        app = web.Application()
        handler = fp.result_notify_handler(SIGNER, on_result, answers=shared)
        app.router.add_post("/pay/result", handler)
        return app

    gateway = SandboxGateway(MERCHANT, SECRET)
    async with serve(worker()) as one, serve(worker()) as two:
        # A delivery timed out at the shop's balancer and came again to the other worker.
        answers = await asyncio.gather(
            *(
                gateway.send_result_notify(
                    f"{base}/pay/result", payment_id=77, order_id="A-1", amount="150"
                )
                for base in (one, two)
            )
        )
    assert [status for status, _ in answers] == [200, 200]
    assert calls == [77], f"on_result ran {len(calls)} times for one notification"


# -- held: a merchant "ok" names no payment, so a replayed one is never a result -----------


async def test_a_replayed_merchant_ok_of_another_payment_is_never_a_clearing_or_refund() -> None:
    gateway = SandboxGateway(MERCHANT, SECRET, status_lag=0)
    gateway.add_payments(range(1, 3), amount="100")
    async with gateway.serve() as url:
        mitm = Mitm(url)
        async with mitm.serve():
            async with session(mitm.url) as s:
                await s.clear(1)
                await s.refund(1, "10")
                # Never forwarded: the genuine "ok"s of payment 1, replayed.
                mitm.rules["do_capture.php"] = always(upstream_of(mitm, "do_capture.php"))
                mitm.rules["revoke.php"] = always(upstream_of(mitm, "revoke.php"))
                with pytest.raises(fp.FreedomPayError) as cleared:
                    await s.clear(2)
                with pytest.raises(fp.FreedomPayError) as refunded:
                    await s.refund(1, "10")
    assert cleared.value.outcome_unknown and refunded.value.outcome_unknown
    assert gateway.ledger[2].clearings == 0
    assert gateway.ledger[1].refunds == ((gateway.ledger[1].refunds[0][0], Decimal(10)),)


# -- 5. a get_status3 reply that names another order than the one asked about --------------


async def test_a_status_reply_naming_another_order_than_asked_is_refused() -> None:
    gateway = SandboxGateway(MERCHANT, SECRET)
    async with gateway.serve() as url:
        mitm = Mitm(url)
        async with mitm.serve(), session(mitm.url) as s:
            page = await order(s, "A-1")
            assert (await s.status(page.payment_id)).order_id == "A-1"
            # Is this payment order B-1's? The gateway would say no such payment.
            mitm.rules["get_status3.php"] = always(upstream_of(mitm, "get_status3.php"))
            try:
                seen: fp.StatusResult | fp.FreedomPayError = await s.status(
                    page.payment_id, order_id="B-1"
                )
            except fp.FreedomPayError as exc:
                seen = exc
    assert not isinstance(seen, fp.StatusResult), f"asked for B-1, believed {seen!r}"
