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
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

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

__all__ = [
    "DEFAULT_PAYMENT_INTERVAL",
    "PARKING",
    "Parking",
    "PaymentSpacing",
    "PaymentSpacingMiddleware",
]

#: The documented lower bound of the advised spacing, in seconds.
DEFAULT_PAYMENT_INTERVAL = 1.5
#: Ticks per interval in the spacing table (each a cached small int, never a new object).
_TICKS = 200


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


def _park() -> Parking | None:
    """Give up the caller's batch slot for a wait (a task cancelled while waiting
    leaves it given up); the parking to take it back from, if any."""
    parked = PARKING.get()
    if parked is not None:
        parked.release()
    return parked


class _UnderWay:
    """An attempt about a payment between its reservation and its real start, and the
    turns of the attempts about that payment queued behind it."""

    __slots__ = ("line", "slot", "started")

    def __init__(self, line: collections.deque[asyncio.Future[_UnderWay]] | None = None) -> None:
        self.line: collections.deque[asyncio.Future[_UnderWay]] = (
            collections.deque() if line is None else line
        )
        self.slot = -math.inf  # its reserved start
        self.started = False


class PaymentSpacingMiddleware:
    """Holds an attempt until its payment's next slot, then sends it.

    Slots are reserved without awaiting (``slot = max(now, next[id])``), so two tasks
    about one payment can never share a slot. The table is two generations of plain
    dicts, each covering one interval: a lookup reads the newer, then the older, and a
    reservation writes the newer. Every interval the older generation is dropped whole
    (no per-request expiry work), so the table holds the payments asked about in the
    last two intervals. A reservation that did not wait (a batch's first attempts: all
    but a few) is kept as a tick of its generation, a small int, and read back as the
    end of that tick plus the interval: at most 1/200 of an interval late, never early,
    and no object kept per payment (ten thousand long-lived floats cost a batch more
    CPU than the lookups). A slot reserved ahead (one that waits) keeps its exact end
    in a third dict until it has passed. Requests without a payment id pass straight
    through. A task cancelled while waiting leaves its slot reserved: spacing errs on
    the slow side.

    A slot is when the attempt is handed on, but a layer further in (the in-flight
    cap, pacing, a batch taking its slot back) may hold it longer. So an attempt about
    a payment is *under way* from its reservation until it really starts, which
    :meth:`gate` (the chain's innermost layer) marks; if it started after its slot,
    the payment's next slot is counted from the real start. Meanwhile any other
    attempt about that payment queues behind it (first come, first served) and
    reserves only on its turn. The direct cancel path reserves and starts in one
    step, and steps aside while an attempt about its payment is under way.
    """

    def __init__(
        self, spacing: PaymentSpacing, *, deadline_clock: Callable[[], float] | None = None
    ) -> None:
        self.spacing = spacing
        self._interval = spacing.min_interval
        self._tick = spacing.min_interval / _TICKS
        self._clock = spacing.clock
        # The newer and the older generation: payment id -> tick after its base time.
        self._new: dict[int, int] = {}
        self._old: dict[int, int] = {}
        self._new_base = -math.inf
        self._old_base = -math.inf
        self._new_top = 0  # the newer generation's latest tick
        self._turn = -math.inf  # when the newer generation becomes the older one
        #: Exact ends of the slots reserved ahead (requests that wait), until passed.
        self._ahead: dict[int, float] = {}
        #: Payments with an attempt under way (reserved, not yet started), each with
        #: the attempts queued behind it.
        self._busy: dict[int, _UnderWay] = {}
        #: The clock ``request.deadline`` is measured on (the session passes its retry
        #: policy's); the wait itself is measured on ``spacing.clock``.
        self._deadline_clock = deadline_clock or spacing.clock

    def _rotate(self, now: float) -> None:
        # Every entry of the older generation was written before its turn, so its
        # slot ended by now: it is dropped whole. So is the newer one when its last
        # slot has ended too (after a pause).
        if self._new_base + self._new_top * self._tick + self._interval > now:
            self._old, self._old_base = self._new, self._new_base
        else:
            self._old, self._old_base = {}, -math.inf
        self._new, self._new_base, self._new_top = {}, now, 0
        self._turn = now + self._interval
        if self._ahead:
            self._ahead = {pid: end for pid, end in self._ahead.items() if end > now}

    def _end(self, payment_id: int) -> float | None:
        """When ``payment_id``'s last reserved slot ends (None: none held)."""
        ahead = self._ahead
        if ahead:
            end = ahead.get(payment_id)
            if end is not None:
                return end
        tick = self._new.get(payment_id)
        if tick is not None:
            return self._new_base + tick * self._tick + self._interval
        tick = self._old.get(payment_id)
        if tick is not None:
            return self._old_base + tick * self._tick + self._interval
        return None

    def _reserve_now(self, payment_id: int, now: float) -> None:
        """Reserve a slot starting now (the caller has rotated the table to ``now``)."""
        base = self._new_base
        tick = math.ceil((now - base) / self._tick)
        if base + tick * self._tick < now:  # a rounding error must not make it early
            tick += 1
        self._new[payment_id] = tick
        if tick > self._new_top:
            self._new_top = tick
        if self._ahead:
            self._ahead.pop(payment_id, None)

    def try_now(self, payment_id: int) -> bool:
        """Reserve ``payment_id``'s slot and say True when it is free now; when the
        request would have to wait, reserve nothing and say False."""
        if self._busy and payment_id in self._busy:
            return False
        now = self._clock()
        if now >= self._turn:
            self._rotate(now)
        end = self._end(payment_id)
        if end is not None and end > now:
            return False
        self._reserve_now(payment_id, now)
        return True

    def __call__(self, request: GatewayRequest, call_next: Handler) -> Awaitable[GatewayReply]:
        """Reserve this payment's next slot (after any attempt about it still under
        way), wait for it, and send; :meth:`gate` marks the real start."""
        pid = request.payment_id
        if pid is None:
            return call_next(request)
        return self._attempt(pid, request, call_next)

    def _reserve(self, pid: int, request: GatewayRequest, mine: _UnderWay) -> float:
        """Reserve ``pid``'s next slot for ``mine``; the seconds to wait for it."""
        now = self._clock()
        if now >= self._turn:
            self._rotate(now)
        end = self._end(pid)
        if end is None or end <= now:
            self._reserve_now(pid, now)
            mine.slot = now
            return 0.0
        wait = end - now
        deadline = request.deadline
        if deadline is not None and self._deadline_clock() + wait >= deadline:
            raise DeadlineExceededError(
                "the call's deadline would pass before its payment's spacing slot; not sent",
                payment_id=pid,
            )
        self._ahead[pid] = end + self._interval
        mine.slot = end
        return wait

    async def _attempt(self, pid: int, request: GatewayRequest, call_next: Handler) -> GatewayReply:
        # Everything happens inside the coroutine: one that is never started (closed,
        # or its task cancelled before its first step) leaves nothing under way.
        parked: Parking | None = None  # the batch slot given up while waiting
        mine: _UnderWay | None = None
        try:
            busy = self._busy.get(pid)
            if busy is None:
                mine = self._busy[pid] = _UnderWay()
            else:
                parked = _park()
                mine = await self._turn_after(pid, busy, request)
            wait = self._reserve(pid, request, mine)
            if wait > 0:
                if parked is None:
                    parked = _park()
                await self.spacing.sleep(wait)
            if parked is not None:
                await parked.acquire()  # a wait here is a hold: the gate sees it
            if wait > 0 or busy is not None:
                request = cut_to_deadline(
                    request, self._deadline_clock, "its payment's spacing slot"
                )
            return await call_next(request)
        finally:
            if mine is not None and not mine.started:  # failed or cancelled before it started
                self._pass_on(pid, mine)

    async def _turn_after(self, pid: int, busy: _UnderWay, request: GatewayRequest) -> _UnderWay:
        """Wait in line behind the attempt under way about ``pid`` (no longer than the
        call's deadline); the entry this attempt is under way as once its turn comes."""
        turn: asyncio.Future[_UnderWay] = asyncio.get_running_loop().create_future()
        busy.line.append(turn)
        deadline = request.deadline
        handed = False
        try:
            if deadline is None:
                mine = await turn
            else:
                async with asyncio.timeout(max(deadline - self._deadline_clock(), 0.0)):
                    mine = await turn
        except TimeoutError:
            raise DeadlineExceededError(
                "the call's deadline passed while queued behind another attempt about its"
                " payment; not sent",
                payment_id=pid,
            ) from None
        else:
            handed = True
            return mine
        finally:
            if not handed:
                if turn.done() and not turn.cancelled():
                    self._pass_on(pid, turn.result())  # handed the turn as it gave up
                elif turn in busy.line:
                    busy.line.remove(turn)

    def _pass_on(self, pid: int, mine: _UnderWay) -> None:
        """``mine`` is no longer under way: hand the turn to the next in line."""
        mine.started = True
        line = mine.line
        while line:
            turn = line.popleft()
            if not turn.done():
                after = self._busy[pid] = _UnderWay(line)
                turn.set_result(after)
                return
        if self._busy.get(pid) is mine:
            del self._busy[pid]

    def gate(self, request: GatewayRequest, call_next: Handler) -> Awaitable[GatewayReply]:
        """The chain's innermost layer: the attempt starts now. If something held it
        after its slot, the payment's next slot counts from now."""
        pid = request.payment_id
        busy = self._busy
        if busy and pid is not None:
            mine = busy.get(pid)
            if mine is not None and not mine.started:
                now = self._clock()
                if now > mine.slot:  # held after its slot: count from now
                    end = self._end(pid)
                    if end is None or end < now + self._interval:
                        self._ahead[pid] = now + self._interval
                self._pass_on(pid, mine)
        return call_next(request)

    def __len__(self) -> int:
        """Entries held (a payment in more than one of the dicts counts more than once)."""
        return len(self._new) + len(self._old) + len(self._ahead) + len(self._busy)
