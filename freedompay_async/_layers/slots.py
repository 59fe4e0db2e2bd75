"""Slots: a FIFO counting semaphore whose uncontended take is a plain call.

``asyncio.Semaphore.acquire`` is a coroutine and its ``locked()`` scans the waiters on
every call; the hot path of a cancel takes and gives one slot, so this one does that in
a few operations. Used by the session's in-flight cap and by ``cancel_many``'s pool.
"""

from __future__ import annotations

import asyncio
import collections

__all__ = ["Slots"]

_Line = collections.deque[asyncio.Future[None]]


class Slots:
    """``slots`` slots, with two lines of waiters served first come, first served:
    ``take(first=True)`` waiters before the others. A slot handed to a waiter that is
    cancelled at that moment is passed on."""

    __slots__ = ("_first", "_free", "_waiters")

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._first: _Line = collections.deque()
        self._waiters: _Line = collections.deque()

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody is queued for one."""
        if self._free > 0 and not self._waiters and not self._first:
            self._free -= 1
            return True
        return False

    def locked(self) -> bool:
        """Whether a take would have to wait."""
        return self._free <= 0 or bool(self._waiters) or bool(self._first)

    @property
    def first_waiting(self) -> bool:
        """Whether a ``take(first=True)`` waits for a slot."""
        return bool(self._first)

    async def take(self, *, first: bool = False) -> None:
        """Take a slot, waiting in line for one when none is free."""
        if self.try_take():
            return
        line = self._first if first else self._waiters
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        line.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot just as the wait was cancelled: pass it on
            elif waiter in line:  # a give() may have dropped it already
                line.remove(waiter)
            raise

    def give(self) -> None:
        """Give a slot back: to the first waiter still waiting, else to the pool."""
        if (self._first and _hand(self._first)) or (self._waiters and _hand(self._waiters)):
            return
        self._free += 1


def _hand(line: _Line) -> bool:
    """Wake the first waiter of ``line`` still waiting; False when there is none."""
    while line:
        waiter = line.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return True
    return False
