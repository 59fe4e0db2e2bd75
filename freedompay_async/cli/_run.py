"""Running one ``cancel`` job: input in, cancels through ``cancel_many``, journal and report out.

Order of a run, so that nothing is half-done when something is wrong: the output
paths (``--summary-json``, ``--unsettled-out``) are checked, the input is opened (a
regular file is read whole: no id in it is an error before any journal exists), then
the journal is opened and its header checked against this gateway and merchant, and
only then is anything sent.

Stopping: a gate in front of ``cancel_many`` stops handing out new ids when the
gateway is plainly wrong (:class:`AttemptWatch`), the credentials are refused, or a
first signal arrives; the cancels in flight then finish and are journaled. Ids
abandoned in flight (a second signal, the grace period over) are journaled as
``unknown``: sent, outcome not known.
"""

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
from typing import TextIO

from .._config import Limits
from .._exceptions import (
    ConnectionLostError,
    FreedomPayError,
    GatewayError,
    InvalidRequestSignatureError,
    SignatureVerificationError,
)
from .._layers.retry import (
    RetryMiddleware,
    RetryPolicy,
)
from .._layers.spacing import PaymentSpacing
from .._session.batch import (
    CancelOutcome,
    OutcomeState,
)
from .._session.session import AsyncSession
from ._fileids import FileIds
from ._flow import Gate, UnsettledOut, check_output_path
from ._idset import IdSet
from ._input import InputError, Item, StreamSource, open_input, parser_for, why_no_ids
from ._journal import (
    CREDENTIAL_ERRORS,
    Journal,
    JournalError,
    JournalHeader,
    JournalState,
    outcome_record,
)
from ._options import CancelJob
from ._progress import Progress, make_progress
from ._records import FINAL, state_of_code
from ._report import EXIT_USAGE, PROG, BatchReport
from ._signals import Interrupt
from ._watch import AttemptWatch

__all__ = ["run_batch"]

#: At most this many malformed input lines are reported one by one.
_MAX_LINE_REPORTS = 50
_TICK = 0.5
_REFUSED = "the gateway refused the credentials"
_SETTLED_STATES = OutcomeState.settled_values()


class _Selector:
    """Turns parsed input into the ids to send: reports malformed lines, drops
    duplicates, and (once the journal is read) skips ids it already settled. Its
    memory is a few bytes per unique id (:mod:`._idset`), not a Python object."""

    def __init__(self, report: BatchReport, err: TextIO) -> None:
        self._report = report
        self._err = err
        self._seen = IdSet()
        self.first_bad: str | None = None
        self.unsettled: UnsettledOut | None = None

    def valid(self, item: Item) -> int | None:
        """The id of this input item, or None (a malformed line, reported)."""
        lineno, pid, raw = item
        report = self._report
        if pid is None:
            report.malformed += 1
            if self.first_bad is None:
                self.first_bad = f"line {lineno}: {raw}"
            if report.malformed <= _MAX_LINE_REPORTS:
                print(f"{PROG}: input line {lineno}: {raw} (skipped)", file=self._err)
            elif report.malformed == _MAX_LINE_REPORTS + 1:
                print(f"{PROG}: more malformed input lines are not shown", file=self._err)
        return pid

    def take(self, item: Item) -> int | None:
        """The unique id of this input item, or None."""
        pid = self.valid(item)
        if pid is None:
            return None
        report = self._report
        if not self._seen.add(pid):
            report.duplicates += 1
            return None
        report.input_ids += 1
        return pid

    def fresh(self, pid: int, state: JournalState) -> bool:
        """Whether ``pid`` is to be sent (False: the journal settled it already)."""
        last = state.settled_state(pid)
        if last is None:
            return True
        report = self._report
        report.skipped += 1
        report.prior[last] += 1
        if self.unsettled is not None and last not in _SETTLED_STATES:
            self.unsettled.add(pid)
        return False

    def fresh_file(self, files: FileIds, state: JournalState) -> int:
        """Skip the file's ids the journal settled (bulk :meth:`fresh`); how many remain."""
        report = self._report
        for code, count in files.select(state.ids).items():
            if code & FINAL:
                report.skipped += count
                report.prior[state_of_code(code)] += count
        if self.unsettled is not None and report.skipped:
            for pid in files.skipped_unsettled():
                self.unsettled.add(pid)
        return report.input_ids - report.skipped


