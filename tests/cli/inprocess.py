"""Run a command line inside the test process, on a thread of its own.

The command gets its own streams and environment (:class:`Stdio`), its standard input
through a real pipe (or ``/dev/null``), and its own event loop on its own thread, so a
sandbox served by the test's loop answers it as it would a separate process. Off the
main thread the command installs no signal handlers: the tests of signals, of SIGKILL
and of ``python -m`` start real processes instead (``start`` in ``test_cli``).

Starting the package in a fresh interpreter costs about half a second of processor;
most of the command-line tests need none of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import threading
from collections.abc import Mapping, Sequence

from freedompay_async.cli._main import run_command
from freedompay_async.cli._stdio import Stdio

#: Seconds a command may run before the test fails (its thread is left behind).
LIMIT = 60.0


def _feed(fd: int, data: bytes) -> None:
    """Write ``data`` into the pipe and close it; a reader that stops early ends it."""
    with contextlib.suppress(OSError), open(fd, "wb") as pipe:
        pipe.write(data)


def run_command_here(
    args: Sequence[str], environ: Mapping[str, str], stdin: bytes | None
) -> tuple[int, str, str]:
    """Run one command line on this thread; ``(exit status, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    feeder: threading.Thread | None = None
    if stdin is None:
        fd = os.open(os.devnull, os.O_RDONLY)
    else:
        fd, write_end = os.pipe()
        feeder = threading.Thread(target=_feed, args=(write_end, stdin), daemon=True)
        feeder.start()
    try:
        rc = run_command(list(args), Stdio(out, err, environ, fd))
    finally:
        os.close(fd)  # a feeder still writing gets EPIPE and ends
        if feeder is not None:
            feeder.join()
    return rc, out.getvalue(), err.getvalue()


async def on_thread(
    args: Sequence[str], environ: Mapping[str, str], stdin: bytes | None
) -> tuple[int, str, str]:
    """:func:`run_command_here` on a daemon thread, awaited from the test's loop; a
    command still running after :data:`LIMIT` seconds fails the test."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[int, str, str]] = loop.create_future()

    def settle(outcome: tuple[int, str, str] | BaseException) -> None:
        if done.done():
            return
        if isinstance(outcome, BaseException):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)

    def target() -> None:
        try:
            outcome: tuple[int, str, str] | BaseException = run_command_here(args, environ, stdin)
        except BaseException as exc:  # handed to the test as it is
            outcome = exc
        with contextlib.suppress(RuntimeError):  # the test's loop is gone
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=target, daemon=True, name="command-line").start()
    async with asyncio.timeout(LIMIT):
        return await done
