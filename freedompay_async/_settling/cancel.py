"""Settling an ambiguous cancel by asking ``/g2g/status_v2`` instead of guessing.

A cancel whose outcome is unknown (the connection dropped after sending, a timeout, a
forged or garbled reply) is settled by the payment's status: revoked means cancelled
("confirmed by status"), still held means the cancel is sent again, a signed not found
means failed. Only what status cannot settle stays unknown. Every request here goes through
the session's chain, so the per-payment spacing holds for it too.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable

import attrs

from .._exceptions import (
    AlreadyCancelledError,
    FreedomPayError,
    MalformedReplyError,
    NotCancelledError,
    PaymentNotFoundError,
    SignatureVerificationError,
)
from .._operations.cancel import (
    CancelRequest,
    CancelResult,
    RevokeStatus,
)
from .._operations.status import (
    PaymentState,
    StatusRequest,
    StatusResult,
)

__all__ = [
    "DEFAULT_RECONCILE_ROUNDS",
    "Reconciled",
    "SettledBy",
    "ambiguous",
    "settle_cancel",
]

#: Status queries (each maybe followed by a second send) one ambiguous cancel may take.
DEFAULT_RECONCILE_ROUNDS = 3

CancelCall = Callable[[CancelRequest], Awaitable[CancelResult]]
StatusCall = Callable[[StatusRequest], Awaitable[StatusResult]]


class SettledBy(enum.Enum):
    """How the outcome of one cancel was learnt (journal key ``settled_by``)."""

    #: The cancel's own reply said it (done, already done, or refused).
    REPLY = "reply"
    #: An attempt was ambiguous and a retry was answered "already cancelled".
    RETRY = "retry"
    #: status_v2 said it: revoked (cancelled), not found or no longer held (failed).
    STATUS = "status"
    #: status_v2 said "still held", the cancel was sent again and that answer decided.
    RESENT = "resent"


def _wrong_place(error: FreedomPayError) -> bool:
    """An HTTP 4xx other than 429: the gateway answers 200 even for its errors, so this
    is a wrong URL or a proxy, and a status query would go to the same place."""
    status = getattr(error, "http_status", None)
    return (
        isinstance(error, MalformedReplyError)
        and status is not None
        and (400 <= status < 500 and status != 429)
    )


def ambiguous(outcome: CancelResult | FreedomPayError) -> bool:
    """Whether a cancel's result or error leaves open whether the gateway cancelled, in
    a way a status query can settle."""
    if isinstance(outcome, AlreadyCancelledError):
        return not outcome.signed
    if isinstance(outcome, FreedomPayError):
        return outcome.outcome_unknown and not _wrong_place(outcome)
    status = outcome.revoke_status
    if status is RevokeStatus.UNKNOWN:
        return True
    return status is RevokeStatus.ERROR and outcome.earlier_maybe_processed


@attrs.frozen
class Reconciled:
    """What reconciling found: a result or an error, how it was settled (None: not
    settled, the error is the last ambiguous one), the last status seen, attempts."""

    result: CancelResult | None
    error: FreedomPayError | None
    settled_by: SettledBy | None
    status: StatusResult | None
    attempts: int


def confirmed_by_status(status: StatusResult, attempts: int) -> CancelResult:
    """The cancel result a "revoked" status stands for."""
    revoke_id = next((r.payment_id for r in status.revoked_payments if r.payment_id), None)
    return CancelResult(
        payment_id=status.payment_id,
        revoke_id=revoke_id,
        status="ok",
        revoke_status=RevokeStatus.SUCCESS,
        revoke_status_raw=status.payment_status_raw,
        attempts=attempts,
        earlier_maybe_processed=True,
        confirmed_by_status=True,
    )


def not_cancelled(status: StatusResult) -> NotCancelledError:
    """The error a captured, refunded or failed status stands for."""
    state = status.state.value
    return NotCancelledError(
        f"status says the payment is {state} ({status.payment_status_raw!r}), not cancelled",
        payment_id=status.payment_id,
        state=state,
        payment_status_raw=status.payment_status_raw,
    )


async def settle_cancel(
    cancel: CancelCall,
    status: StatusCall,
    request: CancelRequest,
    first: CancelResult | FreedomPayError,
    *,
    rounds: int = DEFAULT_RECONCILE_ROUNDS,
) -> Reconciled:
    """Settle the ambiguous ``first`` outcome of ``cancel(request)`` with status queries.

    Each round asks status: REVOKED settles it as cancelled; HELD sends the cancel
    again (a clean answer settles it, another ambiguous one starts the next round);
    a signed not found settles it as failed (an unsigned one, which could be forged,
    settles nothing: the next round asks again); CAPTURED, REFUNDED or FAILED settle it
    as not cancelled (the last ambiguous error is kept; if the last answer was a
    result, a :class:`NotCancelledError` stands for it). A status query that fails, or
    PENDING/UNKNOWN, leaves it unsettled.
    """
    last = first
    attempts = first.attempts
    query = StatusRequest(request.payment_id)
    seen: StatusResult | None = None
    for _ in range(rounds):
        try:
            seen = await status(query)
        except PaymentNotFoundError as exc:
            if exc.signed:
                return Reconciled(None, exc, SettledBy.STATUS, None, attempts + exc.attempts)
            # An unsigned 11068 could be forged: it settles nothing; the next round asks again.
            attempts += exc.attempts
            continue
        except FreedomPayError as exc:
            attempts += exc.attempts
            if exc.retryable or isinstance(exc, SignatureVerificationError):
                continue  # a passing failure: asking is safe, the next round asks again
            break  # a wrong URL, a refusal, a spent deadline: asking again cannot help
        attempts += seen.attempts
        state = seen.state
        if state is PaymentState.REVOKED:
            return Reconciled(
                confirmed_by_status(seen, attempts), None, SettledBy.STATUS, seen, attempts
            )
        if state in (PaymentState.CAPTURED, PaymentState.REFUNDED, PaymentState.FAILED):
            # The hold is gone another way: not cancelled. A verified but ambiguous
            # result (revoke status unknown, or error after an attempt that may have
            # been acted on) carries no error of its own, so status's answer becomes one.
            error = last if isinstance(last, FreedomPayError) else not_cancelled(seen)
            error.attempts = attempts
            return Reconciled(None, error, SettledBy.STATUS, seen, attempts)
        if state is not PaymentState.HELD:
            break
        try:
            again = await cancel(request)
        except FreedomPayError as exc:
            attempts += exc.attempts
            if ambiguous(exc):
                last = exc
                continue
            exc.attempts = attempts
            return Reconciled(None, exc, SettledBy.RESENT, seen, attempts)
        attempts += again.attempts
        if ambiguous(again):
            last = again
            continue
        return Reconciled(
            attrs.evolve(again, attempts=attempts), None, SettledBy.RESENT, seen, attempts
        )
    if isinstance(last, FreedomPayError):
        last.attempts = attempts
        return Reconciled(None, last, None, seen, attempts)
    return Reconciled(attrs.evolve(last, attempts=attempts), None, None, seen, attempts)
