"""The two API families a session can speak, each one set of operation definitions.

- ``gateway``: the Gateway API (``/g2g/cancel``, ``status_v2``, ``clearing``,
  ``refund``); the docs require a PCI DSS certificate to connect.
- ``merchant``: the Merchant API (``cancel.php``, ``get_status3.php``,
  ``do_capture.php``, ``revoke.php``); no certificate, what most merchants use.

Both create payments with ``init_payment.php`` and look one up by order id with
``get_status2.php``. A session picks its set once; every call then takes the one send
path with the set's definition, so the families differ only in paths, field names and
reply parsers.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from .._exceptions import ConfigurationError
from .cancel import CancelRequest, CancelResult
from .definitions import CANCEL, CLEARING, REFUND, STATUS, Operation, RetryRule
from .initiation import InitPaymentRequest, PaymentPage
from .merchant import MERCHANT_CANCEL, MERCHANT_CLEARING, MERCHANT_REFUND, MERCHANT_STATUS
from .money import ClearRequest, ClearResult, RefundRequest, RefundResult
from .status import OrderStatusRequest, StatusRequest, StatusResult

__all__ = ["INIT_PAYMENT", "ORDER_STATUS", "Api", "OperationSet"]

INIT_PAYMENT: Operation[InitPaymentRequest, PaymentPage] = Operation(
    "init_payment", "/init_payment.php", InitPaymentRequest, PaymentPage.from_reply,
    RetryRule.MONEY,  # it creates a payment: never sent again after it may have arrived
)  # fmt: skip
ORDER_STATUS: Operation[OrderStatusRequest, StatusResult] = Operation(
    "order_status", "/get_status2.php", OrderStatusRequest,
    lambda reply, _none: StatusResult.from_order_reply(reply, None), RetryRule.READ_ONLY,
)  # fmt: skip


@attrs.frozen
class OperationSet:
    """One family's operations, by role."""

    cancel: Operation[CancelRequest, CancelResult]
    status: Operation[StatusRequest, StatusResult]
    clearing: Operation[ClearRequest, ClearResult]
    refund: Operation[RefundRequest, RefundResult]
    init_payment: Operation[InitPaymentRequest, PaymentPage] = INIT_PAYMENT
    order_status: Operation[OrderStatusRequest, StatusResult] = ORDER_STATUS

    def all(self) -> tuple[Operation[Any, Any], ...]:
        """Every operation of the set."""
        return (
            self.cancel, self.status, self.clearing, self.refund, self.init_payment,
            self.order_status,
        )  # fmt: skip


_GATEWAY = OperationSet(CANCEL, STATUS, CLEARING, REFUND)
_MERCHANT = OperationSet(MERCHANT_CANCEL, MERCHANT_STATUS, MERCHANT_CLEARING, MERCHANT_REFUND)


class Api(enum.StrEnum):
    """The API family a session speaks: ``"gateway"`` (the default) or ``"merchant"``.

    ``AsyncSession(..., api="merchant")`` and ``api=Api.MERCHANT`` are the same. The
    Gateway API (``/g2g/*``) needs a PCI DSS certificate; the Merchant API (``*.php``)
    does not. Both offer the same calls, with the same verification, retries, spacing
    and settling; the direct cancel lane (the fastest plain cancel) is the Gateway
    API's only.
    """

    GATEWAY = "gateway"
    MERCHANT = "merchant"

    @classmethod
    def of(cls, value: object) -> Api:
        """``value`` as an Api (a member or its string); ConfigurationError otherwise."""
        if isinstance(value, str):
            with_name = value.strip().lower()
            for member in cls:
                if member.value == with_name:
                    return member
        raise ConfigurationError(f"api must be 'gateway' or 'merchant', got {str(value)[:40]!r}")

    @property
    def operations(self) -> OperationSet:
        """This family's operation definitions."""
        return _GATEWAY if self is Api.GATEWAY else _MERCHANT
