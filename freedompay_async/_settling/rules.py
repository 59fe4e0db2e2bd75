"""What a status reply says about one cancel, clearing or refund: one rule per operation.

The settle loop (``loop.py``) is the same for every operation; a rule tells it what one
status reading means for the call being settled (:class:`Seen`), whether a claim that
the work was already done holds, what result a confirmation stands for, and when the
request may go out again.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol, TypeVar

from .._exceptions import (
    AlreadyCancelledError,
    AlreadyClearedError,
    AlreadyRefundedError,
    FreedomPayError,
    GatewayError,
    MalformedReplyError,
    NotCancelledError,
    NotDoneError,
)
from .._operations.cancel import CancelRequest, CancelResult, RevokeStatus
from .._operations.money import (
    ClearingStatus,
    ClearRequest,
    ClearResult,
    RefundBaseline,
    RefundRequest,
    RefundResult,
    RefundStatus,
)
from .._operations.status import PaymentState, StatusResult
from .._operations.status_entries import PaymentStatus

__all__ = [
    "CANCEL_RULE",
    "CLEAR_RULE",
    "CancelRule",
    "ClearRule",
    "RefundRule",
    "Rule",
    "Seen",
    "ambiguous",
]

Q = TypeVar("Q", contravariant=True)
R = TypeVar("R")


class Seen(enum.Enum):
    """What one status reading says about the call being settled."""

    #: Its effect shows: the call is confirmed.
    DONE = "done"
    #: No trace of it.
    UNTOUCHED = "untouched"
    #: A trace that is not proof yet (a refund entry not counted, a pending state).
    MOVING = "moving"
    #: It cannot happen any more: the payment went another way.
    BLOCKED = "blocked"


class Rule(Protocol[Q, R]):
    """How the settle loop reads status for one operation."""

    @property
    def operation(self) -> str:
        """The operation's name, as in ``GatewayRequest.operation``."""
        ...

    def judge(self, request: Q, seen: StatusResult) -> Seen:
        """What ``seen`` says about ``request``."""
        ...

    def claim_holds(self, claim: GatewayError, seen: StatusResult) -> bool:
        """Whether ``seen`` confirms an "already done" claim about the payment."""
        ...

    def confirmed(self, request: Q, seen: StatusResult, attempts: int) -> R:
        """The result a DONE reading stands for."""
        ...

    def resend_at_once(self, last: R | FreedomPayError | None) -> bool:
        """Whether an UNTOUCHED reading sends the request again at once (else only after
        a whole settle window of UNTOUCHED readings)."""
        ...


def _wrong_place(error: FreedomPayError) -> bool:
    """An HTTP 4xx other than 429: the gateway answers 200 even for its errors, so this
    is a wrong URL or a proxy, and a status query would go to the same place."""
    status = getattr(error, "http_status", None)
    return (
        isinstance(error, MalformedReplyError)
        and status is not None
        and (400 <= status < 500 and status != 429)
    )


def ambiguous(outcome: object) -> bool:
    """Whether an outcome leaves open what the gateway did, in a way status can settle.

    An error whose outcome is unknown (a timeout, a lost or garbled reply, a refusal or
    claim that names no payment) is; so is a cancel result whose revoke status is
    unknown or pending, or ``error`` after an earlier attempt that may have been acted
    on. A clearing or refund result is bound to its payment, so it is not.
    """
    if isinstance(outcome, FreedomPayError):
        return outcome.outcome_unknown and not _wrong_place(outcome)
    if isinstance(outcome, CancelResult):
        status = outcome.revoke_status
        if status is RevokeStatus.UNKNOWN or status is RevokeStatus.PENDING:
            return True
        return status is RevokeStatus.ERROR and outcome.earlier_maybe_processed
    return False


_CAPTURED = frozenset(
    {PaymentState.CAPTURED, PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED}
)
_NOT_HELD = frozenset(
    {
        PaymentState.CAPTURED,
        PaymentState.PARTIALLY_REFUNDED,
        PaymentState.REFUNDED,
        PaymentState.FAILED,
    }
)
_DONE_ENTRY = frozenset({PaymentStatus.SUCCESS, PaymentStatus.OK})


def not_done(operation: str, seen: StatusResult) -> NotDoneError:
    """The error a BLOCKED reading stands for."""
    state = seen.state.value
    kind = NotCancelledError if operation == "cancel" else NotDoneError
    return kind(
        f"status says the payment is {state} ({seen.payment_status_raw!r}): "
        f"no {operation} happened, and none can now",
        payment_id=seen.payment_id,
        state=state,
        payment_status_raw=seen.payment_status_raw,
        operation=operation,
    )


