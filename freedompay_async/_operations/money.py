"""``/g2g/clearing`` and ``/g2g/refund``: request values and results (they move money)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation

import attrs

from .._exceptions import MalformedReplyError, ValidationError
from .._wire.fields import FieldValue, php_str
from .._wire.messages import GatewayReply
from .receipts import ReceiptPosition, receipt_positions, receipt_positions_field
from .status import PaymentState, StatusResult
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
    "RefundBaseline",
    "RefundRequest",
    "RefundResult",
    "RefundStatus",
    "full_refund_request",
]


def _check_id(payment_id: int, known: dict[str, str], operation: str) -> None:
    """The reply must name the payment asked about: a result is bound to its payment."""
    replied = reply_int(known, "pg_payment_id", operation, required=True)
    if replied != payment_id:
        raise MalformedReplyError(
            f"{operation} reply is for payment {replied}, not the one requested",
            payment_id=payment_id,
            http_status=200,
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
        """Build from a verified ``pg_status=ok`` clearing reply about ``payment_id``.

        The reply must name the payment (``pg_payment_id``): one that names none or
        another is a MalformedReplyError, whose outcome the session settles by status.
        """
        known = scalars(reply.fields)
        _check_id(payment_id, known, "clearing")
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
        """Build from a verified ``pg_status=ok`` refund reply about ``payment_id``.

        The reply must name the payment (``pg_payment_id``): one that names none or
        another is a MalformedReplyError, whose outcome the session settles by status.
        """
        known = scalars(reply.fields)
        _check_id(payment_id, known, "refund")
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


def _baseline_amount(value: object) -> Decimal:
    if isinstance(value, bool | float) or not isinstance(value, int | str | Decimal):
        raise ValidationError("a refunded total is an int, a Decimal or decimal text")
    try:
        number = Decimal(value)
    except InvalidOperation:
        shown = str(value)[:40]
        raise ValidationError(f"a refunded total must be a number, got {shown!r}") from None
    if not number.is_finite() or number < 0:
        raise ValidationError("a refunded total must be a finite number >= 0")
    return number


def _baseline_ids(value: object) -> frozenset[int]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError("refund_ids must be a collection of refund payment ids")
    return frozenset(coerce_payment_id(item) for item in value)


@attrs.frozen
class RefundBaseline:
    """What status showed about a payment's refunds before a refund was sent.

    A payment may be refunded in parts, so only a before/after comparison tells whether
    *this* refund happened: the refunded total grown by its amount, with at most one new
    refund entry. The session reads it before each refund; a batch that journals a
    refund's intent journals its baseline too (:meth:`to_json`), so a rerun can settle
    that intent (``refund(..., baseline=..., resume=True)``) without guessing.
    """

    refunded: Decimal = attrs.field(default=Decimal(0), converter=_baseline_amount)
    refund_ids: frozenset[int] = attrs.field(default=frozenset(), converter=_baseline_ids)

    @classmethod
    def of(cls, status: StatusResult) -> RefundBaseline:
        """The baseline a status reply shows."""
        ids = {r.payment_id for r in status.refund_payments if r.payment_id is not None}
        return cls(status.refunded, frozenset(ids))

    def with_refunds(self, refunds: Iterable[tuple[int, Decimal]]) -> RefundBaseline:
        """This baseline with the refunds ``(refund id, amount)`` it does not list yet:
        refunds known to have happened that a lagging status does not show."""
        missing = [(rid, amount) for rid, amount in refunds if rid not in self.refund_ids]
        if not missing:
            return self
        refunded = self.refunded + sum((amount for _, amount in missing), Decimal(0))
        return RefundBaseline(refunded, self.refund_ids | {rid for rid, _ in missing})

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (amount as text, ids sorted)."""
        return {"refunded": str(self.refunded), "refund_ids": sorted(self.refund_ids)}

    @classmethod
    def from_json(cls, data: object) -> RefundBaseline:
        """Read :meth:`to_json`'s dict back; ValidationError for anything else."""
        if not isinstance(data, dict) or set(data) != {"refunded", "refund_ids"}:
            raise ValidationError("a refund baseline is {'refunded': ..., 'refund_ids': [...]}")
        return cls(data["refunded"], data["refund_ids"])


def full_refund_request(
    status: StatusResult,
    currency: str | None = None,
    receipt_positions: Sequence[ReceiptPosition] = (),
) -> RefundRequest:
    """A refund of all that ``status`` shows captured and not refunded yet, with that
    amount spelt out; ValidationError when nothing is left to refund."""
    captured = status.clearing_amount or status.amount or Decimal(0)
    left = captured - status.refunded
    if status.state not in _REFUNDABLE or left < Decimal("0.01"):
        raise ValidationError(
            f"nothing to refund: status shows payment {status.payment_id} "
            f"{status.state.value}, {status.refunded} of {captured} refunded"
        )
    return RefundRequest(status.payment_id, left, currency, receipt_positions)


_REFUNDABLE = frozenset({PaymentState.CAPTURED, PaymentState.PARTIALLY_REFUNDED})
