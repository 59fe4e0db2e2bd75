"""Every error the library raises, under one root.

::

    FreedomPayError
    ├── ConfigurationError            bad credentials, URL or option (a ValueError too)
    ├── ValidationError               bad input, e.g. a non-numeric payment id (a ValueError too)
    │   └── CallbackBodyTooLargeError an incoming callback body over the size limit
    ├── SessionClosedError            the AsyncSession was used after aclose()
    ├── InternalError                 an unexpected failure inside the client (a bug)
    ├── UnsettledError                settling: a resumed clearing/refund status could not settle
    ├── NotDoneError                  settling: status says the operation did not and cannot happen
    │   └── NotCancelledError         a cancel: status says captured, refunded or failed
    ├── PaymentNotConfirmedError      a paid result notification that status did not confirm
    ├── PaymentExistsError            init_payment: a payment for the order exists, its page unknown
    ├── CoordinationError             a fleet's shared per-payment state (a Coordinator) failed
    │   ├── CoordinationUnavailableError  the coordinator (Redis) did not answer: nothing sent
    │   │                             by this step; never a silent fall-back
    │   └── LeaseLostError            a payment's money lease expired or was taken before the
    │                                 holder could send or confirm: outcome unknown
    ├── TransportError                the HTTP exchange itself failed
    │   ├── ConnectError              no connection was made: the request was never sent
    │   ├── ConnectTimeoutError       connecting took too long: never sent
    │   ├── ResponseTimeoutError      sent, no reply in time: the gateway MAY have acted
    │   ├── ConnectionLostError       connection dropped after sending: the gateway MAY have acted
    │   └── DeadlineExceededError     the call's deadline passed while queued: never sent
    ├── ReplyError                    something came back, but it is not a usable gateway answer
    │   ├── MalformedReplyError       non-200, HTML, truncated, not XML, missing fields,
    │   │                             a pg_sig below the top level
    │   ├── SignatureVerificationError  a reply/callback whose pg_sig is missing or wrong
    │   │                             (``claimed_code``: the error code a forged reply claims)
    │   └── UnconfirmedReplyError     a claim ("already cancelled", or a Merchant API "ok") in
    │                                 a reply that names no payment, which status did not confirm
    └── GatewayError                  the gateway answered pg_status=error with pg_error_code
        ├── InvalidRequestSignatureError  1100 (and legacy 100): our request's signature was refused
        ├── UnknownMerchantError          9998 / 9997 / 101: merchant id not recognised
        ├── PaymentNotFoundError          11068 (and legacy 340)
        ├── AlreadyCancelledError         10033 / 11017: the payment was cancelled before
        ├── AlreadyClearedError           10036: the payment was cleared before
        ├── AlreadyRefundedError          11018: the payment was refunded before
        ├── TransientGatewayError         9999/10000/11000/11014 (+ legacy 465/470/475/850/1000)
        └── GatewayDeclinedError          any other code

A reply is believed about a payment only when it is **bound** to it: signed, and naming
the payment (``pg_payment_id``), or confirmed by a status reply about that payment.
Gateway error replies name no payment, so an error about an operation that acts
(cancel, clearing, refund) has ``bound=False`` and ``outcome_unknown=True`` until the
session's settle loop binds it with status (see ``GatewayError.bound``). A claim that
the operation was already done in such a reply is never raised as that claim while
unbound: it is an :class:`UnconfirmedReplyError`.

No message or attribute of any error ever holds the secret key or a signature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

#: The field tree of a reply (``freedompay_async.Fields``), spelt out here so that this
#: module, the bottom of the package, imports nothing of it.
_ReplyFields = Sequence[tuple[str, object]]

__all__ = [
    "ALREADY_DONE",
    "AlreadyCancelledError",
    "AlreadyClearedError",
    "AlreadyRefundedError",
    "CallbackBodyTooLargeError",
    "ConfigurationError",
    "ConnectError",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "CoordinationError",
    "CoordinationUnavailableError",
    "DeadlineExceededError",
    "FreedomPayError",
    "GatewayDeclinedError",
    "GatewayError",
    "InternalError",
    "InvalidRequestSignatureError",
    "LeaseLostError",
    "MalformedReplyError",
    "NotCancelledError",
    "NotDoneError",
    "PaymentExistsError",
    "PaymentNotConfirmedError",
    "PaymentNotFoundError",
    "ReplyError",
    "ResponseTimeoutError",
    "SessionClosedError",
    "SignatureVerificationError",
    "TransientGatewayError",
    "TransportError",
    "UnconfirmedReplyError",
    "UnknownMerchantError",
    "UnsettledError",
    "ValidationError",
    "excerpt",
    "gateway_error_class",
]

_EXCERPT = 120


def excerpt(body: bytes) -> str:
    """A short, printable excerpt of a body for error messages."""
    text = body[: _EXCERPT * 4].decode("utf-8", "replace")
    text = " ".join(text.split())
    return text[:_EXCERPT] + ("..." if len(text) > _EXCERPT else "")


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


class TransportError(FreedomPayError):
    """The HTTP exchange with the gateway failed before a reply could be read."""

    _retryable = True


class ConnectError(TransportError):
    """No connection could be made; the request was never sent."""


class ConnectTimeoutError(TransportError):
    """Connecting timed out; the request was never sent."""


class ResponseTimeoutError(TransportError):
    """No reply within the attempt's timeout. The request may have been sent and acted on."""

    _acted = True


