"""Replayed replies: a signed reading that was already received is no new reading.

A status reply is signed but names no request of ours, so a man in the middle could
answer a status query with an earlier genuine reply about the same payment: while a
refund whose reply was lost is settled, a whole window of the baseline's reply
replayed would look untouched, and the refund would be sent again. Every genuine
reply carries a fresh random ``pg_salt``; a session remembers the salts of the signed
readings it received (the newest :data:`REMEMBERED`), and a reading that repeats one is
a :class:`~freedompay_async.SignatureVerificationError` (someone answering in the
gateway's name; asked again, never believed).
"""

from __future__ import annotations

from collections import deque

from .._exceptions import SignatureVerificationError
from .messages import GatewayReply, GatewayRequest

__all__ = ["REMEMBERED", "ReplayGuard"]

#: Salts remembered per session: far more than one settle window's readings.
REMEMBERED = 65536


class ReplayGuard:
    """The salts of the signed readings a session received, newest kept."""

    __slots__ = ("_order", "_seen")

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._order: deque[str] = deque()

    def __len__(self) -> int:
        return len(self._seen)

    def check(self, request: GatewayRequest, reply: GatewayReply) -> None:
        """Remember ``reply``'s salt; SignatureVerificationError if it was seen."""
        salt = next((v for k, v in reply.fields if k == "pg_salt" and isinstance(v, str)), None)
        if not salt:
            return
        if salt in self._seen:
            raise SignatureVerificationError(
                f"{request.operation} reply repeats the salt of one received before: a "
                "replayed reply, not a new reading",
                payment_id=request.payment_id,
                http_status=reply.http_status,
            )
        self._seen.add(salt)
        self._order.append(salt)
        if len(self._order) > REMEMBERED:
            self._seen.discard(self._order.popleft())
