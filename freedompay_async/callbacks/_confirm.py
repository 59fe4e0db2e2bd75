"""Confirming a paid result notification with the gateway's own word: a status query.

The md5 ``pg_sig`` covers the values in the sorted order of their names, not the
names, so a signed notification can be rearranged (a failed one made to read as paid,
another value moved onto ``pg_order_id``). A ``/g2g/status_v2`` reply is signed by the
gateway about one payment id the merchant asked for: when it names the same payment,
shows its money with the merchant now (:data:`~freedompay_async.PAID_STATES`), and
agrees on order id, amount and currency, the notification is true and the goods can go.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs

from .._exceptions import FreedomPayError, PaymentNotConfirmedError
from .._operations.status import PAID_STATES, StatusResult
from ._messages import ResultNotify

__all__ = ["StatusSource", "confirm_result_notify"]


@runtime_checkable
class StatusSource(Protocol):
    """What confirmation needs: a ``status`` coroutine, as :class:`AsyncSession` has.

    ``await source.status(payment_id)`` returns the verified
    :class:`~freedompay_async.StatusResult` of that payment, or raises a
    :class:`~freedompay_async.FreedomPayError`.
    """

    async def status(self, payment_id: int, /) -> StatusResult:
        """The status of ``payment_id``, as the gateway reports it."""
        ...


def _not_confirmed(
    reason: str, detail: str, notify: ResultNotify, state: str | None = None
) -> PaymentNotConfirmedError:
    return PaymentNotConfirmedError(
        f"the payment's status does not confirm this paid notification: {detail}",
        payment_id=notify.payment_id,
        reason=reason,
        state=state,
    )


def _same_currency(notified: str, status: str | None) -> bool:
    return status is not None and status.strip().upper() == notified.strip().upper()


def _check(notify: ResultNotify, status: StatusResult) -> None:
    """Raise PaymentNotConfirmedError unless ``status`` agrees with ``notify``."""
    if status.payment_id != notify.payment_id:
        raise _not_confirmed("other_payment", "it is about another payment", notify)
    # The library's one definition of "paid": the money is with the merchant now. A
    # payment revoked or refunded since, or in any state this version does not know,
    # does not confirm: the goods must not ship.
    if status.state not in PAID_STATES:
        state = status.state.value
        detail = f"the payment is {state} ({status.payment_status_raw[:40]!r})"
        raise _not_confirmed("not_paid", detail, notify, state)
    if status.order_id != notify.order_id:
        raise _not_confirmed("order_differs", "it names another order id", notify)
    if status.amount is None or status.amount != notify.amount:
        raise _not_confirmed(
            "amount_differs", f"it says {status.amount}, the notification {notify.amount}", notify
        )
    if not _same_currency(notify.currency, status.currency):
        raise _not_confirmed(
            "currency_differs",
            f"it says {str(status.currency)[:10]!r}, the notification {notify.currency[:10]!r}",
            notify,
        )


async def confirm_result_notify(notify: ResultNotify, source: StatusSource) -> ResultNotify:
    """Confirm a paid notification by a status query; return it with ``confirmation`` set.

    A notification that is not paid (``pg_result`` other than 1) needs no confirmation
    and is returned as it is (``confirmed_by_status`` False). For a paid one,
    ``await source.status(notify.payment_id)`` (pass your :class:`AsyncSession`) must
    name the same payment, show its money with the merchant now (its state in
    :data:`~freedompay_async.PAID_STATES`; a payment since revoked or refunded, new,
    pending, failed, unknown or in any state this version does not know does not
    confirm: do not ship), and agree on order id, amount and currency. Then the notification comes
    back with ``confirmation`` holding that status. Otherwise, or when the query fails
    (its error is the ``__cause__``), :class:`~freedompay_async.PaymentNotConfirmedError`
    is raised: do not ship; answer non-200 so the gateway delivers it again later.
    Cancellation and errors that are not FreedomPayErrors propagate unchanged.
    """
    if not notify.succeeded:
        return notify
    try:
        status = await source.status(notify.payment_id)
    except FreedomPayError as exc:
        detail = f"the status query failed ({str(exc)[:200]})"
        error = _not_confirmed("status_unavailable", detail, notify)
        raise error from exc
    _check(notify, status)
    return attrs.evolve(notify, confirmation=status)