class ConnectionLostError(TransportError):
    """The connection dropped during the exchange. The gateway may have acted on the request."""

    _acted = True


class DeadlineExceededError(TransportError):
    """The call's deadline passed before an attempt could be sent. Never sent.

    Raised by the in-flight cap and by pacing when the wait for a connection slot or a
    pacing slot would outlast the deadline (``RetryPolicy.deadline``), so queueing
    never makes a call overrun it. Not retried: the deadline is spent. ``attempts``
    counts the attempts actually sent (possibly 0); ``earlier_maybe_processed`` still
    says whether one of those may have been acted on.
    """

    _retryable = False


class ReplyError(FreedomPayError):
    """Something came back, but not a gateway answer that can be trusted and used."""

    _acted = True

    def __init__(
        self,
        message: str,
        *,
        payment_id: int | None = None,
        http_status: int | None = None,
        body_excerpt: str = "",
    ) -> None:
        super().__init__(message, payment_id=payment_id)
        self.http_status = http_status
        self.body_excerpt = body_excerpt

    def __str__(self) -> str:
        text = super().__str__()
        if self.http_status is not None:
            text += f" [HTTP {self.http_status}]"
        if self.body_excerpt:
            text += f": {self.body_excerpt!r}"
        return text


class MalformedReplyError(ReplyError):
    """Non-200 status, an HTML page, a truncated body, not XML, or required fields missing.

    ``retry_after`` is the delay in seconds the server asked for (``Retry-After``), if any.
    Retried by default when the status is 429, 5xx or 200 (an HTML or garbled page is a
    passing condition); other statuses (a 404 from a wrong URL) are final.
    """

    def __init__(
        self,
        message: str,
        *,
        payment_id: int | None = None,
        http_status: int | None = None,
        body_excerpt: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, payment_id=payment_id, http_status=http_status, body_excerpt=body_excerpt
        )
        self.retry_after = retry_after
        self.retryable = http_status is None or http_status in (200, 429) or http_status >= 500
        # A 429 is a refusal before processing; anything else may have followed processing.
        if http_status == 429:
            self.maybe_processed = False

    @property
    def rate_limited(self) -> bool:
        """Whether the server answered HTTP 429 Too Many Requests."""
        return self.http_status == 429


class SignatureVerificationError(ReplyError):
    """A reply or callback whose ``pg_sig`` is missing or does not match. Never trusted.

    ``claimed_code`` is the ``pg_error_code`` an unverifiable *error* reply claims (an
    int; None otherwise). It is what the reply says, not what the gateway said: a forged
    "already cancelled" is raised here, never as :class:`AlreadyCancelledError`. When
    every reply claims 1100, the secret key is probably wrong (the gateway signs its
    1100 with the right one, which this client then cannot verify).
    """

    def __init__(
        self,
        message: str,
        *,
        payment_id: int | None = None,
        http_status: int | None = None,
        body_excerpt: str = "",
        claimed_code: int | None = None,
    ) -> None:
        super().__init__(
            message, payment_id=payment_id, http_status=http_status, body_excerpt=body_excerpt
        )
        self.claimed_code = claimed_code


class UnconfirmedReplyError(ReplyError):
    """A signed reply claimed the operation was done, but named no payment.

    Gateway error replies carry no ``pg_payment_id``, so a genuine "already cancelled"
    (10033), "already cleared" (10036) or "already refunded" (11018), captured once,
    could be replayed for any other payment. Such a claim is believed only once a status
    reply about the payment confirms it; until then the outcome is unknown
    (``outcome_unknown`` is True). ``claim`` is the gateway error as claimed (never
    raised as such while unconfirmed), ``claimed_code`` its code.

    The Merchant API's success replies (``do_capture.php``, ``revoke.php``,
    ``cancel.php``) name no payment either: their "ok" is carried as
    ``claimed_result`` (the result value the reply would stand for; ``claim`` and
    ``claimed_code`` are then None). The session's settle loop (``reconcile=True``,
    the default) asks status; with ``reconcile=False`` this error reaches the caller.
    """

    def __init__(
        self,
        claim: GatewayError | None = None,
        *,
        payment_id: int | None = None,
        claimed_result: object = None,
    ) -> None:
        if claim is not None:
            what = f"{claim.code} ({claim.description[:80]})"
        else:
            what = f"success ({type(claimed_result).__name__})"
        super().__init__(
            f"reply claims {what} but names no payment; not confirmed by status",
            payment_id=payment_id,
            http_status=200,
        )
        self.claim = claim
        self.claimed_code = None if claim is None else claim.code
        self.claimed_result = claimed_result
        self.retryable = False if claim is None else claim.retryable


