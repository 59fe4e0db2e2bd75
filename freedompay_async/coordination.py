"""Coordination for fleets: what workers acting on the same payments must share.

``AsyncSession(..., coordinator=...)`` keeps the per-payment spacing and the lease on
each payment's clearings and refunds in a :class:`Coordinator` instead of the process:

- :class:`RedisCoordinator` (the ``redis`` extra) for a fleet of processes or machines:
  ``AsyncSession(credentials, coordinator=RedisCoordinator.from_url(url))``;
- :class:`MemoryCoordinator`, the protocol in this process's memory, to try code
  against the protocol and to measure what coordination costs.

Without a coordinator (the default) a session keeps both in structures of its own,
which hold within the process. See ``docs/fleet.md`` for when a fleet needs one.
"""

from ._coordination.base import Claim, Coordinator, new_token
from ._coordination.memory import DEFAULT_LEASE_TTL, DEFAULT_NOTE_TTL, MemoryCoordinator
from ._coordination.redis_coordinator import DEFAULT_PREFIX, DEFAULT_TIMEOUT, RedisCoordinator
from ._exceptions import CoordinationError, CoordinationUnavailableError, LeaseLostError

__all__ = [
    "DEFAULT_LEASE_TTL",
    "DEFAULT_NOTE_TTL",
    "DEFAULT_PREFIX",
    "DEFAULT_TIMEOUT",
    "Claim",
    "CoordinationError",
    "CoordinationUnavailableError",
    "Coordinator",
    "LeaseLostError",
    "MemoryCoordinator",
    "RedisCoordinator",
    "new_token",
]
