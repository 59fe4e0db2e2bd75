"""The session's payment creation: ``init_payment`` and the lookup by order id that
settles an attempt whose reply was lost (both families create payments the same way)."""

from __future__ import annotations

from typing import Any

from .._exceptions import FreedomPayError, ValidationError
from .._operations.families import OperationSet
from .._operations.initiation import InitPaymentRequest, PaymentPage
from .._operations.status import OrderStatusRequest, StatusRequest, StatusResult
from .._settling.initiation import settle_init, unsettled_init
from .._settling.policy import SettlePolicy
from .._settling.rules import ambiguous
from .engine import Engine

__all__ = ["PaymentCreation"]


class PaymentCreation:
    """``AsyncSession``'s calls that create a payment or find one by order id."""

    settle: SettlePolicy
    _engine: Engine
    _ops: OperationSet

    async def status_by_order(self, order_id: str | int) -> StatusResult:
        """The status of the payment made for ``order_id``, through ``get_status2.php``
        (status by order id; read-only, retried like :meth:`status`).

        The reply speaks the legacy vocabulary (``pg_transaction_status``), read into
        the same :class:`PaymentState`; it usually names no order (``order_id`` None).
        No payment for the order raises PaymentNotFoundError.
        """
        request = OrderStatusRequest(str(order_id) if isinstance(order_id, int) else order_id)
        return await self._order_status_once(request)

    async def _order_status_once(self, request: OrderStatusRequest) -> StatusResult:
        return await self._engine.call(self._ops.order_status, request)

    async def _of_order(self, payment_id: int, order_id: str) -> StatusResult:
        """A status query about ``payment_id`` and ``order_id``."""
        return await self._engine.call(self._ops.status, StatusRequest(payment_id, order_id))

    async def init_payment(
        self, request: InitPaymentRequest | None = None, /, *, reconcile: bool = True,
        **fields: Any,
    ) -> PaymentPage:  # fmt: skip
        """Create a payment through ``init_payment.php``: where to send the buyer.

        Pass an :class:`InitPaymentRequest`, or its fields as keywords
        (``init_payment(order_id="A-1", amount="150.00", description="Order A-1",
        auto_clearing=False, result_url=...)``). Returns a :class:`PaymentPage`
        (``payment_id``, ``redirect_url``, ``redirect_url_type``); keep the payment id
        with your order before redirecting the buyer.

        Creating a payment cannot be undone by asking again, so an attempt that may have
        reached the gateway is never sent again (only one that certainly did not, such
        as a refused connection, is retried). With ``reconcile`` (default) and an
        ``order_id``, such an attempt is settled by looking the order up
        (:meth:`status_by_order`, over the settle window): a payment found raises
        :class:`PaymentExistsError` (its page URL was lost with the reply); a signed
        refusal with no payment found stands; a whole window of "no payment" raises the
        attempt's error with ``outcome_unknown`` False (nothing was created: send it
        again). Anything else, or no order id, or ``reconcile=False``, raises the error
        with ``outcome_unknown`` True and a note.
        """
        if request is None:
            try:
                request = InitPaymentRequest(**fields)
            except TypeError as exc:
                raise ValidationError(f"init_payment: {exc}") from None
        elif fields or not isinstance(request, InitPaymentRequest):
            raise ValidationError("init_payment takes an InitPaymentRequest or keywords")
        try:
            return await self._engine.call(self._ops.init_payment, request)
        except FreedomPayError as exc:
            if not ambiguous(exc):
                raise
            if not reconcile or request.order_id is None:
                unsettled_init(exc, request.order_id)
            await settle_init(
                self._order_status_once, request.order_id, exc, self.settle, self._of_order
            )
