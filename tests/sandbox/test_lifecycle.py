"""The sandbox's lifecycle: init_payment.php, the payment page, the buyer, and the
messages it sends the merchant (check, result with redeliveries, redirect back).

A small merchant server on loopback records what arrives and verifies it with the
library's own verifiers (the sandbox signs with each URL's script name); it answers
with signed XML, or with HTTP 503 while ``down`` is set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import freedompay_async as fp
from freedompay_async.sandbox import Fault, SandboxGateway

FAST_SETTLE = fp.SettlePolicy(window=1.0, poll_initial=0.02, poll_max=0.1)


class Merchant:
    def __init__(self, signer: fp.Signer) -> None:
        self.signer = signer
        self.base = ""
        self.arrived: list[tuple[str, Any]] = []
        self.down = 0  # answer this many result deliveries with HTTP 503
        self.check_answer = "ok"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/shop/check.php", self.check)
        app.router.add_route("*", "/shop/result.php", self.result)
        app.router.add_route("*", "/shop/back.php", self.back)
        return app

    async def _fields(self, request: web.Request) -> dict[str, str]:
        if request.method == "GET":
            return dict(request.query)
        return {name: str(value) for name, value in (await request.post()).items()}

    async def check(self, request: web.Request) -> web.Response:
        url = f"{self.base}/shop/check.php"
        check = fp.verify_check_request(url, await self._fields(request), self.signer)
        self.arrived.append(("check", check))
        reply = fp.callback_reply(url, self.signer, self.check_answer, salt=check.salt)
        return web.Response(body=reply, content_type="text/xml")

    async def result(self, request: web.Request) -> web.Response:
        url = f"{self.base}/shop/result.php"
        notify = fp.verify_result_notify(url, await self._fields(request), self.signer)
        self.arrived.append(("result", notify))
        if self.down > 0:
            self.down -= 1
            return web.Response(status=503)
        reply = fp.callback_reply(url, self.signer, "ok", salt=notify.salt)
        return web.Response(body=reply, content_type="text/xml")

    async def back(self, request: web.Request) -> web.Response:
        url = f"{self.base}/shop/back.php"
        redirect = fp.verify_redirect(url, await self._fields(request), self.signer)
        self.arrived.append(("redirect", redirect))
        return web.Response(text="back at the shop")

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.arrived]


@pytest.fixture
async def world() -> AsyncIterator[tuple[SandboxGateway, str, Merchant]]:
    gateway = SandboxGateway(redelivery_interval=0.02, redelivery_attempts=3)
    gateway.status_lag = 0.0
    merchant = Merchant(fp.Md5Signer(gateway.secret_key))
    runner = web.AppRunner(merchant.app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        merchant.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with gateway.serve() as base:
            yield gateway, base, merchant
            await gateway.wait_deliveries()
    finally:
        await runner.cleanup()


def session(gateway: SandboxGateway, base: str, api: str = "merchant") -> fp.AsyncSession:
    return fp.AsyncSession(
        fp.Credentials(gateway.merchant_id, gateway.secret_key),
        base_url=base,
        api=api,
        retry=fp.RetryPolicy.none(),
        spacing=fp.PaymentSpacing(0.001),
        settle=FAST_SETTLE,
    )


def request(merchant: Merchant, order_id: str, **extra: Any) -> fp.InitPaymentRequest:
    fields: dict[str, Any] = {
        "order_id": order_id,
        "amount": "150.00",
        "description": f"Order {order_id}",
        "auto_clearing": False,
        "check_url": f"{merchant.base}/shop/check.php",
        "result_url": f"{merchant.base}/shop/result.php",
        "success_url": f"{merchant.base}/shop/back.php",
        "failure_url": f"{merchant.base}/shop/back.php",
        "merchant_params": {"cart": "7"},
        **extra,
    }
    return fp.InitPaymentRequest(**fields)


async def test_init_payment_answers_the_page_of_a_new_payment(
    world: tuple[SandboxGateway, str, Merchant],
) -> None:
    gateway, base, merchant = world
    async with session(gateway, base) as fp_session:
        page = await fp_session.init_payment(request(merchant, "A-1"))
        again = await fp_session.status_by_order("A-1")
    assert page.redirect_url.startswith(f"{base}/pay.html?customer=")
    assert gateway.ledger[page.payment_id].state == "new"
    assert gateway.ledger[page.payment_id].order_id == "A-1"
    assert again.payment_id == page.payment_id and again.state is fp.PaymentState.NEW
    async with aiohttp.ClientSession() as http, http.get(page.redirect_url) as shown:
        text = await shown.text()
    assert shown.status == 200 and "150.00 KZT" in text and "Order A-1" in text


@pytest.mark.parametrize("method", ["POST", "GET", "XML"])
async def test_a_paid_visit_sends_check_result_and_redirect_signed(
    world: tuple[SandboxGateway, str, Merchant], method: str
) -> None:
    gateway, base, merchant = world
    async with session(gateway, base) as fp_session:
        page = await fp_session.init_payment(request(merchant, "A-2", request_method=method))
        visit = await gateway.pay(page.payment_id, "paid")
        status = await fp_session.status(page.payment_id)
    assert visit.paid and visit.state == "held" and status.state is fp.PaymentState.HELD
    assert merchant.kinds() == ["check", "result", "redirect"]
    check, notify, back = (value for _, value in merchant.arrived)
    assert check.payment_id == page.payment_id and check.merchant_params == {"cart": "7"}
    assert notify.result == 1 and notify.can_reject and notify.order_id == "A-2"
    assert notify.merchant_params == {"cart": "7"} and not notify.captured
    assert back.succeeded and back.payment_id == page.payment_id


async def test_the_buyer_over_http_pays_through_the_page(
    world: tuple[SandboxGateway, str, Merchant],
) -> None:
    gateway, base, merchant = world
    async with session(gateway, base, "gateway") as fp_session:
        page = await fp_session.init_payment(request(merchant, "A-3", auto_clearing=True))
    customer = page.redirect_url.split("customer=", 1)[1]
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/pay.html", data={"customer": customer, "outcome": "paid"}) as back,
    ):
        text = await back.text()
    assert back.status == 200 and text == "back at the shop"  # followed the 302 back
    assert gateway.ledger[page.payment_id].state == "cleared"  # one-step: captured at once
    assert merchant.kinds() == ["check", "result", "redirect"]
    assert merchant.arrived[1][1].captured
    async with aiohttp.ClientSession() as http, http.get(page.redirect_url) as again:
        assert again.status == 409  # the page of a paid payment is closed


async def test_a_result_not_answered_200_is_delivered_again_until_it_is(
    world: tuple[SandboxGateway, str, Merchant],
) -> None:
    gateway, base, merchant = world
    merchant.down = 2
    async with session(gateway, base) as fp_session:
        page = await fp_session.init_payment(request(merchant, "A-4", check_url=None))
        visit = await gateway.pay(page.payment_id, "paid")
        await gateway.wait_deliveries()
    results = [d for d in gateway.deliveries(page.payment_id) if d.kind == "result"]
    assert visit.result is not None and visit.result.status == 503
    assert [(d.attempt, d.status) for d in results] == [(1, 503), (2, 503), (3, 200)]
    notified = [value for kind, value in merchant.arrived if kind == "result"]
    assert [n.can_reject for n in notified] == [True, False, False]  # as documented


async def test_redelivery_gives_up_after_its_attempts(
    world: tuple[SandboxGateway, str, Merchant],
) -> None:
    gateway, base, merchant = world
    merchant.down = 100
    async with session(gateway, base) as fp_session:
        page = await fp_session.init_payment(request(merchant, "A-5", check_url=None))
        await gateway.pay(page.payment_id, "paid")
        await gateway.wait_deliveries()
    results = [d for d in gateway.deliveries(page.payment_id) if d.kind == "result"]
    assert len(results) == 1 + 3 and not any(d.delivered for d in results)


async def test_a_refused_check_fails_the_payment(
    world: tuple[SandboxGateway, str, Merchant],
) -> None:
    gateway, base, merchant = world
    merchant.check_answer = "rejected"
    async with session(gateway, base) as fp_session:
        page = await fp_session.init_payment(request(merchant, "A-6"))
        visit = await gateway.pay(page.payment_id, "paid")
        status = await fp_session.status(page.payment_id)
    assert not visit.paid and visit.state == "failed"
    assert status.state is fp.PaymentState.FAILED
    notify, back = merchant.arrived[1][1], merchant.arrived[2][1]
    assert notify.result == 0 and not back.succeeded and back.error_code == "10016"


async def test_the_merchant_endpoints_lag_and_fault_like_the_gateway_ones(
    world: tuple[SandboxGateway, str, Merchant],
) -> None:
    gateway, base, merchant = world
    gateway.status_lag = 0.05
    async with session(gateway, base) as fp_session:
        page = await fp_session.init_payment(request(merchant, "A-7", check_url=None))
        await gateway.pay(page.payment_id, "paid")
        gateway.inject(page.payment_id, Fault.RESET_AFTER)  # the capture is done, unanswered
        result = await fp_session.clear(page.payment_id)
    assert result.confirmed_by_status  # status lagged, then showed it captured
    entry = gateway.ledger[page.payment_id]
    assert entry.state == "cleared" and entry.clearings == 1 and entry.clearing_requests == 1
    assert gateway.requests_by_operation["get_status3.php"] >= 2


async def test_an_init_that_may_have_created_a_payment_is_never_sent_twice(
    world: tuple[SandboxGateway, str, Merchant],
) -> None:
    gateway, base, merchant = world
    gateway.inject_init(Fault.RESET_AFTER)
    async with session(gateway, base) as fp_session:
        with pytest.raises(fp.PaymentExistsError) as info:
            await fp_session.init_payment(request(merchant, "A-8"))
    assert info.value.order_id == "A-8"
    assert gateway.requests_by_operation["init_payment.php"] == 1
    assert gateway.ledger[info.value.payment_id].order_id == "A-8"
