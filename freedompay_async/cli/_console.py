"""Where a run's messages go: plain lines on stderr, or above the progress bar.

A message printed while a tqdm bar is drawn lands on the bar's own line. While a
display is attached, messages go through its ``write`` (``tqdm.write`` for a bar:
the bar is cleared, the line written, the bar drawn again below it).
"""

from __future__ import annotations

import contextlib
from typing import Protocol, TextIO

from ._exit import PROG

__all__ = ["Console", "Writer"]


class Writer(Protocol):
    """A display that can print a whole line without garbling itself."""

    def write(self, line: str) -> None:
        """Print ``line`` (no trailing newline) above the display."""


class Console:
    """``say`` prints ``freedompay-async: TEXT`` on ``err``, or through the attached display."""

    def __init__(self, err: TextIO) -> None:
        self.err = err
        self._display: Writer | None = None

    def attach(self, display: Writer) -> None:
        """Route messages through ``display`` until :meth:`detach`."""
        self._display = display

    def detach(self) -> None:
        """Back to plain lines on ``err``."""
        self._display = None

    def say(self, text: str) -> None:
        """Print one message line (never raises for a closed or broken stream)."""
        line = f"{PROG}: {text}"
        with contextlib.suppress(OSError, ValueError):
            if self._display is not None:
                self._display.write(line)
            else:
                print(line, file=self.err, flush=True)
