"""A cancelled call stays cancelled through coordination, and leaves no task behind.

redis-py (8.2) now and then swallows the cancellation of a task that waits for a
command and returns the command's result instead. A lease's keeper cancelled inside
such a renewal went on renewing forever, and the money call that held the lease hung
at its end, after the money had moved. These tests play that swallowing on purpose,
then cancel holders of a real Redis lease at random moments.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from freedompay_async import MemoryCoordinator, RedisCoordinator
from freedompay_async._coordination.lease import hold_lease
from freedompay_async.coordination import new_token


class _SwallowsOneCancel(MemoryCoordinator):
    """Its first renewal waits until cancelled, then answers "held" as if it had not been
    (what redis-py did); later renewals answer at once."""

    def __init__(self) -> None:
        super().__init__(lease_ttl=0.03)
        self.renewing = asyncio.Event()
        self.swallowed = 0

    async def renew(self, payment_id: int, token: str) -> bool:
        if self.swallowed:
            return await super().renew(payment_id, token)
        self.renewing.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.swallowed += 1
        return True


def _others() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]


async def test_a_keeper_cancelled_inside_a_renewal_that_swallows_it_still_ends() -> None:
    coordinator = _SwallowsOneCancel()
    async with asyncio.timeout(5):  # the keeper used to renew forever: the block never ended
        async with hold_lease(coordinator, 7):
            await coordinator.renewing.wait()  # the keeper is inside its renewal now
    assert coordinator.swallowed == 1
    assert _others() == set()


class _Pool:
    def __init__(self) -> None:
        self.connection_kwargs = {"host": "redis.invalid", "port": 6379, "db": 0}


class _ClientThatSwallows:
    """Answers EVALSHA only once cancelled, with a result, as redis-py did."""

    def __init__(self) -> None:
        self.connection_pool = _Pool()
        self.waiting = asyncio.Event()

    async def evalsha(self, *args: object) -> int:
        self.waiting.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        return 1


async def test_a_redis_answer_to_a_cancelled_call_does_not_swallow_the_cancel() -> None:
    client = _ClientThatSwallows()
    coordinator = RedisCoordinator(client)  # type: ignore[arg-type]
    call = asyncio.create_task(coordinator.renew(5, new_token()))
    await client.waiting.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_holders_cancelled_at_random_moments_end_and_leave_no_task(
    redis_url: str, prefix: str
) -> None:
    coordinator = RedisCoordinator.from_url(redis_url, prefix=prefix, lease_ttl=0.03)
    rng = random.Random(2026)

    async def hold(payment_id: int, seconds: float) -> None:
        async with hold_lease(coordinator, payment_id):
            await asyncio.sleep(seconds)

    try:
        for payment_id in range(60):
            holder = asyncio.create_task(hold(payment_id, rng.random() * 0.03))
            await asyncio.sleep(rng.random() * 0.03)
            holder.cancel()
            async with asyncio.timeout(5):
                await asyncio.gather(holder, return_exceptions=True)
            assert _others() == set(), f"a task outlived holder {payment_id}"
    finally:
        await coordinator.aclose()
