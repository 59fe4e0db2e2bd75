"""Fault kinds the sandbox can inject, and a deterministic plan for random faults."""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Iterable
from typing import Any, ClassVar

import attrs

__all__ = ["DEFAULT_KINDS", "MONEY_KINDS", "Fault", "FaultPlan"]


class Fault(enum.Enum):
    """A way the sandbox misbehaves on one request (cancel, status_v2, clearing, refund).

    "No processing" kinds leave the ledger alone; the others apply the operation first
    (or find it already done), so the client cannot tell from what it sees whether the
    payment changed: exactly the ambiguity a retrying client must survive. The money
    kinds (:data:`MONEY_KINDS`: ``SLOW_PROCESSING``, ``LOST_REPLY``) are opt-in: a
    :class:`FaultPlan` draws them only when its ``kinds`` name them.
    """

    #: Abort the TCP connection before processing (no ledger change).
    RESET_BEFORE = "reset_before"
    #: Apply the cancel to the ledger, then abort the connection (the ambiguous case).
    RESET_AFTER = "reset_after"
    #: HTTP 503 with an HTML body, no processing.
    HTTP_503 = "http_503"
    #: HTTP 429 with ``Retry-After: <plan.retry_after>``, no processing.
    HTTP_429 = "http_429"
    #: A signed ``pg_status=error`` reply with ``pg_error_code`` 9999, no processing.
    ERROR_9999 = "error_9999"
    #: Apply the cancel, then answer HTTP 200 with a body that is not XML.
    GARBAGE = "garbage"
    #: Apply the cancel, then wait ``plan.slow_delay`` seconds before answering normally.
    SLOW = "slow"
    #: Apply the cancel, then answer a normal-looking "ok" reply whose ``pg_sig`` is wrong.
    FORGED = "forged"
    #: Take ``plan.processing_delay`` seconds *before* applying the operation, then
    #: apply it and answer normally. The operation is applied even if the client gave
    #: up meanwhile: a status query in between still sees the payment as it was.
    SLOW_PROCESSING = "slow_processing"
    #: Apply the operation, then never answer: hold the connection open until the
    #: client goes away (at most ``max(4 * plan.processing_delay, 60)`` seconds, then
    #: drop it), so the client sees its own timeout rather than a reset.
    LOST_REPLY = "lost_reply"

    @classmethod
    def parse(cls, text: str) -> Fault:
        """A fault from its value or name, case-insensitive (``"http_503"``, ``"HTTP_503"``)."""
        key = text.strip().lower()
        for fault in cls:
            if fault.value == key:
                return fault
        raise ValueError(f"unknown fault kind {text!r}; known: {', '.join(f.value for f in cls)}")


#: The kinds a :class:`FaultPlan` draws from by default, in this order: every kind but
#: the money kinds. Unchanged since the money kinds were added, so a seeded plan
#: faults the same requests, with the same kinds, as before.
DEFAULT_KINDS: tuple[Fault, ...] = (
    Fault.RESET_BEFORE,
    Fault.RESET_AFTER,
    Fault.HTTP_503,
    Fault.HTTP_429,
    Fault.ERROR_9999,
    Fault.GARBAGE,
    Fault.SLOW,
    Fault.FORGED,
)
#: The opt-in kinds that model a slow or silent money movement.
MONEY_KINDS: tuple[Fault, ...] = (Fault.SLOW_PROCESSING, Fault.LOST_REPLY)


def _kinds(value: Iterable[Fault]) -> tuple[Fault, ...]:
    kinds = tuple(value)
    for kind in kinds:
        if not isinstance(kind, Fault):
            raise TypeError(f"FaultPlan kinds must be Fault members, got {kind!r}")
    return kinds


def _rate(_instance: object, _attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"fault rate must be within [0, 1], got {value!r}")


def _non_negative(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _finite(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


_SCALE = float(1 << 64)


@attrs.frozen
class FaultPlan:
    """Deterministic random faults: each request gets one with probability ``rate``.

    The choice for a request depends only on ``(seed, payment_id, n)``, where ``n`` is
    the 0-based count of earlier valid requests for that payment id, never on the
    arrival order across ids. The same plan therefore faults the same attempts however
    many tasks race, and a test can replay a run exactly. ``slow_delay`` is how long a
    :attr:`Fault.SLOW` reply waits; ``retry_after`` the seconds sent with an HTTP 429;
    ``processing_delay`` how long a :attr:`Fault.SLOW_PROCESSING` operation takes
    before it is applied (and a quarter of how long a :attr:`Fault.LOST_REPLY` holds
    the connection, which is at least 60 s).

    ``kinds`` defaults to :data:`DEFAULT_KINDS` (every kind but the money kinds); add
    :data:`MONEY_KINDS` to draw those too, e.g.
    ``FaultPlan(rate=0.1, kinds=FaultPlan.DEFAULT_KINDS + FaultPlan.MONEY_KINDS)``.
    """

    #: :data:`DEFAULT_KINDS`, also reachable from the class.
    DEFAULT_KINDS: ClassVar[tuple[Fault, ...]] = DEFAULT_KINDS
    #: :data:`MONEY_KINDS`, also reachable from the class.
    MONEY_KINDS: ClassVar[tuple[Fault, ...]] = MONEY_KINDS

    rate: float = attrs.field(default=0.0, validator=_rate)
    kinds: tuple[Fault, ...] = attrs.field(default=DEFAULT_KINDS, converter=_kinds)
    seed: int = 0
    slow_delay: float = attrs.field(default=0.2, validator=_non_negative)
    retry_after: int = attrs.field(default=1, validator=_non_negative)
    processing_delay: float = attrs.field(default=2.5, validator=_finite)

    def choose(self, payment_id: int, n: int) -> Fault | None:
        """The fault for request number ``n`` (0-based) of ``payment_id``, or None."""
        if self.rate <= 0.0 or not self.kinds:
            return None
        key = f"freedompay-sandbox:{self.seed}:{payment_id}:{n}".encode()
        digest = hashlib.blake2b(key, digest_size=16).digest()
        draw = int.from_bytes(digest[:8], "big") / _SCALE  # uniform in [0, 1)
        if draw >= self.rate:
            return None
        return self.kinds[int.from_bytes(digest[8:], "big") % len(self.kinds)]
