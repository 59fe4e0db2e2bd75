"""``/g2g/clearing`` and ``/g2g/refund``: request values and results (they move money)."""

from __future__ import annotations

import enum
from decimal import Decimal

import attrs

from .._exceptions import (
    MalformedReplyError,
)
from .._wire.fields import (
    FieldValue,
    php_str,
)
from .._wire.messages import GatewayReply
from .receipts import ReceiptPosition, receipt_positions, receipt_positions_field
from .values import (
    amount_value,
    coerce_payment_id,
    currency_value,
    open_enum_parse,
    optional_amount,
    reply_decimal,
    reply_int,
    scalars,
)

__all__ = [
    "ClearRequest",
    "ClearResult",
    "ClearingStatus",
    "RefundRequest",
    "RefundResult",
    "RefundStatus",
]


def _check_id(payment_id: int, replied: int | None, operation: str, http_status: int) -> None:
    if replied is not None and replied != payment_id:
        raise MalformedReplyError(
            f"{operation} reply is for payment {replied}, not the one requested",
            payment_id=payment_id,
            http_status=http_status,
        )


@attrs.frozen
class ClearRequest:
    """A ``/g2g/clearing`` (capture) of a held two-step payment.

    ``amount`` None clears the whole held amount; a smaller amount clears part of it
    (``pg_clearing_amount``, which the docs say must be less than the payment amount).
    """

    payment_id: int = attrs.field(converter=coerce_payment_id)
    amount: Decimal | None = attrs.field(default=None, converter=optional_amount)

    def to_fields(self, merchant_id: int, salt: str) -> list[tuple[str, FieldValue]]:
        """The unsigned fields, in the order they are signed and posted."""
        fields: list[tuple[str, FieldValue]] = [
            ("pg_merchant_id", str(merchant_id)),
            ("pg_payment_id", str(self.payment_id)),
        ]
        if self.amount is not None:
            fields.append(("pg_clearing_amount", php_str(self.amount)))
        fields.append(("pg_salt", salt))
        return fields


class ClearingStatus(enum.Enum):
    """The clearing status flag: ``1`` completed, ``0`` not completed; UNKNOWN otherwise."""

    COMPLETED = "1"
    NOT_COMPLETED = "0"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: str | None) -> ClearingStatus:
        """The member for ``value``, UNKNOWN when unrecognised (the raw text is kept)."""
        return open_enum_parse(cls, value, cls.UNKNOWN)


@attrs.frozen
class ClearResult:
    """A clearing the gateway accepted: amounts and the clearing status.

    ``confirmed_by_status`` is True when the clearing's reply was lost and a status
    query showed the payment cleared (then ``clearing_status`` is COMPLETED and the
    amounts are the status's).
    """

    payment_id: int
    amount: Decimal | None
    clearing_amount: Decimal | None
    status: str
    clearing_status: ClearingStatus
    clearing_status_raw: str
    attempts: int = 1
    confirmed_by_status: bool = False

    @property
    def completed(self) -> bool:
        """Whether the gateway says the clearing is completed."""
        return self.clearing_status is ClearingStatus.COMPLETED

    @classmethod
    def from_reply(cls, reply: GatewayReply, payment_id: int) -> ClearResult:
        """Build from a verified ``pg_status=ok`` clearing reply about ``payment_id``."""
        known = scalars(reply.fields)
        _check_id(payment_id, reply_int(known, "pg_payment_id", "clearing"), "clearing", 200)
        # The documented schema names the flag pg_clearing_status; the documented example
        # sends pg_status_clearing. Both are read, the schema's name first.
        raw = known.get("pg_clearing_status", known.get("pg_status_clearing"))
        if raw is None:
            raise MalformedReplyError(
                "clearing reply has no clearing status", payment_id=payment_id, http_status=200
            )
        return cls(
            payment_id=payment_id,
            amount=reply_decimal(known, "pg_amount", "clearing"),
            clearing_amount=reply_decimal(known, "pg_clearing_amount", "clearing"),
            status=known.get("pg_status", ""),
            clearing_status=ClearingStatus.parse(raw),
            clearing_status_raw=raw,
            attempts=reply.attempts,
        )


@attrs.frozen
class RefundRequest:
    """A ``/g2g/refund`` of ``amount`` (>= 0.01) of a one-step or cleared payment."""

    payment_id: int = attrs.field(converter=coerce_payment_id)
    amount: Decimal = attrs.field(converter=amount_value)
    currency: str | None = attrs.field(default=None, converter=currency_value)
    receipt_positions: tuple[ReceiptPosition, ...] = attrs.field(
        default=(), converter=receipt_positions
    )

    def to_fields(self, merchant_id: int, salt: str) -> list[tuple[str, FieldValue]]:
        """The unsigned field tree, in the order it is signed and posted."""
        fields: list[tuple[str, FieldValue]] = [
            ("pg_merchant_id", str(merchant_id)),
            ("pg_payment_id", str(self.payment_id)),
            ("pg_amount", php_str(self.amount)),
        ]
        if self.currency is not None:
            fields.append(("pg_currency", self.currency))
        if self.receipt_positions:
            fields.append(receipt_positions_field(self.receipt_positions))
        fields.append(("pg_salt", salt))
        return fields


class RefundStatus(enum.Enum):
    """``pg_refund_status``: ``success`` (documented), pending, error; UNKNOWN otherwise."""

    SUCCESS = "success"
    PENDING = "pending"
    ERROR = "error"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: str | None) -> RefundStatus:
        """The member for ``value``, UNKNOWN when unrecognised (the raw text is kept)."""
        return open_enum_parse(cls, value, cls.UNKNOWN)


@attrs.frozen
class RefundResult:
    """A refund the gateway accepted: its refund payment id and status.

    ``confirmed_by_status`` is True when the refund's reply was lost and a status
    query showed the refund made (``refund_id`` is then the new refund entry's id).
    """

    payment_id: int
    refund_id: int | None
    status: str
    refund_status: RefundStatus
    refund_status_raw: str
    attempts: int = 1
    confirmed_by_status: bool = False

    @classmethod
    def from_reply(cls, reply: GatewayReply, payment_id: int) -> RefundResult:
        """Build from a verified ``pg_status=ok`` refund reply about ``payment_id``."""
        known = scalars(reply.fields)
        _check_id(payment_id, reply_int(known, "pg_payment_id", "refund"), "refund", 200)
        raw = known.get("pg_refund_status")
        if raw is None:
            raise MalformedReplyError(
                "refund reply is missing pg_refund_status", payment_id=payment_id, http_status=200
            )
        return cls(
            payment_id=payment_id,
            refund_id=reply_int(known, "pg_payment_refund_id", "refund"),
            status=known.get("pg_status", ""),
            refund_status=RefundStatus.parse(raw),
            refund_status_raw=raw,
            attempts=reply.attempts,
        )
