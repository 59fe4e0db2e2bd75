"""Holding a payment's money lease over any coordinator: wait for it, keep it, check it.

:func:`hold_lease` waits until the payment's lease is free (polling the coordinator,
no longer than the holder's lease could still live between two polls), keeps it alive
from a task of its own for as long as the block runs (a renewal every third of the
lease's life), and gives it up at the end. A worker that dies stops renewing, so its
lease expires by itself and the next worker gets it. :meth:`Lease.check` is what a
holder calls before it sends or confirms anything: it renews the lease and raises
:class:`~freedompay_async.LeaseLostError` if the lease is no longer its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import MappingProxyType

from .._exceptions import CoordinationUnavailableError, LeaseLostError
from .base import Claim, Coordinator, cancel_requests, new_token

__all__ = ["Lease", "hold_lease"]

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

#: The first and the longest wait between two polls for a lease someone else holds.
_POLL_FIRST = 0.02
_POLL_MAX = 0.25
#: The shortest wait between two polls (a lease about to expire).
_POLL_MIN = 0.001


class Lease:
    """A payment's money lease while :func:`hold_lease`'s block runs.

    ``notes`` are the payment's notes as they were when the lease was taken: what
    earlier holders wrote about movements they may have sent and did not settle.
    """

    __slots__ = ("_clock", "_coordinator", "_renewed", "_token", "lost", "notes", "payment_id")

    def __init__(
        self,
        coordinator: Coordinator,
        payment_id: int,
        token: str,
        notes: Mapping[str, str],
        clock: Callable[[], float],
    ) -> None:
        self._coordinator = coordinator
        self.payment_id = payment_id
        self._token = token
        self.notes: Mapping[str, str] = MappingProxyType(dict(notes))
        self._clock = clock
        self._renewed = clock()
        #: Set once the lease is known to be gone; nothing is sent or confirmed after.
        self.lost = False

    def __repr__(self) -> str:
        return f"<Lease payment={self.payment_id} lost={self.lost}>"

    def _gone(self) -> LeaseLostError:
        self.lost = True
        return LeaseLostError(
            "this worker no longer holds the payment's money lease (it expired or another "
            "worker took it): nothing more is sent or confirmed by this call",
            payment_id=self.payment_id,
        )

    async def check(self) -> None:
        """Renew the lease; LeaseLostError when it is no longer this holder's."""
        if self.lost:
            raise self._gone()
        if not await self._coordinator.renew(self.payment_id, self._token):
            raise self._gone()
        self._renewed = self._clock()

    async def write(self, name: str, value: str) -> None:
        """Leave the note ``name`` for the next holder (LeaseLostError when not held)."""
        if self.lost or not await self._coordinator.note(
            self.payment_id, self._token, name, value
        ):
            raise self._gone()

    async def drop(self, name: str) -> None:
        """Remove the note ``name`` (LeaseLostError when not held)."""
        if self.lost or not await self._coordinator.note(self.payment_id, self._token, name, None):
            raise self._gone()

    async def keep(self, sleep: Sleep) -> None:
        """Renew the lease every third of its life until cancelled or lost. A renewal
        that fails is tried again; once the lease's life has passed since the last
        one that worked, it is lost. Run as a task of its own: any cancellation of it
        ends it, even one a coordinator swallowed and answered anyway."""
        ttl = self._coordinator.lease_ttl
        while not self.lost:
            await sleep(ttl / 3)
            try:
                held = await self._coordinator.renew(self.payment_id, self._token)
            except CoordinationUnavailableError:
                held = None
            if cancel_requests():
                raise asyncio.CancelledError
            if held is None:
                if self._clock() - self._renewed >= ttl:
                    self.lost = True
            elif held:
                self._renewed = self._clock()
            else:
                self.lost = True

    async def release(self) -> None:
        """Give the lease up; one the coordinator cannot hear about expires by itself."""
        if self.lost:
            return
        try:
            await self._coordinator.release(self.payment_id, self._token)
        except CoordinationUnavailableError as exc:
            logger.warning(
                "payment=%s: could not release its money lease (%s); it expires by itself",
                self.payment_id,
                exc,
            )


async def _claim(coordinator: Coordinator, payment_id: int, token: str, sleep: Sleep) -> Claim:
    """Poll until the payment's lease is ``token``'s."""
    poll = _POLL_FIRST
    while True:
        claim = await coordinator.acquire(payment_id, token)
        if claim.held:
            return claim
        await sleep(max(min(claim.retry_in, poll), _POLL_MIN))
        poll = min(poll * 2, _POLL_MAX)


@contextlib.asynccontextmanager
async def hold_lease(
    coordinator: Coordinator,
    payment_id: int,
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Lease]:
    """Hold ``payment_id``'s money lease while the block runs (see the module)."""
    token = new_token()
    try:
        claim = await _claim(coordinator, payment_id, token, sleep)
    except asyncio.CancelledError:
        # The cancel may have come as the lease was taken (the coordinator did it, the
        # answer never came back): give it back rather than block the payment until it
        # expires. Only this token's lease is released, so this is harmless otherwise.
        with contextlib.suppress(CoordinationUnavailableError):
            await coordinator.release(payment_id, token)
        raise
    lease = Lease(coordinator, payment_id, token, claim.notes, clock)
    keeper = asyncio.get_running_loop().create_task(lease.keep(sleep))
    try:
        yield lease
    finally:
        interrupted = await _stop(keeper)
        if not keeper.cancelled() and keeper.exception() is not None:
            logger.error("payment=%s: the lease keeper failed", payment_id,
                         exc_info=keeper.exception())  # fmt: skip
        await lease.release()
        if interrupted:
            raise asyncio.CancelledError


async def _stop(keeper: asyncio.Task[None]) -> bool:
    """Cancel ``keeper`` and wait until it has ended, even if this call is cancelled
    meanwhile (no task outlives the block that started it); whether it was."""
    keeper.cancel()
    interrupted = False
    while not keeper.done():
        try:
            await asyncio.wait((keeper,))
        except asyncio.CancelledError:
            interrupted = True
    return interrupted
