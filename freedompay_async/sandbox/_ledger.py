"""The sandbox's record of payments and what init, the buyer, cancel, clearing and refund
did to them."""

from __future__ import annotations

import collections
from collections.abc import Iterator, Mapping
from decimal import Decimal

import attrs

from ._view import RefundRecord, StatusView, ViewQueue

__all__ = [
    "ARRIVALS_KEPT",
    "CANCELLED",
    "CLEARED",
    "FAILED",
    "HELD",
    "NEW",
    "LedgerEntry",
    "LedgerView",
    "Payment",
]

HELD = "held"
CANCELLED = "cancelled"
CLEARED = "cleared"
#: Created by init_payment, not paid yet.
NEW = "new"
#: The buyer's payment failed (or the merchant's check refused it).
FAILED = "failed"

#: The amount a payment is held for unless ``add_payments`` says otherwise.
DEFAULT_AMOUNT = Decimal("1000.00")
#: How many of a payment's latest request arrivals the ledger keeps.
ARRIVALS_KEPT = 64
_HELD_VIEW = StatusView(HELD)


@attrs.frozen
class LedgerEntry:
    """A snapshot of one payment in the sandbox ledger.

    ``state`` is ``"held"``, ``"cancelled"`` or ``"cleared"``, and for a payment made
    with ``init_payment`` also ``"new"`` (not paid yet) or ``"failed"``; ``order_id``
    is the order id it was made for (None for payments added with ``add_payments``,
    whose status names the order ``order-<id>``); ``revoke_id`` the
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

    Money is counted the same way: ``clearing_requests`` and ``refund_requests``
    count every request of that kind that passed the signature check (faulted ones
    included), ``clearings`` and ``refunds`` what was applied, and
    :attr:`money_movements` adds them up, so a test can assert "moved once".
    ``arrivals`` is ``(time, operation)`` of the latest requests about the payment
    (at most :data:`ARRIVALS_KEPT`, oldest first), on the gateway's clock, with the
    operation's script name (``cancel``, ``status_v2``, ``clearing``, ``refund``);
    it is left out of equality, as times differ from run to run.
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
    clearing_requests: int = 0
    refund_requests: int = 0
    arrivals: tuple[tuple[float, str], ...] = attrs.field(default=(), eq=False)
    order_id: str | None = None

    @property
    def refund_amount(self) -> Decimal:
        """The total refunded."""
        return sum((amount for _, amount in self.refunds), Decimal("0.00"))

    @property
    def money_movements(self) -> int:
        """Clearings plus refunds applied: how many times money moved."""
        return self.clearings + len(self.refunds)


class Payment:
    """The mutable ledger record behind a :class:`LedgerEntry` (internal)."""

    __slots__ = (
        "amount",
        "arrivals",
        "cancel_requests",
        "cancellations",
        "cancels_after_told",
        "checkout",
        "clearing_amount",
        "clearing_requests",
        "clearings",
        "created",
        "currency",
        "order_id",
        "refund_requests",
        "refunds",
        "requests",
        "revoke_id",
        "state",
        "status_requests",
        "told_cancelled",
        "views",
    )

    def __init__(
        self,
        amount: Decimal = DEFAULT_AMOUNT,
        currency: str = "KZT",
        created: str = "",
        state: str = HELD,
    ) -> None:
        self.state = state
        self.revoke_id: int | None = None
        self.requests = 0
        self.cancellations = 0
        self.amount = amount
        self.currency = currency
        self.clearing_amount: Decimal | None = None
        self.clearings = 0
        self.refunds: list[RefundRecord] = []
        self.status_requests = 0
        self.cancel_requests = 0
        self.cancels_after_told = 0
        self.clearing_requests = 0
        self.refund_requests = 0
        #: ``(time, operation)`` of the latest requests; created on the first one.
        self.arrivals: collections.deque[tuple[float, str]] | None = None
        #: When the payment was made, as the gateway writes dates.
        self.created = created
        #: An intact answer has told the client this payment is cancelled.
        self.told_cancelled = False
        #: What status_v2 shows, which may lag what the operations see (None: as it
        #: is, nothing published yet; most payments of a large batch never need more).
        self.views: ViewQueue | None = None
        #: The merchant's order id (init_payment), and what init_payment asked for
        #: (a ``Checkout``; None for payments added with ``add_payments``).
        self.order_id: str | None = None
        self.checkout: object | None = None

    @property
    def refund_amount(self) -> Decimal:
        """The total refunded so far."""
        return sum((r.amount for r in self.refunds), Decimal("0.00"))

    def arrived(self, at: float, operation: str) -> None:
        """Record a request about this payment (the latest :data:`ARRIVALS_KEPT`)."""
        if self.arrivals is None:
            self.arrivals = collections.deque(maxlen=ARRIVALS_KEPT)
        self.arrivals.append((at, operation))

    def view(self) -> StatusView:
        """The picture of this payment as it is now (for status_v2, once shown)."""
        if self.state == HELD:
            return _HELD_VIEW
        return StatusView(self.state, self.revoke_id, self.clearing_amount, tuple(self.refunds))

    def publish(self, at: float, now: float) -> None:
        """Let status_v2 show the payment as it is now, from ``at`` on (a payment with
        nothing published yet showed as held: init's payments publish at once)."""
        if self.views is None:
            self.views = ViewQueue(_HELD_VIEW)
        self.views.publish(self.view(), at, now)

    def shown(self, now: float) -> StatusView:
        """What status_v2 shows of the payment at ``now``."""
        return self.view() if self.views is None else self.views.shown(now)

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
            tuple((r.refund_id, r.amount) for r in self.refunds),
            self.status_requests,
            self.cancel_requests,
            self.cancels_after_told,
            self.clearing_requests,
            self.refund_requests,
            tuple(self.arrivals or ()),
            self.order_id,
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
