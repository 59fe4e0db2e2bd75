"""Settling an ``init_payment`` whose attempt may have created a payment unanswered.

``init_payment.php`` has no idempotency key and names no payment until it answers, so
an attempt that may have been acted on (a timeout, a lost, garbled or unverifiable
reply, an error reply that names no payment) is never sent again: a second attempt
could create a second payment for one order. Instead the payment is looked up by the
request's order id (``get_status2.php``, polled as the :class:`SettlePolicy` says):

- found: a payment for the order exists; its page URL was only in the lost reply, so
  :class:`PaymentExistsError` (outcome known: it exists) names it. The lookup's reply
  usually names no order, so a replayed lookup of another order would name another
  order's payment: the payment is first confirmed by a status query about it and this
  order (``confirm``), whose reply must name the order; otherwise the reading is no
  evidence;
- "no such payment" after a refusal (a signed error reply): the refusal stands, with
  its outcome known (nothing was created);
- "no such payment" in every reading of a whole settle window, none of them a repeat of
  another (the same ``pg_sig``: a replay): nothing was created;
  the attempt's error is raised with its outcome known, so the caller may send it again;
- otherwise (lookups failing, the window cut short): the error stays outcome unknown.

What a session cannot look up (no order id, ``reconcile=False``) is raised as it is,
outcome unknown, with a note saying so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NoReturn

from .._exceptions import (
    ALREADY_DONE,
    FreedomPayError,
    GatewayError,
    PaymentExistsError,
    PaymentNotFoundError,
    SessionClosedError,
    SignatureVerificationError,
)
from .._operations.status import OrderStatusRequest, StatusResult
from .policy import SettlePolicy

__all__ = ["OrderLookup", "settle_init", "unsettled_init"]

OrderLookup = Callable[[OrderStatusRequest], Awaitable[StatusResult]]
#: A status query about a payment and an order id (its reply checked against the order).
Confirm = Callable[[int, str], Awaitable[StatusResult]]


def _refusal(error: FreedomPayError) -> GatewayError | None:
    if isinstance(error, GatewayError) and not error.retryable:
        return None if isinstance(error, ALREADY_DONE) else error
    return None


def _known(error: FreedomPayError) -> FreedomPayError:
    error.maybe_processed = error.earlier_maybe_processed = False
    return error


def unsettled_init(error: FreedomPayError, order_id: str | None) -> NoReturn:
    """Raise ``error`` (outcome unknown) with a note on what to do without a lookup."""
    if order_id is None:
        error.add_note(
            "init_payment may have created a payment; without an order id it cannot be "
            "looked up: create the payment again only if a second unpaid one is harmless"
        )
    else:
        error.add_note(
            f"init_payment may have created a payment for order {order_id!r}: look it up "
            "by order id (status_by_order) before creating it again"
        )
    raise error


def _fresh(not_found: PaymentNotFoundError, seen: set[object]) -> bool:
    """Whether a signed "no such payment" reading is one not received before in this
    settling (a genuine reply has a fresh salt, so a repeated ``pg_sig`` is a replay).
    An unsigned one has nothing to tell it by, and counts as fresh."""
    signature = next((v for k, v in not_found.reply_fields if k == "pg_sig"), None)
    if signature is None:
        return True
    if signature in seen:
        return False
    seen.add(signature)
    return True


async def _of_order(confirm: Confirm, found: StatusResult, order_id: str) -> bool:
    """Whether a status query about ``found``'s payment names ``order_id``."""
    try:
        seen = await confirm(found.payment_id, order_id)
    except FreedomPayError:  # a closed session too: the next lookup ends the settling
        return False
    return seen.order_id == order_id


async def settle_init(
    lookup: OrderLookup,
    order_id: str,
    error: FreedomPayError,
    policy: SettlePolicy,
    confirm: Confirm,
) -> NoReturn:
    """Settle an ``init_payment`` of ``order_id`` whose ``error`` left its outcome open,
    by looking the order up (see the module docstring). Always raises."""
    start, delays, query = policy.clock(), policy.delays(), OrderStatusRequest(order_id)
    refusal, queries, clean = _refusal(error), 0, True
    seen: set[object] = set()
    while True:
        queries += 1
        found: StatusResult | None = None
        try:
            found = await lookup(query)
        except PaymentNotFoundError as exc:
            if refusal is not None:
                refusal.add_note(f"status by order id shows no payment for {order_id!r}")
                raise _known(refusal) from None
            if not _fresh(exc, seen):
                clean = False  # the same signed reply twice: a replay, no new reading
        except (SessionClosedError, FreedomPayError) as exc:
            clean = False
            if isinstance(exc, SessionClosedError) or not (
                exc.retryable or isinstance(exc, SignatureVerificationError)
            ):
                break  # the caller closed the session, or the lookup is refused
        if found is not None and not await _of_order(confirm, found, order_id):
            clean = False  # no evidence: a replayed lookup names another order's payment
            found = None
        if found is not None:
            raise PaymentExistsError(
                f"init_payment's reply was lost and order {order_id!r} has payment "
                f"{found.payment_id} ({found.state.value}): its page URL is unknown; "
                "cancel it and create the payment under a new order id",
                order_id=order_id,
                payment_id=found.payment_id,
                state=found.state.value,
            ) from error
        if policy.clock() - start >= policy.window:
            break
        await policy.sleep(delays.take())
    whole = clean and policy.clock() - start >= policy.window
    if whole:
        _known(error)
    shown = "none was created" if whole else "the outcome is unknown"
    error.add_note(
        f"settling init_payment of order {order_id!r}: {queries} status queries by order "
        f"id; {shown}"
    )
    raise error
