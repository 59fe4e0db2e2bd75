"""The ledger counts money movements and when each request about a payment arrived."""

from __future__ import annotations

import itertools

import aiohttp
import pytest

from freedompay_async.sandbox import Fault, LedgerEntry, SandboxGateway
from freedompay_async.sandbox._ledger import ARRIVALS_KEPT

from ..helpers import MERCHANT, SECRET
from .raw import ask


async def test_requests_and_movements_are_counted_apart() -> None:
    gw = SandboxGateway(MERCHANT, SECRET, status_lag=0)
    gw.add_payments([1, 2], amount="300.00")
    gw.inject(1, Fault.RESET_BEFORE)
    async with gw.serve() as url:
        with pytest.raises(aiohttp.ClientError):
            await ask(url, "clearing", 1)  # dropped before processing
        assert (await ask(url, "clearing", 1))["pg_status"] == "ok"
        assert (await ask(url, "clearing", 1))["pg_error_code"] == "10036"
        assert (await ask(url, "refund", 1, "100.00"))["pg_status"] == "ok"
        assert (await ask(url, "refund", 1, "200.00"))["pg_status"] == "ok"
        assert (await ask(url, "refund", 1, "0.01"))["pg_error_code"] == "10020"
        assert (await ask(url, "refund", 2, "1.00"))["pg_error_code"] == "10034"  # held
        await ask(url, "clearing", 2)
    one, two = gw.ledger[1], gw.ledger[2]
    assert (one.clearing_requests, one.clearings) == (3, 1)
    assert (one.refund_requests, len(one.refunds)) == (3, 2)
    assert one.money_movements == 3
    assert (two.clearing_requests, two.refund_requests, two.money_movements) == (1, 1, 1)
    assert one.cancel_requests == 0 and one.requests == 6
    stats = gw.stats()
    assert (stats["clearings"], stats["refunds"], stats["cleared_more_than_once"]) == (2, 2, 0)
    assert stats["cleared"] == 2 and stats["cancelled_more_than_once"] == 0


async def test_a_cancel_dropped_before_processing_is_still_a_cancel_request() -> None:
    gw = SandboxGateway(MERCHANT, SECRET)
    gw.add_payments([1])
    gw.inject(1, Fault.HTTP_503)
    async with gw.serve() as url:
        with pytest.raises(aiohttp.ClientResponseError) as info:
            await ask(url, "cancel", 1)
        await ask(url, "cancel", 1)
    assert info.value.status == 503
    assert gw.ledger[1].cancel_requests == 2
    assert gw.ledger[1].cancellations == 1


async def test_arrivals_are_timed_on_the_gateway_clock_and_bounded() -> None:
    now = [10.0]
    gw = SandboxGateway(MERCHANT, SECRET, clock=lambda: now[0])
    gw.add_payments([1, 2])
    async with gw.serve() as url:
        for _ in range(ARRIVALS_KEPT + 6):
            await ask(url, "status_v2", 1)
            now[0] += 1.5
        await ask(url, "cancel", 1)
        await ask(url, "refund", 99)  # unknown payment: not an arrival of anything held
    arrivals = gw.ledger[1].arrivals
    assert len(arrivals) == ARRIVALS_KEPT
    assert arrivals[-1] == (now[0], "cancel")
    assert arrivals[0] == (10.0 + 7 * 1.5, "status_v2")  # the oldest 7 were dropped
    spacing = {round(b[0] - a[0], 6) for a, b in itertools.pairwise(arrivals)}
    assert spacing == {1.5}
    assert isinstance(arrivals, tuple)
    assert gw.ledger[2].arrivals == ()
    assert 99 not in gw.ledger
    # Times differ from run to run, so they are left out of equality.
    entry = gw.ledger[1]
    assert entry == LedgerEntry(
        1,
        "cancelled",
        entry.revoke_id,
        ARRIVALS_KEPT + 7,
        1,
        status_requests=ARRIVALS_KEPT + 6,
        cancel_requests=1,
        cancels_after_told=0,
    )
