"""What ``init_payment.php`` asked for: the sandbox's record of one payment page.

The sandbox accepts what the regional pages document (``pg_order_id`` optional as on
the KZ page; any ``pg_language``; the phone as digits), refuses a request without a
usable amount or description, and, like a shop that keeps order ids unique, refuses
an order id that already has a payment (9991).
"""

from __future__ import annotations

import secrets
from decimal import Decimal

import attrs

from .._wire.fields import FieldValue
from ._rules import BAD_AMOUNT, Refusal, amount_text, top_text

__all__ = ["DUPLICATE_ORDER", "MISSING_DESCRIPTION", "Checkout", "read_init"]

Tree = list[tuple[str, FieldValue]]

DUPLICATE_ORDER = (9991, "Неуникальный номер заказа")
MISSING_DESCRIPTION = (200, "Некорректный параметр: pg_description")
_METHODS = frozenset({"GET", "POST"})
_MAX_AMOUNT = Decimal("99999999")


@attrs.frozen
class Checkout:
    """One payment page: the order, the money, and where the gateway talks back.

    ``token`` is the page's ``customer`` parameter. ``auto_clearing`` is resolved:
    ``pg_auto_clearing`` 1 is one-step, 0 or absent two-step (the sandbox shop's
    setting). ``request_method`` is how check and result are sent (``POST`` unless
    ``GET`` or ``XML`` was asked); the redirect methods default to ``GET``.
    ``params`` are the merchant parameters (every top-level field without ``pg_``).
    """

    token: str
    order_id: str | None
    amount: Decimal
    currency: str
    description: str
    auto_clearing: bool = False
    request_method: str = "POST"
    check_url: str | None = None
    result_url: str | None = None
    success_url: str | None = None
    success_method: str = "GET"
    failure_url: str | None = None
    failure_method: str = "GET"
    testing_mode: bool = True
    params: tuple[tuple[str, str], ...] = ()

    def merchant_params(self) -> dict[str, str]:
        """The merchant parameters as a dict, to echo back."""
        return dict(self.params)


def _method(fields: Tree, name: str) -> str:
    raw = (top_text(fields, name) or "").strip().upper()
    return raw if raw in _METHODS else "GET"


def _url(fields: Tree, name: str) -> str | None:
    return (top_text(fields, name) or "").strip() or None


def read_init(fields: Tree) -> Checkout | Refusal:
    """The checkout an ``init_payment.php`` request asks for, or why it is refused."""
    amount = amount_text(top_text(fields, "pg_amount"))
    if amount is None or amount > _MAX_AMOUNT:
        return BAD_AMOUNT
    description = top_text(fields, "pg_description")
    if not description or not description.strip():
        return MISSING_DESCRIPTION
    method = (top_text(fields, "pg_request_method") or "POST").strip().upper()
    return Checkout(
        token=secrets.token_hex(16),
        order_id=(top_text(fields, "pg_order_id") or "").strip() or None,
        amount=amount,
        currency=(top_text(fields, "pg_currency") or "KZT").strip().upper() or "KZT",
        description=description,
        auto_clearing=top_text(fields, "pg_auto_clearing") == "1",
        request_method=method if method in ("GET", "POST", "XML") else "POST",
        check_url=_url(fields, "pg_check_url"),
        result_url=_url(fields, "pg_result_url"),
        success_url=_url(fields, "pg_success_url"),
        success_method=_method(fields, "pg_success_url_method"),
        failure_url=_url(fields, "pg_failure_url"),
        failure_method=_method(fields, "pg_failure_url_method"),
        testing_mode=top_text(fields, "pg_testing_mode") != "0",
        params=tuple(
            (name, value)
            for name, value in fields
            if isinstance(value, str) and not name.startswith("pg_")
        ),
    )