class GatewayError(FreedomPayError):
    """The gateway answered ``pg_status=error``.

    ``code`` and ``description`` are the gateway's ``pg_error_code`` and
    ``pg_error_description``; ``signed`` says whether the reply carried a valid
    signature (unknown-merchant and some not-found replies come unsigned).
    ``reply_fields`` is the whole reply tree as received (empty if there was none).

    ``bound`` says whether the error is known to be about this payment: its signed reply
    named the payment, or a status reply about the payment confirmed what it says. An
    error about an operation that acts (cancel, clearing, refund) that is not bound
    leaves the outcome open (``outcome_unknown``): captured once, a signed error that
    names no payment could be replayed for any other payment. Batches count only bound
    refusals as final.
    """

    codes: ClassVar[frozenset[int]] = frozenset()

    def __init__(
        self,
        code: int,
        description: str,
        *,
        payment_id: int | None = None,
        signed: bool = False,
        reply_fields: _ReplyFields = (),
        bound: bool = False,
    ) -> None:
        super().__init__(f"gateway error {code}: {description}", payment_id=payment_id)
        self.code = code
        self.description = description
        self.signed = signed
        self.reply_fields = reply_fields
        self.bound = bound

    @property
    def fields(self) -> Mapping[str, object]:
        """The reply's top-level fields (pg_sig left out; repeated names keep the first)."""
        out: dict[str, object] = {}
        for key, value in self.reply_fields:
            if key != "pg_sig" and key not in out:
                out[key] = value
        return out


class InvalidRequestSignatureError(GatewayError):
    """The gateway refused our request's signature (1100; legacy 100). Check the secret key."""

    codes = frozenset({1100, 100})


class UnknownMerchantError(GatewayError):
    """The merchant id is not recognised (9998, 9997, 101).

    The docs disagree: the Gateway intro pages give 9998 for an unidentified merchant
    (and send it unsigned), the Merchant API intro gives 101, and a third-party copy of
    the 9xxx table reads 9997 as "invalid store number" and 9998 as "invalid request
    signature". All three are treated as "merchant not identified"; 1100 stays the
    signature code.
    """

    codes = frozenset({9998, 9997, 101})


class PaymentNotFoundError(GatewayError):
    """The gateway knows no such payment (11068; legacy 340)."""

    codes = frozenset({11068, 340})


class AlreadyCancelledError(GatewayError):
    """The payment was already cancelled (10033, 11017). The hold is released."""

    codes = frozenset({10033, 11017})


class AlreadyClearedError(GatewayError):
    """The payment was already cleared (10036: "clearing already performed earlier")."""

    codes = frozenset({10036})


class AlreadyRefundedError(GatewayError):
    """The payment was already refunded (11018: "payment already refunded")."""

    codes = frozenset({11018})


#: The "already done" claims: believed only when bound (see UnconfirmedReplyError).
ALREADY_DONE: tuple[type[GatewayError], ...] = (
    AlreadyCancelledError,
    AlreadyClearedError,
    AlreadyRefundedError,
)


class TransientGatewayError(GatewayError):
    """A passing gateway failure worth retrying (9999, 10000, 11000, 11014; legacy 465-1000)."""

    codes = frozenset({9999, 10000, 11000, 11014, 465, 470, 475, 850, 1000})
    _retryable = True


class GatewayDeclinedError(GatewayError):
    """Any other gateway error code: a final refusal (bad state, parameters, limits...)."""


_BY_CODE: dict[int, type[GatewayError]] = {
    code: cls
    for cls in (
        InvalidRequestSignatureError,
        UnknownMerchantError,
        PaymentNotFoundError,
        AlreadyCancelledError,
        AlreadyClearedError,
        AlreadyRefundedError,
        TransientGatewayError,
    )
    for code in cls.codes
}


def gateway_error_class(code: int) -> type[GatewayError]:
    """The GatewayError subclass raised for ``code``."""
    return _BY_CODE.get(code, GatewayDeclinedError)
