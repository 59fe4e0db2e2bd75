"""What status_v2 shows of a payment, and the lag before a change shows.

The real gateway applies a clearing or a refund at once (a second clearing is refused,
a refund over the cleared amount too), but its status_v2 keeps answering the old
picture for a few seconds. The ledger therefore keeps two things per payment: the
state the operations see, and a queue of published :class:`StatusView` pictures, each
visible from a moment on the gateway's clock.
"""

from __future__ import annotations

import collections
from decimal import Decimal

import attrs

__all__ = ["RefundRecord", "StatusView", "ViewQueue"]


@attrs.frozen
class RefundRecord:
    """One refund as status_v2 lists it: id, amount (positive here), wall-clock date."""

    refund_id: int
    amount: Decimal
    date: str


@attrs.frozen
class StatusView:
    """The picture of one payment that status_v2 answers with."""

    state: str
    revoke_id: int | None = None
    clearing_amount: Decimal | None = None
    refunds: tuple[RefundRecord, ...] = ()

    @property
    def refund_amount(self) -> Decimal:
        """The total refunded in this picture (positive)."""
        return sum((r.amount for r in self.refunds), Decimal("0.00"))


class ViewQueue:
    """The picture status_v2 shows now, and the pictures published but not shown yet.

    :meth:`publish` queues a picture to show from ``at`` on (never before an earlier
    one, so pictures show in the order they were published); :meth:`shown` moves every
    picture whose moment has come to the front and returns the latest.
    """

    __slots__ = ("_current", "_pending")

    def __init__(self, view: StatusView) -> None:
        self._current = view
        self._pending: collections.deque[tuple[float, StatusView]] | None = None

    def publish(self, view: StatusView, at: float, now: float) -> None:
        """Show ``view`` from ``at`` on (``at <= now``: at once, after queued ones)."""
        self.shown(now)
        pending = self._pending
        if not pending and at <= now:
            self._current = view
            return
        if pending is None:
            pending = self._pending = collections.deque()
        if pending:
            at = max(at, pending[-1][0])
        pending.append((at, view))

    def shown(self, now: float) -> StatusView:
        """The picture visible at ``now``."""
        pending = self._pending
        while pending and pending[0][0] <= now:
            self._current = pending.popleft()[1]
        return self._current
