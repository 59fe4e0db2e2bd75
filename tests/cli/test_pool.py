"""The worker pool of the operations without a batch call of their own (``status``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from freedompay_async.cli._pool import run_pool


async def test_every_id_once_and_never_more_than_concurrency_at_work() -> None:
    busy = peak = 0

    async def one(pid: int) -> int:
        nonlocal busy, peak
        busy += 1
        peak = max(peak, busy)
        await asyncio.sleep(0)
        busy -= 1
        return pid * 10

    got = [value async for value in run_pool(one, iter(range(1, 101)), 3)]
    assert sorted(got) == [pid * 10 for pid in range(1, 101)]
    assert peak == 3


async def test_an_input_error_is_raised_after_the_started_ids() -> None:
    def ids() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("disk gone")

    async def one(pid: int) -> int:
        return pid

    got: list[int] = []
    with pytest.raises(OSError, match="disk gone"):
        async for value in run_pool(one, ids(), 2):
            got.append(value)
    assert sorted(got) == [1, 2]


async def test_a_bug_in_one_ends_the_batch_instead_of_hanging_it() -> None:
    async def one(pid: int) -> int:
        if pid == 3:
            raise KeyError("bug")
        return pid

    with pytest.raises(KeyError):
        async with asyncio.timeout(5):
            async for _ in run_pool(one, iter(range(1, 10)), 2):
                pass


async def test_cancelling_the_consumer_stops_and_awaits_the_workers() -> None:
    started: list[int] = []

    async def one(pid: int) -> int:
        started.append(pid)
        await asyncio.Event().wait()  # never answers
        return pid

    async def consume() -> None:
        async for _ in run_pool(one, iter(range(1, 1000)), 4):
            pass

    before = asyncio.all_tasks()
    task = asyncio.ensure_future(consume())
    for _ in range(10):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(started) == 4  # the slots bound the ids at work
    assert asyncio.all_tasks() == before  # no worker outlives the batch
