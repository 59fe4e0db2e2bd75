"""Per-payment spacing: requests about one payment never closer than an interval.

Freedom Pay advises 1.5-2 s between requests "to prevent duplicate transactions". The
spacing holds for every HTTP attempt about a payment (retries, reconciling status
queries, a second send) and costs nothing for other payments: a batch's first
attempts, each about a different payment, are never held.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
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
    about one payment can never share a slot. Expired entries are dropped from the
    oldest end only (cheap, no scan), so an expired entry stays while an older entry
    (one payment whose slots were queued further ahead) is still in the future: the
    table holds at most the distinct payments asked about since the oldest entry still
    in the future was reserved, not only those of the last interval. Requests without a payment id
    pass straight through. A task cancelled while waiting leaves its slot reserved:
    spacing errs on the slow side.
    """

    def __init__(
        self, spacing: PaymentSpacing, *, deadline_clock: Callable[[], float] | None = None
    ) -> None:
        self.spacing = spacing
        self._next: collections.OrderedDict[int, float] = collections.OrderedDict()
        #: The clock ``request.deadline`` is measured on (the session passes its retry
        #: policy's); the wait itself is measured on ``spacing.clock``.
        self._deadline_clock = deadline_clock or spacing.clock

    def __call__(self, request: GatewayRequest, call_next: Handler) -> Awaitable[GatewayReply]:
        """Send now if this payment's slot is free, else wait for it first."""
        pid = request.payment_id
        if pid is None:
            return call_next(request)
        spacing = self.spacing
        now = spacing.clock()
        table = self._next
        while table:  # drop expired entries from the oldest end
            first = next(iter(table))
            if table[first] > now:
                break
            del table[first]
        slot = max(now, table.get(pid, now))
        wait = slot - now
        deadline = request.deadline
        if wait > 0 and deadline is not None and self._deadline_clock() + wait >= deadline:
            raise DeadlineExceededError(
                "the call's deadline would pass before its payment's spacing slot; not sent",
                payment_id=pid,
            )
        table.pop(pid, None)
        table[pid] = slot + spacing.min_interval
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
        return len(self._next)
