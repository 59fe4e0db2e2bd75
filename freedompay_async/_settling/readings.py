"""Replayed status readings: a reading already taken is no new reading.

A status reply is signed but names no request of ours, so a man in the middle could
answer a status query with an earlier genuine reply about the same payment: while a
refund whose reply was lost is settled, the baseline's reading replayed for a whole
window would look untouched, and the refund would be sent again. Every genuine reply
carries a fresh random ``pg_salt``, so two readings with the same ``pg_sig`` are one
reply received twice. A session remembers the signatures of the readings it takes to
judge a cancel or a money movement (its baselines and settle loops; the newest
:data:`REMEMBERED`), and such a reading that repeats one is a
:class:`~freedompay_async.SignatureVerificationError`: the settle loop asks again, a
baseline read refuses to send. Plain ``status()`` calls are not judged: asking twice
and getting the same reply is no danger there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable

from .._exceptions import SignatureVerificationError
from .._operations.status import StatusRequest, StatusResult

__all__ = ["REMEMBERED", "Readings"]

StatusCall = Callable[[StatusRequest], Awaitable[StatusResult]]

#: Readings remembered per session: far more than one settle window takes.
REMEMBERED = 65536


class Readings:
    """The signatures of the readings a session judged by, newest kept."""

    __slots__ = ("_order", "_seen", "_status")

    def __init__(self, status: StatusCall, remembered: int = REMEMBERED) -> None:
        self._status = status
        self._seen: set[str] = set()
        self._order: deque[str] = deque(maxlen=remembered)

    def __len__(self) -> int:
        return len(self._seen)

    async def __call__(self, request: StatusRequest) -> StatusResult:
        """A fresh reading of ``request``'s payment (SignatureVerificationError for one
        received before)."""
        seen = await self._status(request)
        self.check(seen)
        return seen

    def check(self, seen: StatusResult) -> None:
        """Remember ``seen``; SignatureVerificationError if it was taken before."""
        signature = seen.signature
        if not signature:
            return
        if signature in self._seen:
            raise SignatureVerificationError(
                "status reply repeats one received before (the same pg_sig, so the same "
                "salt): a replayed reading, not a new one",
                payment_id=seen.payment_id,
                http_status=200,
            )
        if len(self._order) == self._order.maxlen:
            self._seen.discard(self._order[0])
        self._order.append(signature)
        self._seen.add(signature)
