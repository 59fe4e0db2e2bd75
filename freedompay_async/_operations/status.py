"""``/g2g/status_v2``: the request value and the frozen status of one payment."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType

import attrs

from .._exceptions import MalformedReplyError, PaymentNotFoundError
from .._wire.fields import FieldValue
from .._wire.messages import GatewayReply
from .status_entries import (
    PaymentStatus,
    RefundPayment,
    RevokedPayment,
    magnitude,
    refunds,
    revoked,
)
from .values import (
    coerce_payment_id,
    order_id_value,
    reply_bool,
    reply_decimal,
    reply_int,
    scalars,
)

__all__ = [
    "PAID_STATES",
    "OrderStatusRequest",
    "PaymentState",
    "StatusRequest",
    "StatusResult",
]

_OP = "status_v2"


@attrs.frozen
class StatusRequest:
    """A status query by payment id, optionally also by merchant order id.

    ``/g2g/status_v2``: the docs list ``pg_order_id`` as required; when it is not given
    it is sent empty (and signed, as every posted field is). ``get_status3.php`` (the
    Merchant API) lists it as optional: there it is sent only when given.
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


@attrs.frozen
class OrderStatusRequest:
    """A status query by merchant order id alone: ``get_status2.php`` ("status by
    order_id", deprecated but the only documented lookup by order id).

    It finds the payment an ``init_payment`` whose reply was lost may have created.
    The reply names the payment (``pg_payment_id``; ``0`` when there is none) and
    speaks the legacy ``pg_transaction_status`` vocabulary.
    """

    order_id: str = attrs.field(converter=order_id_value)

    @property
    def payment_id(self) -> None:
        """None: the query names no payment (nothing to space it by)."""
        return None

    def to_fields(self, merchant_id: int, salt: str) -> list[tuple[str, FieldValue]]:
        """The unsigned fields, in the order they are signed and posted."""
        return [
            ("pg_merchant_id", str(merchant_id)),
            ("pg_order_id", self.order_id),
            ("pg_salt", salt),
        ]


class PaymentState(enum.Enum):
    """The derived answer of :attr:`StatusResult.state` (see its docstring)."""

    REVOKED = "revoked"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    CAPTURED = "captured"
    HELD = "held"
    NEW = "new"
    PENDING = "pending"
    FAILED = "failed"
    UNKNOWN = "unknown"


#: The states of a paid payment whose money is with the merchant now: held, captured,
#: or captured and refunded in part. A hold released (REVOKED) or a refund in full
#: (REFUNDED) sent the money back; they are not in this set.
PAID_STATES = frozenset({PaymentState.HELD, PaymentState.CAPTURED, PaymentState.PARTIALLY_REFUNDED})


_SUCCESSFUL = frozenset({PaymentStatus.SUCCESS, PaymentStatus.OK})
_WAITING = frozenset(
    {PaymentStatus.PENDING, PaymentStatus.PROCESS, PaymentStatus.WAITING, PaymentStatus.PROCESSING}
)
_FAILED = frozenset({PaymentStatus.ERROR, PaymentStatus.FAILED, PaymentStatus.INCOMPLETE})

#: The status_v2 fields StatusResult reads (the rest, minus card data and the payer's
#: contact details, are kept in ``extra``).
_KNOWN = frozenset(
    {
        "pg_payment_id",
        "pg_order_id",
        "pg_status",
        "pg_payment_status",
        "pg_amount",
        "pg_clearing_amount",
        "pg_refund_amount",
        "pg_currency",
        "pg_captured",
        "pg_payment_date",
        "pg_reference",
        "pg_failure_code",
        "pg_failure_description",
        "pg_datetime",
        "pg_transaction_status",
        "pg_revoke_amount",
        "pg_revoked_amount",
        "pg_salt",
        "pg_sig",
    }
)


def _private(name: str) -> bool:
    """Card data and the payer's contact details: never kept, never shown."""
    return name.startswith(("pg_card_", "pg_user_")) or name in ("pg_card", "pg_user")


