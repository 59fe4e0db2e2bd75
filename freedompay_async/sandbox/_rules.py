"""The sandbox's ledger rules for cancel, status_v2, clearing and refund.

- a held payment can be cancelled once, or cleared once (fully or partly); a payment
  created by init_payment and not paid yet can be cancelled (the invoice is closed);
- a cancelled payment cannot be cleared or refunded; a cleared one cannot be cancelled;
- a cleared payment can be refunded, in parts, up to its cleared amount;
- the operations see every change at once; status_v2 shows a clearing or a refund
  only ``status_lag`` seconds after it was applied (see ``_view``).

Each rule returns the reply's fields (not yet signed, except error replies, which the
:class:`ReplyBuilder` signs or not). Error codes are the third-party table's (reference
section 3.2), the same the client's error tree classifies.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from .._wire.fields import (
    Fields,
    FieldValue,
)
from ._ledger import CANCELLED, CLEARED, HELD, NEW, Payment
from ._replies import ALREADY_CANCELLED, ReplyBuilder, gateway_date
from ._status import money, status_tree
from ._view import RefundRecord

__all__ = [
    "ALREADY_REFUNDED",
    "BAD_AMOUNT",
    "CLEARING_DONE",
    "NOT_CANCELLABLE",
    "NOT_CLEARABLE",
    "REFUND_NOT_CLEARED",
    "REFUND_TOO_MUCH",
    "Refusal",
    "Rules",
    "amount_text",
    "top_text",
]

Tree = list[tuple[str, FieldValue]]

NOT_CANCELLABLE = (9013, "Ошибка отмены платежа: неуспешные платежи не могут быть отменены")
NOT_CLEARABLE = (10035, "Неуспешные платежи не могут быть проведены")
CLEARING_DONE = (10036, "Клиринг уже был произведен ранее")
REFUND_NOT_CLEARED = (10034, "Ошибка возврата: платеж должен быть проведен")
REFUND_TOO_MUCH = (10020, "Сумма возврата превышает сумму платежа")
BAD_AMOUNT = (200, "Некорректный параметр: сумма")
ALREADY_REFUNDED = (11018, "Платеж уже был возвращен")

#: A refusal: ``(pg_error_code, pg_error_description)``.
Refusal = tuple[int, str]

_CENT = Decimal("0.01")


def amount_text(text: str | None) -> Decimal | None:
    """A positive amount with at most two decimal places, or None."""
    return _amount(text)


def _amount(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    if not value.is_finite() or value < _CENT or value != value.quantize(_CENT):
        return None
    return value


class Rules:
    """The operations on one ledger (owned by a SandboxGateway); ids count up.

    ``clock`` is the gateway's clock; ``status_lag`` (settable) the seconds before
    status_v2 shows a clearing or a refund. Requests are counted by the gateway when
    they arrive; the rules only apply them.
    """

    def __init__(
        self,
        replies: dict[str, ReplyBuilder],
        pending_ids: frozenset[int],
        clock: Callable[[], float],
        status_lag: float = 0.0,
    ) -> None:
        self._replies = replies
        self.pending_ids = pending_ids
        self.clock = clock
        self.status_lag = status_lag
        self.next_revoke_id = 900_000_000_001
        self.next_refund_id = 800_000_000_001

    def _publish(self, payment: Payment, lag: float) -> None:
        now = self.clock()
        payment.publish(now + lag, now)

    # -- the moves, shared by both API families: a refusal, or what was done ---------

    def do_cancel(self, payment: Payment) -> Refusal | int:
        """Held (or created, not paid) -> cancelled, once; the new revoke id."""
        if payment.state == CANCELLED:
            return ALREADY_CANCELLED
        if payment.state not in (HELD, NEW):
            return NOT_CANCELLABLE
        payment.state = CANCELLED
        payment.cancellations += 1
        payment.revoke_id = revoke_id = self.next_revoke_id
        self.next_revoke_id += 1
        self._publish(payment, 0.0)
        return revoke_id

    def do_clear(self, payment: Payment, raw: str | None) -> Refusal | Decimal:
        """Held -> cleared once, for all (``raw`` absent or empty) or part of the amount."""
        if payment.state == CLEARED:
            return CLEARING_DONE
        if payment.state != HELD:
            return NOT_CLEARABLE
        amount = payment.amount if raw is None or raw == "" else _amount(raw)
        if amount is None or amount > payment.amount:
            return BAD_AMOUNT
        payment.state = CLEARED
        payment.clearings += 1
        payment.clearing_amount = amount
        self._publish(payment, self.status_lag)
        return amount

    def do_refund(self, payment: Payment, amount: Decimal | None) -> Refusal | RefundRecord:
        """A cleared payment, in parts, up to the cleared amount; ``amount`` None
        refunds all that is left (the Merchant API's missing or 0 amount)."""
        if payment.state == HELD:
            return REFUND_NOT_CLEARED
        if payment.state != CLEARED or payment.clearing_amount is None:
            return NOT_CLEARABLE
        left = payment.clearing_amount - payment.refund_amount
        if amount is None:
            if left <= 0:
                return ALREADY_REFUNDED
            amount = left
        if amount > left:
            return REFUND_TOO_MUCH
        refund = RefundRecord(self.next_refund_id, amount, gateway_date())
        self.next_refund_id += 1
        payment.refunds.append(refund)
        self._publish(payment, self.status_lag)
        return refund

    # -- the Gateway API ---------------------------------------------------------------

    def cancel(self, pid: int, payment: Payment, _fields: Tree) -> Fields:
        """``/g2g/cancel``: held -> cancelled, once (status shows it at once)."""
        replies = self._replies["cancel"]
        done = self.do_cancel(payment)
        if isinstance(done, tuple):
            return replies.error(done)
        status = "pending" if pid in self.pending_ids else "success"
        return replies.cancelled(pid, done, status)

    def clearing(self, pid: int, payment: Payment, fields: Tree) -> Fields:
        """``/g2g/clearing``: held -> cleared once, for all or part of the amount."""
        replies = self._replies["clearing"]
        amount = self.do_clear(payment, _top(fields, "pg_clearing_amount"))
        if isinstance(amount, tuple):
            return replies.error(amount)
        # The documented example's field name (the schema says pg_clearing_status).
        return replies.sign(
            [
                ("pg_payment_id", str(pid)),
                ("pg_amount", money(payment.amount)),
                ("pg_clearing_amount", money(amount)),
                ("pg_status", "ok"),
                ("pg_status_clearing", "1"),
            ]
        )

    def refund(self, pid: int, payment: Payment, fields: Tree) -> Fields:
        """``/g2g/refund``: a cleared payment, in parts, up to the cleared amount."""
        replies = self._replies["refund"]
        if payment.state == CLEARED:
            amount = _amount(_top(fields, "pg_amount"))
            currency = _top(fields, "pg_currency")
            if amount is None or (currency not in (None, "", payment.currency)):
                return replies.error(BAD_AMOUNT)
        else:
            amount = None  # refused below for the payment's state
        refund = self.do_refund(payment, amount)
        if isinstance(refund, tuple):
            return replies.error(refund)
        return replies.sign(
            [
                ("pg_payment_id", str(pid)),
                ("pg_payment_refund_id", str(refund.refund_id)),
                ("pg_status", "ok"),
                ("pg_refund_status", "success"),
            ]
        )

    def status(self, pid: int, payment: Payment, _fields: Tree) -> Fields:
        """``/g2g/status_v2``: the payment as shown now (a recent clearing or refund
        may not show yet), every documented field, card data masked."""
        payment.status_requests += 1
        view = payment.shown(self.clock())
        return self._replies["status_v2"].sign_tree(status_tree(pid, payment, view))


def top_text(fields: Tree, name: str) -> str | None:
    """The first top-level text field called ``name``."""
    return _top(fields, name)


def _top(fields: Tree, name: str) -> str | None:
    for key, value in fields:
        if key == name and isinstance(value, str):
            return value
    return None
