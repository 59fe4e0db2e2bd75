"""``clear`` and ``refund`` on the batch runner: each row of a CSV is one money movement,
applied at most once across any number of reruns.

For each row still to do, in file order, with the rows of one payment one at a time:

1. a refund reads its *baseline* first (what status shows of the payment's refunds);
   if that fails, nothing is sent (``failed``, not final);
2. the *intent* (the row, the baseline) is journaled and fsynced;
3. the movement is sent through the session, which settles an open outcome by status
   over the settle window (``--settle-window``): nothing is sent again before a whole
   window of status showed no trace of it.

A row whose intent is open in the journal (the run died, or the outcome was unknown)
is *resumed*: ``clear(..., resume=True)`` / ``refund(..., baseline=<journaled>,
resume=True)`` watch status for a whole window before anything is sent, and a
movement status shows done is confirmed without sending. While a payment has an open
movement, its other rows are *held* (not sent this run): their own baselines would be
unreliable. Outcomes are classified in :mod:`._money_outcome`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from .._exceptions import (
    ConnectionLostError,
    DeadlineExceededError,
    FreedomPayError,
    InternalError,
    UnsettledError,
    ValidationError,
)
from .._operations.money import RefundBaseline
from .._session.session import AsyncSession
from .._settling.locks import PaymentLocks
from ._journal import Journal, JournalError, JournalState
from ._money_journal import open_keys, open_payments, read_money_journal
from ._money_outcome import (
    HELD_LAG,
    MoneyResult,
    error_outcome,
    held_outcome,
    intent_record,
    result_outcome,
)
from ._options import BatchJob
from ._outcome import Ids, Outcome
from ._pool import run_pool
from ._refund_floor import RefundFloors
from ._report import BatchReport
from ._rowinput import PlannedRow, RowInput, open_row_input
from ._select import Selector
from ._source import Input
from ._states import ALREADY_DONE, DONE, MONEY_STATES

_UNKNOWN = "unknown"

__all__ = ["MONEY_OPERATIONS", "MoneyOperation"]

#: The money commands and what their rows become.
MONEY_OPERATIONS = {"clear": "cleared", "refund": "refunded"}


class MoneyOperation:
    """Clear (capture) or refund the rows of a CSV; ``kind`` is ``clear`` or ``refund``."""

    states = MONEY_STATES
    settled_states = frozenset({DONE, ALREADY_DONE})
    journaled = True
    unit = "row"

    def __init__(self, kind: str, *, run: str) -> None:
        self.name = kind
        self.verb = MONEY_OPERATIONS[kind]
        self.run = run
        self.rows: dict[int, PlannedRow] = {}
        self.journal: Journal | None = None
        self.intents: dict[int, dict[str, object]] = {}
        #: Payment id -> the keys of its open movements (journaled, not settled).
        self.open: dict[int, set[int]] = {}
        #: Keys whose intent this run journaled, until their outcome is known.
        self.sending: set[int] = set()
        self.floors = RefundFloors()
        self._locks = PaymentLocks()

    @property
    def refund(self) -> bool:
        """Whether this is ``refund`` (else ``clear``)."""
        return self.name == "refund"

    def open_input(self, job: BatchJob, selector: Selector, report: BatchReport) -> Input:
        """The rows of the CSV ``--input`` (``amount`` required for a refund)."""
        return open_row_input(
            job.input_path, selector, report, amount_required=self.refund,
            delimiter=job.csv_delimiter, stdin=job.stdin,
        )  # fmt: skip

    def bind(self, source: Input, journal: Journal | None, state: JournalState) -> None:
        """Learn the rows, and the movements the journal leaves open."""
        assert isinstance(source, RowInput)
        self.rows, self.journal = source.rows, journal
        keys = open_keys(state)
        if journal is not None:
            known = read_money_journal(journal.path, keys)
            self.intents, self.floors = known.intents, RefundFloors(known.floors)
        payment_of = {key: planned.row.payment_id for key, planned in self.rows.items()}
        self.open = open_payments(keys, self.intents, payment_of)

    def outcomes(self, fp: AsyncSession, ids: Ids, concurrency: int) -> AsyncIterator[Outcome]:
        """Every row handed out, ``concurrency`` at a time."""
        return run_pool(lambda key: self._row(fp, key), ids, concurrency)

    async def _row(self, fp: AsyncSession, key: int) -> Outcome:
        planned = self.rows[key]
        pid = planned.row.payment_id
        async with self._locks.hold(pid):
            opened = self.open.get(pid, set())
            if opened and key not in opened:
                return held_outcome(planned, run=self.run)
            start = time.monotonic()
            try:
                if key in opened:
                    outcome = await self._resume(fp, planned, start)
                else:
                    outcome = await self._fresh(fp, planned, start)
            except JournalError:
                raise  # the intent cannot be made durable: the run stops (exit 2)
            except Exception as exc:  # a bug: never lose the row, nor hide that it may have moved
                outcome = self._bug(planned, exc, start)
            self._track(planned, outcome)
            return outcome

    async def _fresh(self, fp: AsyncSession, planned: PlannedRow, start: float) -> Outcome:
        row, baseline = planned.row, None
        if self.refund:
            try:
                baseline = await self.floors.baseline(fp, row.payment_id)
            except FreedomPayError as exc:  # nothing sent: the outcome is known
                return error_outcome(planned, exc, time.monotonic() - start, run=self.run)
            if baseline is None:
                return held_outcome(planned, HELD_LAG, run=self.run)
        assert self.journal is not None  # a real run always keeps one
        await self.journal.append_durable(intent_record(planned, baseline, run=self.run))
        self.sending.add(planned.key)
        return await self._send(fp, planned, baseline, start, resume=False)

    async def _resume(self, fp: AsyncSession, planned: PlannedRow, start: float) -> Outcome:
        baseline = None
        if self.refund:
            journaled = self.intents.get(planned.key, {}).get("baseline")
            try:
                baseline = RefundBaseline.from_json(journaled)
            except ValidationError:
                error = UnsettledError(
                    "refund may have been sent before, and its baseline is not in the "
                    "journal: it cannot be settled safely, nothing was sent",
                    payment_id=planned.row.payment_id,
                )
                return error_outcome(planned, error, time.monotonic() - start, run=self.run)
        return await self._send(fp, planned, baseline, start, resume=True)

    async def _send(
        self, fp: AsyncSession, planned: PlannedRow, baseline: RefundBaseline | None,
        start: float, *, resume: bool,
    ) -> Outcome:  # fmt: skip
        row = planned.row
        result: MoneyResult
        try:
            if self.refund:
                assert row.amount is not None and baseline is not None  # a refund row has both
                result = await fp.refund(
                    row.payment_id, row.amount, currency=row.currency, baseline=baseline,
                    resume=resume,
                )  # fmt: skip
            else:
                result = await fp.clear(row.payment_id, row.amount, resume=resume)
        except FreedomPayError as exc:
            outcome = error_outcome(planned, exc, time.monotonic() - start, run=self.run)
        else:
            total = None if baseline is None else baseline.refunded + (row.amount or 0)
            outcome = result_outcome(
                planned, result, time.monotonic() - start, run=self.run, expected_refunded=total
            )
            if total is not None and outcome.state == DONE:
                self.floors.raise_to(row.payment_id, total)
        # Known now (cancelled, it stays "sending": abandoned in flight, maybe sent).
        self.sending.discard(planned.key)
        return outcome

    def _bug(self, planned: PlannedRow, exc: Exception, start: float) -> Outcome:
        error = InternalError(f"unexpected {type(exc).__name__} during {self.name}")
        error.payment_id = planned.row.payment_id
        opened = planned.key in self.open.get(planned.row.payment_id, ())
        if not (planned.key in self.sending or opened):
            error.maybe_processed = False  # before its intent: nothing was sent
        self.sending.discard(planned.key)
        return error_outcome(planned, error, time.monotonic() - start, run=self.run)

    def _track(self, planned: PlannedRow, outcome: Outcome) -> None:
        """Keep the payment's open movements up to date (held rows follow them)."""
        pid = planned.row.payment_id
        opened = self.open.setdefault(pid, set())
        if outcome.state == _UNKNOWN:
            opened.add(planned.key)
        else:
            opened.discard(planned.key)
        if not opened:
            del self.open[pid]

    def abandoned(self, item: int) -> Outcome:
        """Stopped in flight: unknown once its intent was journaled (it may have been
        sent), else failed, not sent."""
        planned = self.rows[item]
        pid = planned.row.payment_id
        error: FreedomPayError
        if item in self.sending or item in self.open.get(pid, ()):
            error = ConnectionLostError(
                "abandoned in flight when the run was stopped: the gateway may have acted",
                payment_id=pid,
            )
        else:
            error = DeadlineExceededError("abandoned before it was sent", payment_id=pid)
        return error_outcome(planned, error, 0.0, run=self.run)

    def show(self, outcome: Outcome) -> None:
        """Nothing per row: the journal has it."""

    def plan(self, item: int) -> str:
        """What would be sent for the row ``item``, on one line."""
        planned = self.rows[item]
        row = planned.row
        amount = "all of the hold" if row.amount is None else f"{row.amount:.2f}"
        currency = f" {row.currency}" if row.currency else ""
        resume = item in self.open.get(row.payment_id, ())
        held = not resume and row.payment_id in self.open
        note = (
            " (open in the journal: settled by status first, sent again only after a "
            "whole window without a trace)"
            if resume
            else " (held: an earlier movement of this payment is open)"
            if held
            else ""
        )
        return f"line {planned.line}: {self.name} payment {row.payment_id} {amount}{currency}{note}"
