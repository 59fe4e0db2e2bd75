"""How long and how often the settle loop asks status before it gives an answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from .._exceptions import ConfigurationError

__all__ = ["SettlePolicy"]


def _non_negative(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigurationError(f"{attribute.name} must be a number >= 0")


def _count(_instance: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{attribute.name} must be an integer >= 0")


@attrs.frozen
class SettlePolicy:
    """The settle window: how an attempt whose outcome is open is settled by status.

    When an attempt may have been acted on without a reply that says so (a timeout, a
    lost connection, a garbled or forged reply, a claim that names no payment), the
    session asks ``/g2g/status_v2`` about the payment instead of guessing:

    - ``window``: seconds during which status is watched after the last send before
      anything that moves money (a clearing, a refund) is sent again. Status lags a
      clearing or a refund by seconds on the real gateway, and a slow gateway may still
      be processing the first request: only a window of status with no trace of it lets
      the request go out again. A cancel, which the gateway answers "already cancelled"
      when repeated, is sent again as soon as status shows the payment still held.
    - ``poll_initial``, ``poll_factor``, ``poll_max``: the wait between status queries,
      growing from ``poll_initial`` by ``poll_factor`` up to ``poll_max`` seconds (the
      per-payment spacing keeps queries about one payment apart on top of this).
    - ``resends``: how many times one call may send its request again after status
      showed no trace of it (0: never).
    - ``clock`` and ``sleep`` are injectable so tests run in virtual time.

    ``SettlePolicy()`` watches for 60 s; ``SettlePolicy(window=120)`` suits a gateway
    slower than its attempt timeout.
    """

    window: float = attrs.field(default=60.0, validator=_non_negative)
    poll_initial: float = attrs.field(default=2.0, validator=_non_negative)
    poll_factor: float = attrs.field(default=2.0, validator=_non_negative)
    poll_max: float = attrs.field(default=15.0, validator=_non_negative)
    resends: int = attrs.field(default=2, validator=_count)
    clock: Callable[[], float] = attrs.field(default=time.monotonic, eq=False, repr=False)
    sleep: Callable[[float], Awaitable[None]] = attrs.field(
        default=asyncio.sleep, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        if self.poll_factor < 1:
            raise ConfigurationError("poll_factor must be >= 1")

    def delays(self) -> _Delays:
        """The waits between status queries, one call's worth."""
        return _Delays(self)


class _Delays:
    __slots__ = ("_next", "_policy")

    def __init__(self, policy: SettlePolicy) -> None:
        self._policy = policy
        self._next = policy.poll_initial

    def restart(self) -> None:
        """After a send: the next wait is the first one again."""
        self._next = self._policy.poll_initial

    def take(self) -> float:
        """The next wait, and grow the one after it."""
        delay = self._next
        policy = self._policy
        self._next = min(delay * policy.poll_factor, policy.poll_max)
        return delay
