"""Redelivery-safe result callbacks: the answer given to each notification, kept.

Freedom Pay delivers a result notification again (every 30 minutes for 2 hours)
whenever it did not get HTTP 200, and "retry responses must match the original
response". The ready result handler therefore keeps the answer it gave each
notification in an :class:`AnswerStore`: a redelivery gets the stored answer without
reaching the application, and deliveries of one notification that arrive together
are handled one at a time, so the application sees each notification once.

A notification is known by its payment id and its ``pg_result``
(:func:`answer_key`): a failed attempt and a later success of one payment are two
notifications. Only an answer the application gave is stored: a notification it
raised on, or one that status did not confirm, is answered non-200 and comes again.

:class:`MemoryAnswerStore` (the default) keeps answers in this process, at most
``max_entries`` of them; a store on your database keeps them across restarts and
processes (docs/lifecycle.md shows one on sqlite3).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from .._exceptions import ConfigurationError
from ._messages import ResultNotify

__all__ = ["AnswerStore", "MemoryAnswerStore", "StoredAnswer", "answer_key"]

#: An answer as stored: ``(status, description)``, the status as text (``ok``,
#: ``rejected`` or ``error``).
StoredAnswer = tuple[str, str]


def answer_key(notify: ResultNotify) -> str:
    """The key a result notification's answer is stored under: ``"<payment id>:<result>"``."""
    return f"{notify.payment_id}:{notify.result}"


@runtime_checkable
class AnswerStore(Protocol):
    """Where the ready result handler keeps the answer given to each notification.

    ``get(key)`` returns the stored answer or None. ``put(key, answer)`` stores
    ``answer`` unless an answer is stored under ``key`` already, and returns the one
    stored (the first writer wins: two processes answering the same notification at
    once end with one answer). Both may raise: the delivery is then answered HTTP 500
    and comes again. Keys are short text (:func:`answer_key`).
    """

    async def get(self, key: str, /) -> StoredAnswer | None:
        """The answer stored under ``key``, or None."""
        ...

    async def put(self, key: str, answer: StoredAnswer, /) -> StoredAnswer:
        """Store ``answer`` under ``key`` unless one is there; return the stored one."""
        ...


class MemoryAnswerStore:
    """An :class:`AnswerStore` in this process's memory: at most ``max_entries`` answers,
    the oldest forgotten first (the gateway stops redelivering after 2 hours).

    Lost on restart and not shared between processes: for several workers, or a
    restart within the redelivery window, keep answers in your database.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError("max_entries must be an integer >= 1")
        self.max_entries = max_entries
        self._answers: collections.OrderedDict[str, StoredAnswer] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._answers)

    def __repr__(self) -> str:
        return f"<MemoryAnswerStore {len(self._answers)} of {self.max_entries} answers>"

    async def get(self, key: str, /) -> StoredAnswer | None:
        """The answer stored under ``key``, or None."""
        return self._answers.get(key)

    async def put(self, key: str, answer: StoredAnswer, /) -> StoredAnswer:
        """Store ``answer`` under ``key`` unless one is there; return the stored one."""
        stored = self._answers.setdefault(key, answer)
        while len(self._answers) > self.max_entries:
            self._answers.popitem(last=False)
        return stored


class KeyLocks:
    """One lock per key, kept only while a delivery holds or waits for it."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    def __len__(self) -> int:
        return len(self._held)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Run the block while no other block of ``key`` runs."""
        lock, users = self._held.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._held[key]
