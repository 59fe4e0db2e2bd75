"""A worker pool for the operations that have no batch call of their own (``status``,
and the money movements to come): ``concurrency`` ids at work at once, one result each.

It works as ``cancel_many``'s pool does: a worker whose request waits for its
payment's spacing slot gives its slot up meanwhile (the spacing layer's ``PARKING``),
so a second set of workers keeps other payments moving, and workers back from a wait
are served first. Ids are pulled lazily; results come out as they complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

from .._layers.slots import Slots
from .._layers.spacing import PARKING

__all__ = ["run_pool"]

T = TypeVar("T")
_END: Any = object()
#: Worker tasks per slot: the extra ones run while others wait for spacing.
_WORKERS_PER_SLOT = 2


class _Slot:
    """One worker's hold on a slot of the pool, lent to the spacing layer as its Parking."""

    __slots__ = ("held", "pool")

    def __init__(self, pool: Slots) -> None:
        self.pool = pool
        self.held = False

    async def acquire(self) -> None:
        """Take a slot back after a wait (served before idle workers)."""
        if not self.held:
            await self.pool.take(first=True)
            self.held = True

    async def start(self) -> None:
        """Take a slot to start an id."""
        if not self.held:
            await self.pool.take()
            self.held = True

    def release(self) -> None:
        """Give the slot up."""
        if self.held:
            self.held = False
            self.pool.give()


class _Pull:
    """One shared source of ids for every worker (a plain or an async iterator)."""

    def __init__(self, ids: Iterator[int] | AsyncIterator[int]) -> None:
        self._ids = ids
        self._lock = asyncio.Lock()

    async def next(self) -> Any:
        if isinstance(self._ids, Iterator):
            return next(self._ids, _END)
        async with self._lock:
            return await anext(self._ids, _END)


class _Workers(Generic[T]):
    """The workers of one :func:`run_pool` call and the queue of their results."""

    def __init__(
        self, one: Callable[[int], Awaitable[T]], ids: Iterator[int] | AsyncIterator[int],
        concurrency: int,
    ) -> None:  # fmt: skip
        self.one = one
        self.pool = Slots(concurrency)
        self.pull = _Pull(ids)
        self.results: asyncio.Queue[T | None] = asyncio.Queue(maxsize=concurrency)
        self.stop: list[BaseException] = []  # the first error ends the batch

    async def work(self, slot: _Slot) -> None:
        while not self.stop:
            if self.pool.first_waiting:  # a worker back from a spacing wait goes first
                slot.release()
            await slot.start()
            try:
                pid = await self.pull.next()
            except Exception as exc:  # the input failed: finish what was started, then raise
                self.stop.append(exc)
                return
            if pid is _END:
                return
            await self.results.put(await self.one(pid))

    async def worker(self) -> None:
        slot = _Slot(self.pool)
        PARKING.set(slot)
        try:
            await self.work(slot)
        except Exception as exc:  # a bug in ``one``: end the batch, never hang it
            self.stop.append(exc)
        finally:
            slot.release()
        await self.results.put(None)  # not reached when cancelled: nobody waits then


async def run_pool(
    one: Callable[[int], Awaitable[T]],
    ids: Iterator[int] | AsyncIterator[int],
    concurrency: int,
) -> AsyncGenerator[T, None]:
    """``one(pid)`` for every id, ``concurrency`` at a time, yielded as they complete.

    ``one`` turns every failure of its id into its result (it never raises for one
    id). If reading the ids raises, no more are pulled, the results of ids already
    started are yielded, and then the error is raised (as is a bug in ``one``).
    Closing or cancelling the generator cancels and awaits the workers.
    """
    state = _Workers(one, ids, concurrency)
    workers = [asyncio.create_task(state.worker()) for _ in range(concurrency * _WORKERS_PER_SLOT)]
    try:
        running = len(workers)
        while running:
            got = await state.results.get()
            if got is None:
                running -= 1
            else:
                yield got
        if state.stop:
            raise state.stop[0]
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
