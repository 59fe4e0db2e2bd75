"""What a session knows of its own recent refunds, so a lagging status cannot hide them.

Status lags a refund by seconds on the real gateway. A refund's baseline (the refunded
total and the refund entries before it is sent) read within that lag of an earlier
refund of the same payment would not show the earlier one; if the new refund's outcome
is then left open, the earlier refund appearing in status would look like the new
one's proof. The session remembers the refunds it knows happened (each one's refund id
and amount) for a while; a refund's baseline, and every status reading while it is
settled, are completed with those status does not show yet
(:meth:`~freedompay_async.RefundBaseline.with_refunds`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

__all__ = ["RecentRefunds"]

#: Refunds remembered per payment, newest kept: far more than status lag leaves room for.
_PER_PAYMENT = 32
#: Every this many refunds remembered, payments whose refunds have all aged out are
#: dropped, so a long-running session's memory stays bounded.
_SWEEP_EVERY = 1024


class RecentRefunds:
    """Per payment: the refunds this session knows happened in the last ``horizon``
    seconds, as ``(refund id, amount, when)``."""

    def __init__(self, horizon: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._horizon = horizon
        self._clock = clock
        self._known: dict[int, list[tuple[int, Decimal, float]]] = {}
        self._until_sweep = _SWEEP_EVERY

    def __len__(self) -> int:
        return len(self._known)

    def remember(self, payment_id: int, refund_id: int | None, amount: Decimal) -> None:
        """Note a refund of ``payment_id`` that is known to have happened. One without
        a refund id cannot be told apart in status, and is not kept."""
        if refund_id is None:
            return
        entries = self._known.setdefault(payment_id, [])
        entries.append((refund_id, amount, self._clock()))
        del entries[:-_PER_PAYMENT]
        self._until_sweep -= 1
        if not self._until_sweep:
            self._until_sweep = _SWEEP_EVERY
            for pid in list(self._known):
                self._fresh(pid)

    def known(self, payment_id: int) -> tuple[tuple[int, Decimal], ...]:
        """The refunds ``(refund id, amount)`` of ``payment_id`` remembered now."""
        return tuple((rid, amount) for rid, amount, _ in self._fresh(payment_id))

    def _fresh(self, payment_id: int) -> list[tuple[int, Decimal, float]]:
        entries = self._known.get(payment_id)
        if not entries:
            return []
        cutoff = self._clock() - self._horizon
        fresh = [entry for entry in entries if entry[2] >= cutoff]
        if fresh:
            self._known[payment_id] = fresh
        else:
            del self._known[payment_id]
        return fresh
