"""What keeps one payment's clearings and refunds one at a time: a lock or a lease.

A clearing or refund is judged by what status shows before and after it, so nothing
else may move the payment meanwhile. Within one process a lock per payment does it
(:class:`LocalGuard`, the default); across a fleet a lease from a coordinator does
(:class:`LeaseGuard`), and the lease also carries notes about movements a holder may
have sent without settling them, for whoever holds it next.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Protocol

from .._coordination.base import Coordinator
from .._coordination.lease import hold_lease
from .locks import PaymentLocks

__all__ = ["Held", "LeaseGuard", "LocalGuard", "MoneyGuard"]


class Held(Protocol):
    """A payment held for one money movement."""

    @property
    def notes(self) -> Mapping[str, str]:
        """Notes earlier holders left about movements they did not settle."""
        ...

    async def check(self) -> None:
        """Still held? Raises a CoordinationError when not (before a send or a confirmation)."""
        ...

    async def write(self, name: str, value: str) -> None:
        """Leave a note about a movement about to be sent."""
        ...

    async def drop(self, name: str) -> None:
        """Remove a note once its movement is settled."""
        ...


class MoneyGuard(Protocol):
    """Holds a payment for one money movement at a time."""

    def hold(self, payment_id: int) -> contextlib.AbstractAsyncContextManager[Held]:
        """Hold ``payment_id`` while the block runs."""
        ...


class _InProcess:
    """Held under an in-process lock: nothing to check, no notes (a process that dies
    takes its lock with it)."""

    notes: Mapping[str, str] = MappingProxyType({})

    async def check(self) -> None:
        """Always held."""

    async def write(self, name: str, value: str) -> None:
        """No notes in one process."""

    async def drop(self, name: str) -> None:
        """No notes in one process."""


_HELD = _InProcess()


class LocalGuard:
    """One lock per payment id in this process (the session's default)."""

    def __init__(self) -> None:
        self.locks = PaymentLocks()

    @contextlib.asynccontextmanager
    async def hold(self, payment_id: int) -> AsyncIterator[Held]:
        """Hold the payment's lock while the block runs."""
        async with self.locks.hold(payment_id):
            yield _HELD


class LeaseGuard:
    """The payment's lease from ``coordinator``, shared by a fleet."""

    def __init__(
        self, coordinator: Coordinator, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        self.coordinator = coordinator
        self._sleep = sleep

    def hold(self, payment_id: int) -> contextlib.AbstractAsyncContextManager[Held]:
        """Hold the payment's lease while the block runs."""
        return hold_lease(self.coordinator, payment_id, sleep=self._sleep)
