"""Work the sandbox does beyond one request's lifetime: slow processing, held replies.

A :attr:`~freedompay_async.sandbox.Fault.SLOW_PROCESSING` operation runs in a task of
its own, so it is applied even if the client gives up and its request handler is
cancelled; a :attr:`~freedompay_async.sandbox.Fault.LOST_REPLY` handler waits for the
client to go away. Both end when the server shuts down: :meth:`Processing.close`
finishes the operations still waiting (their delay is finite) and releases every
held connection at once, so no task outlives the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Processing"]

T = TypeVar("T")


class Processing:
    """The operations still being processed, and the replies held back."""

    __slots__ = ("_closing", "_tasks")

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing: asyncio.Event | None = None

    def __len__(self) -> int:
        return len(self._tasks)

    async def later(self, delay: float, apply: Callable[[], T]) -> T:
        """``apply()`` after ``delay`` seconds, in a task that survives the caller.

        The caller waits for the result; if it is cancelled meanwhile (the client went
        away), the operation is still applied when the delay is over.
        """

        async def run() -> T:
            await asyncio.sleep(delay)
            return apply()

        task: asyncio.Task[T] = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(task)

    async def hold(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the server shuts down meanwhile."""
        if self._closing is None:
            self._closing = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closing.wait()

    async def close(self) -> None:
        """Release held replies now; wait for operations still being processed.

        If the wait is cancelled, the operations left are cancelled too (and waited
        for), so none outlives this call.
        """
        closing, self._closing = self._closing, None
        if closing is not None:
            closing.set()  # held replies end now; later ones wait on a new event
        tasks = set(self._tasks)
        if not tasks:
            return
        try:
            await asyncio.wait(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
