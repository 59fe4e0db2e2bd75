"""Running one ``cancel`` job: input in, cancels through ``cancel_many``, journal and report out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

from .._config import Limits
from .._exceptions import (
    FreedomPayError,
    GatewayError,
    InvalidRequestSignatureError,
    SignatureVerificationError,
)
from .._session import AsyncSession
from ._idset import IdMap, IdSet
from ._input import (
    READ_CHUNK,
    Item,
    Parser,
    StreamSource,
    open_input,
    parse_plain,
    parser_for,
    read_lines,
)
from ._journal import CREDENTIAL_ERRORS, Journal, JournalError, JournalState, outcome_record
from ._options import CancelJob
from ._plain import plain_blocks
from ._progress import Progress, make_progress
from ._records import FINAL, state_of_code
from ._report import EXIT_USAGE, PROG, BatchReport
from ._signals import Interrupt

__all__ = ["run_batch"]

#: At most this many malformed input lines are reported one by one.
_MAX_LINE_REPORTS = 50
_TICK = 0.5


class _Selector:
    """Turns parsed input into the ids to send: reports malformed lines, drops
    duplicates, and skips ids the journal already settled. Its memory is a few bytes
    per unique id (:mod:`._idset`), never a Python object per id."""

    def __init__(self, state: JournalState, report: BatchReport, err: TextIO) -> None:
        self._state = state
        self._report = report
        self._err = err
        self._seen = IdSet()

    def _valid(self, item: Item) -> int | None:
        lineno, pid, raw = item
        report = self._report
        if pid is None:
            report.malformed += 1
            if report.malformed <= _MAX_LINE_REPORTS:
                print(
                    f"{PROG}: input line {lineno}: {raw} (skipped)",
                    file=self._err,
                )
            elif report.malformed == _MAX_LINE_REPORTS + 1:
                print(f"{PROG}: more malformed input lines are not shown", file=self._err)
        return pid

    def take(self, item: Item) -> int | None:
        """The id to send for this input item, or None."""
        pid = self._valid(item)
        if pid is None:
            return None
        report = self._report
        if not self._seen.add(pid):
            report.duplicates += 1
            return None
        report.input_ids += 1
        prior = self._state.settled_state(pid)
        if prior is not None:
            report.skipped += 1
            report.prior[prior] += 1
            return None
        return pid

    def take_file(self, fd: int, parse: Parser) -> tuple[Iterator[int], int]:
        """The ids to send from a regular file, in input order, and how many.

        Two passes: the first counts and dedups (into an :class:`IdMap`) and joins
        with the journal; the second (lazy) rereads the file and yields each id to
        send at its first occurrence. Ids that appear only in the second pass (the
        file changed meanwhile) are ignored.
        """
        stream = os.fdopen(fd, "rb")  # closed when the second pass ends (or is dropped)
        seen = IdMap()
        valid = 0
        try:
            for block in _blocks(stream, parse):
                if block and isinstance(block[0], int):
                    ids: list[int] = block
                    valid += len(ids)
                    seen.update(ids, b"\1" * len(ids))
                    continue
                for item in block:
                    pid = self._valid(item)  # type: ignore[arg-type]
                    if pid is not None:
                        valid += 1
                        seen.add(pid, _SEND)
            # Settled in the journal -> _SKIP, anything else -> _SEND.
            prior = seen.relabel(self._state.ids, _SELECT)
        except BaseException:
            stream.close()
            raise
        report = self._report
        report.input_ids = len(seen)
        report.duplicates = valid - report.input_ids
        for code, count in prior.items():
            if code & FINAL:
                report.skipped += count
                report.prior[state_of_code(code)] += count
        total = report.input_ids - report.skipped
        if total == 0:
            stream.close()
            return iter(()), 0
        stream.seek(0)

        def second_pass() -> Iterator[int]:
            with stream:
                for block in _blocks(stream, parse):
                    for entry in block:
                        pid = entry if isinstance(entry, int) else entry[1]
                        if pid is not None and seen.swap(pid, _SEND, _SENT):
                            yield pid

        return second_pass(), total


def _blocks(stream: BinaryIO, parse: Parser) -> Iterator[list[int] | list[Item]]:
    if parse is parse_plain:
        return plain_blocks(stream, parse)
    return ([item] for item in parse(read_lines(lambda: stream.read(READ_CHUNK))))


_SEND, _SKIP, _SENT = 1, 2, 3
_SELECT = bytes(_SKIP if code & FINAL else _SEND for code in range(256))


def _credential_refusal(error: FreedomPayError | None) -> int | None:
    """The code of a credentials refusal, else None.

    A wrong secret key cannot verify the gateway's signed 1100, so that reply arrives as
    a SignatureVerificationError claiming 1100: stopping on it is the safe side (a
    forger can only make the run stop, never count a payment as cancelled).
    """
    if isinstance(error, GatewayError) and isinstance(error, CREDENTIAL_ERRORS):
        return error.code
    if (
        isinstance(error, SignatureVerificationError)
        and error.claimed_code in InvalidRequestSignatureError.codes
    ):
        return error.claimed_code
    return None


async def _ticker(progress: Progress) -> None:
    while True:
        await asyncio.sleep(_TICK)
        progress.tick()


async def run_batch(
    job: CancelJob,
    *,
    interrupt: Interrupt,
    err: TextIO = sys.stderr,
    label: str = "cancel",
) -> BatchReport:
    """Run one ``cancel`` job to completion, interruption or abort; never raises for a
    per-id failure. Raises :class:`JournalError` if the journal cannot be opened and
    :class:`InputError` for unusable input.
    """
    journal, state = Journal.open(job.journal)
    interrupt.watch(journal)
    report = BatchReport(journal=str(job.journal), run=secrets.token_hex(6))
    report.journal_records = state.records
    if state.repaired_tail:
        print(f"{PROG}: journal {job.journal}: {state.repaired_tail}", file=err)
    if state.bad_lines:
        shown = ", ".join(map(str, state.bad_lines[:10]))
        print(
            f"{PROG}: journal {job.journal}: {len(state.bad_lines)} unreadable lines ignored "
            f"(lines {shown}{', ...' if len(state.bad_lines) > 10 else ''})",
            file=err,
        )
    start = time.monotonic()
    selector = _Selector(state, report, err)
    parse = parser_for(job.csv_column)
    streamed: AsyncGenerator[int, None] | None = None
    source: StreamSource | None = None
    try:
        fd, regular = open_input(job.input_path, sys.stdin.fileno() if sys.stdin else 0)
        if os.isatty(fd):
            print(f"{PROG}: reading payment ids from the terminal; end with Ctrl-D", file=err)
        ids: Iterator[int] | AsyncIterator[int]
        total: int | None
        if regular:
            # A regular file: read and count it first, so the total (and ETA) is known.
            ids, total = selector.take_file(fd, parse)
        else:
            source = reader = StreamSource(fd, parse)

            async def stream() -> AsyncGenerator[int, None]:
                async for item in reader.items():
                    pid = selector.take(item)
                    if pid is not None:
                        yield pid

            ids = streamed = stream()
            total = None
        progress = make_progress(job.progress, total, err, label=label)
        journal.start()
        ticker = asyncio.create_task(_ticker(progress))
        try:
            await _drive(job, ids, journal, report, progress, err)
        except asyncio.CancelledError:
            interrupt.swallow()
            report.interrupted = True
        except JournalError as exc:
            report.aborted = str(exc)
            print(f"{PROG}: {exc}", file=err)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            progress.close()
    except asyncio.CancelledError:
        interrupt.swallow()
        report.interrupted = True
    finally:
        if streamed is not None:
            await streamed.aclose()
        if source is not None:
            source.close()  # stops the reader thread
        report.elapsed = time.monotonic() - start
        await journal.aclose()
    if job.summary_json is not None:
        _write_summary_json(job.summary_json, report, err)
    return report


async def _drive(
    job: CancelJob,
    ids: Iterator[int] | AsyncIterator[int],
    journal: Journal,
    report: BatchReport,
    progress: Progress,
    err: TextIO,
) -> None:
    session = AsyncSession(
        job.credentials,
        base_url=job.base_url,
        retry=job.retry,
        pacing=job.pacing,
        limits=Limits(max_connections=job.concurrency),
    )
    async with session as fp:
        outcomes = fp.cancel_many(ids, concurrency=job.concurrency)
        try:
            async for outcome in outcomes:
                if outcome.payment_id is None:  # pragma: no cover - ids are validated
                    continue
                record = outcome_record(outcome, run=report.run)
                journal.append(record)
                report.record(outcome, final=record["final"])
                progress.advance(outcome.state.value)
                error = outcome.error
                code = _credential_refusal(error)
                if code is not None:
                    report.aborted = (
                        f"the gateway refused the credentials ({type(error).__name__}, "
                        f"code {code}): check the merchant id and secret key"
                    )
                    report.abort_code = EXIT_USAGE
                    print(f"{PROG}: {report.aborted}; stopping", file=err)
                    return
        finally:
            # Stops the workers (cancel_many is an async generator) and waits for them.
            aclose = getattr(outcomes, "aclose", None)
            if aclose is not None:
                await aclose()


def _write_summary_json(path: Path, report: BatchReport, err: TextIO) -> None:
    data = json.dumps(report.as_dict(), indent=2) + "\n"
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(data, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        print(f"{PROG}: cannot write summary {str(path)!r}: {exc.strerror}", file=err)
