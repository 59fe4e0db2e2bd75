"""Pacing holds every attempt to a minimum spacing, shared by all tasks of a session."""

from __future__ import annotations

import asyncio
import itertools

import pytest

import freedompay_async as fp
from freedompay_async import HttpResponse, MockTransport

from ..helpers import MERCHANT, SECRET, FakeClock, error_fields, ok_fields, signed, virtual_spacing


async def test_spacing_is_never_below_the_interval_under_concurrency() -> None:
    clock = FakeClock()
    sent_at: list[float] = []

    async def respond(request: fp.GatewayRequest) -> HttpResponse:
        sent_at.append(clock.now)
        await asyncio.sleep(0)
        assert request.payment_id is not None
        return HttpResponse(200, signed(ok_fields(request.payment_id)))

    pacing = fp.Pacing(1.5, clock=clock, sleep=clock.sleep)
    async with (
        fp.AsyncSession(
            fp.Credentials(MERCHANT, SECRET),
            base_url="http://gw",
            transport=MockTransport(respond),
            pacing=pacing,
        ) as s,
        asyncio.TaskGroup() as tg,
    ):
        for pid in range(1, 41):
            tg.create_task(s.cancel(pid))
    assert len(sent_at) == 40
    ordered = sorted(sent_at)
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    assert min(gaps) >= 1.5 - 1e-9


async def test_retries_take_paced_slots_too() -> None:
    clock = FakeClock()
    sent_at: list[float] = []
    replies = [HttpResponse(200, signed(error_fields(9999))), None]

    async def respond(request: fp.GatewayRequest) -> HttpResponse:
        sent_at.append(clock.now)
        step = replies.pop(0)
        return step or HttpResponse(200, signed(ok_fields(7)))

    retry = fp.RetryPolicy(clock=clock, sleep=clock.sleep, random=lambda: 0.0)
    pacing = fp.Pacing(2.0, clock=clock, sleep=clock.sleep)
    async with fp.AsyncSession(
        fp.Credentials(MERCHANT, SECRET),
        base_url="http://gw",
        transport=MockTransport(respond),
        pacing=pacing,
        retry=retry,
        spacing=virtual_spacing(),  # its own clock: the gap measured is the pacing's alone
    ) as s:
        await s.cancel(7)
    assert sent_at[1] - sent_at[0] >= 2.0


def test_per_second_is_the_inverse_interval_and_bad_values_are_refused() -> None:
    assert fp.Pacing.per_second(4).min_interval == 0.25
    with pytest.raises(fp.ConfigurationError):
        fp.Pacing(0)
    with pytest.raises(fp.ConfigurationError):
        fp.Pacing.per_second(-1)


async def test_requests_queued_behind_a_full_pool_are_still_paced() -> None:
    clock = FakeClock()
    sent_at: list[float] = []
    gate = asyncio.Event()

    async def respond(request: fp.GatewayRequest) -> HttpResponse:
        sent_at.append(clock.now)
        await gate.wait()  # the gateway stalls: every connection is busy
        assert request.payment_id is not None
        return HttpResponse(200, signed(ok_fields(request.payment_id)))

    pacing = fp.Pacing(1.0, clock=clock, sleep=clock.sleep)
    limits = fp.Limits(max_connections=3)
    async with fp.AsyncSession(
        fp.Credentials(MERCHANT, SECRET),
        base_url="http://gw",
        transport=MockTransport(respond),
        pacing=pacing,
        limits=limits,
    ) as s:
        async with asyncio.TaskGroup() as tg:
            for pid in range(1, 13):
                tg.create_task(s.cancel(pid))
            while len(sent_at) < 3:
                await asyncio.sleep(0)
            clock.now += 100.0  # a long stall: pacing must not let the backlog burst
            gate.set()
    gaps = [b - a for a, b in itertools.pairwise(sorted(sent_at))]
    assert len(sent_at) == 12 and min(gaps) >= 1.0 - 1e-9
