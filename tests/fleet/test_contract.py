"""The Coordinator protocol's rules, held by both implementations: in memory and on Redis.

The memory coordinator runs on a virtual clock moved by the test; the Redis one on a
real redis-server's clock, with short intervals and leases and real waits.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from freedompay_async import Coordinator, MemoryCoordinator, RedisCoordinator
from freedompay_async.coordination import new_token

INTERVAL = 0.25  # binary fractions: exact on the virtual clock
LEASE = 0.5

Advance = Callable[[float], Awaitable[None]]


class _Clock:
    def __init__(self) -> None:
        self.now = 1024.0

    def __call__(self) -> float:
        return self.now

    async def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=["memory", "redis"])
async def pair(
    request: pytest.FixtureRequest, prefix: str
) -> AsyncIterator[tuple[Coordinator, Advance]]:
    """A coordinator with 0.5 s leases, and how the test moves its clock forward."""
    if request.param == "memory":
        clock = _Clock()
        yield MemoryCoordinator(lease_ttl=LEASE, clock=clock), clock.advance
        return
    redis_url: str = request.getfixturevalue("redis_url")
    coordinator = RedisCoordinator.from_url(redis_url, prefix=prefix, lease_ttl=LEASE)
    try:
        yield coordinator, asyncio.sleep
    finally:
        await coordinator.aclose()


async def test_a_start_is_granted_once_per_interval(pair: tuple[Coordinator, Advance]) -> None:
    coordinator, advance = pair
    a, b = new_token(), new_token()
    assert await coordinator.start(7, INTERVAL, a) == 0.0
    wait = await coordinator.start(7, INTERVAL, b)
    assert 0 < wait <= INTERVAL
    assert await coordinator.start(8, INTERVAL, b) == 0.0  # other payments are free
    await advance(wait)
    assert await coordinator.start(7, INTERVAL, b) == 0.0
    assert 0 < await coordinator.start(7, INTERVAL, a) <= INTERVAL  # now b's start counts


async def test_a_held_attempt_is_measured_against_the_start_before_its_own(
    pair: tuple[Coordinator, Advance],
) -> None:
    coordinator, advance = pair
    a, b, c = new_token(), new_token(), new_token()
    assert await coordinator.start(7, INTERVAL, a) == 0.0
    assert await coordinator.start(7, INTERVAL, a) == 0.0  # held a moment: its start moves
    assert 0 < await coordinator.start(7, INTERVAL, c) <= INTERVAL
    await advance(INTERVAL * 1.25)
    assert await coordinator.start(7, INTERVAL, b) == 0.0
    # a was held past b's start: it may not go within the interval of b's
    assert 0 < await coordinator.start(7, INTERVAL, a) <= INTERVAL


async def test_the_end_of_an_attempt_moves_the_next_start(
    pair: tuple[Coordinator, Advance],
) -> None:
    coordinator, advance = pair
    a, b = new_token(), new_token()
    assert await coordinator.start(7, INTERVAL, a) == 0.0
    await coordinator.finish(7, a, INTERVAL)  # its exchange ended an interval after it asked
    assert INTERVAL < await coordinator.start(7, INTERVAL, b) <= 2 * INTERVAL
    await advance(2 * INTERVAL)
    assert await coordinator.start(7, INTERVAL, b) == 0.0
    await coordinator.finish(7, a, 10.0)  # a's start is not the latest any more: no effect
    await advance(INTERVAL)
    assert await coordinator.start(7, INTERVAL, a) == 0.0


async def test_a_lease_has_one_holder_at_a_time(pair: tuple[Coordinator, Advance]) -> None:
    coordinator, _ = pair
    a, b = new_token(), new_token()
    claim = await coordinator.acquire(9, a)
    assert claim.held and dict(claim.notes) == {}
    taken = await coordinator.acquire(9, b)
    assert not taken.held and 0 < taken.retry_in <= LEASE
    assert await coordinator.renew(9, a) is True
    assert await coordinator.renew(9, b) is False
    await coordinator.release(9, b)  # not b's: nothing happens
    assert not (await coordinator.acquire(9, b)).held
    assert (await coordinator.acquire(9, a)).held  # its holder asking again renews it
    await coordinator.release(9, a)
    assert (await coordinator.acquire(9, b)).held


async def test_a_lease_nobody_renews_expires(pair: tuple[Coordinator, Advance]) -> None:
    coordinator, advance = pair
    a, b = new_token(), new_token()
    assert (await coordinator.acquire(9, a)).held
    await advance(LEASE * 1.5)
    assert (await coordinator.acquire(9, b)).held
    assert await coordinator.renew(9, a) is False
    assert await coordinator.note(9, a, "refund:1.00:", "{}") is False


async def test_notes_are_written_by_the_holder_only_and_outlive_its_lease(
    pair: tuple[Coordinator, Advance],
) -> None:
    coordinator, _ = pair
    a, b, c = new_token(), new_token(), new_token()
    assert (await coordinator.acquire(9, a)).held
    assert await coordinator.note(9, a, "refund:100.00:", '{"x": 1}') is True
    assert await coordinator.note(9, b, "refund:100.00:", "forged") is False
    await coordinator.release(9, a)
    claim = await coordinator.acquire(9, b)
    assert claim.held and dict(claim.notes) == {"refund:100.00:": '{"x": 1}'}
    assert await coordinator.note(9, b, "refund:100.00:", None) is True
    await coordinator.release(9, b)
    assert dict((await coordinator.acquire(9, c)).notes) == {}


async def test_tokens_are_fresh() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(t) == 16 for t in itertools.islice(tokens, 10))
