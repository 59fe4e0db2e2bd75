"""What a status reply says of a payment's own status, and of its cancels and refunds:
the open :class:`PaymentStatus` vocabulary and the entries of ``pg_revoked_payments``
and ``pg_refund_payments``, read whichever documented nesting they come in."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from decimal import Decimal

import attrs

from .._wire.fields import FieldValue
from .values import open_enum_parse, reply_decimal, reply_int, scalars

__all__ = ["PaymentStatus", "RefundPayment", "RevokedPayment", "magnitude", "refunds", "revoked"]

_OP = "status_v2"


class PaymentStatus(enum.Enum):
    """``pg_payment_status``, an open enum: unknown values parse as UNKNOWN (raw kept).

    The docs show only ``success``. ``new`` is seen live on status_v2 (a payment created
    but not paid yet, then ``success`` or ``error``); the official Android SDK also knows
    ``waiting`` and ``processing``. The legacy ``pg_transaction_status`` of
    ``get_status2.php`` (``partial`` = created, not paid; ``pending``; ``ok``;
    ``failed``; ``incomplete`` = lifetime expired; older ``revoked``, ``refunded``) is
    read into the same enum when a reply has no ``pg_payment_status``. A reply with
    neither reads as UNKNOWN with an empty raw text.
    """

    SUCCESS = "success"
    NEW = "new"
    WAITING = "waiting"
    PROCESSING = "processing"
    PENDING = "pending"
    PROCESS = "process"
    OK = "ok"
    ERROR = "error"
    FAILED = "failed"
    INCOMPLETE = "incomplete"
    REVOKED = "revoked"
    REFUNDED = "refunded"
    PARTIAL = "partial"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: str | None) -> PaymentStatus:
        """The member for ``value``, UNKNOWN when unrecognised."""
        return open_enum_parse(cls, value, cls.UNKNOWN)


@attrs.frozen
class RevokedPayment:
    """One entry of ``pg_revoked_payments``: the cancel's payment id and status."""

    payment_id: int | None
    payment_status: PaymentStatus
    payment_status_raw: str


@attrs.frozen
class RefundPayment:
    """One entry of ``pg_refund_payments``: a refund of this payment.

    ``amount`` is the refund's size, always positive: the gateway writes refunds as
    negative amounts (``<pg_amount>-10</pg_amount>``), and either sign reads the same.
    """

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


def magnitude(value: Decimal | None) -> Decimal | None:
    """A refunded amount as a size: the gateway writes refunds negative."""
    return None if value is None else abs(value)


def revoked(fields: Iterable[tuple[str, FieldValue]]) -> tuple[RevokedPayment, ...]:
    return tuple(
        RevokedPayment(
            reply_int(e, "pg_payment_id", _OP),
            PaymentStatus.parse(e.get("pg_payment_status")),
            e.get("pg_payment_status", ""),
        )
        for e in _entries(fields, "pg_revoked_payments")
    )


def refunds(fields: Iterable[tuple[str, FieldValue]]) -> tuple[RefundPayment, ...]:
    return tuple(
        RefundPayment(
            reply_int(e, "pg_payment_id", _OP),
            PaymentStatus.parse(e.get("pg_payment_status")),
            e.get("pg_payment_status", ""),
            magnitude(reply_decimal(e, "pg_amount", _OP)),
            e.get("pg_payment_date"),
            e.get("pg_reference"),
            e.get("pg_failure_code"),
            e.get("pg_failure_description"),
        )
        for e in _entries(fields, "pg_refund_payments")
    )
