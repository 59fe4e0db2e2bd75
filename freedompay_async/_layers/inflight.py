"""The in-flight cap: at most ``limit`` attempts between it and the transport."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from .._exceptions import DeadlineExceededError
from .._wire.messages import GatewayReply, GatewayRequest
from .chain import Handler, cut_to_deadline
from .slots import Slots

__all__ = ["InFlightLimit"]


class InFlightLimit:
    """Holds each attempt until one of ``limit`` slots is free; inner layers run in the slot.

    The session puts it outside pacing and the transport, so a request waiting for a
    connection neither holds a pacing slot (paced requests can never bunch up behind
    a full pool) nor spends its attempt timeout waiting. The wait does count against
    the call's deadline (``request.deadline``, on ``clock``: the session passes its
    retry policy's clock): a request still waiting when it passes gets
    DeadlineExceededError (never sent), and one that gets a slot is sent with its
    timeout cut to the time left.
    """

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._slots = Slots(limit)
        self._clock = clock
        #: Take a slot without waiting (True) or leave it (False); ``give`` returns one.
        #: For the session's direct cancel path, which must never wait here.
        self.try_take = self._slots.try_take
        self.give = self._slots.give

    async def __call__(self, request: GatewayRequest, call_next: Handler) -> GatewayReply:
        """Run the rest of the chain inside a slot."""
        slots = self._slots
        if slots.try_take():
            try:
                return await call_next(request)
            finally:
                slots.give()
        if request.deadline is None:
            await slots.take()
            try:
                return await call_next(request)
            finally:
                slots.give()
        left = request.deadline - self._clock()
        timed_out = False
        try:
            async with asyncio.timeout(max(left, 0.0)):
                await slots.take()
        except TimeoutError:
            timed_out = True
        if timed_out:
            raise DeadlineExceededError(
                "the call's deadline passed while waiting for a connection slot; not sent",
                payment_id=request.payment_id,
            )
        try:
            request = cut_to_deadline(request, self._clock, "a connection slot")
            return await call_next(request)
        finally:
            slots.give()
