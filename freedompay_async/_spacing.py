"""Per-payment spacing: requests about one payment never closer than an interval.

Freedom Pay advises 1.5-2 s between requests "to prevent duplicate transactions". The
spacing holds for every HTTP attempt about a payment (retries, reconciling status
queries, a second send) and costs nothing for other payments: a batch's first
attempts, each about a different payment, are never held.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import attrs

from ._exceptions import ConfigurationError, DeadlineExceededError
from ._middleware import Handler, cut_to_deadline
from ._replies import GatewayReply
from ._transport.base import GatewayRequest

__all__ = [
    "DEFAULT_PAYMENT_INTERVAL",
    "PARKING",
    "Parking",
    "PaymentSpacing",
    "PaymentSpacingMiddleware",
]

#: The documented lower bound of the advised spacing, in seconds.
DEFAULT_PAYMENT_INTERVAL = 1.5


class Parking(Protocol):
    """What a caller lends its task while a request waits for its slot: a batch gives
    up its concurrency slot (``release``) and takes it back before sending (``acquire``)."""

    def release(self) -> None:
        """Give the slot up while waiting."""
        ...

    async def acquire(self) -> None:
        """Take the slot back before the request is sent."""
        ...


#: Set by ``cancel_many``'s workers, so waiting for spacing does not hold a batch slot.
PARKING: contextvars.ContextVar[Parking | None] = contextvars.ContextVar(
    "freedompay_parking", default=None
)


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"{attribute.name} must be a positive number of seconds")


@attrs.frozen
class PaymentSpacing:
    """At least ``min_interval`` seconds between the starts of two attempts about the
    same payment id (default 1.5 s). ``clock`` and ``sleep`` are injectable for tests."""

    min_interval: float = attrs.field(default=DEFAULT_PAYMENT_INTERVAL, validator=_positive)
    clock: Callable[[], float] = attrs.field(default=time.monotonic, eq=False, repr=False)
    sleep: Callable[[float], Awaitable[None]] = attrs.field(
        default=asyncio.sleep, eq=False, repr=False
    )


class PaymentSpacingMiddleware:
    """Holds an attempt until its payment's next slot, then sends it.

    Slots are reserved without awaiting (``slot = max(now, next[id])``), so two tasks
    about one payment can never share a slot. The table is two generations of plain
    dicts, each covering one interval: a lookup reads the newer, then the older, and a
    reservation writes the newer. Every interval the older generation is dropped whole
    (no per-request expiry work), so the table holds the payments asked about in the
    last two intervals, plus any whose slot was queued further ahead (those are carried
    over, never dropped while still in the future). Requests without a payment id
    pass straight through. A task cancelled while waiting leaves its slot reserved:
    spacing errs on the slow side.
    """

    def __init__(
        self, spacing: PaymentSpacing, *, deadline_clock: Callable[[], float] | None = None
    ) -> None:
        self.spacing = spacing
        self._interval = spacing.min_interval
        self._clock = spacing.clock
        # The newer and the older generation: payment id -> end of its last slot.
        self._new: dict[int, float] = {}
        self._old: dict[int, float] = {}
        self._new_last = -math.inf  # the latest slot end in each generation
        self._old_last = -math.inf
        self._turn = -math.inf  # when the newer generation becomes the older one
        #: The clock ``request.deadline`` is measured on (the session passes its retry
        #: policy's); the wait itself is measured on ``spacing.clock``.
        self._deadline_clock = deadline_clock or spacing.clock

    def _rotate(self, now: float) -> None:
        new, new_last = self._new, self._new_last
        if self._old_last > now:  # a slot queued far ahead is still in the future: keep it
            for pid, end in self._old.items():
                if end > now and pid not in new:
                    new[pid] = end
            new_last = max(new_last, self._old_last)
        if new_last > now:
            self._old, self._old_last = new, new_last
        else:  # everything in it has passed
            self._old, self._old_last = {}, -math.inf
        self._new, self._new_last = {}, -math.inf
        self._turn = now + self._interval

    def try_now(self, payment_id: int) -> bool:
        """Reserve ``payment_id``'s slot and say True when it is free now; when the
        request would have to wait, reserve nothing and say False."""
        now = self._clock()
        if now >= self._turn:
            self._rotate(now)
        end = self._new.get(payment_id)
        if end is None:
            end = self._old.get(payment_id)
        if end is not None and end > now:
            return False
        end = now + self._interval
        self._new[payment_id] = end
        if end > self._new_last:
            self._new_last = end
        return True

    def __call__(self, request: GatewayRequest, call_next: Handler) -> Awaitable[GatewayReply]:
        """Send now if this payment's slot is free, else wait for it first."""
        pid = request.payment_id
        if pid is None:
            return call_next(request)
        now = self._clock()
        if now >= self._turn:
            self._rotate(now)
        slot = self._new.get(pid)
        if slot is None:
            slot = self._old.get(pid)
        if slot is None or slot <= now:
            slot = now
        wait = slot - now
        deadline = request.deadline
        if wait > 0 and deadline is not None and self._deadline_clock() + wait >= deadline:
            raise DeadlineExceededError(
                "the call's deadline would pass before its payment's spacing slot; not sent",
                payment_id=pid,
            )
        end = slot + self._interval
        self._new[pid] = end
        if end > self._new_last:
            self._new_last = end
        if wait <= 0:
            return call_next(request)
        return self._later(wait, request, call_next)

    async def _later(
        self, delay: float, request: GatewayRequest, call_next: Handler
    ) -> GatewayReply:
        parking = PARKING.get()
        if parking is None:
            await self.spacing.sleep(delay)
        else:
            parking.release()
            await self.spacing.sleep(delay)  # cancelled here: the slot stays given up
            await parking.acquire()
        request = cut_to_deadline(request, self._deadline_clock, "its payment's spacing slot")
        return await call_next(request)

    def __len__(self) -> int:
        """Entries held (a payment in both generations counts twice)."""
        return len(self._new) + len(self._old)
