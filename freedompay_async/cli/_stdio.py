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

__all__ = ["Stdio"]


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
        return cls(sys.stdout, sys.stderr, os.environ, _stdin_fd())
