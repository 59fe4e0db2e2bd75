"""A refund's baseline, read only once status shows the batch's earlier refunds.

Status lags a refund by seconds. A second refund of a payment whose baseline is read
right after the first would miss the first; if its own reply were then lost, the first
refund showing up in status would "confirm" it, though it never happened. So each
payment has a *floor*: the refunded total the batch's done refunds of it brought it to
(from the journal, and from this run). A baseline below the floor is read again, with
the settle policy's growing waits, for at most one settle window; past that the row is
held back for a rerun (never sent against a stale baseline).
"""

from __future__ import annotations

from decimal import Decimal

from .._operations.money import RefundBaseline
from .._session.session import AsyncSession

__all__ = ["RefundFloors"]


class RefundFloors:
    """Each payment's floor (see the module), and baselines read above it."""

    def __init__(self, floors: dict[int, Decimal] | None = None) -> None:
        self.floors: dict[int, Decimal] = dict(floors or {})

    def raise_to(self, payment_id: int, total: Decimal) -> None:
        """A refund of ``payment_id`` brought its refunded total to ``total``."""
        self.floors[payment_id] = max(total, self.floors.get(payment_id, total))

    async def baseline(self, fp: AsyncSession, payment_id: int) -> RefundBaseline | None:
        """The payment's baseline once status shows its floor; None if a whole settle
        window passed without (status errors are raised, as the baseline's own)."""
        floor = self.floors.get(payment_id)
        policy = fp.settle
        delays, start = policy.delays(), policy.clock()
        while True:
            baseline = await fp.refund_baseline(payment_id)
            if floor is None or baseline.refunded >= floor:
                return baseline
            if policy.clock() - start >= policy.window:
                return None
            await policy.sleep(delays.take())