def _extra(known: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType({k: v for k, v in known.items() if k not in _KNOWN and not _private(k)})


@attrs.frozen
class StatusResult:
    """What ``/g2g/status_v2`` says about one payment (fields named without ``pg_``).

    Amounts are ``Decimal``; refunded amounts (``refund_amount`` and each refund entry's
    ``amount``) are sizes, always positive, although the gateway writes them negative
    (``-10``). ``refunded`` is the total refunded. Card data (``pg_card_pan``,
    ``pg_card_token``, ``pg_card_exp``, any ``pg_card_*``) and the payer's e-mail and
    phone (``pg_user_*``) are never kept: they cannot leak into a repr or a log.
    ``extra`` holds the other top-level fields this version does not read (for example
    ``pg_net_amount``, ``pg_auth_code``, ``pg_can_reject``), as text.

    The Merchant API's ``get_status3.php`` reply is read the same way. Where its
    sources disagree, every variant is read: the amount cancelled is
    ``pg_revoke_amount`` in the docs and ``pg_revoked_amount`` in the official Android
    SDK (``revoked_amount``, the docs' name first); the legacy
    ``pg_transaction_status`` stands in for a missing ``pg_payment_status``.
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
    extra: Mapping[str, str] = attrs.field(factory=lambda: MappingProxyType({}), repr=False)
    revoked_amount: Decimal | None = None
    #: The reply's ``pg_sig``: two readings with the same one are the same reply (a
    #: genuine reply has a fresh salt), which is how a replayed reading is told.
    signature: str | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def refunded(self) -> Decimal:
        """The total refunded: ``refund_amount``, else the sum of the refund entries."""
        if self.refund_amount is not None:
            return self.refund_amount
        return sum((r.amount or Decimal(0) for r in self.refund_payments), Decimal(0))

    @property
    def state(self) -> PaymentState:
        """One answer for callers, decided in this order:

        - REVOKED: ``payment_status`` is ``revoked``, or an entry of
          ``revoked_payments`` is successful (the hold was released);
        - REFUNDED: ``refunded`` reaches the captured amount (``clearing_amount``, else
          ``amount``), or ``payment_status`` is ``refunded``; PARTIALLY_REFUNDED: some
          refunded, less than that;
        - CAPTURED: ``captured`` is 1, or ``clearing_amount`` > 0;
        - HELD: ``payment_status`` is ``success``/``ok`` and none of the above (a
          two-step payment still on hold: it can be cancelled or cleared);
        - REVOKED also: a ``revoked_amount`` above 0 on a payment not captured (the
          Merchant API's ``pg_revoke_amount``, "the amount cancelled");
        - NEW: ``new``, legacy ``partial`` (created, not paid yet); PENDING:
          ``pending``, ``process``, ``waiting``, ``processing``; FAILED: ``error``,
          ``failed``, ``incomplete``;
        - UNKNOWN: anything else, a missing ``pg_payment_status`` included.
        """
        status = self.payment_status
        if status is PaymentStatus.REVOKED or any(
            r.payment_status in _SUCCESSFUL for r in self.revoked_payments
        ):
            return PaymentState.REVOKED
        refunded = self.refunded
        if status is PaymentStatus.REFUNDED:
            return PaymentState.REFUNDED
        if refunded > 0:
            base = self.clearing_amount or self.amount
            if base is not None and refunded < base:
                return PaymentState.PARTIALLY_REFUNDED
            return PaymentState.REFUNDED
        if self.captured or (self.clearing_amount or 0) > 0:
            return PaymentState.CAPTURED
        if (self.revoked_amount or 0) > 0:
            return PaymentState.REVOKED  # a hold (or an unpaid invoice) cancelled
        return _STATE_BY_STATUS.get(status, PaymentState.UNKNOWN)

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

    @property
    def paid(self) -> bool:
        """Whether the payment is paid and its money with the merchant now (``state`` in
        :data:`PAID_STATES`: held, captured, or refunded in part)."""
        return self.state in PAID_STATES

    @classmethod
    def from_reply(cls, reply: GatewayReply, payment_id: int) -> StatusResult:
        """Build from a verified ``pg_status=ok`` status_v2 reply about ``payment_id``.

        A reply for payment ``0`` is the documented "no such payment": it raises
        PaymentNotFoundError (signed, but not bound: it names no payment). A reply
        about any other payment is a MalformedReplyError.
        """
        known = scalars(reply.fields)
        replied = reply_int(known, "pg_payment_id", _OP, required=True)
        if replied == 0:
            raise PaymentNotFoundError(
                0, "status reply for payment 0: no such payment", payment_id=payment_id,
                signed=reply.signed,
            )  # fmt: skip
        if replied != payment_id:
            raise MalformedReplyError(
                f"status reply is for payment {replied}, not the one requested",
                payment_id=payment_id,
                http_status=reply.http_status,
            )
        return cls._read(known, reply, payment_id)

    @classmethod
    def from_order_reply(cls, reply: GatewayReply, order_id: str | None) -> StatusResult:
        """Build from a verified ``get_status2.php`` reply to a query by ``order_id``.

        ``pg_payment_id`` ``0`` is the documented "the payment does not exist":
        PaymentNotFoundError. A reply that names another order is a
        MalformedReplyError (``order_id`` None: not checked here). The reply usually
        names no order: ``order_id`` is then None (what the reply says, not what was
        asked).
        """
        known = scalars(reply.fields)
        replied = reply_int(known, "pg_payment_id", "get_status2", required=True)
        if not replied:
            message = "status by order id: no such payment"
            raise PaymentNotFoundError(0, message, signed=reply.signed, reply_fields=reply.fields)
        named = known.get("pg_order_id")
        if named and order_id is not None and named != order_id:
            raise MalformedReplyError(
                "order status reply names another order", http_status=reply.http_status
            )
        return cls._read(known, reply, replied)

    @classmethod
    def _read(cls, known: dict[str, str], reply: GatewayReply, payment_id: int) -> StatusResult:
        raw_status = known.get("pg_payment_status")
        if raw_status is None:  # get_status2.php's legacy vocabulary
            raw_status = known.get("pg_transaction_status", "")
        # The docs' schema and the official Android SDK name the amount cancelled
        # differently: both are read, the docs' first.
        cancelled = "pg_revoke_amount" if "pg_revoke_amount" in known else "pg_revoked_amount"
        return cls(
            payment_id=payment_id,
            order_id=known.get("pg_order_id") or None,
            status=known.get("pg_status", ""),
            payment_status=PaymentStatus.parse(raw_status),
            payment_status_raw=raw_status,
            amount=reply_decimal(known, "pg_amount", _OP),
            clearing_amount=reply_decimal(known, "pg_clearing_amount", _OP),
            refund_amount=magnitude(reply_decimal(known, "pg_refund_amount", _OP)),
            currency=known.get("pg_currency") or None,
            captured=reply_bool(known, "pg_captured"),
            payment_date=known.get("pg_payment_date") or None,
            revoked_payments=revoked(reply.fields),
            refund_payments=refunds(reply.fields),
            reference=known.get("pg_reference") or None,
            failure_code=known.get("pg_failure_code") or None,
            failure_description=known.get("pg_failure_description") or None,
            datetime=known.get("pg_datetime") or None,
            attempts=reply.attempts,
            extra=_extra(known),
            revoked_amount=magnitude(reply_decimal(known, cancelled, _OP)),
            signature=known.get("pg_sig"),
        )


_STATE_BY_STATUS = {
    **dict.fromkeys(_SUCCESSFUL, PaymentState.HELD),
    PaymentStatus.NEW: PaymentState.NEW,
    PaymentStatus.PARTIAL: PaymentState.NEW,  # legacy: "partial" is a payment not paid yet
    **dict.fromkeys(_WAITING, PaymentState.PENDING),
    **dict.fromkeys(_FAILED, PaymentState.FAILED),
}
