"""What became of one payment in a batch: the outcome of one ``cancel_many`` input."""

from __future__ import annotations

import enum

import attrs

from .._exceptions import (
    AlreadyCancelledError,
    FreedomPayError,
    GatewayError,
    InternalError,
    NotDoneError,
    ValidationError,
)
from .._operations.cancel import CancelResult, RevokeStatus
from .._settling.loop import Settled, SettledBy

__all__ = ["CancelOutcome", "OutcomeState"]


class OutcomeState(enum.Enum):
    """What became of one payment in a batch."""

    #: The gateway cancelled it now (revoke status success), possibly confirmed on a retry.
    CANCELLED = "cancelled"
    #: The gateway says (signed) it was cancelled before this call.
    ALREADY_CANCELLED = "already_cancelled"
    #: The gateway accepted the cancel and is still processing it.
    PENDING = "pending"
    #: Definitely not cancelled by this call: see ``error`` (or the revoke status).
    FAILED = "failed"
    #: The gateway may or may not have acted (timeout, lost connection, untrusted reply).
    UNKNOWN = "unknown"

    @property
    def settled(self) -> bool:
        """Whether the hold is known to be released: CANCELLED or ALREADY_CANCELLED.

        The one definition of "settled" that the journal, the command line and the
        demo share.
        """
        return self in _SETTLED

    @classmethod
    def settled_values(cls) -> frozenset[str]:
        """The ``value`` strings of the settled states (as a journal records them)."""
        return _SETTLED_VALUES


_SETTLED = frozenset({OutcomeState.CANCELLED, OutcomeState.ALREADY_CANCELLED})
_SETTLED_VALUES = frozenset(state.value for state in _SETTLED)


@attrs.frozen
class CancelOutcome:
    """The outcome of one input of :meth:`AsyncSession.cancel_many`.

    ``payment_id`` is None only when the input was not a valid payment id (``item``
    keeps the input). ``elapsed`` is seconds from the start of this item's cancel.
    ``settled_by`` says how the outcome was learnt: ``"reply"`` (the cancel's own
    answer), ``"retry"`` (a retry answered "already cancelled" after an ambiguous
    attempt), ``"status"`` (status_v2 showed it revoked, not found or no longer held),
    ``"resent"`` (status showed it held and a second cancel's answer decided); None
    when it is UNKNOWN or the input was invalid.
    """

    item: object
    payment_id: int | None
    state: OutcomeState
    attempts: int
    elapsed: float
    result: CancelResult | None = None
    error: FreedomPayError | None = None
    settled_by: str | None = None

    @property
    def final(self) -> bool:
        """Whether trying again could not change anything (a rerun may skip this id).

        CANCELLED and ALREADY_CANCELLED are final. FAILED is final only when the input
        is invalid, status showed the hold gone another way (:class:`NotDoneError`), or
        the gateway refused in a signed reply *bound* to the payment (naming it, or
        confirmed by status) with a code that is not transient. UNKNOWN, PENDING,
        transient, unsigned or unbound refusals, a revoke status ``error`` and failures
        of the client or its configuration are not.
        """
        if self.state is OutcomeState.FAILED:
            error = self.error
            if isinstance(error, ValidationError | NotDoneError):
                return True
            return (
                isinstance(error, GatewayError)
                and error.signed
                and error.bound
                and not error.retryable
            )
        return self.state.settled

    @classmethod
    def from_result(cls, item: object, result: CancelResult, elapsed: float) -> CancelOutcome:
        """Classify an accepted cancel by its revoke status.

        A revoke status ``error`` is FAILED, unless an earlier attempt of the call may
        have been acted on: then the payment may be cancelled after all (UNKNOWN).
        """
        state = _STATE_BY_REVOKE.get(result.revoke_status, OutcomeState.UNKNOWN)
        if state is OutcomeState.FAILED and result.earlier_maybe_processed:
            state = OutcomeState.UNKNOWN
        by = None
        if state is not OutcomeState.UNKNOWN:
            by = SettledBy.RETRY if result.confirmed_on_retry else SettledBy.REPLY
            if result.confirmed_by_status:
                by = SettledBy.STATUS
        return cls(
            item,
            result.payment_id,
            state,
            result.attempts,
            elapsed,
            result=result,
            settled_by=by.value if by is not None else None,
        )

    @classmethod
    def from_error(
        cls, item: object, payment_id: int | None, error: FreedomPayError, elapsed: float
    ) -> CancelOutcome:
        """Classify a failed call: unknown whenever the gateway may have acted."""
        if isinstance(error, AlreadyCancelledError):
            # Only a signed "already cancelled" bound to the payment is believed: an
            # unsigned one could be forged, an unbound one replayed from another payment.
            bound = error.signed and error.bound
            state = OutcomeState.ALREADY_CANCELLED if bound else OutcomeState.UNKNOWN
        elif error.outcome_unknown:
            state = OutcomeState.UNKNOWN
        else:
            state = OutcomeState.FAILED
        # Only the gateway's own answer settles an id; a client-side failure (no
        # connection, a closed session) says nothing about the payment.
        answer = isinstance(error, GatewayError | NotDoneError)
        settled = state is not OutcomeState.UNKNOWN and answer
        by = SettledBy.REPLY.value if settled else None
        return cls(item, payment_id, state, error.attempts, elapsed, error=error, settled_by=by)

    @classmethod
    def from_reconciled(
        cls, item: object, payment_id: int, settled: Settled[CancelResult], elapsed: float
    ) -> CancelOutcome:
        """Classify what settling an ambiguous cancel found (see ``settle``)."""
        if settled.result is not None:
            outcome = cls.from_result(item, settled.result, elapsed)
        elif settled.error is not None:
            outcome = cls.from_error(item, payment_id, settled.error, elapsed)
        else:  # neither: a bug in settling; the cancel may have gone out
            error = InternalError("settling found neither a result nor an error")
            error.payment_id = payment_id
            error.attempts = settled.attempts
            return cls.from_error(item, payment_id, error, elapsed)
        by = settled.settled_by
        if outcome.state is OutcomeState.UNKNOWN or by is None:
            by_value = outcome.settled_by if outcome.state is not OutcomeState.UNKNOWN else None
        else:
            by_value = by.value
        return attrs.evolve(outcome, attempts=settled.attempts, settled_by=by_value)


_STATE_BY_REVOKE = {
    RevokeStatus.SUCCESS: OutcomeState.CANCELLED,
    RevokeStatus.PENDING: OutcomeState.PENDING,
    RevokeStatus.ERROR: OutcomeState.FAILED,
}
