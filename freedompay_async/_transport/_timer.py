"""Attempt time limits for all of a transport's requests, kept by one timer.

aiohttp's per-request ``ClientTimeout(total=...)`` schedules a timer handle and enters a
timer context for every request: about 6 % of a cancel's instructions with everything
else the library does. :class:`AttemptTimer` keeps the limit of every attempt in flight
in one dict and schedules a single loop timer for the earliest limit; when it fires it
cancels the tasks whose limit has passed, as aiohttp's timer would, and schedules the
next. An attempt costs two dict operations.

The transport brackets each exchange with :meth:`~AttemptTimer.start` and
:meth:`~AttemptTimer.stop` and turns the timer's cancellation into
``ResponseTimeoutError`` with :meth:`~AttemptTimer.expired`, the way ``asyncio.timeout``
does. That is safe because the timer only runs while the task is suspended, and the task
only suspends inside the bracket: the cancellation is always delivered at an ``await``
inside it, never to the caller after a completed reply. A task cancelled by someone else
as well (a caller's cancel, an outer timeout) gets its ``CancelledError``, never a
timeout in its place.
"""

from __future__ import annotations

import asyncio
import math
import time

__all__ = ["AttemptTimer"]

#: Limits due within this many seconds of a timer run expire in that run (the loop may
#: run a timer up to its clock resolution early).
_GRAIN = max(0.001, time.get_clock_info("monotonic").resolution)


class AttemptTimer:
    """The time limits of the attempts in flight, by task, behind one loop timer."""

    __slots__ = ("_at", "_due", "_expired", "_handle")

    def __init__(self) -> None:
        #: task -> (when its limit passes on the loop's clock, its cancel count at start)
        self._due: dict[asyncio.Task[object], tuple[float, int]] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._at = math.inf  # when the scheduled timer fires

    def __len__(self) -> int:
        """Attempts in flight under a limit."""
        return len(self._due)

    def start(self, limit: float) -> asyncio.Task[object] | None:
        """Put the current task's attempt under ``limit`` seconds; the task, or None
        outside a task (then nothing is limited here)."""
        task = asyncio.current_task()
        if task is None:
            return None
        loop = task.get_loop()
        due = loop.time() + limit
        self._due[task] = (due, task.cancelling())
        if due < self._at:
            self._schedule(loop, due)
        return task

    def stop(self, task: asyncio.Task[object]) -> None:
        """The attempt of ``task`` has ended (call in a ``finally``).

        A task this timer cancelled whose ``CancelledError`` never reached
        :meth:`expired` (code inside the bracket turned it into another error) has its
        cancel request withdrawn here, so it does not linger and trip a caller's
        ``asyncio.timeout`` later."""
        self._due.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            task.uncancel()

    def expired(self, task: asyncio.Task[object]) -> bool:
        """For a ``CancelledError`` caught in the bracket: True when this timer's
        cancel alone caused it (it is then withdrawn, so the task goes on), False when
        the cancellation must propagate."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        base = self._due.get(task, (0.0, 0))[1]
        return task.uncancel() <= base

    def _schedule(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = loop.call_at(when, self._fire, loop)
        self._at = when

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = None
        self._at = math.inf
        now = loop.time() + _GRAIN
        after = math.inf
        expired = self._expired
        for task, (due, _) in list(self._due.items()):
            if task in expired:
                continue  # cancelled by an earlier run, its CancelledError on the way
            if due <= now:
                expired.add(task)
                task.cancel()
            elif due < after:
                after = due
        if after < math.inf:
            self._schedule(loop, after)

    def close(self) -> None:
        """The transport is closing: drop the loop timer if no attempt is in flight.

        Attempts still in flight keep their limits (on a borrowed session they go on
        after the transport closes); the timer then lapses after the last of them."""
        if self._due:
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._at = math.inf
