"""What one batch run did, how it is told (summary, JSON) and its exit code."""

from __future__ import annotations

import collections
from typing import Any

import attrs

from .._batch import CancelOutcome, OutcomeState

__all__ = [
    "EXIT_CODES_TEXT",
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROG",
    "BatchReport",
]

PROG = "freedompay-async"

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_STATE_ORDER = [state.value for state in OutcomeState]
_SETTLED_STATES = OutcomeState.settled_values()

EXIT_CODES_TEXT = """\
exit codes:
  0    every input id is cancelled or already cancelled
  1    some id failed, is unknown or pending, or was not reached; a rerun with the
       same --journal retries all of them except final failures (such as
       "payment not found"), which it skips like the cancelled ones
  2    usage or configuration error (bad option, missing credentials, journal in use,
       or the gateway refused the credentials)
  130  interrupted (Ctrl-C / SIGTERM): the journal is flushed; rerun to resume
"""


@attrs.define
class BatchReport:
    """What one run did, and the state of every input id (this run's outcome, or the
    journal's for ids skipped as already settled)."""

    journal: str
    run: str
    journal_records: int = 0
    input_ids: int = 0
    duplicates: int = 0
    malformed: int = 0
    skipped: int = 0
    prior: collections.Counter[str] = attrs.field(factory=collections.Counter)
    outcomes: collections.Counter[str] = attrs.field(factory=collections.Counter)
    errors: collections.Counter[str] = attrs.field(factory=collections.Counter)
    unsettled: int = 0
    failed_for_good: int = 0
    attempts: int = 0
    confirmed_on_retry: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    aborted: str | None = None
    abort_code: int = EXIT_INCOMPLETE

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

    def states(self) -> collections.Counter[str]:
        """Current state of every input id reached so far, by state."""
        return self.prior + self.outcomes

    def record(self, outcome: CancelOutcome, *, final: bool) -> None:
        """Count one outcome of this run (``final``: as journaled)."""
        self.outcomes[outcome.state.value] += 1
        self.attempts += outcome.attempts
        self.unsettled += not final
        self.failed_for_good += final and outcome.state is OutcomeState.FAILED
        if outcome.error is not None and outcome.state.value not in _SETTLED_STATES:
            self.errors[type(outcome.error).__name__] += 1
        if outcome.result is not None and outcome.result.confirmed_on_retry:
            self.confirmed_on_retry += 1

    @property
    def exit_code(self) -> int:
        """0, 1, 2 or 130: see the module docstring."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.aborted is not None:
            return self.abort_code
        if self.not_reached or any(s not in _SETTLED_STATES for s in +self.states()):
            return EXIT_INCOMPLETE
        return EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (``--summary-json``)."""
        states = self.states()
        return {
            "run": self.run,
            "journal": self.journal,
            "journal_records_before": self.journal_records,
            "input_ids": self.input_ids,
            "duplicates": self.duplicates,
            "malformed_lines": self.malformed,
            "skipped_settled": self.skipped,
            "sent": self.sent,
            "attempts": self.attempts,
            "confirmed_on_retry": self.confirmed_on_retry,
            "states": {state: states[state] for state in _STATE_ORDER},
            "not_reached": self.not_reached,
            "retry_later": self.retry_later,
            "this_run": {state: self.outcomes[state] for state in _STATE_ORDER},
            "errors_this_run": dict(self.errors.most_common()),
            "elapsed": round(self.elapsed, 3),
            "rate": round(self.sent / self.elapsed, 1) if self.elapsed > 0 else None,
            "interrupted": self.interrupted,
            "aborted": self.aborted,
            "exit_code": self.exit_code,
        }

    def render(self) -> str:
        """The human summary printed at the end of a run."""
        rate = f", {self.sent / self.elapsed:.1f}/s" if self.elapsed > 0 and self.sent else ""
        input_notes = []
        if self.duplicates:
            input_notes.append(f"{_count(self.duplicates, 'duplicate id')} ignored")
        if self.malformed:
            input_notes.append(f"{_count(self.malformed, 'malformed line')} skipped")
        notes = f" ({', '.join(input_notes)})" if input_notes else ""
        confirmed = (
            f", {self.confirmed_on_retry} confirmed on retry" if self.confirmed_on_retry else ""
        )
        states = self.states()
        lines = [
            "summary:",
            f"  input       {self.input_ids} unique ids{notes}",
            f"  journal     {self.journal} ({self.journal_records} records before this run)",
            f"  skipped     {self.skipped} ids already settled in the journal",
            f"  this run    {self.sent} ids, {self.attempts} HTTP attempts, "
            f"{self.elapsed:.1f} s{rate}{confirmed}",
        ]
        if self.errors:
            shown = ", ".join(f"{name} {count}" for name, count in self.errors.most_common(6))
            lines.append(f"  errors      {shown}")
        lines.append("  state of every input id:")
        lines += [f"    {state:<18}{states[state]:>9}" for state in _STATE_ORDER]
        if self.not_reached:
            lines.append(f"    {'not reached':<18}{self.not_reached:>9}")
        if self.interrupted:
            lines.append("  interrupted: rerun with the same --journal to resume")
        elif self.aborted is not None:
            lines.append(f"  stopped: {self.aborted}")
        if self.retry_later and not self.interrupted:
            lines.append(
                f"  {_count(self.retry_later, 'id')} not settled (unknown, pending, transient "
                "failure or not reached):\n  rerun with the same --journal to retry them"
            )
        final_failures = self.prior[OutcomeState.FAILED.value] + self.failed_for_good
        if final_failures:
            lines.append(
                f"  {_count(final_failures, 'id')} failed for good (see error_type in the "
                "journal);\n  a rerun skips them"
            )
        lines.append(f"  exit code   {self.exit_code}")
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
