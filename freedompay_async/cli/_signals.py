"""Signal handling for a run: the first SIGINT/SIGTERM/SIGHUP drains it, a second abandons
the requests in flight, a third exits at once.

A dropped ssh session sends SIGHUP: it is handled exactly like SIGTERM, so the journal
is flushed and the summary printed (to wherever stdout still goes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from typing import Any, TextIO

from ._exit import EXIT_INTERRUPTED, PROG
from ._journal import Journal, JournalError

__all__ = ["DEFAULT_GRACE", "Interrupt"]

#: Seconds the first signal waits for the replies in flight (``--grace``).
DEFAULT_GRACE = 10.0
_SIGNALS = tuple(
    sig for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if sig
)


class Interrupt:
    """Signal handling for one command.

    First signal: if a run is draining-capable (:attr:`on_drain` set), it stops sending
    new requests and waits up to ``grace`` seconds for the replies in flight; otherwise
    the task is cancelled. Second signal, or the grace period running out: the task is
    cancelled, abandoning what is in flight. Third: the watched journals are fsynced
    and the process exits with 130 at once.
    """

    def __init__(self, err: TextIO, *, grace: float = DEFAULT_GRACE) -> None:
        self.requested = False
        self.abandoned = False
        self.grace = grace
        #: Called with the signal's name on the first signal while a run is going.
        self.on_drain: Callable[[str], None] | None = None
        #: How many requests are in flight (for the message), if known.
        self.in_flight: Callable[[], int] | None = None
        self._err = err
        self._task: asyncio.Task[Any] | None = None
        self._journals: list[Journal] = []
        self._installed: list[signal.Signals] = []
        self._timer: asyncio.TimerHandle | None = None
        self._signals = 0

    def install(self) -> None:
        """Take over SIGINT, SIGTERM and SIGHUP for the current task."""
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for sig in _SIGNALS:
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
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def watch(self, journal: Journal) -> None:
        """fsync ``journal`` if a third signal forces an immediate exit."""
        self._journals.append(journal)

    def _say(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            print(f"{PROG}: {text}", file=self._err, flush=True)

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals >= 3 or (self.abandoned and self._signals >= 2):
            self._say(f"{sig.name} again: exiting now")
            for journal in self._journals:
                with contextlib.suppress(OSError, JournalError):
                    journal.sync()
            os._exit(EXIT_INTERRUPTED)
        if self.requested:
            self._abandon(f"{sig.name} again")
            return
        self.requested = True
        on_drain = self.on_drain
        if on_drain is None:
            self._say(f"{sig.name}: stopping; the journal is being flushed")
            self._cancel()
            return
        flying = self.in_flight() if self.in_flight is not None else None
        waiting = f"{flying} requests in flight" if flying is not None else "requests in flight"
        self._say(
            f"{sig.name}: sending no new requests; waiting up to {self.grace:g} s for the "
            f"{waiting} (signal again to abandon them)"
        )
        on_drain(sig.name)
        self._timer = asyncio.get_running_loop().call_later(
            self.grace, self._abandon, f"grace period of {self.grace:g} s over"
        )

    def _abandon(self, why: str) -> None:
        if self.abandoned:
            return
        self.abandoned = True
        self._say(f"{why}: abandoning the requests in flight (their outcome is unknown)")
        self._cancel()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def draining(self, on_drain: Callable[[str], None], in_flight: Callable[[], int]) -> None:
        """Route the first signal to ``on_drain`` from now on (until :meth:`done_draining`)."""
        self.on_drain = on_drain
        self.in_flight = in_flight

    def done_draining(self) -> None:
        """Back to cancelling on a first signal; the grace timer is stopped."""
        self.on_drain = None
        self.in_flight = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def swallow(self) -> None:
        """Call in an ``except CancelledError`` block: re-raise unless we caused it."""
        task = asyncio.current_task()
        if not self.requested or task is None:
            raise asyncio.CancelledError
        task.uncancel()
