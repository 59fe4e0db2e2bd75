"""The Merchant API's twins of the four operations: the same request and result values,
their own paths (``*.php``, which the script name keeps), field names and replies.

A merchant without a PCI DSS certificate speaks this family (the Gateway API's
``/g2g/*`` needs one). What differs from ``/g2g/*``:

- ``get_status3.php`` takes ``pg_order_id`` as optional: it is sent only when given;
- ``revoke.php`` refunds ``pg_refund_amount`` (omitted or 0 would refund everything:
  the library always sends the amount, see ``AsyncSession.refund(..., full=True)``)
  and documents no currency;
- the success replies of ``do_capture.php``, ``revoke.php`` and ``cancel.php`` name no
  payment (the SDKs' reply values: ``pg_amount``/``pg_clearing_amount``,
  ``pg_revoke_payment_id``, ``pg_cancel_payment_id``). Such an "ok" is a claim, not a
  result: it is raised as an :class:`UnconfirmedReplyError` carrying the claimed result
  (``claimed_result``), and the session's settle loop confirms it by status, as it does
  every claim that names no payment. A reply that does name the payment is a result.
"""

from __future__ import annotations

from typing import TypeVar

from .._exceptions import MalformedReplyError, UnconfirmedReplyError, ValidationError
from .._wire.fields import FieldValue, php_str
from .._wire.messages import GatewayReply
from .cancel import CancelRequest, CancelResult, RevokeStatus
from .definitions import Operation, RetryRule
from .money import (
    ClearingStatus,
    ClearRequest,
    ClearResult,
    RefundRequest,
    RefundResult,
    RefundStatus,
)
from .receipts import receipt_positions_field
from .status import StatusRequest, StatusResult
from .values import reply_decimal, reply_int, scalars

__all__ = [
    "MERCHANT_CANCEL",
    "MERCHANT_CLEARING",
    "MERCHANT_REFUND",
    "MERCHANT_STATUS",
    "cancel_from_reply",
    "clearing_from_reply",
    "refund_fields",
    "refund_from_reply",
    "status_fields",
]

T = TypeVar("T")


def status_fields(
    request: StatusRequest, merchant_id: int, salt: str
) -> list[tuple[str, FieldValue]]:
    """``get_status3.php``: ``pg_order_id`` only when given (optional there)."""
    fields: list[tuple[str, FieldValue]] = [
        ("pg_merchant_id", str(merchant_id)),
        ("pg_payment_id", str(request.payment_id)),
    ]
    if request.order_id is not None:
        fields.append(("pg_order_id", request.order_id))
    fields.append(("pg_salt", salt))
    return fields


def refund_fields(
    request: RefundRequest, merchant_id: int, salt: str
) -> list[tuple[str, FieldValue]]:
    """``revoke.php``: the amount as ``pg_refund_amount``, always sent."""
    if request.currency is not None:
        raise ValidationError("revoke.php takes no currency: the payment's own is refunded")
    fields: list[tuple[str, FieldValue]] = [
        ("pg_merchant_id", str(merchant_id)),
        ("pg_payment_id", str(request.payment_id)),
        ("pg_refund_amount", php_str(request.amount)),
    ]
    if request.receipt_positions:
        # Documented for cancel.php, sent with revoke.php by a regional client; the
        # refund's fiscal receipt, signed like every field.
        fields.append(receipt_positions_field(request.receipt_positions))
    fields.append(("pg_salt", salt))
    return fields


def _bound_or_claim(known: dict[str, str], payment_id: int, operation: str, result: T) -> T:
    """``result`` when the reply names ``payment_id``; a claim when it names none."""
    named = reply_int(known, "pg_payment_id", operation)
    if named is None:
        raise UnconfirmedReplyError(payment_id=payment_id, claimed_result=result)
    if named != payment_id:
        raise MalformedReplyError(
            f"{operation} reply is for payment {named}, not the one requested",
            payment_id=payment_id,
            http_status=200,
        )
    return result


def cancel_from_reply(reply: GatewayReply, payment_id: int) -> CancelResult:
    """A verified ``cancel.php`` "ok": a result if it names the payment, else a claim."""
    known = scalars(reply.fields)
    status = known.get("pg_status", "")
    result = CancelResult(
        payment_id=payment_id,
        revoke_id=reply_int(known, "pg_cancel_payment_id", "cancel"),
        status=status,
        revoke_status=RevokeStatus.SUCCESS,
        revoke_status_raw=status,
        signed=reply.signed,
        attempts=reply.attempts,
        earlier_maybe_processed=reply.earlier_maybe_processed,
    )
    return _bound_or_claim(known, payment_id, "cancel", result)


def clearing_from_reply(reply: GatewayReply, payment_id: int) -> ClearResult:
    """A verified ``do_capture.php`` "ok": a result if it names the payment, else a claim."""
    known = scalars(reply.fields)
    status = known.get("pg_status", "")
    result = ClearResult(
        payment_id=payment_id,
        amount=reply_decimal(known, "pg_amount", "clearing"),
        clearing_amount=reply_decimal(known, "pg_clearing_amount", "clearing"),
        status=status,
        clearing_status=ClearingStatus.COMPLETED,
        clearing_status_raw=status,
        attempts=reply.attempts,
    )
    return _bound_or_claim(known, payment_id, "clearing", result)


def refund_from_reply(reply: GatewayReply, payment_id: int) -> RefundResult:
    """A verified ``revoke.php`` "ok": a result if it names the payment, else a claim."""
    known = scalars(reply.fields)
    status = known.get("pg_status", "")
    result = RefundResult(
        payment_id=payment_id,
        refund_id=reply_int(known, "pg_revoke_payment_id", "refund"),
        status=status,
        refund_status=RefundStatus.SUCCESS,
        refund_status_raw=status,
        attempts=reply.attempts,
    )
    return _bound_or_claim(known, payment_id, "refund", result)


MERCHANT_CANCEL: Operation[CancelRequest, CancelResult] = Operation(
    "cancel", "/cancel.php", CancelRequest, cancel_from_reply, RetryRule.CONFIRMING
)
MERCHANT_STATUS: Operation[StatusRequest, StatusResult] = Operation(
    "status",
    "/get_status3.php",
    StatusRequest,
    StatusResult.from_reply,
    RetryRule.READ_ONLY,
    render=status_fields,
)
MERCHANT_CLEARING: Operation[ClearRequest, ClearResult] = Operation(
    "clearing", "/do_capture.php", ClearRequest, clearing_from_reply, RetryRule.MONEY
)
MERCHANT_REFUND: Operation[RefundRequest, RefundResult] = Operation(
    "refund",
    "/revoke.php",
    RefundRequest,
    refund_from_reply,
    RetryRule.MONEY,
    render=refund_fields,
)
