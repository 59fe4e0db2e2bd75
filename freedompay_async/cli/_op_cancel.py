"""``cancel`` on the batch runner: ``cancel_many`` with reconciling, one journal line
per outcome."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from .._exceptions import ConnectionLostError, GatewayError
from .._session.batch import CancelOutcome, OutcomeState
from .._session.session import AsyncSession
from ._journal import Journal, JournalState
from ._options import BatchJob
from ._outcome import Ids, Outcome
from ._outcome_record import outcome_record
from ._report import BatchReport
from ._select import Selector
from ._source import Input, open_id_input
from ._watch import CREDENTIAL_ERRORS

__all__ = ["CancelOperation", "cancel_outcome"]

_FAILED = OutcomeState.FAILED


def _is_permanent(outcome: CancelOutcome, final: bool) -> bool:
    """A failure the gateway itself decided: trying again is not expected to help."""
    if outcome.state is not _FAILED:
        return False
    if final:
        return True
    error = outcome.error
    # Unsigned refusals ("payment not found" is documented unsigned) are asked again by
    # a rerun (they could be forged), but they are refusals, not transient failures.
    if isinstance(error, CREDENTIAL_ERRORS):
        return False  # the run's configuration, not the payment
    return isinstance(error, GatewayError) and not error.retryable


def cancel_outcome(outcome: CancelOutcome, *, run: str, final: bool | None = None) -> Outcome:
    """The runner's :class:`Outcome` of a cancel (``final``: as journaled, if known)."""
    record = outcome_record(outcome, run=run)
    if final is None:
        final = bool(record["final"])
    else:
        record["final"] = final
    state = outcome.state
    permanent = _is_permanent(outcome, final)
    rerun_as = ""
    if not (state.settled or permanent):
        rerun_as = "transient failure" if state is _FAILED else state.value
    result = outcome.result
    return Outcome(
        payment_id=outcome.payment_id or 0,
        state=state.value,
        settled=state.settled,
        final=final,
        attempts=outcome.attempts,
        error=outcome.error,
        permanent=permanent,
        rerun_as=rerun_as,
        confirmed_on_retry=result is not None and result.confirmed_on_retry,
        record=record,
    )


class CancelOperation:
    """Cancel (void) held payments; ``reconcile``: settle ambiguous cancels by status."""

    name = "cancel"
    states = tuple(state.value for state in OutcomeState)
    settled_states = OutcomeState.settled_values()
    verb = "cancelled"
    journaled = True
    unit = "id"

    def __init__(self, *, run: str, reconcile: bool = True) -> None:
        self.run = run
        self.reconcile = reconcile

    async def outcomes(
        self, fp: AsyncSession, ids: Ids, concurrency: int
    ) -> AsyncIterator[Outcome]:
        """``cancel_many`` over ``ids``."""
        batch = fp.cancel_many(ids, concurrency=concurrency, reconcile=self.reconcile)
        async with contextlib.aclosing(batch):
            async for outcome in batch:
                if outcome.payment_id is not None:  # always: the ids are validated
                    yield cancel_outcome(outcome, run=self.run)

    def open_input(self, job: BatchJob, selector: Selector, report: BatchReport) -> Input:
        """Payment ids, one per line or from a CSV column."""
        return open_id_input(job, selector, report)

    def bind(self, source: Input, journal: Journal | None, state: JournalState) -> None:
        """Nothing to learn: each id is sent as it comes."""

    def abandoned(self, payment_id: int) -> Outcome:
        """Sent, outcome unknown: journaled ``unknown``, asked again by a rerun."""
        error = ConnectionLostError(
            "abandoned in flight when the run was stopped: the gateway may have acted",
            payment_id=payment_id,
        )
        outcome = CancelOutcome(payment_id, payment_id, OutcomeState.UNKNOWN, 1, 0.0, error=error)
        return cancel_outcome(outcome, run=self.run)

    def show(self, outcome: Outcome) -> None:
        """Nothing per id: the journal has it."""

    def plan(self, payment_id: int) -> str:
        """The id, as an input line."""
        return str(payment_id)
