"""Where a command reads and writes: standard input, output, error and the environment.

:func:`~._main.main` runs a command on the process's own (:meth:`Stdio.of_process`);
``run_command`` takes any other, so a command can run inside a process that is not its
own (a test, a thread) without touching ``sys.stdout`` or ``os.environ``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

import attrs

__all__ = ["Stdio", "open_standard_descriptors"]

#: Standard input, output and error.
_STANDARD = (0, 1, 2)


def open_standard_descriptors() -> None:
    """Open the null device on each of descriptors 0, 1 and 2 the process was started
    without (``>&-``), as the first thing a command line does.

    Otherwise the first socket or file the command opens takes that number: uvloop
    aborts the process when it closes a socket numbered 2 or less (after the run's work,
    so the exit status is not the run's), standard input would be read from whatever
    took descriptor 0, and anything written to descriptor 1 or 2 would land in it (a
    journal, say). Python has already set the matching ``sys`` stream to None; the
    command's own (:meth:`Stdio.of_process`) then discards what is written to it."""
    for fd in _STANDARD:
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:  # not so far: the lowest free number is fd once the lower are open
                os.dup2(null, fd)
                os.close(null)
            os.set_inheritable(fd, True)


def _stdin_fd() -> int:
    """The descriptor of ``sys.stdin``, or 0 when it has none (closed or replaced)."""
    try:
        return sys.stdin.fileno() if sys.stdin is not None else 0
    except (OSError, ValueError, AttributeError):
        return 0


@attrs.frozen
class Stdio:
    """A command's standard streams and environment (the environment, which may hold the
    secret key, is kept out of the ``repr``)."""

    out: TextIO
    err: TextIO
    environ: Mapping[str, str] = attrs.field(repr=False)
    #: The descriptor standard input is read from (``--input -`` or no ``--input``).
    stdin: int = 0

    @classmethod
    def of_process(cls) -> Stdio:
        """The process's own streams and ``os.environ``, as they are now."""
        return cls(_stream(sys.stdout), _stream(sys.stderr), os.environ, _stdin_fd())


def _stream(stream: TextIO | None) -> TextIO:
    """``stream``, or one that discards what is written to it when the process has none
    (Python sets ``sys.stdout`` to None when started without descriptor 1)."""
    return stream if stream is not None else open(os.devnull, "w", encoding="utf-8")
