"""Clearing and refund that ask status before any second send, never re-sending blindly.

The session's retry layer never re-sends a clearing or a refund after an attempt the
gateway may have acted on (see ``RetryRule.MONEY``). Such an ambiguous attempt is
settled here by reading ``/g2g/status_v2``; only when status shows that nothing
happened is the request sent again.

The before/after comparison is only this call's if nothing else moves the payment
meanwhile, so a session runs its reconciled clearings and refunds of one payment one
at a time (``PaymentLocks``). A refund of the same payment sent at the same moment from
elsewhere (another process) can still not be told apart; see docs/reliability.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Protocol, TypeVar

import attrs

from .._exceptions import FreedomPayError
from .._operations.money import (
    ClearingStatus,
    ClearRequest,
    ClearResult,
    RefundRequest,
    RefundResult,
    RefundStatus,
)
from .._operations.status import (
    PaymentState,
    PaymentStatus,
    StatusRequest,
    StatusResult,
)

__all__ = [
    "Settle",
    "settle_clear",
    "settle_refund",
]

StatusCall = Callable[[StatusRequest], Awaitable[StatusResult]]
Q = TypeVar("Q")
R = TypeVar("R")


class Settle(Protocol[Q, R]):
    """``settle_clear`` or ``settle_refund``: send, and settle an ambiguous attempt."""

    def __call__(
        self,
        send: Callable[[Q], Awaitable[R]],
        status: StatusCall,
        request: Q,
        *,
        rounds: int,
    ) -> Awaitable[R]: ...

#: Refund entry states that count as finished and successful.
_DONE = frozenset({PaymentStatus.SUCCESS, PaymentStatus.OK})


async def settle_clear(
    send: Callable[[ClearRequest], Awaitable[ClearResult]],
    status: StatusCall,
    request: ClearRequest,
    *,
    rounds: int,
) -> ClearResult:
    """Send the clearing; settle an ambiguous attempt by status (CAPTURED, with the
    requested amount as the clearing amount when one was given: done; HELD: send
    again; anything else, or status failing: raise the ambiguous error)."""
    try:
        return await send(request)
    except FreedomPayError as exc:
        if not exc.outcome_unknown:
            raise
        last = exc
    query = StatusRequest(request.payment_id)
    attempts = last.attempts
    for _ in range(rounds):
        try:
            seen = await status(query)
        except FreedomPayError:
            raise last from None
        attempts += seen.attempts
        if seen.state is PaymentState.CAPTURED:
            if request.amount is not None and seen.clearing_amount != request.amount:
                # Captured, but not (or not visibly) by this amount: another clearing,
                # or this one not counted yet. Neither is proof; re-sending is not safe.
                last.attempts = attempts
                raise last
            return ClearResult(
                payment_id=request.payment_id,
                amount=seen.amount,
                clearing_amount=seen.clearing_amount,
                status="ok",
                clearing_status=ClearingStatus.COMPLETED,
                clearing_status_raw=seen.payment_status_raw,
                attempts=attempts,
                confirmed_by_status=True,
            )
        if seen.state is not PaymentState.HELD:
            raise last
        try:
            result = await send(request)
        except FreedomPayError as exc:
            if not exc.outcome_unknown:
                raise
            attempts += exc.attempts
            last = exc
        else:  # its attempts count the earlier ones and the status queries too
            return attrs.evolve(result, attempts=attempts + result.attempts)
    last.attempts = attempts
    raise last


def _refunded(status: StatusResult) -> Decimal:
    if status.refund_amount is not None:
        return status.refund_amount
    return sum((r.amount or Decimal(0) for r in status.refund_payments), Decimal(0))


def _moving(status: StatusResult, known_ids: set[int | None]) -> bool:
    """Whether status lists a refund not seen before, or one not (yet) successful."""
    return any(
        r.payment_id not in known_ids or r.payment_status not in _DONE
        for r in status.refund_payments
    )


async def settle_refund(
    send: Callable[[RefundRequest], Awaitable[RefundResult]],
    status: StatusCall,
    request: RefundRequest,
    *,
    rounds: int,
) -> RefundResult:
    """Read the refunded total, send the refund, and settle an ambiguous attempt by
    reading it again: grown by the amount means done; unchanged, with no new refund
    entry and none in a state other than success, means send again; anything else
    raises the ambiguous error. A payment may be refunded in parts, so
    only a before/after comparison can tell whether *this* refund happened."""
    try:
        before: StatusResult | None = await status(StatusRequest(request.payment_id))
    except FreedomPayError:
        before = None  # the refund may still go out; an ambiguous one then stays so
    try:
        return await send(request)
    except FreedomPayError as exc:
        if not exc.outcome_unknown or before is None:
            raise
        last = exc
    base = _refunded(before)
    known_ids = {r.payment_id for r in before.refund_payments}
    query = StatusRequest(request.payment_id)
    attempts = last.attempts
    for _ in range(rounds):
        try:
            seen = await status(query)
        except FreedomPayError:
            raise last from None
        attempts += seen.attempts
        now = _refunded(seen)
        new = [r.payment_id for r in seen.refund_payments if r.payment_id not in known_ids]
        if now == base + request.amount and len(new) <= 1:
            # At most one new entry: more than one means someone else refunded too,
            # and which of them is this call's cannot be told.
            return RefundResult(
                payment_id=request.payment_id,
                refund_id=new[0] if new else None,
                status="ok",
                refund_status=RefundStatus.SUCCESS,
                refund_status_raw=seen.payment_status_raw,
                attempts=attempts,
                confirmed_by_status=True,
            )
        if now != base or _moving(seen, known_ids):
            # Something happened or is under way that the total does not show yet (a
            # new entry, e.g. listed pending before it is counted, or one not
            # successful): sending again could refund twice.
            last.attempts = attempts
            raise last
        try:
            result = await send(request)
        except FreedomPayError as exc:
            if not exc.outcome_unknown:
                raise
            attempts += exc.attempts
            last = exc
        else:  # its attempts count the earlier ones and the status queries too
            return attrs.evolve(result, attempts=attempts + result.attempts)
    last.attempts = attempts
    raise last
