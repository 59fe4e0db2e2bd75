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

from ._base import (
    CallbackBodyTooLargeError,
    ConfigurationError,
    CoordinationError,
    CoordinationUnavailableError,
    FreedomPayError,
    InternalError,
    LeaseLostError,
    NotCancelledError,
    NotDoneError,
    PaymentExistsError,
    PaymentNotConfirmedError,
    SessionClosedError,
    UnsettledError,
    ValidationError,
)
from ._exchange import (
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    DeadlineExceededError,
    MalformedReplyError,
    ReplyError,
    ResponseTimeoutError,
    SignatureVerificationError,
    TransportError,
    excerpt,
)
from ._gateway import (
    ALREADY_DONE,
    AlreadyCancelledError,
    AlreadyClearedError,
    AlreadyRefundedError,
    GatewayDeclinedError,
    GatewayError,
    InvalidRequestSignatureError,
    PaymentNotFoundError,
    TransientGatewayError,
    UnconfirmedReplyError,
    UnknownMerchantError,
    gateway_error_class,
)

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
