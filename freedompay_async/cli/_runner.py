"""One batch run, for every operation: :class:`BatchRun` opens, sends and finishes.

Order of a run, so that nothing is half-done when something is wrong: the output paths
(``--summary-json``, ``--unsettled-out``) are checked, the input is opened (a regular
file is read whole: no id in it is an error before any journal exists), then the
journal is opened, refused if it is the input or not a journal of this tool, its
header checked against this gateway, merchant, operation and shard, and only then is
anything sent.

Stopping: a gate in front of the operation stops handing out new ids when the gateway
is plainly wrong or refuses the credentials (:class:`~._watch.AttemptWatch`), or a
first signal arrives; the ids in flight then finish and are journaled. Ids abandoned
in flight (a second signal, the grace period over) are journaled as the operation's
"abandoned" outcome: sent, outcome not known.

What one item does is the operation's (:class:`~._operation.BatchOperation`):
``cancel`` and ``status`` hand out payment ids; ``clear`` and ``refund`` the keys of
the rows of a CSV (:mod:`._op_money`), each journaled as an intent before it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import TextIO

from .._config import Limits
from .._layers.retry import RetryPolicy
from .._layers.spacing import PaymentSpacing
from .._session.session import AsyncSession
from .._transport.default import AiohttpTransport
from ._console import Console
from ._counting import CountingTransport
from ._dryrun import dry_run
from ._exit import EXIT_USAGE
from ._flow import Gate, UnsettledOut, check_output_path, same_file
from ._input import why_no_ids
from ._journal import Journal, JournalError, JournalHeader, JournalState
from ._op_cancel import CancelOperation
from ._op_money import MONEY_OPERATIONS, MoneyOperation
from ._op_status import StatusOperation
from ._operation import BatchOperation
from ._options import BatchJob, UsageError
from ._outcome import Outcome
from ._progress import Progress, make_progress
from ._report import BatchReport
from ._select import Selector
from ._signals import Interrupt
from ._source import Input, PipeInput
from ._watch import AttemptWatch, OperationRetry

__all__ = ["BatchRun", "operation_for"]

_TICK = 0.5


def operation_for(job: BatchJob, run: str, out: TextIO) -> BatchOperation:
    """The operation ``job`` runs (``run`` is the id its journal lines carry)."""
    if job.operation == "cancel":
        return CancelOperation(run=run, reconcile=job.reconcile)
    if job.operation == "status":
        return StatusOperation(out)
    if job.operation in MONEY_OPERATIONS:
        return MoneyOperation(job.operation, run=run)
    raise UsageError(f"no batch operation {job.operation!r}")


def _report_for(job: BatchJob, operation: BatchOperation, run: str) -> BatchReport:
    header = _header(job, operation)
    return BatchReport(
        journal=str(job.journal) if operation.journaled else None,
        run=run,
        gateway=header.base_url,
        merchant_id=header.merchant_id,
        allow_malformed=job.allow_malformed,
        operation=operation.name,
        state_order=operation.states,
        settled_states=operation.settled_states,
        verb=operation.verb,
        journaled=operation.journaled,
        shard=header.shard,
        unit=operation.unit,
    )


def _header(job: BatchJob, operation: BatchOperation) -> JournalHeader:
    shard = str(job.shard) if job.shard is not None else None
    return JournalHeader(
        operation.name, job.base_url.base, job.credentials.merchant_id, shard=shard,
        api=job.api.value,
    )  # fmt: skip


async def _ticker(progress: Progress) -> None:
    while True:
        await asyncio.sleep(_TICK)
        progress.tick()


class BatchRun:
    """One run of ``job``: :meth:`open` the input and the journal, :meth:`send` the ids
    still to do, :meth:`close` and :meth:`finish`; or all of it with :meth:`run`.

    Per-id failures never raise. :meth:`open` raises :class:`~._options.UsageError` for
    an unusable output path, :class:`~._input.InputError` for unusable input (no id at
    all included) and :class:`~._journal.JournalError` for a journal that cannot be
    used (another gateway's, the input, not a journal, in use).
    """

    def __init__(
        self,
        job: BatchJob,
        *,
        interrupt: Interrupt,
        err: TextIO,
        out: TextIO,
        label: str | None = None,
    ) -> None:
        self.job = job
        self.interrupt = interrupt
        self.out = out
        run = secrets.token_hex(6)
        self.operation = operation_for(job, run, out)
        self.label = label or self.operation.name
        self.report = _report_for(job, self.operation, run)
        self.console = Console(err)
        self.selector = Selector(self.report, self.console, job.shard)
        self.gate = Gate()
        self.input: Input | None = None
        self.journal: Journal | None = None
        self.state = JournalState()
        self.unsettled: UnsettledOut | None = None
        self._created = False
        self._start = time.monotonic()

    async def run(self) -> BatchReport:
        """Open, send (or, with ``--dry-run``, plan) and finish; the report."""
        await self.open()
        try:
            if self.job.dry_run:
                await dry_run(self)
            else:
                await self.send()
        except asyncio.CancelledError:
            self.interrupt.swallow()
            self.report.interrupted = True
        finally:
            await self.close()
        return self.finish()

    # -- open ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Check the output paths, open the input, then the journal."""
        job = self.job
        check_output_path("--summary-json", job.summary_json)
        check_output_path("--unsettled-out", job.unsettled_out)
        outputs = {"--summary-json": job.summary_json, "--unsettled-out": job.unsettled_out}
        for option, path in outputs.items():
            if path is not None and job.journal is not None and path == job.journal:
                raise UsageError(f"{option} and --journal name the same file {str(path)!r}")
        self.input = self.operation.open_input(job, self.selector, self.report)
        try:
            self._open_journal()
            self.operation.bind(self.input, self.journal, self.state)
        except BaseException:
            await self.close()
            raise
        if isinstance(self.input, PipeInput) and self.input.tty:
            self.console.say("reading payment ids from the terminal; end with Ctrl-D")
        if job.unsettled_out is not None and not job.dry_run:
            self.unsettled = self.selector.unsettled = UnsettledOut(job.unsettled_out)
            self.report.unsettled_out = str(job.unsettled_out)

    def _open_journal(self) -> None:
        path = self.job.journal
        if not self.operation.journaled or path is None:
            return
        assert self.input is not None
        if same_file(path, self.input.identity):
            raise JournalError(
                f"--journal {str(path)!r} is the --input file: pass a new path to --journal"
            )
        if self.job.dry_run:
            self.state = Journal.peek(path)
            self._check_header(path)
        else:
            self._created = not path.exists()
            self.journal, self.state = self._open_checked(path)
            self.interrupt.watch(self.journal)
        self.report.journal_records = self.state.records
        self._warn_about_journal(path)

    def _check_header(self, path: Path) -> list[str]:
        """How this journal's header differs from this run's (gateway, API family,
        merchant, operation, shard): refused, unless ``--start-over`` asks to move it aside."""
        header = self.state.header
        if header is None:
            return []
        differences = header.differs_from(_header(self.job, self.operation))
        if differences and not self.job.start_over:
            raise JournalError(
                f"journal {str(path)!r} belongs to another gateway, merchant or shard: "
                f"{'; '.join(differences)}. Rerun with the journal's own --base-url, --api, "
                "merchant and --shard, or pass another --journal, or --start-over to move "
                "this journal aside and begin a new one"
            )
        return differences

    def _open_checked(self, path: Path) -> tuple[Journal, JournalState]:
        header = _header(self.job, self.operation)
        journal, self.state = Journal.open(path, header=header)
        try:
            differences = self._check_header(path)
        except JournalError:
            journal.close()
            raise
        if not differences:
            return journal, self.state
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = path.with_name(f"{path.name}.{stamp}.old")
        try:
            os.rename(path, aside)  # still holding the lock: no run is using it
        except OSError as exc:
            raise JournalError(f"cannot move journal aside to {str(aside)!r}: {exc}") from exc
        finally:
            journal.close()
        self.console.say(f"journal of another gateway, merchant or shard moved aside to {aside}")
        return Journal.open(path, header=header)

    def _warn_about_journal(self, path: Path) -> None:
        state, say = self.state, self.console.say
        if state.header is None and state.records:
            say(
                f"journal {path}: no header (written by an older version): cannot check "
                "that it belongs to this gateway and merchant"
            )
        if state.repaired_tail:
            say(f"journal {path}: {state.repaired_tail}")
        if state.bad_lines:
            shown = ", ".join(map(str, state.bad_lines[:10]))
            more = ", ..." if len(state.bad_lines) > 10 else ""
            say(f"journal {path}: {state.bad_count} unreadable lines ignored (lines {shown}{more})")

    # -- send ---------------------------------------------------------------------------

    def session(self, watch: AttemptWatch, wire: CountingTransport) -> AsyncSession:
        """The session of this run. Retry is a middleware outside the watch (and the
        session's own is off), so the watch sees every attempt, not every call; the
        layer order is otherwise the session's own."""
        job = self.job
        return AsyncSession(
            job.credentials,
            base_url=job.base_url,
            retry=RetryPolicy.none(attempt_timeout=job.retry.attempt_timeout),
            middlewares=[OperationRetry(job.retry, lambda: watch.tripped is not None), watch],
            pacing=job.pacing,
            limits=Limits(max_connections=job.concurrency),
            spacing=PaymentSpacing(job.payment_interval),
            transport=wire,
            settle=job.settle,
            api=job.api,
        )

    async def send(self) -> None:
        """Send every id still to do through the operation, journaling each outcome."""
        assert self.input is not None
        job = self.job
        total = self.input.prepare(self.state)
        wire = CountingTransport(AiohttpTransport(limits=Limits(max_connections=job.concurrency)))
        watch = AttemptWatch(
            job.fail_fast_after,
            self.console,
            on_trip=lambda reason: self._trip(reason, watch.refused),
            on_wire=lambda: wire.on_wire,
        )
        progress = make_progress(
            job.progress,
            total,
            self.console.err,
            label=self.label,
            interval=job.progress_interval,
            status=watch.status,
        )
        self.console.attach(progress)
        ticker = asyncio.create_task(_ticker(progress))
        self.interrupt.draining(self._drain, lambda: watch.in_flight)
        self._start = time.monotonic()
        try:
            await self._drive(self.session(watch, wire), progress)
        finally:
            self.interrupt.done_draining()
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            progress.close()
            self.console.detach()

    async def _drive(self, session: AsyncSession, progress: Progress) -> None:
        assert self.input is not None
        if self.journal is not None:
            self.journal.start()
        try:
            async with session as fp:
                ids = self.input.ids(self.gate)
                outcomes = self.operation.outcomes(fp, ids, self.job.concurrency)
                await self._consume(outcomes, progress)
        except JournalError as exc:  # the journal cannot be written (disk full...): exit 2
            self.report.aborted = str(exc)
            self.report.abort_code = EXIT_USAGE
            self.console.say(f"{exc}; stopping")
            self._abandon(journaled=False)
        except asyncio.CancelledError:
            self._abandon(journaled=True)
            raise

    async def _consume(self, outcomes: AsyncIterator[Outcome], progress: Progress) -> None:
        try:
            async for outcome in outcomes:
                self.record(outcome)
                progress.advance(outcome.state)
        finally:
            # Stops the workers (an async generator) and waits for them.
            if isinstance(outcomes, AsyncGenerator):
                await outcomes.aclose()

    def record(self, outcome: Outcome, *, journaled: bool = True) -> None:
        """Journal, count and show one outcome of this run."""
        if journaled and self.journal is not None:
            self.journal.append(outcome.record)
        self.gate.done(outcome.item)
        self.report.record(outcome)
        self.operation.show(outcome)
        if self.unsettled is not None and not outcome.settled:
            self.unsettled.add(outcome.payment_id)

    def _trip(self, reason: str, refused: bool) -> None:
        report, flying = self.report, len(self.gate.in_flight)
        if report.aborted is None:
            report.aborted = reason if refused else f"the gateway looks wrong: {reason}"
            report.abort_code = EXIT_USAGE
        self.gate.stop(reason)
        check = "" if refused else "; check --base-url"
        self.console.say(
            f"stopping: {reason}{check}. Sending no new ids, letting {flying} in flight finish"
        )

    def _drain(self, signame: str) -> None:
        self.report.interrupted = True
        self.gate.stop(f"interrupted by {signame}")

    def _abandon(self, *, journaled: bool) -> None:
        """Count (and journal, if it can still be written) every id abandoned in flight
        as sent, outcome unknown."""
        for pid in sorted(self.gate.in_flight):
            outcome = self.operation.abandoned(pid)
            if journaled and self.journal is not None:
                with contextlib.suppress(JournalError):
                    self.journal.append(outcome.record)
            self.record(outcome, journaled=False)
            self.report.abandoned += 1
        self.gate.in_flight.clear()

    # -- finish -------------------------------------------------------------------------

    async def close(self) -> None:
        """Release the input and the journal (idempotent)."""
        self.report.elapsed = time.monotonic() - self._start
        if self.input is not None:
            await self.input.aclose()
        if self.journal is not None:
            await self.journal.aclose()

    def finish(self) -> BatchReport:
        """Write ``--unsettled-out`` and ``--summary-json``; the report."""
        report, job = self.report, self.job
        if self.unsettled is not None:
            assert self.input is not None
            for pid in self.input.leftovers(self.gate):
                self.unsettled.add(pid)
            report.input_not_listed = isinstance(self.input, PipeInput) and not self.gate.exhausted
            self.unsettled.close()
            report.unsettled_listed = self.unsettled.count
        if not (report.input_ids or report.other_shard_ids or report.interrupted or report.aborted):
            report.aborted = why_no_ids(report.malformed, self.selector.first_bad, job.csv_column)
            report.abort_code = EXIT_USAGE
            journal = self.journal
            if self._created and journal is not None and journal.lines_written == 0:
                journal.path.unlink(missing_ok=True)  # nothing happened: leave nothing behind
        if job.summary_json is not None and not job.dry_run:
            _write_summary_json(job.summary_json, report, self.console)
        return report


def _write_summary_json(path: Path, report: BatchReport, console: Console) -> None:
    data = json.dumps(report.as_dict(), indent=2) + "\n"
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(data, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        console.say(f"cannot write summary {str(path)!r}: {exc.strerror}")
