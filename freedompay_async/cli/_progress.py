"""Progress reporting for the command line: a tqdm bar on a terminal, plain lines otherwise.

tqdm is optional (``pip install freedompay_async[cli]``); without it, or when stderr
is not a terminal, progress is a plain line every ``interval`` seconds and one at
the end: ``progress: 1200/3000 (40.0%), 812.4/s, eta 2s``, followed by the problem
counts and, given a ``status`` callable, the live attempt figures (retries, timeouts,
requests in flight), so a run whose every request hangs does not look idle.
"""

from __future__ import annotations

import importlib
import math
import os
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

__all__ = ["PlainProgress", "Progress", "make_progress"]

#: States shown as "problems" next to the progress figures.
_PROBLEMS = ("failed", "unknown", "pending")


class Progress(Protocol):
    """What the batch runner needs from a progress display."""

    def advance(self, state: str) -> None:
        """One more id is done, with this outcome state."""

    def tick(self) -> None:
        """Called every half second or so, even when nothing completes."""

    def close(self) -> None:
        """Show the final figures and release the display."""

    def write(self, line: str) -> None:
        """Print a whole message line without garbling the display (above a bar)."""


def _format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class _Counts:
    def __init__(self) -> None:
        self.done = 0
        self.problems: dict[str, int] = {}

    def add(self, state: str) -> None:
        self.done += 1
        if state in _PROBLEMS:
            self.problems[state] = self.problems.get(state, 0) + 1

    def problem_text(self) -> str:
        return ", ".join(f"{state} {count}" for state, count in sorted(self.problems.items()))


class NullProgress:
    """Shows no progress (messages are still printed on ``stream``)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, line: str) -> None:
        """Print ``line``."""
        print(line, file=self.stream, flush=True)

    def advance(self, state: str) -> None:
        """Ignore."""

    def tick(self) -> None:
        """Ignore."""

    def close(self) -> None:
        """Ignore."""


class PlainProgress:
    """One line every ``interval`` seconds (and at the end): done/total, rate, ETA."""

    def __init__(
        self,
        total: int | None,
        stream: TextIO,
        *,
        interval: float = 2.0,
        label: str = "progress",
        clock: Callable[[], float] = time.monotonic,
        status: Callable[[], str] | None = None,
    ) -> None:
        self.total = total
        self._status = status
        self.stream = stream
        self.interval = interval
        self.label = label
        self._clock = clock
        self._start = clock()
        self._last_print = self._start
        self._counts = _Counts()
        self._closed = False

    def line(self) -> str:
        """The current progress line."""
        done = self._counts.done
        elapsed = max(self._clock() - self._start, 1e-9)
        rate = done / elapsed
        if self.total is not None:
            pct = 100.0 * done / self.total if self.total else 100.0
            left = self.total - done
            eta = 0.0 if left <= 0 else (left / rate if rate > 0 else math.inf)
            text = (
                f"{self.label}: {done}/{self.total} ({pct:.1f}%), {rate:.1f}/s, "
                f"eta {_format_eta(eta)}"
            )
        else:
            text = f"{self.label}: {done} done, {rate:.1f}/s"
        problems = self._counts.problem_text()
        text = f"{text} [{problems}]" if problems else text
        status = self._status() if self._status is not None else ""
        return f"{text} ({status})" if status else text

    def advance(self, state: str) -> None:
        """Count one outcome (lines are printed by :meth:`tick`)."""
        self._counts.add(state)

    def tick(self) -> None:
        """Print a line if ``interval`` seconds passed since the last one."""
        now = self._clock()
        if now - self._last_print >= self.interval:
            self._last_print = now
            self._print()

    def _print(self) -> None:
        print(self.line(), file=self.stream, flush=True)

    def write(self, line: str) -> None:
        """Print ``line`` (progress lines are whole lines too)."""
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """Print the final line (once)."""
        if not self._closed:
            self._closed = True
            self._print()


class TqdmProgress:
    """A tqdm bar (rate and ETA included) on ``stream``."""

    def __init__(
        self,
        tqdm: Any,
        total: int | None,
        stream: TextIO,
        *,
        label: str,
        status: Callable[[], str] | None = None,
    ) -> None:
        self._status = status
        self._tqdm = tqdm
        self._stream = stream
        self._bar: Any = tqdm(
            total=total,
            file=stream,
            unit="id",
            desc=label,
            dynamic_ncols=True,
            mininterval=0.2,
            smoothing=0.1,
        )
        self._counts = _Counts()
        self._shown = ""

    def advance(self, state: str) -> None:
        """Advance the bar by one."""
        self._counts.add(state)
        self._bar.update(1)

    def tick(self) -> None:
        """Refresh the problem counts (and attempt figures) shown after the bar."""
        problems = self._counts.problem_text()
        status = self._status() if self._status is not None else ""
        problems = "; ".join(part for part in (problems, status) if part)
        if problems != self._shown:
            self._shown = problems
            self._bar.set_postfix_str(problems, refresh=True)

    def close(self) -> None:
        """Close the bar, leaving its last state on screen."""
        self.tick()
        self._bar.close()

    def write(self, line: str) -> None:
        """Print ``line`` above the bar (``tqdm.write``: the bar is cleared and redrawn)."""
        self._tqdm.write(line, file=self._stream)


def _load_tqdm() -> Any | None:
    try:
        module = importlib.import_module("tqdm")
    except ImportError:
        return None
    return getattr(module, "tqdm", None)


def _is_sized_terminal(stream: TextIO) -> bool:
    """A terminal that reports its size (tqdm draws nothing on one that says 0x0)."""
    try:
        if not stream.isatty():
            return False
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return size.columns > 0 and size.lines > 0


def make_progress(
    mode: str,
    total: int | None,
    stream: TextIO,
    *,
    label: str = "progress",
    interval: float = 2.0,
    status: Callable[[], str] | None = None,
) -> Progress:
    """The display for ``mode``: "auto" (a bar if ``stream`` is a terminal and tqdm is
    installed, else plain lines), "bar" (tqdm if installed), "plain" or "none".
    """
    if mode == "none":
        return NullProgress(stream)
    if mode in ("auto", "bar"):
        tqdm = _load_tqdm() if (mode == "bar" or _is_sized_terminal(stream)) else None
        if tqdm is not None:
            return TqdmProgress(tqdm, total, stream, label=label, status=status)
        if mode == "bar":
            print(
                "freedompay-async: the progress bar needs the 'cli' extra "
                "(pip install 'freedompay_async[cli]'); showing plain progress lines",
                file=stream,
            )
    return PlainProgress(total, stream, interval=interval, label=label, status=status)
