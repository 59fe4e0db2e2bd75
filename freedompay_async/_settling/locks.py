"""One lock per payment id, kept only while a call holds or waits for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["PaymentLocks"]


class _Held:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # holding or waiting


class PaymentLocks:
    """One lock per payment id, kept only while a call holds or waits for it."""

    def __init__(self) -> None:
        self._held: dict[int, _Held] = {}

    def __len__(self) -> int:
        return len(self._held)

    @contextlib.asynccontextmanager
    async def hold(self, payment_id: int) -> AsyncIterator[None]:
        """Run the block while no other block of this payment id runs."""
        held = self._held.get(payment_id) or self._held.setdefault(payment_id, _Held())
        held.users += 1
        try:
            async with held.lock:
                yield
        finally:
            held.users -= 1
            if not held.users:
                del self._held[payment_id]
