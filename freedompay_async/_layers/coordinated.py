"""Per-payment spacing kept by a coordinator, so that it holds across a fleet of workers.

The in-process spacing (``spacing.py``) reserves slots in a table of its own; with a
:class:`~freedompay_async.Coordinator` the table is shared (Redis, for a fleet), and
every attempt about a payment claims its start there: granted when the payment's latest
start, by any worker, is at least the interval ago; otherwise the coordinator says how
long to wait, and the attempt waits (giving up its batch slot, as with the in-process
spacing) and asks again. Attempts without a payment id pass straight through.

A start is granted where this layer runs, outside the in-flight cap and pacing. An
attempt that something holds after its grant (a full connection pool, pacing, a batch
worker taking its slot back) would start later than the fleet believes, so
:meth:`CoordinatedSpacingMiddleware.gate`, the chain's innermost layer, claims its
start again, measured against the start before its own: the interval counts from each
attempt's real start, as in-process.

Between a grant and the request's arrival at the gateway lie the way back from the
coordinator, a connection being opened, a busy event loop: milliseconds that differ
from one worker to the next, and so shorten a gap as the gateway sees it. So when an
attempt's exchange is over (its reply read, or failed), it tells the coordinator how
long after asking for its start that was (``Coordinator.finish``): its request had
reached the gateway by then, and the next start about the payment counts from there.
Replies take milliseconds and the interval is seconds, so the report is nearly always
in before the next start is asked for; when it is not (a reply slower than the
interval), the next start counts from the grant. A report that cannot be delivered is
logged and dropped: the reply it follows is kept, and the grant's spacing still holds.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable

import attrs

from .._coordination.base import Coordinator, new_token
from .._exceptions import CoordinationUnavailableError, DeadlineExceededError, FreedomPayError
from .._wire.messages import GatewayReply, GatewayRequest
from .chain import Handler, cut_to_deadline
from .spacing import PaymentSpacing, _park

__all__ = ["CoordinatedSpacingMiddleware"]

logger = logging.getLogger(__name__)

#: Seconds between a grant and the gate beyond which the attempt counts as held, and
#: claims its start again.
HELD_AFTER = 0.001


@attrs.define
class _Grant:
    payment_id: int
    token: str
    asked: float  # when the granted start was asked for, on the spacing's clock
    at: float  # when it was granted


#: The grant of the attempt under way in this task (set by the spacing layer, read by
#: the gate further in).
_GRANT: contextvars.ContextVar[_Grant | None] = contextvars.ContextVar(
    "freedompay_grant", default=None
)


class CoordinatedSpacingMiddleware:
    """Holds an attempt until the coordinator grants its payment's next start."""

    def __init__(
        self,
        spacing: PaymentSpacing,
        coordinator: Coordinator,
        *,
        deadline_clock: Callable[[], float] | None = None,
    ) -> None:
        self.spacing = spacing
        self.coordinator = coordinator
        self._interval = spacing.min_interval
        self._clock = spacing.clock
        self._sleep = spacing.sleep
        self._deadline_clock = deadline_clock or spacing.clock

    def __repr__(self) -> str:
        return f"<CoordinatedSpacingMiddleware interval={self._interval:g} {self.coordinator!r}>"

    def __call__(self, request: GatewayRequest, call_next: Handler) -> Awaitable[GatewayReply]:
        """Claim this payment's next start (waiting for it), then send."""
        pid = request.payment_id
        if pid is None:
            return call_next(request)
        return self._attempt(pid, request, call_next)

    def _fits(self, pid: int, request: GatewayRequest, wait: float) -> None:
        deadline = request.deadline
        if deadline is not None and self._deadline_clock() + wait >= deadline:
            raise DeadlineExceededError(
                "the call's deadline would pass before its payment's spacing slot; not sent",
                payment_id=pid,
            )

    async def _claim(self, grant: _Grant, request: GatewayRequest, park: bool) -> bool:
        """Wait until the coordinator grants ``grant.token`` a start (noting when it was
        asked for and granted in ``grant``); whether it waited."""
        waited = False
        while True:
            asked = self._clock()
            wait = await self.coordinator.start(grant.payment_id, self._interval, grant.token)
            if wait <= 0:
                grant.asked, grant.at = asked, self._clock()
                return waited
            self._fits(grant.payment_id, request, wait)
            waited = True
            parked = _park() if park else None
            await self._sleep(wait)
            if parked is not None:
                await parked.acquire()

    async def _attempt(self, pid: int, request: GatewayRequest, call_next: Handler) -> GatewayReply:
        grant = _Grant(pid, new_token(), 0.0, 0.0)
        if await self._claim(grant, request, park=True):
            request = cut_to_deadline(request, self._deadline_clock, "its payment's spacing slot")
        mark = _GRANT.set(grant)
        try:
            reply = await call_next(request)
        except FreedomPayError:
            await self._finish(grant)
            raise
        finally:
            _GRANT.reset(mark)
        await self._finish(grant)
        return reply

    async def _finish(self, grant: _Grant) -> None:
        """Tell the coordinator the attempt is over (see the module docstring)."""
        elapsed = self._clock() - grant.asked
        try:
            await self.coordinator.finish(grant.payment_id, grant.token, elapsed)
        except CoordinationUnavailableError as exc:
            logger.warning("payment=%s: the end of an attempt was not recorded (%s)",
                           grant.payment_id, exc)  # fmt: skip

    def gate(self, request: GatewayRequest, call_next: Handler) -> Awaitable[GatewayReply]:
        """The chain's innermost layer: an attempt held since its grant claims its
        start again before it goes."""
        grant = _GRANT.get()
        if grant is None or grant.payment_id != request.payment_id:
            return call_next(request)
        _GRANT.set(None)  # one gate per grant (the spacing layer restores the context)
        if self._clock() - grant.at <= HELD_AFTER:
            return call_next(request)
        return self._again(grant, request, call_next)

    async def _again(
        self, grant: _Grant, request: GatewayRequest, call_next: Handler
    ) -> GatewayReply:
        if await self._claim(grant, request, park=False):
            request = cut_to_deadline(request, self._deadline_clock, "its payment's spacing slot")
        return await call_next(request)
