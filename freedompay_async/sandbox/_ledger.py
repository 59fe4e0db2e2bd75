"""The sandbox's record of payments and what cancel, clearing and refund did to them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal

import attrs

__all__ = ["CANCELLED", "CLEARED", "HELD", "LedgerEntry", "LedgerView", "Payment"]

HELD = "held"
CANCELLED = "cancelled"
CLEARED = "cleared"

#: The amount a payment is held for unless ``add_payments`` says otherwise.
DEFAULT_AMOUNT = Decimal("1000.00")


@attrs.frozen
class LedgerEntry:
    """A snapshot of one payment in the sandbox ledger.

    ``state`` is ``"held"``, ``"cancelled"`` or ``"cleared"``; ``revoke_id`` the
    ``pg_payment_revoke_id`` given when it was cancelled; ``requests`` counts requests
    about it (every operation) that passed the signature check, faulted ones included;
    ``cancellations`` counts held -> cancelled transitions and ``clearings`` held ->
    cleared ones, so neither is ever more than 1. ``amount`` is the held amount,
    ``clearing_amount`` what was cleared, ``refund_amount`` the sum of ``refunds``
    (``(refund_id, amount)`` pairs), never more than the cleared amount.

    Since a real gateway answers a second cancel "already cancelled" (10033), a
    payment is never cancelled twice; what a client can get wrong is *asking* again.
    ``cancel_requests`` counts every cancel request about it, and
    ``cancels_after_told`` those that arrived after an answer that was delivered
    intact had told the client it was cancelled (a cancel's success, a 10033, or
    status "revoked"): a client that keeps track of outcomes sends none.
    """

    payment_id: int
    state: str
    revoke_id: int | None
    requests: int
    cancellations: int
    amount: Decimal = DEFAULT_AMOUNT
    currency: str = "KZT"
    clearing_amount: Decimal | None = None
    clearings: int = 0
    refunds: tuple[tuple[int, Decimal], ...] = ()
    status_requests: int = 0
    cancel_requests: int = 0
    cancels_after_told: int = 0

    @property
    def refund_amount(self) -> Decimal:
        """The total refunded."""
        return sum((amount for _, amount in self.refunds), Decimal("0.00"))


class Payment:
    """The mutable ledger record behind a :class:`LedgerEntry` (internal)."""

    __slots__ = (
        "amount",
        "cancel_requests",
        "cancellations",
        "cancels_after_told",
        "clearing_amount",
        "clearings",
        "currency",
        "refunds",
        "requests",
        "revoke_id",
        "state",
        "status_requests",
        "told_cancelled",
    )

    def __init__(self, amount: Decimal = DEFAULT_AMOUNT, currency: str = "KZT") -> None:
        self.state = HELD
        self.revoke_id: int | None = None
        self.requests = 0
        self.cancellations = 0
        self.amount = amount
        self.currency = currency
        self.clearing_amount: Decimal | None = None
        self.clearings = 0
        self.refunds: list[tuple[int, Decimal]] = []
        self.status_requests = 0
        self.cancel_requests = 0
        self.cancels_after_told = 0
        #: An intact answer has told the client this payment is cancelled.
        self.told_cancelled = False

    @property
    def refund_amount(self) -> Decimal:
        """The total refunded so far."""
        return sum((amount for _, amount in self.refunds), Decimal("0.00"))

    def snapshot(self, payment_id: int) -> LedgerEntry:
        """A frozen copy of this record."""
        return LedgerEntry(
            payment_id,
            self.state,
            self.revoke_id,
            self.requests,
            self.cancellations,
            self.amount,
            self.currency,
            self.clearing_amount,
            self.clearings,
            tuple(self.refunds),
            self.status_requests,
            self.cancel_requests,
            self.cancels_after_told,
        )


class LedgerView(Mapping[int, LedgerEntry]):
    """A read-only, live view of the ledger: each lookup returns a frozen snapshot.

    Iteration runs over a copy of the ids, so requests arriving meanwhile cannot break
    it. Lookups are O(1), so ``gateway.ledger[pid]`` in a loop stays cheap.
    """

    __slots__ = ("_payments",)

    def __init__(self, payments: Mapping[int, Payment]) -> None:
        self._payments = payments

    def __getitem__(self, payment_id: int) -> LedgerEntry:
        return self._payments[payment_id].snapshot(payment_id)

    def __contains__(self, payment_id: object) -> bool:
        return payment_id in self._payments

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._payments))

    def __len__(self) -> int:
        return len(self._payments)

    def __repr__(self) -> str:
        return f"<sandbox ledger of {len(self._payments)} payments>"
