"""Pacing: a minimum spacing between requests, shared by every task of a session."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import attrs

from .._exceptions import (
    ConfigurationError,
    DeadlineExceededError,
)
from .._wire.messages import GatewayReply, GatewayRequest
from .chain import (
    Handler,
    cut_to_deadline,
)

__all__ = ["Pacing", "PacingMiddleware"]


@attrs.frozen
class Pacing:
    """At most one request every ``min_interval`` seconds, whatever the concurrency.

    Freedom Pay advises 1.5-2 s between consecutive payment API requests
    (``Pacing(1.5)``); ``Pacing.per_second(n)`` is the same as ``Pacing(1 / n)``.
    Every HTTP attempt, retries included, takes a slot.

    The wait counts against the call's deadline (``RetryPolicy.deadline``): an attempt
    whose slot would come at or after it is refused at once with
    DeadlineExceededError (never sent, the slot left free), and one that waited is sent
    with its timeout cut to the time left. The wait is measured on ``clock``, the
    deadline on the retry policy's clock (the session hands it over), so a fake pacing
    clock in tests does not confuse the two.
    """

    min_interval: float
    clock: Callable[[], float] = attrs.field(default=time.monotonic, eq=False, repr=False)
    sleep: Callable[[float], Awaitable[None]] = attrs.field(
        default=asyncio.sleep, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        if not self.min_interval > 0:
            raise ConfigurationError("min_interval must be positive")

    @classmethod
    def per_second(cls, rate: float) -> Pacing:
        """At most ``rate`` requests per second."""
        if not rate > 0:
            raise ConfigurationError("rate must be positive")
        return cls(1.0 / rate)


class PacingMiddleware:
    """Holds each attempt until its reserved slot.

    Slots are reserved without awaiting (``next = max(now, last + interval)``), so no
    two tasks can share a slot and the spacing holds under any concurrency. A task
    cancelled while waiting gives up its slot unused: pacing errs on the slow side.
    """

    def __init__(
        self, pacing: Pacing, *, deadline_clock: Callable[[], float] | None = None
    ) -> None:
        self.pacing = pacing
        self._next = float("-inf")
        #: The clock ``request.deadline`` is measured on (the session passes its retry
        #: policy's); the wait itself is measured on ``pacing.clock``.
        self._deadline_clock = deadline_clock or pacing.clock

    async def __call__(self, request: GatewayRequest, call_next: Handler) -> GatewayReply:
        """Wait for this attempt's slot, then send."""
        pacing = self.pacing
        now = pacing.clock()
        slot = max(now, self._next)
        wait = slot - now
        deadline = request.deadline
        if deadline is not None and self._deadline_clock() + wait >= deadline:
            raise DeadlineExceededError(
                "the call's deadline would pass before its pacing slot; not sent",
                payment_id=request.payment_id,
            )
        self._next = slot + pacing.min_interval
        if wait > 0:
            await pacing.sleep(wait)
            request = cut_to_deadline(request, self._deadline_clock, "its pacing slot")
        return await call_next(request)
