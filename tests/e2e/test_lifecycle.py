"""The shop of docs/lifecycle.md, end to end against the sandbox, for both API families.

The page's program is loaded as a module (its ``main`` is not run here; the docs test
runs it as a process). Buyers are simulated from Python (``SandboxGateway.pay``), so
the test can lose the shop's answers to a result notification and see it delivered
again, refuse a check, and read the sandbox's ledger after each step.
"""

from __future__ import annotations

import re
import types
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import freedompay_async as fp
from freedompay_async.sandbox import SandboxGateway

from ..helpers import FakeClock, on_clock

PAGE = Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
FAST_SETTLE = fp.SettlePolicy(window=2.0, poll_initial=0.05, poll_max=0.2)
SPACING = fp.PaymentSpacing(0.01)


def load_shop() -> types.ModuleType:
    blocks = FENCE.findall(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) == 1, "docs/lifecycle.md has one program"
    module = types.ModuleType("lifecycle_shop")
    exec(compile(blocks[0], str(PAGE), "exec"), module.__dict__)
    return module


SHOP = load_shop()


class Running:
    """The sandbox, a session of one family, and the page's shop served on loopback."""

    def __init__(
        self, gateway: SandboxGateway, session: fp.AsyncSession, shop: Any, clock: FakeClock
    ) -> None:
        self.gateway = gateway
        self.session = session
        self.shop = shop
        #: The virtual clock of the sandbox's status lag and of the session's waits.
        self.clock = clock

    async def checkout(self, order_id: str, amount: str = "150.00") -> int:
        """The buyer's checkout at the shop: the payment is created, the browser sent on."""
        self.shop.orders[order_id] = SHOP.Order(order_id, Decimal(amount))
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.shop.public_url}/orders/{order_id}/pay", allow_redirects=False) as r,
        ):
            assert r.status == 302 and "/pay.html?customer=" in r.headers["Location"]
        payment_id = self.shop.orders[order_id].payment_id
        assert isinstance(payment_id, int)
        assert self.gateway.ledger[payment_id].state == "new"
        return payment_id


@pytest.fixture(params=["merchant", "gateway"])
async def running(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Running]:
    # The status lag, the settle loop and the spacing share a virtual clock: the lag
    # passes as the session waits. Redeliveries wait real time, a short interval.
    clock = FakeClock()
    gateway = SandboxGateway(redelivery_interval=0.01, redelivery_attempts=4, clock=clock)
    gateway.status_lag = 0.05  # lagging all the same: the merchant family confirms by status
    answers = SHOP.SqliteAnswerStore(str(tmp_path / "answers.db"))
    credentials = fp.Credentials(gateway.merchant_id, gateway.secret_key)
    async with (
        gateway.serve() as base,
        fp.AsyncSession(
            credentials,
            base_url=base,
            api=request.param,
            spacing=on_clock(SPACING, clock),
            settle=on_clock(FAST_SETTLE, clock),
        ) as s,
    ):
        shop = SHOP.Shop(s, "", answers)
        runner = web.AppRunner(shop.app(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            shop.public_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            yield Running(gateway, s, shop, clock)
            await gateway.wait_deliveries()
        finally:
            await runner.cleanup()
            answers.close()


async def test_paid_shipped_and_partly_returned(running: Running) -> None:
    gateway, shop = running.gateway, running.shop
    pid = await running.checkout("A")
    visit = await gateway.pay(pid, "paid", lost_answers=2)  # two answers never arrive
    await gateway.wait_deliveries()
    results = [d for d in gateway.deliveries(pid) if d.kind == "result"]
    assert visit.paid and visit.state == "held"
    assert visit.check is not None and visit.check.answer == "ok"
    assert visit.redirect is not None and visit.redirect.status == 200
    assert "Thank you" in visit.redirect.body.decode()
    # delivered three times, answered the same each time, seen by the shop once
    assert [d.attempt for d in results] == [1, 2, 3]
    assert [d.answer for d in results] == ["ok"] * 3 and results[-1].delivered
    assert shop.notifications_seen == 1 and shop.orders["A"].state == "paid"
    assert await shop.answers.get(f"{pid}:1") == ("ok", "")

    shipped = await shop.ship("A")
    assert shipped.payment_id == pid
    assert gateway.ledger[pid].state == "cleared"
    assert gateway.ledger[pid].clearing_amount == Decimal("150.00")
    await shop.take_back("A", Decimal("40.00"))
    assert gateway.ledger[pid].refund_amount == Decimal("40.00")
    assert gateway.ledger[pid].clearings == 1 and len(gateway.ledger[pid].refunds) == 1
    await running.clock.sleep(2 * gateway.status_lag)  # status shows a refund that late
    status = await running.session.status(pid)
    assert status.state is fp.PaymentState.PARTIALLY_REFUNDED
    assert status.refunded == Decimal("40.00")


async def test_not_shipped_in_time_releases_the_hold(running: Running) -> None:
    gateway, shop = running.gateway, running.shop
    pid = await running.checkout("B")
    visit = await gateway.pay(pid, "paid")
    assert visit.paid and visit.result is not None and visit.result.answer == "ok"
    result = await shop.expire("B")
    assert result.revoke_status is fp.RevokeStatus.SUCCESS
    assert gateway.ledger[pid].state == "cancelled" and gateway.ledger[pid].cancellations == 1
    await running.clock.sleep(2 * gateway.status_lag)
    assert (await running.session.status(pid)).state is fp.PaymentState.REVOKED


async def test_a_refused_check_fails_the_payment_before_money_moves(running: Running) -> None:
    gateway, shop = running.gateway, running.shop
    pid = await running.checkout("C")
    shop.orders["C"].state = "cancelled"  # the order was withdrawn meanwhile
    visit = await gateway.pay(pid, "paid")
    assert visit.check is not None and visit.check.answer == "rejected"
    assert not visit.paid and gateway.ledger[pid].state == "failed"
    assert visit.result is not None and visit.result.answer == "ok"  # a failure, noted
    assert visit.redirect is not None and "did not go through" in visit.redirect.body.decode()
    assert shop.orders["C"].state == "cancelled" and not shop.orders["C"].paid.is_set()


async def test_a_failed_payment_is_a_failed_order(running: Running) -> None:
    gateway, shop = running.gateway, running.shop
    pid = await running.checkout("D")
    visit = await gateway.pay(pid, "failed")
    assert not visit.paid and visit.check is None  # no check for a buyer who gave up
    assert shop.orders["D"].state == "failed"
    assert await shop.answers.get(f"{pid}:0") == ("ok", "")


async def test_the_sqlite_store_keeps_answers_across_restarts(tmp_path: Path) -> None:
    path = str(tmp_path / "answers.db")
    first = SHOP.SqliteAnswerStore(path)
    assert isinstance(first, fp.AnswerStore)
    assert await first.put("7:1", ("rejected", "Sold out")) == ("rejected", "Sold out")
    assert await first.put("7:1", ("ok", "")) == ("rejected", "Sold out")  # first one wins
    first.close()
    again = SHOP.SqliteAnswerStore(path)
    try:
        assert await again.get("7:1") == ("rejected", "Sold out")
        assert await again.get("7:0") is None
    finally:
        again.close()
