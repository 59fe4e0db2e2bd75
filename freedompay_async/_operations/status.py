"""``/g2g/status_v2``: the request value and the frozen status of one payment."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from decimal import Decimal

import attrs

from .._exceptions import MalformedReplyError
from .._wire.fields import FieldValue
from .._wire.messages import GatewayReply
from .values import (
    coerce_payment_id,
    open_enum_parse,
    order_id_value,
    reply_bool,
    reply_decimal,
    reply_int,
    scalars,
)

__all__ = [
    "PaymentState",
    "PaymentStatus",
    "RefundPayment",
    "RevokedPayment",
    "StatusRequest",
    "StatusResult",
]

_OP = "status_v2"


@attrs.frozen
class StatusRequest:
    """A ``/g2g/status_v2`` query by payment id, optionally also by merchant order id.

    The docs list ``pg_order_id`` as required; when it is not given it is sent empty
    (and signed, as every posted field is).
    """

    payment_id: int = attrs.field(converter=coerce_payment_id)
    order_id: str | None = attrs.field(default=None, converter=order_id_value)

    @classmethod
    def of(cls, item: StatusRequest | int | str) -> StatusRequest:
        """Accept a StatusRequest or a bare payment id."""
        return item if isinstance(item, StatusRequest) else cls(item)

    def to_fields(self, merchant_id: int, salt: str) -> list[tuple[str, FieldValue]]:
        """The unsigned fields, in the order they are signed and posted."""
        return [
            ("pg_merchant_id", str(merchant_id)),
            ("pg_payment_id", str(self.payment_id)),
            ("pg_order_id", self.order_id or ""),
            ("pg_salt", salt),
        ]


class PaymentStatus(enum.Enum):
    """``pg_payment_status``, an open enum: unknown values parse as UNKNOWN (raw kept).

    The docs do not list the values. ``success`` is documented (Merchant API); the
    others are the words the gateway family uses elsewhere, inferred.
    """

    SUCCESS = "success"
    PENDING = "pending"
    PROCESS = "process"
    OK = "ok"
    ERROR = "error"
    FAILED = "failed"
    REVOKED = "revoked"
    REFUNDED = "refunded"
    PARTIAL = "partial"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: str | None) -> PaymentStatus:
        """The member for ``value``, UNKNOWN when unrecognised."""
        return open_enum_parse(cls, value, cls.UNKNOWN)


class PaymentState(enum.Enum):
    """The derived answer of :attr:`StatusResult.state` (see its docstring)."""

    REVOKED = "revoked"
    REFUNDED = "refunded"
    CAPTURED = "captured"
    HELD = "held"
    PENDING = "pending"
    FAILED = "failed"
    UNKNOWN = "unknown"


@attrs.frozen
class RevokedPayment:
    """One entry of ``pg_revoked_payments``: the cancel's payment id and status."""

    payment_id: int | None
    payment_status: PaymentStatus
    payment_status_raw: str


@attrs.frozen
class RefundPayment:
    """One entry of ``pg_refund_payments``: a refund of this payment."""

    payment_id: int | None
    payment_status: PaymentStatus
    payment_status_raw: str
    amount: Decimal | None
    payment_date: str | None
    reference: str | None = None
    failure_code: str | None = None
    failure_description: str | None = None


def _entries(fields: Iterable[tuple[str, FieldValue]], name: str) -> list[dict[str, str]]:
    """The entries of a list field, whichever documented nesting it comes in.

    ``<pg_refund_payments><pg_refund_payment>...</pg_refund_payment>...`` (the Merchant
    API shape), the entries' fields directly under ``<pg_refund_payments>`` (one entry),
    and the element repeated at top level are all read.
    """
    out: list[dict[str, str]] = []
    for key, value in fields:
        if key != name or isinstance(value, str):
            continue
        groups = [child for _, child in value if not isinstance(child, str)]
        if groups:
            out.extend(scalars(group) for group in groups)
        elif value:
            out.append(scalars(value))
    return out


_SUCCESSFUL = frozenset({PaymentStatus.SUCCESS, PaymentStatus.OK})


