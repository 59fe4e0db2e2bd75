"""What a verified reply stands for beyond its parse, where the session must say so.

- a cancel whose signed reply says ``pg_revoke_status=error`` is not cancelled
  (:func:`revoke_error`);
- a status reply naming another order than the one asked about is about another
  order's payment, a replayed reply: refused (:func:`of_order`).
"""

from __future__ import annotations

from .._exceptions import MalformedReplyError, NotCancelledError
from .._operations.cancel import CancelResult
from .._operations.status import StatusResult

__all__ = ["of_order", "revoke_error"]


def revoke_error(result: CancelResult) -> NotCancelledError:
    """The error a verified revoke status ``error`` stands for: not cancelled."""
    error = NotCancelledError(
        f"the gateway answered pg_revoke_status {result.revoke_status_raw!r}: not cancelled",
        payment_id=result.payment_id,
        state="error",
        payment_status_raw=result.revoke_status_raw,
    )
    error.attempts = result.attempts
    return error


def of_order(seen: StatusResult, order_id: str | None) -> StatusResult:
    """``seen``, unless it names another order than the one asked about: a reply about
    another order's payment (replayed) is a MalformedReplyError, never believed."""
    if order_id and seen.order_id and seen.order_id != order_id:
        raise MalformedReplyError(
            f"status reply names order {seen.order_id[:40]!r}, not the one asked about",
            payment_id=seen.payment_id,
            http_status=200,
        )
    return seen
