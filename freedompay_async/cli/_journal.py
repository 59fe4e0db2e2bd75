"""The batch-cancel journal: one JSON line per outcome, appended durably, read back on resume.

Format (JSON Lines, UTF-8). The first line of a journal written by this version is a
header saying which gateway, merchant and operation the journal belongs to
(:class:`JournalHeader`)::

    {"journal": "freedompay-async", "version": 2, "operation": "cancel",
     "base_url": "https://api.freedompay.kz", "merchant_id": 1234,
     "started": "2025-01-31T12:00:00.123+00:00"}

A journal without one (written by an older version) is still read. Every other line
is one object describing one cancel outcome::

    {"payment_id": 123, "state": "cancelled", "final": true, "attempts": 1,
     "elapsed": 0.0123, "revoke_id": 456, "revoke_status": "success",
     "confirmed_on_retry": false, "error_type": null, "error_code": null,
     "error_description": null, "http_status": null,
     "time": "2025-01-31T12:00:00.123+00:00", "run": "3f2a9c1d7b4e"}

``state`` is an :class:`~freedompay_async.OutcomeState` value. ``final`` says whether a
rerun may skip the id: the outcome could not change by trying again (see
:func:`journal_final`). The journal is append-only; an id may appear several times
(one line per run that tried it) and its *last* line is its current state.

Durability: each line is handed to the kernel with one unbuffered ``os.write`` as
soon as the outcome is known, so killing the process (even with SIGKILL) loses no
line already written; the file is fsynced at least every second and on close. A
crash can at worst leave a torn last line, which :meth:`Journal.open` drops (or
completes) before appending. An exclusive ``flock`` keeps two runs from sharing a
journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .._batch import CancelOutcome, OutcomeState
from .._exceptions import (
    ConfigurationError,
    FreedomPayError,
    GatewayError,
    InvalidRequestSignatureError,
    ReplyError,
    SessionClosedError,
    UnknownMerchantError,
)

try:  # POSIX only; elsewhere the journal is simply not locked.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "CREDENTIAL_ERRORS",
    "HEADER_MAGIC",
    "Journal",
    "JournalError",
    "JournalHeader",
    "JournalState",
    "journal_final",
    "outcome_record",
]

#: Errors that say something about the run (credentials, URL), not about the payment:
#: never final, whatever ``CancelOutcome.final`` says, so a rerun with a fixed
#: configuration tries those ids again.
CREDENTIAL_ERRORS: tuple[type[FreedomPayError], ...] = (
    InvalidRequestSignatureError,
    UnknownMerchantError,
)
_RUN_ERRORS: tuple[type[FreedomPayError], ...] = (
    *CREDENTIAL_ERRORS,
    ConfigurationError,
    SessionClosedError,
)
_SETTLED_STATES = OutcomeState.settled_values()
_STATES = {state.value: state.value for state in OutcomeState}


#: The value of the header's ``journal`` key.
HEADER_MAGIC = "freedompay-async"
JOURNAL_VERSION = 2


class JournalError(Exception):
    """The journal cannot be opened, locked, read or written."""


@attrs.frozen
class JournalHeader:
    """The first line of a journal: which gateway and merchant its outcomes came from.

    ``base_url`` is a :class:`~freedompay_async.GatewayURL`'s ``base`` (no trailing
    slash), ``started`` an ISO 8601 UTC time.
    """

    operation: str
    base_url: str
    merchant_id: int
    started: str = attrs.field(factory=lambda: _now())
    version: int = JOURNAL_VERSION

    def as_record(self) -> dict[str, Any]:
        """The header line as a dict."""
        return {
            "journal": HEADER_MAGIC,
            "version": self.version,
            "operation": self.operation,
            "base_url": self.base_url,
            "merchant_id": self.merchant_id,
            "started": self.started,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> JournalHeader | None:
        """The header a parsed first line holds, or None if it is not a header."""
        if record.get("journal") != HEADER_MAGIC:
            return None
        operation, base_url = record.get("operation"), record.get("base_url")
        merchant, version = record.get("merchant_id"), record.get("version")
        if not isinstance(operation, str) or not isinstance(base_url, str):
            return None
        if isinstance(merchant, bool) or not isinstance(merchant, int):
            return None
        started = record.get("started")
        return cls(
            operation=operation,
            base_url=base_url,
            merchant_id=merchant,
            started=started if isinstance(started, str) else "",
            version=version if isinstance(version, int) else JOURNAL_VERSION,
        )

    def differs_from(self, other: JournalHeader) -> list[str]:
        """What makes ``other`` belong to another gateway, merchant or operation."""
        return [
            f"{name} {getattr(self, name)!r} (journal) vs {getattr(other, name)!r} (this run)"
            for name in ("base_url", "merchant_id", "operation")
            if getattr(self, name) != getattr(other, name)
        ]


def journal_final(outcome: CancelOutcome) -> bool:
    """Whether a rerun may skip this outcome's payment id.

    :attr:`CancelOutcome.final` (cancelled, already cancelled, or a failure the retry
    policy would not retry, such as "payment not found"), except failures caused by
    the run's configuration (request signature refused, unknown merchant, bad URL):
    those are retried by a rerun with fixed settings.
    """
    if outcome.error is not None and isinstance(outcome.error, _RUN_ERRORS):
        return False
    return outcome.final


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def outcome_record(
    outcome: CancelOutcome, *, run: str, now: Callable[[], str] = _now
) -> dict[str, Any]:
    """The journal line (as a dict) for one outcome. Never holds a secret or signature."""
    result, error = outcome.result, outcome.error
    record: dict[str, Any] = {
        "payment_id": outcome.payment_id,
        "state": outcome.state.value,
        "final": journal_final(outcome),
        "attempts": outcome.attempts,
        "elapsed": round(outcome.elapsed, 4),
        "revoke_id": result.revoke_id if result is not None else None,
        "revoke_status": result.revoke_status_raw if result is not None else None,
        "confirmed_on_retry": result.confirmed_on_retry if result is not None else False,
        "error_type": type(error).__name__ if error is not None else None,
        "error_code": error.code if isinstance(error, GatewayError) else None,
        "error_description": None,
        "http_status": error.http_status if isinstance(error, ReplyError) else None,
        "time": now(),
        "run": run,
    }
    if isinstance(error, GatewayError):
        record["error_description"] = error.description
    elif error is not None:
        record["error_description"] = error.message
    return record


@attrs.define
class JournalState:
    """What a journal says so far: the last state of every id it mentions.

    ``settled`` holds the ids a rerun must not send again: those whose last record
    is final, and (belt and braces) any id ever recorded as cancelled or already
    cancelled. ``bad_lines`` are line numbers that did not parse (skipped);
    ``repaired_tail`` says whether a torn last line was dropped or completed.
    ``header`` is the journal's header line (None for a journal without one).
    """

    header: JournalHeader | None = None
    last: dict[int, str] = attrs.field(factory=dict)
    settled: set[int] = attrs.field(factory=set)
    records: int = 0
    bad_lines: list[int] = attrs.field(factory=list)
    repaired_tail: str | None = None

    def add(self, record: Mapping[str, Any]) -> bool:
        """Fold one parsed record in; False if it is not an outcome record."""
        pid = record.get("payment_id")
        state = record.get("state")
        if isinstance(pid, bool) or not isinstance(pid, int) or state not in _STATES:
            return False
        self.records += 1
        final = record.get("final") is True or state in _SETTLED_STATES
        if final or pid not in self.settled:  # a settled id stays settled
            self.last[pid] = _STATES[state]
        if final:
            self.settled.add(pid)
        return True

    def state_of(self, payment_id: int) -> str | None:
        """The last recorded state of ``payment_id`` (None if never recorded)."""
        return self.last.get(payment_id)


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:  # includes UnicodeDecodeError
        return None
    return value if isinstance(value, dict) else None


class Journal:
    """An open, locked journal file that outcomes are appended to.

    Use :meth:`open` (it also reads what is already there), :meth:`start` the
    once-a-second background fsync, :meth:`append` each outcome, and :meth:`aclose`
    at the end (it fsyncs). Writes are synchronous ``os.write`` calls
    on an ``O_APPEND`` descriptor: nothing is buffered in the process.
    """

    def __init__(self, path: Path, fd: int, *, fsync_interval: float = 1.0) -> None:
        self.path = path
        self._fd: int | None = fd
        self._dirty = False
        self.fsync_interval = fsync_interval
        self.lines_written = 0
        self._syncer: asyncio.Task[None] | None = None
        self._inflight: asyncio.Future[None] | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        header: JournalHeader | None = None,
        fsync_interval: float = 1.0,
    ) -> tuple[Journal, JournalState]:
        """Open (creating if needed) and lock ``path``, repair a torn tail, and read it.

        ``header`` is written as the first line when the file is new or empty (the
        returned state's ``header`` is then ``header``). Raises :class:`JournalError`
        if the file cannot be opened, is locked by another run, or cannot be read.
        """
        journal_path = Path(path)
        existed = journal_path.exists()
        try:
            fd = os.open(journal_path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            message = f"cannot open journal {str(journal_path)!r}: {exc.strerror}"
            raise JournalError(message) from exc
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError as exc:
                    raise JournalError(
                        f"journal {str(journal_path)!r} is in use by another run"
                    ) from exc
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise JournalError(f"journal {str(journal_path)!r} is not a regular file")
            state, tail = cls._read(fd)
            cls._repair_tail(fd, tail)
            if header is not None and os.fstat(fd).st_size == 0:
                _write_all(fd, _encode(header.as_record()))
                os.fsync(fd)
                state.header = header
            if not existed:
                _fsync_directory(journal_path)
        except OSError as exc:
            os.close(fd)
            raise JournalError(f"cannot read journal {str(journal_path)!r}: {exc}") from exc
        except BaseException:
            os.close(fd)
            raise
        return cls(journal_path, fd, fsync_interval=fsync_interval), state

    @staticmethod
    def _read(fd: int) -> tuple[JournalState, tuple[str, int] | None]:
        state = JournalState()
        tail: tuple[str, int] | None = None
        with os.fdopen(os.dup(fd), "rb") as stream:
            stream.seek(0)
            lineno = 0
            offset = 0
            for line in stream:
                lineno += 1
                start, offset = offset, offset + len(line)
                record = _parse(line)
                if not line.endswith(b"\n"):
                    # The last line, unterminated: its write was cut short by a crash.
                    if record is not None and state.add(record):
                        state.repaired_tail = f"line {lineno}: completed an unterminated record"
                        tail = ("complete", start)
                    else:
                        state.repaired_tail = f"line {lineno}: dropped a torn record"
                        tail = ("drop", start)
                    break
                if line.strip() == b"":
                    continue
                if lineno == 1 and record is not None and "journal" in record:
                    state.header = JournalHeader.from_record(record)
                    if state.header is not None:
                        continue
                if record is None or not state.add(record):
                    state.bad_lines.append(lineno)
        return state, tail

    @staticmethod
    def _repair_tail(fd: int, tail: tuple[str, int] | None) -> None:
        if tail is None:
            return
        action, start = tail
        if action == "drop":
            os.ftruncate(fd, start)
        else:
            _write_all(fd, b"\n")
        os.fsync(fd)

    def append(self, record: Mapping[str, Any]) -> None:
        """Write one record as one line, now (one ``os.write``; no process buffering)."""
        if self._fd is None:
            raise JournalError("journal is closed")
        try:
            _write_all(self._fd, _encode(record))
        except OSError as exc:
            raise JournalError(f"cannot write journal {str(self.path)!r}: {exc}") from exc
        self._dirty = True
        self.lines_written += 1

    def sync(self) -> None:
        """fsync now if anything was written since the last fsync."""
        if self._fd is not None and self._dirty:
            self._dirty = False
            os.fsync(self._fd)

    def start(self) -> None:
        """Start the background task that fsyncs every ``fsync_interval`` seconds."""
        if self._syncer is None:
            self._syncer = asyncio.get_running_loop().create_task(self._sync_forever())

    async def _sync_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while self._fd is not None:
            await asyncio.sleep(self.fsync_interval)
            fd = self._fd
            if fd is not None and self._dirty:
                self._dirty = False
                # fsync off the event loop; shielded so that stopping this task never
                # leaves a thread fsyncing a descriptor that close() is about to close.
                self._inflight = loop.run_in_executor(None, os.fsync, fd)
                await asyncio.shield(self._inflight)

    async def aclose(self) -> None:
        """Stop the fsync task, wait for an fsync in progress, then :meth:`close`."""
        task, self._syncer = self._syncer, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            with contextlib.suppress(OSError):
                await inflight
        self.close()

    def close(self) -> None:
        """fsync if needed, unlock and close (synchronously). Idempotent.

        In async code prefer :meth:`aclose`, which first waits for a background fsync.
        """
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._dirty:
                self._dirty = False
                os.fsync(fd)
        finally:
            os.close(fd)  # also releases the flock


def _encode(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(path: Path) -> None:
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent if str(path.parent) else Path("."), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