@attrs.frozen
class StatusResult:
    """What ``/g2g/status_v2`` says about one payment (fields named without ``pg_``).

    Card data (``pg_card_pan``, ``pg_card_token``, ``pg_card_exp`` and the like) and the
    payer's e-mail and phone are never kept: they cannot leak into a repr or a log.
    ``extra`` holds other unknown scalar fields, minus those.
    """

    payment_id: int
    order_id: str | None
    status: str
    payment_status: PaymentStatus
    payment_status_raw: str
    amount: Decimal | None
    clearing_amount: Decimal | None
    refund_amount: Decimal | None
    currency: str | None
    captured: bool | None
    payment_date: str | None
    revoked_payments: tuple[RevokedPayment, ...] = ()
    refund_payments: tuple[RefundPayment, ...] = ()
    reference: str | None = None
    failure_code: str | None = None
    failure_description: str | None = None
    datetime: str | None = None
    attempts: int = 1

    @property
    def state(self) -> PaymentState:
        """One answer for callers, decided in this order:

        - REVOKED: ``payment_status`` is ``revoked``, or an entry of
          ``revoked_payments`` is successful (the hold was released);
        - REFUNDED: ``refund_amount`` > 0, or ``payment_status`` is ``refunded``;
        - CAPTURED: ``captured`` is 1, or ``clearing_amount`` > 0;
        - HELD: ``payment_status`` is ``success``/``ok`` and none of the above (a
          two-step payment still on hold: it can be cancelled or cleared);
        - PENDING: ``pending``/``process``; FAILED: ``error``/``failed``;
        - UNKNOWN: anything else.
        """
        status = self.payment_status
        if status is PaymentStatus.REVOKED or any(
            r.payment_status in _SUCCESSFUL for r in self.revoked_payments
        ):
            return PaymentState.REVOKED
        if status is PaymentStatus.REFUNDED or (self.refund_amount or 0) > 0:
            return PaymentState.REFUNDED
        if self.captured or (self.clearing_amount or 0) > 0:
            return PaymentState.CAPTURED
        if status in _SUCCESSFUL:
            return PaymentState.HELD
        if status in (PaymentStatus.PENDING, PaymentStatus.PROCESS):
            return PaymentState.PENDING
        if status in (PaymentStatus.ERROR, PaymentStatus.FAILED):
            return PaymentState.FAILED
        return PaymentState.UNKNOWN

    @property
    def revoked(self) -> bool:
        """Whether the hold was cancelled (``state`` is REVOKED)."""
        return self.state is PaymentState.REVOKED

    @property
    def held(self) -> bool:
        """Whether the payment is still held (``state`` is HELD)."""
        return self.state is PaymentState.HELD

    @property
    def captured_now(self) -> bool:
        """Whether the payment was cleared (``state`` is CAPTURED)."""
        return self.state is PaymentState.CAPTURED

    @classmethod
    def from_reply(cls, reply: GatewayReply, payment_id: int) -> StatusResult:
        """Build from a verified ``pg_status=ok`` status_v2 reply about ``payment_id``."""
        known = scalars(reply.fields)
        replied = reply_int(known, "pg_payment_id", _OP, required=True)
        if replied != payment_id:
            raise MalformedReplyError(
                f"status reply is for payment {replied}, not the one requested",
                payment_id=payment_id,
                http_status=reply.http_status,
            )
        raw_status = known.get("pg_payment_status")
        if raw_status is None:
            raise MalformedReplyError(
                "status reply is missing pg_payment_status", payment_id=payment_id, http_status=200
            )
        revoked = tuple(
            RevokedPayment(
                reply_int(e, "pg_payment_id", _OP),
                PaymentStatus.parse(e.get("pg_payment_status")),
                e.get("pg_payment_status", ""),
            )
            for e in _entries(reply.fields, "pg_revoked_payments")
        )
        refunds = tuple(
            RefundPayment(
                reply_int(e, "pg_payment_id", _OP),
                PaymentStatus.parse(e.get("pg_payment_status")),
                e.get("pg_payment_status", ""),
                reply_decimal(e, "pg_amount", _OP),
                e.get("pg_payment_date"),
                e.get("pg_reference"),
                e.get("pg_failure_code"),
                e.get("pg_failure_description"),
            )
            for e in _entries(reply.fields, "pg_refund_payments")
        )
        return cls(
            payment_id=payment_id,
            order_id=known.get("pg_order_id") or None,
            status=known.get("pg_status", ""),
            payment_status=PaymentStatus.parse(raw_status),
            payment_status_raw=raw_status,
            amount=reply_decimal(known, "pg_amount", _OP),
            clearing_amount=reply_decimal(known, "pg_clearing_amount", _OP),
            refund_amount=reply_decimal(known, "pg_refund_amount", _OP),
            currency=known.get("pg_currency") or None,
            captured=reply_bool(known, "pg_captured"),
            payment_date=known.get("pg_payment_date") or None,
            revoked_payments=revoked,
            refund_payments=refunds,
            reference=known.get("pg_reference") or None,
            failure_code=known.get("pg_failure_code") or None,
            failure_description=known.get("pg_failure_description") or None,
            datetime=known.get("pg_datetime") or None,
            attempts=reply.attempts,
        )
