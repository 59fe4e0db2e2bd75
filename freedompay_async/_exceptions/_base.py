"""The root of the error tree and the errors that are neither the exchange's nor the
gateway's: configuration, input, the session, settling, payment checks, coordination.
The whole tree is drawn in :mod:`freedompay_async._exceptions`."""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "CallbackBodyTooLargeError",
    "ConfigurationError",
    "CoordinationError",
    "CoordinationUnavailableError",
    "FreedomPayError",
    "InternalError",
    "LeaseLostError",
    "NotCancelledError",
    "NotDoneError",
    "PaymentExistsError",
    "PaymentNotConfirmedError",
    "SessionClosedError",
    "UnsettledError",
    "ValidationError",
]


class FreedomPayError(Exception):
    """Root of every error raised by freedompay_async.

    ``maybe_processed`` says whether the gateway may have acted on the attempt that
    failed here. ``attempts`` is how many HTTP attempts the call made, and
    ``earlier_maybe_processed`` whether an earlier attempt of the same call may have been
    acted on; the retry middleware fills both in. A call whose error has either flag set
    has an unknown outcome, not a failed one.
    """

    _acted: ClassVar[bool] = False
    _retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, payment_id: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.payment_id = payment_id
        self.maybe_processed: bool = self._acted
        #: Whether the default retry policy retries this error.
        self.retryable: bool = self._retryable
        self.attempts = 1
        self.earlier_maybe_processed = False

    @property
    def outcome_unknown(self) -> bool:
        """Whether the gateway may have acted on this call despite the error."""
        return self.maybe_processed or self.earlier_maybe_processed

    def __str__(self) -> str:
        if self.payment_id is not None:
            return f"{self.message} (payment {self.payment_id})"
        return self.message


class ConfigurationError(FreedomPayError, ValueError):
    """Credentials, base URL or an option are unusable."""


class ValidationError(FreedomPayError, ValueError):
    """Input the library was given is invalid (e.g. a non-numeric payment id)."""


class CallbackBodyTooLargeError(ValidationError):
    """An incoming callback or redirect body is larger than the configured limit.

    ``limit`` is the limit in bytes. Raised before the whole body is read.
    """

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class SessionClosedError(FreedomPayError, RuntimeError):
    """The AsyncSession was used after ``aclose()``."""


class InternalError(FreedomPayError):
    """An unexpected failure inside the client (a bug). The gateway may have acted.

    ``cancel_many`` reports it as an UNKNOWN outcome rather than losing the item; the
    original exception is the ``__cause__``.
    """

    _acted = True


class NotDoneError(FreedomPayError):
    """Settling: status says the operation did not happen and cannot happen now.

    An attempt's outcome was open (a lost reply, a claim that named no payment), and a
    status reply about the payment then showed it gone another way: a hold captured,
    refunded or failed when a cancel was asked; cancelled or failed when a clearing or
    a refund was. ``operation`` names the operation, ``state`` the derived state
    (``captured``, ``revoked``, ...), ``payment_status_raw`` the status's
    ``pg_payment_status``. The gateway's answer settles it: not an unknown outcome.
    """

    def __init__(
        self,
        message: str,
        *,
        payment_id: int | None = None,
        state: str,
        payment_status_raw: str,
        operation: str = "cancel",
    ) -> None:
        super().__init__(message, payment_id=payment_id)
        self.state = state
        self.payment_status_raw = payment_status_raw
        self.operation = operation


class UnsettledError(FreedomPayError):
    """Settling ended with the outcome still open, and no attempt of this call to show.

    Raised when a clearing or refund that an earlier run may have sent (a journaled
    intent resumed with ``resume=True``) could not be settled by status within the
    settle window: it may or may not have happened (``outcome_unknown`` is True). A
    note on the error says what status showed.
    """

    _acted = True


class NotCancelledError(NotDoneError):
    """Settling a cancel: status says the payment is captured, refunded or failed.

    The cancel's answers left its outcome open, and ``/g2g/status_v2`` then said the
    hold is gone another way: this payment is settled as not cancelled.
    """


class PaymentNotConfirmedError(FreedomPayError):
    """A paid result notification that a status query did not confirm. Do not ship yet.

    The md5 ``pg_sig`` cannot bind values to field names, so a signed notification can
    be rearranged; a status query (``/g2g/status_v2``) is the gateway's own word.
    ``reason`` says what failed: ``"status_unavailable"`` (the query failed: its error
    is the ``__cause__``), ``"other_payment"``, ``"not_paid"`` (``state`` holds the
    status's derived state), ``"order_differs"``, ``"amount_differs"`` or
    ``"currency_differs"``. The ready result handler answers it with a non-200 status,
    so the gateway delivers the notification again later.
    """

    def __init__(
        self, message: str, *, payment_id: int | None = None, reason: str, state: str | None = None
    ) -> None:
        super().__init__(message, payment_id=payment_id)
        self.reason = reason
        self.state = state


class PaymentExistsError(FreedomPayError):
    """``init_payment``: its reply was lost, and a payment for the order exists.

    An attempt of ``init_payment`` may have been acted on without an answer (a timeout,
    a lost or unverifiable reply), and a status query by order id then found payment
    ``payment_id`` for ``order_id``: created by this call or an earlier one. Its payment
    page URL is not known (only the lost reply carried it), so the buyer cannot be sent
    there. Do not create another payment under the same order id: cancel this one if
    it is still open (``state``: the derived state status showed) and create the
    payment under a new order id. The outcome is known: not ``outcome_unknown``.
    """

    def __init__(
        self, message: str, *, order_id: str, payment_id: int, state: str | None = None
    ) -> None:
        super().__init__(message, payment_id=payment_id)
        self.order_id = order_id
        self.state = state


class CoordinationError(FreedomPayError):
    """What a fleet shares about each payment (a ``Coordinator``) could not be used.

    With a coordinator (``AsyncSession(..., coordinator=...)``) the per-payment spacing
    and the lease on a payment's clearings and refunds are kept outside the process;
    when that fails the request is not sent, rather than sent without the guarantee.
    ``outcome_unknown`` is True only when an earlier send of the same call may have
    been acted on (a clearing or refund whose lease failed after it was sent).
    """


class CoordinationUnavailableError(CoordinationError):
    """The coordinator did not answer (Redis unreachable, timed out or refusing).

    Never a silent fall-back to in-process coordination: the step that needed it (an
    attempt's spacing slot, a payment's lease) did not happen, so nothing was sent by
    it. Not retried by the default retry policy.
    """


class LeaseLostError(CoordinationError):
    """A payment's lease on its money movements expired or was taken by another worker.

    Raised before a clearing or refund is sent, or before its outcome is confirmed, by
    a worker that no longer holds the payment's lease (its renewals failed for longer
    than the lease lives, or its event loop stalled): another worker may now be
    settling the payment, so this one neither sends nor confirms anything. The outcome
    is unknown when this call sent something before (``outcome_unknown``).
    """
