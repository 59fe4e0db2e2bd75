"""The sandbox's record of held payments and what cancel requests did to them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import attrs

__all__ = ["CANCELLED", "HELD", "LedgerEntry", "LedgerView", "Payment"]

HELD = "held"
CANCELLED = "cancelled"


@attrs.frozen
class LedgerEntry:
    """A snapshot of one payment in the sandbox ledger.

    ``state`` is ``"held"`` or ``"cancelled"``; ``revoke_id`` the
    ``pg_payment_revoke_id`` given when it was cancelled; ``requests`` counts cancel
    requests for it that passed the signature check (faulted ones included);
    ``cancellations`` counts held -> cancelled transitions, so it is never more than 1.
    """

    payment_id: int
    state: str
    revoke_id: int | None
    requests: int
    cancellations: int


class Payment:
    """The mutable ledger record behind a :class:`LedgerEntry` (internal)."""

    __slots__ = ("cancellations", "requests", "revoke_id", "state")

    def __init__(self) -> None:
        self.state = HELD
        self.revoke_id: int | None = None
        self.requests = 0
        self.cancellations = 0

    def snapshot(self, payment_id: int) -> LedgerEntry:
        """A frozen copy of this record."""
        return LedgerEntry(
            payment_id, self.state, self.revoke_id, self.requests, self.cancellations
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