class CancelRule:
    """A cancel: done when revoked; sent again at once while held (a repeated cancel is
    answered "already cancelled"), unless it was answered pending."""

    operation = "cancel"

    def judge(self, request: CancelRequest, seen: StatusResult) -> Seen:
        state = seen.state
        if state is PaymentState.REVOKED:
            return Seen.DONE
        if state is PaymentState.HELD:
            return Seen.UNTOUCHED
        if state in _NOT_HELD:
            return Seen.BLOCKED
        return Seen.MOVING

    def claim_holds(self, claim: GatewayError, seen: StatusResult) -> bool:
        return isinstance(claim, AlreadyCancelledError) and seen.state is PaymentState.REVOKED

    def confirmed(self, request: CancelRequest, seen: StatusResult, attempts: int) -> CancelResult:
        revoke_id = next((r.payment_id for r in seen.revoked_payments if r.payment_id), None)
        return CancelResult(
            payment_id=seen.payment_id,
            revoke_id=revoke_id,
            status="ok",
            revoke_status=RevokeStatus.SUCCESS,
            revoke_status_raw=seen.payment_status_raw,
            attempts=attempts,
            earlier_maybe_processed=True,
            confirmed_by_status=True,
        )

    def resend_at_once(self, last: CancelResult | FreedomPayError | None) -> bool:
        pending = isinstance(last, CancelResult) and last.revoke_status is RevokeStatus.PENDING
        return not pending


class ClearRule:
    """A clearing: done when captured (by the requested amount, when one was given);
    sent again only after a whole window of "still held"."""

    operation = "clearing"

    def judge(self, request: ClearRequest, seen: StatusResult) -> Seen:
        state = seen.state
        if state in _CAPTURED:
            if request.amount is not None and seen.clearing_amount != request.amount:
                return Seen.MOVING  # captured by another amount, or not counted yet
            return Seen.DONE
        if state is PaymentState.HELD:
            return Seen.UNTOUCHED
        if state in (PaymentState.REVOKED, PaymentState.FAILED):
            return Seen.BLOCKED
        return Seen.MOVING

    def claim_holds(self, claim: GatewayError, seen: StatusResult) -> bool:
        return isinstance(claim, AlreadyClearedError) and seen.state in _CAPTURED

    def confirmed(self, request: ClearRequest, seen: StatusResult, attempts: int) -> ClearResult:
        return ClearResult(
            payment_id=request.payment_id,
            amount=seen.amount,
            clearing_amount=seen.clearing_amount,
            status="ok",
            clearing_status=ClearingStatus.COMPLETED,
            clearing_status_raw=seen.payment_status_raw,
            attempts=attempts,
            confirmed_by_status=True,
        )

    def resend_at_once(self, last: ClearResult | FreedomPayError | None) -> bool:
        return False


class RefundRule:
    """A refund, against what status showed before it was sent (``baseline``): done when
    the refunded total grew by its amount with at most one new, successful refund entry;
    untouched while total and entries are as before; sent again only after a whole
    window of untouched readings."""

    operation = "refund"

    def __init__(self, baseline: RefundBaseline, known: Sequence[tuple[int, Decimal]] = ()) -> None:
        self.known = tuple(known)
        self.baseline = baseline.with_refunds(self.known)

    def _new(self, seen: StatusResult) -> list[int | None]:
        known = self.baseline.refund_ids
        return [r.payment_id for r in seen.refund_payments if r.payment_id not in known]

    def judge(self, request: RefundRequest, seen: StatusResult) -> Seen:
        if seen.state in (PaymentState.REVOKED, PaymentState.FAILED, PaymentState.NEW):
            return Seen.BLOCKED
        new = self._new(seen)
        base = self.baseline.refunded
        # A reading that lags refunds known to have happened (``known``) is completed
        # with them, as the baseline was: their showing up later is no trace of this one.
        refunded = RefundBaseline.of(seen).with_refunds(self.known).refunded
        settled = all(r.payment_status in _DONE_ENTRY for r in seen.refund_payments)
        if refunded == base + request.amount and len(new) <= 1 and settled:
            # At most one new entry: more than one means someone else refunded too, and
            # which of them is this call's cannot be told.
            return Seen.DONE
        if refunded == base and not new and settled:
            return Seen.UNTOUCHED
        return Seen.MOVING

    def claim_holds(self, claim: GatewayError, seen: StatusResult) -> bool:
        return isinstance(claim, AlreadyRefundedError) and seen.state is PaymentState.REFUNDED

    def confirmed(self, request: RefundRequest, seen: StatusResult, attempts: int) -> RefundResult:
        new = self._new(seen)
        return RefundResult(
            payment_id=request.payment_id,
            refund_id=new[0] if new else None,
            status="ok",
            refund_status=RefundStatus.SUCCESS,
            refund_status_raw=seen.payment_status_raw,
            attempts=attempts,
            confirmed_by_status=True,
        )

    def resend_at_once(self, last: RefundResult | FreedomPayError | None) -> bool:
        return False


CANCEL_RULE = CancelRule()
CLEAR_RULE = ClearRule()
