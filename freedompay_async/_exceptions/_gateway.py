"""The gateway's own answers: ``pg_status=error`` by code, and claims that name no
payment (see the tree in :mod:`freedompay_async._exceptions`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from ._base import FreedomPayError
from ._exchange import ReplyError

__all__ = [
    "ALREADY_DONE",
    "AlreadyCancelledError",
    "AlreadyClearedError",
    "AlreadyRefundedError",
    "GatewayDeclinedError",
    "GatewayError",
    "InvalidRequestSignatureError",
    "PaymentNotFoundError",
    "TransientGatewayError",
    "UnconfirmedReplyError",
    "UnknownMerchantError",
    "gateway_error_class",
]

#: The field tree of a reply (``freedompay_async.Fields``), spelt out here so that this
#: module, the bottom of the package, imports nothing of it.
_ReplyFields = Sequence[tuple[str, object]]


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
