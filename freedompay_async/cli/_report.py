"""What one batch run did, how it is told (summary, JSON) and its exit code (the codes
and their text are :mod:`._exit`'s, named here too)."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import attrs

from .._session.batch import OutcomeState
from ._exit import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RERUN,
    EXIT_USAGE,
)
from ._outcome import Outcome
from ._summary import dry_run_lines, summary_lines
from ._text import describe

__all__ = ["BatchReport"]

_CANCEL_STATES = tuple(state.value for state in OutcomeState)
_SETTLED_STATES = OutcomeState.settled_values()
_FAILED = OutcomeState.FAILED.value
_EXAMPLE_LENGTH = 160


def running_loop_name() -> str:
    """ "uvloop" when running on uvloop, else "asyncio" (also outside a running loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return "asyncio"
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


@attrs.define
class BatchReport:
    """What one run did, and the state of every input id (this run's outcome, or the
    journal's for ids skipped as already settled).

    ``operation``, ``state_order``, ``settled_states``, ``verb`` and ``journaled`` come
    from the run's operation (the defaults are ``cancel``'s); ``journal`` is None for an
    operation that keeps none.
    """

    journal: str | None
    run: str
    gateway: str = ""
    merchant_id: int | None = None
    journal_records: int = 0
    input_ids: int = 0
    duplicates: int = 0
    malformed: int = 0
    skipped: int = 0
    prior: collections.Counter[str] = attrs.field(factory=collections.Counter)
    outcomes: collections.Counter[str] = attrs.field(factory=collections.Counter)
    errors: collections.Counter[str] = attrs.field(factory=collections.Counter)
    error_examples: dict[str, str] = attrs.field(factory=dict)
    unsettled: int = 0
    failed_for_good: int = 0
    refused_unsigned: int = 0
    abandoned: int = 0
    attempts: int = 0
    confirmed_on_retry: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    aborted: str | None = None
    abort_code: int = EXIT_USAGE
    unsettled_out: str | None = None
    input_not_listed: bool = False
    allow_malformed: bool = False
    event_loop: str = attrs.field(factory=running_loop_name)
    operation: str = "cancel"
    state_order: tuple[str, ...] = _CANCEL_STATES
    settled_states: frozenset[str] = _SETTLED_STATES
    verb: str = "cancelled"
    journaled: bool = True
    #: ``--shard K/N`` (None: the whole input), and the valid input ids of other shards.
    shard: str | None = None
    other_shard_ids: int = 0
    #: Ids written to ``--unsettled-out``.
    unsettled_listed: int = 0
    #: Ids a rerun would try again, by what they wait for ("unknown", "pending", ...).
    rerun_as: collections.Counter[str] = attrs.field(factory=collections.Counter)
    #: ``--dry-run``: the ids that would be sent, and what the credentials check said.
    dry_run: bool = False
    planned: int = 0
    credentials: str = ""
    #: What one input item is ("id"; "row" for the money movements).
    unit: str = "id"

    @property
    def sent(self) -> int:
        """How many ids this run tried (one outcome each)."""
        return sum(self.outcomes.values())

    @property
    def not_reached(self) -> int:
        """Input ids neither settled before nor tried by this run (interrupted/aborted)."""
        return max(0, self.input_ids - self.skipped - self.sent)

    @property
    def retry_later(self) -> int:
        """Input ids a rerun with the same journal would send again."""
        return self.unsettled + self.not_reached

    @property
    def to_rerun(self) -> int:
        """Input ids whose outcome a rerun can still change (refusals excluded)."""
        return self.unsettled - self.refused_unsigned + self.not_reached

    @property
    def permanent(self) -> int:
        """Input ids the gateway refused: final, this run or before."""
        return self.prior[_FAILED] + self.failed_for_good

    def states(self) -> collections.Counter[str]:
        """Current state of every input id reached so far, by state."""
        return self.prior + self.outcomes

    def record(self, outcome: Outcome) -> None:
        """Count one outcome of this run, as its operation classified it."""
        self.outcomes[outcome.state] += 1
        self.attempts += outcome.attempts
        self.unsettled += not outcome.final
        if outcome.permanent:
            self.failed_for_good += 1
            self.refused_unsigned += not outcome.final
        elif outcome.rerun_as:
            self.rerun_as[outcome.rerun_as] += 1
        error = outcome.error
        if error is not None and not outcome.settled:
            name = type(error).__name__
            self.errors[name] += 1
            if name not in self.error_examples:
                self.error_examples[name] = describe(error, limit=_EXAMPLE_LENGTH)
        if outcome.confirmed_on_retry:
            self.confirmed_on_retry += 1

    @property
    def transient_failed(self) -> int:
        """Ids of this run that failed in a way a rerun may change."""
        return self.rerun_as["transient failure"]

    @property
    def exit_code(self) -> int:
        """0, 1, 2, 3 or 130: see :data:`EXIT_CODES_TEXT`."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.aborted is not None:
            return self.abort_code
        if self.dry_run:
            return EXIT_FAILED if self.malformed and not self.allow_malformed else EXIT_OK
        if self.to_rerun:
            return EXIT_RERUN
        if self.permanent or any(s not in self.settled_states for s in +self.states()):
            return EXIT_FAILED
        if self.malformed and not self.allow_malformed:
            return EXIT_FAILED  # an id lost to a typo is silent non-work, not success
        return EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (``--summary-json``)."""
        states = self.states()
        return {
            "operation": self.operation,
            "unit": self.unit,
            "run": self.run,
            "gateway": self.gateway,
            "merchant_id": self.merchant_id,
            "journal": self.journal,
            "journal_records_before": self.journal_records,
            "shard": self.shard,
            "other_shard_ids": self.other_shard_ids,
            "input_ids": self.input_ids,
            "duplicates": self.duplicates,
            "malformed_lines": self.malformed,
            "skipped_settled": self.skipped,
            "sent": self.sent,
            "attempts": self.attempts,
            "confirmed_on_retry": self.confirmed_on_retry,
            "states": {state: states[state] for state in self.state_order},
            "not_reached": self.not_reached,
            "sent_outcome_unknown": self.abandoned,
            "retry_later": self.retry_later,
            "to_rerun": self.to_rerun,
            "failed_for_good": self.permanent,
            "this_run": {state: self.outcomes[state] for state in self.state_order},
            "errors_this_run": {
                name: {"count": count, "example": self.error_examples.get(name, "")}
                for name, count in self.errors.most_common()
            },
            "unsettled_out": self.unsettled_out,
            "unsettled_listed": self.unsettled_listed,
            "elapsed": round(self.elapsed, 3),
            "rate": round(self.sent / self.elapsed, 1) if self.elapsed > 0 else None,
            "interrupted": self.interrupted,
            "aborted": self.aborted,
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
            "event_loop": self.event_loop,
        }

    def render(self, *, exit_line: bool = True) -> str:
        """The human summary printed at the end of a run (``exit_line``: end with the
        exit code)."""
        lines = dry_run_lines(self) if self.dry_run else summary_lines(self)
        if exit_line:
            lines.append(f"  exit code   {self.exit_code}")
        return "\n".join(lines)
