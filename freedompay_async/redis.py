"""The Redis coordinator for fleets (the ``redis`` extra): see :mod:`freedompay_async.coordination`.

``AsyncSession(credentials, coordinator=RedisCoordinator.from_url("redis://host:6379/0"))``
"""

from ._coordination.redis_coordinator import RedisCoordinator
from ._exceptions import CoordinationUnavailableError, LeaseLostError

__all__ = ["CoordinationUnavailableError", "LeaseLostError", "RedisCoordinator"]
