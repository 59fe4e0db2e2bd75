"""``Limits(max_connections=N)`` caps the requests in flight, measured at the transport.

A gated MockTransport holds every request until the test opens the gate, and records
the peak number held at once. The test waits until every caller has entered the chain
(an outermost middleware counts them), lets the loop run, and only then looks.
"""

from __future__ import annotations

import asyncio

import freedompay_async as fp
from freedompay_async import HttpResponse, MockTransport
from freedompay_async._layers.slots import Slots

from ..helpers import MERCHANT, SECRET, ok_fields, signed

CREDS = fp.Credentials(MERCHANT, SECRET)
CALLERS = 10


class Gate:
    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.inside = 0
        self.peak = 0
        self.entered = 0
        self.all_entered = asyncio.Event()

    async def respond(self, request: fp.GatewayRequest) -> HttpResponse:
        self.inside += 1
        self.peak = max(self.peak, self.inside)
        try:
            await self.open.wait()
        finally:
            self.inside -= 1
        assert request.payment_id is not None
        return HttpResponse(200, signed(ok_fields(request.payment_id)))

    async def count(self, request: fp.GatewayRequest, call_next: fp.Handler) -> fp.GatewayReply:
        self.entered += 1
        if self.entered == CALLERS:
            self.all_entered.set()
        return await call_next(request)


async def _settle() -> None:
    for _ in range(100):  # nothing here waits on time: a bounded number of loop turns
        await asyncio.sleep(0)


def _session(gate: Gate, limit: int) -> fp.AsyncSession:
    return fp.AsyncSession(
        CREDS,
        base_url="http://gw",
        transport=MockTransport(gate.respond),
        limits=fp.Limits(max_connections=limit),
        middlewares=[gate.count],
        retry=fp.RetryPolicy.none(),
    )


async def test_concurrent_cancels_never_exceed_max_connections() -> None:
    gate = Gate()
    async with _session(gate, 3) as s:
        tasks = [asyncio.create_task(s.cancel(pid)) for pid in range(1, CALLERS + 1)]
        await asyncio.wait_for(gate.all_entered.wait(), timeout=10)
        await _settle()
        assert (gate.peak, gate.inside) == (3, 3)
        gate.open.set()
        results = await asyncio.gather(*tasks)
    assert sorted(r.payment_id for r in results) == list(range(1, CALLERS + 1))
    assert gate.peak == 3


async def test_cancel_many_wider_than_the_cap_is_held_to_the_cap() -> None:
    gate = Gate()
    async with _session(gate, 3) as s:

        async def consume() -> list[fp.CancelOutcome]:
            return [o async for o in s.cancel_many(range(1, CALLERS + 1), concurrency=CALLERS)]

        task = asyncio.create_task(consume())
        await asyncio.wait_for(gate.all_entered.wait(), timeout=10)
        await _settle()
        assert gate.peak == 3
        gate.open.set()
        outcomes = await task
    assert len(outcomes) == CALLERS
    assert all(o.state is fp.OutcomeState.CANCELLED for o in outcomes)
    assert gate.peak == 3


async def test_the_cap_is_a_cap_not_a_serialiser() -> None:
    """Control: with a cap above the callers, all of them are in flight together."""
    gate = Gate()
    async with _session(gate, CALLERS + 5) as s:
        tasks = [asyncio.create_task(s.cancel(pid)) for pid in range(1, CALLERS + 1)]
        await asyncio.wait_for(gate.all_entered.wait(), timeout=10)
        await _settle()
        assert gate.peak == CALLERS
        gate.open.set()
        await asyncio.gather(*tasks)


async def test_slots_go_first_come_first_served_and_a_cancelled_waiter_passes_its_on() -> None:
    slots = Slots(1)
    assert slots.try_take() and not slots.try_take() and slots.locked()
    got: list[int] = []

    async def wait(n: int) -> None:
        await slots.take()
        got.append(n)

    a, b, c, d = (asyncio.create_task(wait(n)) for n in (1, 2, 3, 4))
    await asyncio.sleep(0)
    a.cancel()  # gone from the line before any slot came
    await asyncio.sleep(0)
    slots.give()  # to b
    b.cancel()  # handed a slot, cancelled before it ran: the slot goes on to c
    await asyncio.gather(a, b, return_exceptions=True)
    await asyncio.sleep(0)
    assert got == [3]
    slots.give()  # to d
    await asyncio.sleep(0)
    assert got == [3, 4] and not slots.try_take()
    slots.give()
    assert slots.try_take()  # nobody waiting: the slot was back in the pool
    assert a.cancelled() and b.cancelled() and c.done() and d.done()


async def test_a_first_line_waiter_is_served_before_earlier_waiters() -> None:
    slots = Slots(1)
    assert slots.try_take()
    got: list[str] = []

    async def wait(name: str, *, first: bool = False) -> None:
        await slots.take(first=first)
        got.append(name)

    idle = asyncio.create_task(wait("idle"))
    await asyncio.sleep(0)
    back = asyncio.create_task(wait("back", first=True))
    await asyncio.sleep(0)
    assert slots.first_waiting and slots.locked()
    slots.give()
    await asyncio.sleep(0)
    assert got == ["back"] and not slots.first_waiting
    slots.give()
    await asyncio.gather(idle, back)
    assert got == ["back", "idle"]
