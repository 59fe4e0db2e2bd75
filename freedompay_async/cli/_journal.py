"""The batch-cancel journal: one JSON line per outcome, appended durably, read back on resume.

Format (JSON Lines, UTF-8). The first line of a journal written by this version is a
header saying which gateway, merchant and operation the journal belongs to
(:class:`JournalHeader`)::

    {"journal": "freedompay-async", "version": 2, "operation": "cancel",
     "base_url": "https://api.freedompay.kz", "merchant_id": 1234,
     "started": "2025-01-31T12:00:00.123+00:00"}

A journal without one (written by an older version) is still read, and never given
one. A first line that looks like a header but cannot be read is an error
(:class:`JournalError`), unless it is the torn last line of a crash. Every other line
is one outcome; :func:`._outcome_record.outcome_record` builds it verbose::

    {"payment_id": 123, "state": "cancelled", "final": true, "attempts": 1,
     "elapsed": 0.0123, "revoke_id": 456, "revoke_status": "success",
     "confirmed_on_retry": false, "error_type": null, "error_code": null,
     "error_description": null, "http_status": null,
     "time": "2025-01-31T12:00:00.123+00:00", "run": "3f2a9c1d7b4e"}

and :meth:`Journal.append` writes it compact (only what is set, short keys: see
:mod:`._records`), ``{"p":123,"s":"c","e":0.0123,"r":456,"t":1738324800123,"u":"..."}``.
Older journals hold verbose lines; readers decide by the keys of each line.
``state`` is an :class:`~freedompay_async.OutcomeState` value. ``final`` says whether a
rerun may skip the id: the outcome could not change by trying again (see
:func:`._outcome_record.journal_final`). The journal is append-only; an id may appear several times
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
import json
import os
import stat
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import IO, Any

import attrs

from ._codec import encode_record
from ._header import HEADER_MAGIC, JOURNAL_VERSION, JournalHeader
from ._idset import IdMap
from ._scan import Scan, scan
from ._states import (
    FINAL,
    LastView,
    SettledView,
    record_code,
    state_counts,
    state_of_code,
)

try:  # POSIX only; elsewhere the journal is simply not locked.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "HEADER_MAGIC",
    "JOURNAL_VERSION",
    "Journal",
    "JournalError",
    "JournalHeader",
    "JournalState",
]


class JournalError(Exception):
    """The journal cannot be opened, locked, read or written."""


@attrs.define
class JournalState:
    """What a journal says so far: the last state of every id it mentions.

    ``settled`` holds the ids a rerun must not send again: those whose last record
    is final, and (belt and braces) any id ever recorded as cancelled or already
    cancelled. ``bad_lines`` are line numbers that did not parse (skipped; the first
    thousand, ``bad_count`` counts them all); ``repaired_tail`` says whether a torn
    last line was dropped or completed. ``header`` is the journal's header line (None
    for a journal without one).

    The states live in an :class:`~._idset.IdMap` (about 3 bytes per id, no Python
    object per id); ``last`` and ``settled`` are read-only views of it. ``foreign``
    says why the file is not a journal of this tool (None: it is one, or it is empty).
    """

    header: JournalHeader | None = None
    ids: IdMap = attrs.field(factory=lambda: IdMap(sticky=FINAL))
    records: int = 0
    bad_lines: list[int] = attrs.field(factory=list)
    bad_count: int = 0
    repaired_tail: str | None = None
    header_error: str | None = None
    foreign: str | None = None
    #: Whether the file is only the start of a header, torn by a crash.
    torn_header: bool = False

    @property
    def empty(self) -> bool:
        """Whether the file holds no header and no record (new, or blank)."""
        return self.header is None and self.records == 0 and self.foreign is None

    def add(self, record: Mapping[str, Any]) -> bool:
        """Fold one parsed record (verbose or compact) in; False if it is not one."""
        pair = record_code(record)
        if pair is None:
            return False
        self.records += 1
        self.ids.add(*pair)
        return True

    def state_of(self, payment_id: int) -> str | None:
        """The last recorded state of ``payment_id`` (None if never recorded)."""
        code = self.ids.get(payment_id)
        return state_of_code(code) if code else None

    def settled_state(self, payment_id: int) -> str | None:
        """The state of ``payment_id`` if it is settled (final), else None."""
        code = self.ids.get(payment_id)
        return state_of_code(code) if code & FINAL else None

    def counts(self) -> dict[str, int]:
        """How many ids are in each last state, and how many are settled ("final")."""
        return state_counts(self.ids)

    @property
    def last(self) -> Mapping[int, str]:
        """Every id's last state (a read-only view)."""
        return LastView(self.ids)

    @property
    def settled(self) -> AbstractSet[int]:
        """The settled ids (a read-only view)."""
        return SettledView(self.ids)


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
        #: Lines known to be on disk (an fsync that started after them finished).
        self.lines_synced = 0
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
        if the file cannot be opened, is locked by another run, cannot be read, has a
        damaged header or is not a journal of this tool (then it is left unchanged).
        """
        journal_path = Path(path)
        existed = journal_path.exists()
        try:
            fd = os.open(journal_path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            message = f"cannot open journal {str(journal_path)!r}: {exc.strerror}"
            raise JournalError(message) from exc
        try:
            _lock(fd, journal_path)
            state, tail = _read_checked(fd, journal_path)
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
    def peek(path: str | os.PathLike[str]) -> JournalState:
        """Read ``path`` without locking or changing it (an empty state if it does not
        exist); raises :class:`JournalError` as :meth:`open` does."""
        journal_path = Path(path)
        try:
            fd = os.open(journal_path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return JournalState()
        except OSError as exc:
            message = f"cannot open journal {str(journal_path)!r}: {exc.strerror}"
            raise JournalError(message) from exc
        try:
            return _read_checked(fd, journal_path)[0]
        except OSError as exc:
            raise JournalError(f"cannot read journal {str(journal_path)!r}: {exc}") from exc
        finally:
            os.close(fd)

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
            _write_all(self._fd, _encode(encode_record(record)))
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

    async def append_durable(self, record: Mapping[str, Any]) -> None:
        """:meth:`append` one record and return once it is on disk (fsynced): a money
        movement's intent, before its request goes out. Callers at the same time share
        one fsync (group commit); raises :class:`JournalError` if it fails."""
        self.append(record)
        target = self.lines_written
        while self.lines_synced < target:
            try:
                await asyncio.shield(self._fsync())
            except OSError as exc:
                raise JournalError(f"cannot fsync journal {str(self.path)!r}: {exc}") from exc

    def _fsync(self) -> asyncio.Future[None]:
        """The fsync in progress, or a new one off the event loop; one at a time, so
        that close() waits for the only thread that may be using the descriptor."""
        inflight = self._inflight
        if inflight is not None and not inflight.done():
            return inflight
        if self._fd is None:
            raise JournalError("journal is closed")
        covered, self._dirty = self.lines_written, False
        inflight = asyncio.get_running_loop().run_in_executor(None, os.fsync, self._fd)

        def synced(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and done.exception() is None:
                self.lines_synced = max(self.lines_synced, covered)

        inflight.add_done_callback(synced)
        self._inflight = inflight
        return inflight

    async def _sync_forever(self) -> None:
        while self._fd is not None:
            await asyncio.sleep(self.fsync_interval)
            if self._fd is not None and self._dirty:
                # Shielded so that stopping this task never leaves a thread fsyncing a
                # descriptor that close() is about to close.
                await asyncio.shield(self._fsync())

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


def _lock(fd: int, path: Path) -> None:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise JournalError(f"journal {str(path)!r} is in use by another run") from exc


def _read_checked(fd: int, path: Path) -> tuple[JournalState, tuple[str, int] | None]:
    """Read the open file; refuse one that is not a journal, or whose header is damaged."""
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise JournalError(f"journal {str(path)!r} is not a regular file")
    with os.fdopen(os.dup(fd), "rb") as stream:
        state, tail = read_state(stream)
    if state.header_error is not None:
        # Not a torn tail (that is repaired): the header was damaged afterwards.
        # Guessing which gateway the journal belongs to is unsafe.
        raise JournalError(
            f"journal {str(path)!r}: {state.header_error} (damaged?): "
            "cannot tell which gateway and merchant it belongs to; inspect it "
            "with 'journal show', repair line 1, or pass another --journal"
        )
    if state.foreign is not None:
        raise JournalError(
            f"{str(path)!r} is not a journal of this tool ({state.foreign}); it is left "
            "unchanged: pass a new path to --journal"
        )
    return state, tail


def _encode(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def read_state(stream: IO[bytes]) -> tuple[JournalState, tuple[str, int] | None]:
    """Read a journal from ``stream`` (streaming, compact memory) without changing it.

    Returns the state and what to do about a torn last line: ("drop" or "complete",
    its byte offset), or None.
    """
    state = JournalState()
    found = scan(stream, state.ids.update)
    state.ids.freeze()
    state.records = found.records
    state.bad_lines, state.bad_count = found.bad_lines, found.bad_count
    state.header_error = found.header_error
    if found.header is not None:
        state.header = JournalHeader.from_record(found.header)
        if state.header is None:
            state.bad_count += 1
            state.bad_lines.insert(0, 1)
            state.header_error = "line 1 looks like a journal header but is not one"
    state.repaired_tail, tail = found.repair()
    state.foreign = _foreign(found, state)
    state.torn_header = found.torn_header
    return state, tail


def _foreign(found: Scan, state: JournalState) -> str | None:
    """Why what was read is not a journal of this tool, or None.

    A journal has a header (a damaged one is reported apart), or is one that an older
    version wrote without one: mostly outcome records. A file with no content (or only
    blank lines, or a header torn by a crash) is not anybody's data.
    """
    if found.header is not None or state.header_error is not None or found.torn_header:
        return None
    if state.records and state.bad_count <= state.records:
        return None  # a journal of an older version, without a header
    if not state.records and not state.bad_count and found.tail is None:
        return None
    torn = found.tail is not None and not found.tail[2]
    return (
        f"no journal header; {state.records} journal records, {state.bad_count + torn} other lines"
    )


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