def _open_journal(
    job: CancelJob, header: JournalHeader, err: TextIO
) -> tuple[Journal, JournalState]:
    """Open the journal, refusing one of another gateway, merchant or operation."""
    journal, state = Journal.open(job.journal, header=header)
    if state.header is None:
        if state.records:
            print(
                f"{PROG}: journal {job.journal}: no header (written by an older version): "
                "cannot check that it belongs to this gateway and merchant",
                file=err,
            )
        return journal, state
    differences = state.header.differs_from(header)
    if not differences:
        return journal, state
    if not job.start_over:
        journal.close()
        raise JournalError(
            f"journal {str(job.journal)!r} belongs to another gateway or merchant: "
            f"{'; '.join(differences)}. Rerun with the journal's own --base-url and "
            "merchant, or pass another --journal, or --start-over to move this journal "
            "aside and begin a new one"
        )
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = job.journal.with_name(f"{job.journal.name}.{stamp}.old")
    try:
        os.rename(job.journal, aside)  # still holding the lock: no run is using it
    except OSError as exc:
        journal.close()
        raise JournalError(f"cannot move journal aside to {str(aside)!r}: {exc}") from exc
    journal.close()
    print(f"{PROG}: journal of another gateway or merchant moved aside to {aside}", file=err)
    return Journal.open(job.journal, header=header)


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
    per-id failure. Raises :class:`UsageError` for an unwritable output path,
    :class:`InputError` for unusable input (no id at all included) and
    :class:`JournalError` if the journal cannot be opened or is another gateway's.
    """
    check_output_path("--summary-json", job.summary_json)
    check_output_path("--unsettled-out", job.unsettled_out)
    header = JournalHeader("cancel", job.base_url.base, job.credentials.merchant_id)
    report = BatchReport(
        journal=str(job.journal),
        run=secrets.token_hex(6),
        gateway=header.base_url,
        merchant_id=header.merchant_id,
        allow_malformed=job.allow_malformed,
    )
    selector = _Selector(report, err)
    parse = parser_for(job.csv_column, job.csv_delimiter)
    fd, regular = open_input(job.input_path, sys.stdin.fileno() if sys.stdin else 0)
    listed: FileIds | None = None
    if regular:
        # A regular file: read and count it first, so the total (and ETA) is known, and
        # an input without ids is refused before a journal exists. Its ids are kept
        # compact and read again, lazily, to be sent.
        listed = FileIds(fd, parse, selector.valid)
        report.input_ids = listed.unique
        report.duplicates = listed.valid_ids - listed.unique
        if not listed.unique:
            listed.close()
            raise InputError(why_no_ids(report.malformed, selector.first_bad, job.csv_column))
    created = not job.journal.exists()
    try:
        journal, state = _open_journal(job, header, err)
    except BaseException:
        if listed is not None:
            listed.close()
        elif not regular:
            os.close(fd)
        raise
    interrupt.watch(journal)
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
    unsettled = None
    if job.unsettled_out is not None:
        unsettled = selector.unsettled = UnsettledOut(job.unsettled_out)
        report.unsettled_out = str(job.unsettled_out)
    gate = Gate()
    source: StreamSource | None = None
    streams: list[AsyncGenerator[int, None]] = []
    try:
        if listed is not None:
            total: int | None = selector.fresh_file(listed, state)
            gated: Iterator[int] | AsyncGenerator[int, None] = gate.over(listed.remaining())
        else:
            if os.isatty(fd):
                print(f"{PROG}: reading payment ids from the terminal; end with Ctrl-D", file=err)
            source = reader = StreamSource(fd, parse)

            async def stream() -> AsyncGenerator[int, None]:
                async for item in reader.items():
                    pid = selector.take(item)
                    if pid is not None and selector.fresh(pid, state):
                        yield pid

            inner = stream()
            streams += [gate.over_stream(inner), inner]
            gated = streams[0]
            total = None
        await _drive(job, gated, gate, journal, report, total, interrupt, err, label, unsettled)
    except asyncio.CancelledError:
        interrupt.swallow()
        report.interrupted = True
    finally:
        for generator in streams:
            await generator.aclose()
        if source is not None:
            source.close()  # stops the reader thread
        report.elapsed = time.monotonic() - start
        await journal.aclose()
    if unsettled is not None:
        if listed is not None:
            for pid in listed.not_handed(gate.pulled):
                unsettled.add(pid)
        report.input_not_listed = listed is None and not gate.exhausted
        unsettled.close()
    if listed is not None:
        listed.close()
    if report.input_ids == 0 and not report.interrupted and report.aborted is None:
        report.aborted = why_no_ids(report.malformed, selector.first_bad, job.csv_column)
        report.abort_code = EXIT_USAGE
        if created and journal.lines_written == 0:
            job.journal.unlink(missing_ok=True)  # nothing happened: leave nothing behind
    if job.summary_json is not None:
        _write_summary_json(job.summary_json, report, err)
    return report


async def _drive(
    job: CancelJob,
    ids: Iterator[int] | AsyncGenerator[int, None],
    gate: Gate,
    journal: Journal,
    report: BatchReport,
    total: int | None,
    interrupt: Interrupt,
    err: TextIO,
    label: str,
    unsettled: UnsettledOut | None,
) -> None:
    def trip(reason: str) -> None:
        if report.aborted is None:
            report.aborted = f"the gateway looks wrong: {reason}"
            report.abort_code = EXIT_USAGE
        gate.stop(reason)
        print(
            f"{PROG}: stopping: {reason}; check --base-url. Sending no new ids, "
            f"letting {len(gate.in_flight)} in flight finish",
            file=err,
            flush=True,
        )

    def drain(signame: str) -> None:
        report.interrupted = True
        gate.stop(f"interrupted by {signame}")

    watch = AttemptWatch(job.fail_fast_after, err, on_trip=trip)
    # Retry is given as a middleware outside the watch (and the session's own retry is
    # off), so the watch sees every attempt, not every call. The layer order is
    # otherwise the session's own: retry, in-flight cap, pacing, logging.
    session = AsyncSession(
        job.credentials,
        base_url=job.base_url,
        retry=RetryPolicy.none(attempt_timeout=job.retry.attempt_timeout),
        middlewares=[RetryMiddleware(watch.retry_policy(job.retry)), watch],
        pacing=job.pacing,
        limits=Limits(max_connections=job.concurrency),
        spacing=PaymentSpacing(job.payment_interval),
    )
    progress = make_progress(job.progress, total, err, label=label, status=watch.status)
    journal.start()
    ticker = asyncio.create_task(_ticker(progress))
    interrupt.draining(drain, lambda: watch.in_flight)
    try:
        async with session as fp:
            outcomes = fp.cancel_many(ids, concurrency=job.concurrency, reconcile=job.reconcile)
            await _consume(outcomes, gate, journal, report, progress, err, unsettled)
    except JournalError as exc:  # the journal cannot be written (disk full...): exit 2
        report.aborted = str(exc)
        report.abort_code = EXIT_USAGE
        print(f"{PROG}: {exc}; stopping", file=err)
        _abandon(gate, None, report, unsettled)
    except asyncio.CancelledError:
        _abandon(gate, journal, report, unsettled)
        raise
    finally:
        interrupt.done_draining()
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        progress.close()


async def _consume(
    outcomes: AsyncIterator[CancelOutcome],
    gate: Gate,
    journal: Journal,
    report: BatchReport,
    progress: Progress,
    err: TextIO,
    unsettled: UnsettledOut | None,
) -> None:
    try:
        async for outcome in outcomes:
            pid = outcome.payment_id
            if pid is None:  # pragma: no cover - ids are validated
                continue
            record = outcome_record(outcome, run=report.run)
            journal.append(record)
            gate.done(pid)
            report.record(outcome, final=record["final"])
            progress.advance(outcome.state.value)
            if unsettled is not None and not outcome.state.settled:
                unsettled.add(pid)
            error = outcome.error
            code = _credential_refusal(error)
            refused = report.aborted is not None and report.aborted.startswith(_REFUSED)
            # More telling than a fail-fast stop (a wrong key fails every verification).
            if code is not None and not refused:
                report.aborted = (
                    f"{_REFUSED} ({type(error).__name__}, "
                    f"code {code}): check the merchant id and secret key"
                )
                report.abort_code = EXIT_USAGE
                gate.stop(report.aborted)
                print(f"{PROG}: {report.aborted}; stopping", file=err)
    finally:
        # Stops the workers (cancel_many is an async generator) and waits for them.
        aclose = getattr(outcomes, "aclose", None)
        if aclose is not None:
            await aclose()


def _abandon(
    gate: Gate, journal: Journal | None, report: BatchReport, unsettled: UnsettledOut | None
) -> None:
    """Count (and journal, if it can still be written) every id abandoned in flight as
    sent, outcome unknown."""
    for pid in sorted(gate.in_flight):
        error = ConnectionLostError(
            "abandoned in flight when the run was stopped: the gateway may have acted",
            payment_id=pid,
        )
        outcome = CancelOutcome(pid, pid, OutcomeState.UNKNOWN, 1, 0.0, error=error)
        record = outcome_record(outcome, run=report.run)
        if journal is not None:
            with contextlib.suppress(JournalError):
                journal.append(record)
        report.record(outcome, final=record["final"])
        report.abandoned += 1
        if unsettled is not None:
            unsettled.add(pid)
    gate.in_flight.clear()


def _write_summary_json(path: Path, report: BatchReport, err: TextIO) -> None:
    data = json.dumps(report.as_dict(), indent=2) + "\n"
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(data, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        print(f"{PROG}: cannot write summary {str(path)!r}: {exc.strerror}", file=err)
