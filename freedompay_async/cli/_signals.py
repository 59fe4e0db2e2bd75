"""Signal handling for a run: the first SIGINT/SIGTERM stops it, a second exits at once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any, TextIO

from ._journal import Journal, JournalError
from ._report import EXIT_INTERRUPTED, PROG

__all__ = ["Interrupt"]


class Interrupt:
    """SIGINT/SIGTERM handling: the first signal cancels the run (which then flushes the
    journal and prints the summary); a second one exits at once."""

    def __init__(self, err: TextIO) -> None:
        self.requested = False
        self._err = err
        self._task: asyncio.Task[Any] | None = None
        self._journals: list[Journal] = []
        self._installed: list[signal.Signals] = []

    def install(self) -> None:
        """Take over SIGINT and SIGTERM for the current task."""
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                continue
            self._installed.append(sig)

    def uninstall(self) -> None:
        """Give the signals back."""
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed = []

    def watch(self, journal: Journal) -> None:
        """fsync ``journal`` if a second signal forces an immediate exit."""
        self._journals.append(journal)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.requested:
            print(f"{PROG}: {sig.name} again: exiting now", file=self._err, flush=True)
            for journal in self._journals:
                with contextlib.suppress(OSError, JournalError):
                    journal.sync()
            os._exit(EXIT_INTERRUPTED)
        self.requested = True
        print(
            f"{PROG}: {sig.name}: stopping; the journal is being flushed",
            file=self._err,
            flush=True,
        )
        if self._task is not None:
            self._task.cancel()

    def swallow(self) -> None:
        """Call in an ``except CancelledError`` block: re-raise unless we caused it."""
        task = asyncio.current_task()
        if not self.requested or task is None:
            raise asyncio.CancelledError
        task.uncancel()
