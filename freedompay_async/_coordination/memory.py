"""The coordination protocol in one process's memory: for tests, benchmarks and one worker.

A session without a coordinator keeps its spacing and money locks in structures of its
own, tuned for its hot path; :class:`MemoryCoordinator` is the protocol's reference
implementation on plain dicts, with the same rules as the Redis one (and a clock of its
own), so code written against the protocol can be tried without a server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs

from .._exceptions import ConfigurationError
from .base import Claim

__all__ = ["DEFAULT_LEASE_TTL", "DEFAULT_NOTE_TTL", "MemoryCoordinator", "check_ttl"]

#: Seconds a money lease lives without renewal (a holder renews it every third of that).
DEFAULT_LEASE_TTL = 10.0
#: Seconds a note about an unsettled money movement is kept after it was last written.
DEFAULT_NOTE_TTL = 86400.0
#: How often expired entries are swept out (seconds of the coordinator's clock).
_SWEEP_EVERY = 1.0


def check_ttl(name: str, value: object) -> float:
    """``value`` as a positive number of seconds, or ConfigurationError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds")
    return float(value)


@attrs.define
class _Start:
    at: float
    token: str
    previous: float | None
    expires: float
    interval: float
    ended: float | None = None

    @property
    def counted_from(self) -> float:
        """What the next start counts from: the start, or its reported end."""
        return self.at if self.ended is None else max(self.at, self.ended)


@attrs.define
class _Lease:
    token: str
    expires: float


@attrs.define
class _Notes:
    values: dict[str, str]
    expires: float


class MemoryCoordinator:
    """:class:`~freedompay_async.Coordinator` in this process's memory.

    Shares nothing between processes: use it to try code against the protocol, in tests
    (``clock`` is injectable) and to measure what coordination itself costs. Entries
    expire like the Redis ones: a start after its interval, a lease ``lease_ttl``
    seconds after it was last renewed, a payment's notes ``note_ttl`` seconds after one
    was last written.
    """

    def __init__(
        self,
        *,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        note_ttl: float = DEFAULT_NOTE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lease_ttl = check_ttl("lease_ttl", lease_ttl)
        self._note_ttl = check_ttl("note_ttl", note_ttl)
        self._clock = clock
        self._starts: dict[int, _Start] = {}
        self._leases: dict[int, _Lease] = {}
        self._notes: dict[int, _Notes] = {}
        self._next_sweep = clock() + _SWEEP_EVERY

    def __repr__(self) -> str:
        return f"<MemoryCoordinator lease_ttl={self._lease_ttl:g} payments={len(self)}>"

    def __len__(self) -> int:
        """Payments with live state of any kind (expired entries may linger for a second)."""
        return len(self._starts.keys() | self._leases.keys() | self._notes.keys())

    @property
    def lease_ttl(self) -> float:
        """Seconds a lease lives after it was taken or last renewed."""
        return self._lease_ttl

    def _now(self) -> float:
        now = self._clock()
        if now >= self._next_sweep:
            self._next_sweep = now + _SWEEP_EVERY
            for table in (self._starts, self._leases, self._notes):
                _sweep(table, now)
        return now

    async def start(self, payment_id: int, interval: float, token: str) -> float:
        """Claim an attempt's start now (0.0), or the seconds until one is free."""
        now = self._now()
        last = self._starts.get(payment_id)
        previous = None
        if last is not None and last.expires > now:
            previous = last.previous if last.token == token else last.counted_from
            if previous is not None and now < previous + interval:
                return previous + interval - now
        self._starts[payment_id] = _Start(now, token, previous, now + interval, interval)
        return 0.0

    async def finish(self, payment_id: int, token: str, elapsed: float) -> None:
        """Count the next start from the end of ``token``'s attempt, if still the latest."""
        now = self._now()
        last = self._starts.get(payment_id)
        if last is None or last.token != token or last.expires <= now:
            return
        last.ended = last.at + max(elapsed, 0.0)
        last.expires = max(last.expires, last.ended + last.interval)

    def _holder(self, payment_id: int, now: float) -> _Lease | None:
        lease = self._leases.get(payment_id)
        return lease if lease is not None and lease.expires > now else None

    async def acquire(self, payment_id: int, token: str) -> Claim:
        """Take (or renew) the lease for ``token`` unless another token holds it."""
        now = self._now()
        lease = self._holder(payment_id, now)
        if lease is not None and lease.token != token:
            return Claim(False, retry_in=lease.expires - now)
        self._leases[payment_id] = _Lease(token, now + self._lease_ttl)
        notes = self._notes.get(payment_id)
        live = dict(notes.values) if notes is not None and notes.expires > now else {}
        return Claim(True, notes=live)

    async def renew(self, payment_id: int, token: str) -> bool:
        """Extend ``token``'s lease; False when it does not hold it."""
        now = self._now()
        lease = self._holder(payment_id, now)
        if lease is None or lease.token != token:
            return False
        lease.expires = now + self._lease_ttl
        return True

    async def release(self, payment_id: int, token: str) -> None:
        """Give up ``token``'s lease."""
        lease = self._holder(payment_id, self._now())
        if lease is not None and lease.token == token:
            del self._leases[payment_id]

    async def note(self, payment_id: int, token: str, name: str, value: str | None) -> bool:
        """Set or remove a note while ``token`` holds the lease."""
        now = self._now()
        lease = self._holder(payment_id, now)
        if lease is None or lease.token != token:
            return False
        notes = self._notes.get(payment_id)
        if notes is None or notes.expires <= now:
            notes = self._notes[payment_id] = _Notes({}, now)
        if value is None:
            notes.values.pop(name, None)
        else:
            notes.values[name] = value
            notes.expires = now + self._note_ttl
        if not notes.values:
            del self._notes[payment_id]
        return True

    async def aclose(self) -> None:
        """Nothing to release."""


def _sweep(table: dict[int, Any], now: float) -> None:
    expired = [pid for pid, entry in table.items() if entry.expires <= now]
    for pid in expired:
        del table[pid]
