"""The status_v2 reply: every documented field, in the order the gateway's examples use.

Shapes follow the official get_status3 example and the status_v2 field list
(reference 2.4, merchant API 3.2-3.4): refunds are written negative (``-250.00``,
``0.00`` when none), a payment refunded in full still says ``success``, card data is
masked, and the fields a client may not know (``pg_net_amount``, ``pg_card_exp``,
``pg_intreference``, ``pg_testing_mode``, ...) are there as on the real gateway.
"""

from __future__ import annotations

from decimal import Decimal

from .._wire.fields import FieldValue
from ._ledger import CANCELLED, CLEARED, FAILED, NEW, Payment
from ._replies import utc_now
from ._view import RefundRecord, StatusView

__all__ = ["PAYMENT_STATUS", "money", "order_of", "refund_money", "status_tree"]

Tree = list[tuple[str, FieldValue]]

_CENT = Decimal("0.01")
_ZERO = Decimal("0.00")


def money(value: Decimal) -> str:
    """An amount as the gateway writes it: two decimal places."""
    return str(value.quantize(_CENT))


def refund_money(value: Decimal) -> str:
    """A refunded amount as status_v2 writes it: negative, ``0.00`` for none."""
    return money(-value) if value else money(_ZERO)


#: ``pg_payment_status`` of each ledger state: ``new`` then ``success`` or ``error`` as
#: seen live; ``revoked`` for a cancelled payment (the sandbox's choice: no source
#: shows what status_v2 says after a cancel).
PAYMENT_STATUS = {NEW: "new", FAILED: "error", CANCELLED: "revoked"}


def order_of(pid: int, payment: Payment) -> str:
    """The order id status names: init_payment's, else ``order-<id>``."""
    return payment.order_id or f"order-{pid}"


def _reference(number: int) -> str:
    """A 12-digit retrieval reference number (RRN), stable for one id."""
    return f"{(310_000_000_000 + number * 7_919) % 10**12:012d}"


def _refund_entry(refund: RefundRecord) -> tuple[str, FieldValue]:
    return (
        "pg_refund_payment",
        [
            ("pg_payment_id", str(refund.refund_id)),
            ("pg_payment_status", "success"),
            ("pg_amount", refund_money(refund.amount)),
            ("pg_payment_date", refund.date),
            ("pg_reference", _reference(refund.refund_id)),
        ],
    )


def _lists(view: StatusView) -> Tree:
    tree: Tree = []
    if view.revoke_id is not None:
        revoked: Tree = [("pg_payment_id", str(view.revoke_id)), ("pg_payment_status", "success")]
        tree.append(("pg_revoked_payments", [("pg_revoked_payment", revoked)]))
    if view.refunds:
        tree.append(("pg_refund_payments", [_refund_entry(r) for r in view.refunds]))
    return tree


def _card(pid: int) -> Tree:
    """Payer and card fields: masked PAN, a token, nothing a client should keep."""
    return [
        ("pg_reference", _reference(pid)),
        ("pg_intreference", f"{(5_100_000_000 + pid) % 10**10:010d}"),
        ("pg_auth_code", f"{pid * 7919 % 10**6:06d}"),
        ("pg_card_name", "CARD HOLDER"),
        ("pg_card_pan", "4405-64XX-XXXX-6150"),
        ("pg_card_token", f"tok{pid:012d}"),
        ("pg_card_exp", "12/29"),
        ("pg_card_brand", "VISA"),
        ("pg_user_email", ""),
        ("pg_user_phone", "77011234567"),
    ]


def status_tree(pid: int, payment: Payment, view: StatusView) -> Tree:
    """The unsigned status_v2 reply about ``pid`` showing ``view`` (which may lag)."""
    cancelled = view.state == CANCELLED
    return [
        ("pg_status", "ok"),
        ("pg_payment_id", str(pid)),
        ("pg_order_id", order_of(pid, payment)),
        ("pg_can_reject", "0" if cancelled else "1"),
        ("pg_payment_method", "bankcard"),
        ("pg_amount", money(payment.amount)),
        ("pg_net_amount", money(payment.amount)),
        ("pg_currency", payment.currency),
        ("pg_payment_status", PAYMENT_STATUS.get(view.state, "success")),
        ("pg_clearing_amount", money(view.clearing_amount or _ZERO)),
        *_card(pid),
        *_lists(view),
        ("pg_refund_amount", refund_money(view.refund_amount)),
        ("pg_captured", "1" if view.state == CLEARED else "0"),
        ("pg_testing_mode", "1"),
        ("pg_create_date", payment.created),
        ("pg_payment_date", payment.created),
        ("pg_datetime", utc_now()),
    ]
