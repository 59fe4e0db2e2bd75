"""The coordination seam: what must be shared per payment when several workers act on it.

Two things keep one payment's story straight, and both hold only within one process
unless they are shared:

- the **spacing**: requests about one payment at least ``interval`` seconds apart,
  counted from each attempt's real start (``Coordinator.start``), or from when its
  exchange was over when it reports that before the next start (``finish``);
- the **lease** on its money movements: one clearing or refund of a payment at a time,
  from its baseline read through its send to its settling, held by one worker under a
  token and lost when that worker stops renewing it (``acquire``, ``renew``,
  ``release``), with **notes** a holder leaves about a movement it may have sent and
  not settled, for the next holder (``note``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["Claim", "Coordinator", "cancel_requests", "new_token"]


def cancel_requests() -> int:
    """How many cancellations of the running task are pending (0 outside a task).

    A client library that swallows a cancellation and returns its result anyway (redis-py
    8.2 does now and then, for a task cancelled while it waited) still leaves the
    request counted here, so a caller that compares the count before and after a call
    can raise the cancellation itself."""
    task = asyncio.current_task()
    return 0 if task is None else task.cancelling()


def new_token() -> str:
    """A fresh random token: an attempt's or a lease holder's name (16 hex digits)."""
    return secrets.token_hex(8)


@attrs.frozen
class Claim:
    """The answer to :meth:`Coordinator.acquire`.

    ``held``: the lease is now the caller's (``notes``: the payment's notes, name ->
    value, left by earlier holders about movements they may have sent and did not
    settle). Otherwise another worker holds it, and it expires within ``retry_in``
    seconds unless renewed: ask again no later than that.
    """

    held: bool
    retry_in: float = 0.0
    notes: Mapping[str, str] = attrs.field(factory=dict)


@runtime_checkable
class Coordinator(Protocol):
    """What the workers of a fleet share about each payment (see the module docstring).

    ``AsyncSession(..., coordinator=...)`` keeps its per-payment spacing and its money
    leases here instead of in the process. Every method is one atomic step (for Redis,
    one script); none waits for another worker. Every failure to reach the shared
    state raises :class:`~freedompay_async.CoordinationUnavailableError`. Tokens are
    the callers' (:func:`new_token`); a payment's state expires by itself once nobody
    renews it, so a worker that dies leaves nothing behind for long.
    """

    @property
    def lease_ttl(self) -> float:
        """Seconds a lease lives after it was taken or last renewed."""
        ...

    async def start(self, payment_id: int, interval: float, token: str) -> float:
        """Claim the start of an attempt about ``payment_id`` now, under ``token``.

        0.0: granted, and now is the payment's latest start. Otherwise the seconds
        until a start is free (``interval`` after the latest), nothing recorded: wait
        and ask again. An attempt held after its grant asks again with the same token
        just before it really starts: it is measured against the start before its own,
        and its start moves to now.
        """
        ...

    async def finish(self, payment_id: int, token: str, elapsed: float) -> None:
        """The attempt started under ``token`` is over (its reply came back, or it
        failed) ``elapsed`` seconds after it asked for its start: its request reached
        the gateway by then at the latest. If its start is still the payment's latest,
        the next start counts from then instead (so the spacing holds at the gateway,
        whatever delayed the request after its grant); otherwise nothing changes.
        """
        ...

    async def acquire(self, payment_id: int, token: str) -> Claim:
        """Take the payment's lease for ``token`` if nobody else holds it (a holder
        asking again renews it)."""
        ...

    async def renew(self, payment_id: int, token: str) -> bool:
        """Extend ``token``'s lease to :attr:`lease_ttl` from now; False when ``token``
        does not hold it (it expired, or another worker took it)."""
        ...

    async def release(self, payment_id: int, token: str) -> None:
        """Give up ``token``'s lease (nothing when it does not hold it)."""
        ...

    async def note(self, payment_id: int, token: str, name: str, value: str | None) -> bool:
        """Set the payment's note ``name`` to ``value`` (None: remove it), only while
        ``token`` holds the lease; False, with nothing changed, when it does not."""
        ...

    async def aclose(self) -> None:
        """Release what the coordinator opened (connections). Idempotent."""
        ...
