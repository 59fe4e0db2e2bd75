"""The Merchant API on the sandbox's ledger: ``init_payment.php``, ``get_status3.php``,
``get_status2.php``, ``do_capture.php``, ``revoke.php`` and ``cancel.php``.

The moves are the Gateway API's (``_rules``); only the replies differ, and they carry
what the sources show and no more (merchant-api reference):

- init: ``pg_status``, ``pg_payment_id``, ``pg_redirect_url``, ``pg_redirect_url_type``
  (``need data``), as the official example;
- get_status3: the official example's fields and order, plus ``pg_order_id`` (in the
  schema) and, for a cancelled payment, the schema's ``pg_revoke_amount``
  (``pg_payment_status`` stays ``success``: what a cancel does to it is not shown
  anywhere, so a client must read the amount);
- get_status2: the documented legacy reply (``pg_transaction_status``; payment 0 when
  the order has none);
- do_capture: ``pg_amount`` and ``pg_clearing_amount``; revoke:
  ``pg_revoke_payment_id``; cancel: ``pg_cancel_payment_id`` (the SDKs' reply values):
  none of them names the payment;
- errors: ``pg_status=error``, ``pg_error_code``, ``pg_error_description``, signed.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from .._wire.fields import Fields, FieldValue
from ._checkout import Checkout
from ._ledger import CANCELLED, CLEARED, FAILED, HELD, NEW, Payment
from ._replies import ReplyBuilder
from ._rules import Refusal, Rules, amount_text, top_text
from ._status import money, order_of, refund_money
from ._view import RefundRecord, StatusView

__all__ = ["MERCHANT_SCRIPTS", "MerchantRules", "status2_tree"]

Tree = list[tuple[str, FieldValue]]

#: The Merchant API scripts the sandbox serves.
MERCHANT_SCRIPTS = (
    "init_payment.php",
    "get_status3.php",
    "get_status2.php",
    "do_capture.php",
    "revoke.php",
    "cancel.php",
)
_LEGACY = {NEW: "partial", HELD: "ok", CLEARED: "ok", FAILED: "failed", CANCELLED: "revoked"}


def _refunds(refunds: tuple[RefundRecord, ...]) -> Tree:
    if not refunds:
        return []
    entries: Tree = [
        (
            "pg_refund_payment",
            [
                ("pg_payment_id", str(r.refund_id)),
                ("pg_payment_status", "success"),
                ("pg_amount", refund_money(r.amount)),
                ("pg_payment_date", r.date),
                ("pg_reference", f"{r.refund_id % 10**12:012d}"),
            ],
        )
        for r in refunds
    ]
    return [("pg_refund_payments", entries)]


def _paid_fields(pid: int, view: StatusView) -> Tree:
    """What the example shows once a card was presented: bank reference, masked card."""
    if view.state in (NEW, FAILED):
        return []
    return [
        ("pg_reference", f"{pid % 10**12:012d}"),
        ("pg_card_name", "CARD HOLDER"),
        ("pg_card_pan", "5483-18XX-XXXX-0293"),
        ("pg_card_token", f"tok-{pid:012d}"),
    ]


def status3_tree(pid: int, payment: Payment, view: StatusView) -> Tree:
    """The unsigned get_status3 reply about ``pid`` showing ``view``."""
    status = {NEW: "new", FAILED: "error"}.get(view.state, "success")
    tree: Tree = [
        ("pg_status", "ok"),
        ("pg_payment_id", str(pid)),
        ("pg_order_id", order_of(pid, payment)),
        ("pg_can_reject", "1" if view.state in (HELD, CLEARED) else "0"),
        ("pg_payment_method", "bankcard"),
        ("pg_amount", money(payment.amount)),
        ("pg_currency", payment.currency),
        ("pg_payment_status", status),
        ("pg_clearing_amount", money(view.clearing_amount or Decimal("0.00"))),
        *_paid_fields(pid, view),
        *_refunds(view.refunds),
        ("pg_refund_amount", refund_money(view.refund_amount)),
    ]
    if view.state == CANCELLED:
        tree.append(("pg_revoke_amount", money(payment.amount)))
    if view.state != NEW:  # absent before a card is presented, as seen live
        tree.append(("pg_captured", "1" if view.state == CLEARED else "0"))
    tree.append(("pg_create_date", payment.created))
    return tree


def status2_tree(pid: int, payment: Payment | None, view: StatusView | None) -> Tree:
    """The unsigned get_status2 reply: payment 0 when the order has none."""
    if payment is None or view is None:
        return [("pg_status", "ok"), ("pg_payment_id", "0")]
    refunded_all = bool(view.refunds) and view.refund_amount >= (view.clearing_amount or 0)
    return [
        ("pg_status", "ok"),
        ("pg_payment_id", str(pid)),
        ("pg_transaction_status", "refunded" if refunded_all else _LEGACY[view.state]),
        ("pg_can_reject", "1" if view.state in (HELD, CLEARED) else "0"),
        ("pg_testing_mode", "1"),
        ("pg_captured", "1" if view.state == CLEARED else "0"),
        ("pg_create_date", payment.created),
    ]


class MerchantRules:
    """The Merchant API's replies over the Gateway API's moves (``rules``)."""

    def __init__(self, rules: Rules, builders: dict[str, ReplyBuilder]) -> None:
        self._rules = rules
        self._builders = builders

    def error(self, script: str, refusal: Refusal) -> Fields:
        """A signed Merchant API error reply."""
        code, description = refusal
        return self._builders[script].sign(
            [("pg_status", "error"), ("pg_error_code", str(code)),
             ("pg_error_description", description)]
        )  # fmt: skip

    def init(self, pid: int, checkout: Checkout, page_url: str) -> Fields:
        """The reply to an init_payment.php that created payment ``pid``."""
        return self._builders["init_payment.php"].sign(
            [
                ("pg_status", "ok"),
                ("pg_payment_id", str(pid)),
                ("pg_redirect_url", f"{page_url}?customer={checkout.token}"),
                ("pg_redirect_url_type", "need data"),
            ]
        )

    def status3(self, pid: int, payment: Payment, _fields: Tree) -> Fields:
        """``get_status3.php``: the payment as shown now (status lags as status_v2)."""
        payment.status_requests += 1
        view = payment.shown(self._rules.clock())
        return self._builders["get_status3.php"].sign_tree(status3_tree(pid, payment, view))

    def capture(self, _pid: int, payment: Payment, fields: Tree) -> Fields:
        """``do_capture.php``: the clearing, answered with the amounts only."""
        done = self._rules.do_clear(payment, top_text(fields, "pg_clearing_amount"))
        if isinstance(done, tuple):
            return self.error("do_capture.php", done)
        return self._builders["do_capture.php"].sign(
            [("pg_status", "ok"), ("pg_amount", money(payment.amount)),
             ("pg_clearing_amount", money(done))]
        )  # fmt: skip

    def revoke(self, _pid: int, payment: Payment, fields: Tree) -> Fields:
        """``revoke.php``: ``pg_refund_amount``; missing or 0 refunds all that is left."""
        raw = (top_text(fields, "pg_refund_amount") or "").strip()
        amount = None if raw in ("", "0", "0.0", "0.00") else amount_text(raw)
        if raw not in ("", "0", "0.0", "0.00") and amount is None:
            return self.error("revoke.php", (200, "Некорректный параметр: pg_refund_amount"))
        done = self._rules.do_refund(payment, amount)
        if isinstance(done, tuple):
            return self.error("revoke.php", done)
        return self._builders["revoke.php"].sign(
            [("pg_status", "ok"), ("pg_revoke_payment_id", str(done.refund_id))]
        )

    def cancel(self, _pid: int, payment: Payment, _fields: Tree) -> Fields:
        """``cancel.php``: a hold (or an unpaid invoice) cancelled."""
        done = self._rules.do_cancel(payment)
        if isinstance(done, tuple):
            return self.error("cancel.php", done)
        return self._builders["cancel.php"].sign(
            [("pg_status", "ok"), ("pg_cancel_payment_id", str(done))]
        )

    def operations(self) -> dict[str, Callable[[int, Payment, Tree], Fields]]:
        """The payment endpoints by script name (init and get_status2 name none)."""
        return {
            "get_status3.php": self.status3,
            "do_capture.php": self.capture,
            "revoke.php": self.revoke,
            "cancel.php": self.cancel,
        }
