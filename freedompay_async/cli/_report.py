"""What one batch run did, how it is told (summary, JSON) and its exit code."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import attrs

from .._exceptions import GatewayError, InvalidRequestSignatureError, UnknownMerchantError
from .._session.batch import (
    CancelOutcome,
    OutcomeState,
)

__all__ = [
    "EXIT_CODES_TEXT",
    "EXIT_FAILED",
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_RERUN",
    "EXIT_USAGE",
    "PROG",
    "BatchReport",
]

PROG = "freedompay-async"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INCOMPLETE = EXIT_FAILED  # the name other commands use for "did not succeed"
EXIT_USAGE = 2
EXIT_RERUN = 3
EXIT_INTERRUPTED = 130

_STATE_ORDER = [state.value for state in OutcomeState]
_SETTLED_STATES = OutcomeState.settled_values()
_EXAMPLE_LENGTH = 160

EXIT_CODES_TEXT = """\
exit codes:
  0    every input id is cancelled or already cancelled, and every input line
       was an id (or blank, or a comment)
  1    some input could not be cancelled for good, and a rerun will not change
       that: the gateway refused ids (such as "payment not found"), or input lines
       were malformed (skipped; fix them, or pass --allow-malformed). An unsigned
       refusal (it could be forged) stays non-final in the journal, so a rerun asks
       about it again, but the answer is not expected to change
  2    usage or environment error: bad option or input, no ids in the input,
       missing credentials, journal in use or of another gateway/merchant, journal
       not writable (disk full), the gateway refused the credentials, or the
       gateway is plainly wrong (--fail-fast-after): fix it and rerun
  3    some ids remain to rerun (unknown, pending, transient failure, not reached):
       rerun with the same --journal
  130  interrupted (Ctrl-C / SIGTERM / SIGHUP): the replies in flight were waited
       for (--grace) and journaled; rerun with the same --journal to resume
"""


def running_loop_name() -> str:
    """"uvloop" when running on uvloop, else "asyncio" (also outside a running loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return "asyncio"
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def _is_permanent(outcome: CancelOutcome, final: bool) -> bool:
    """A failure the gateway itself decided: trying again is not expected to help."""
    if outcome.state is not OutcomeState.FAILED:
        return False
    if final:
        return True
    error = outcome.error
    # Unsigned refusals ("payment not found" is documented unsigned) are asked again by
    # a rerun (they could be forged), but they are refusals, not transient failures.
    if isinstance(error, (InvalidRequestSignatureError, UnknownMerchantError)):
        return False  # the run's configuration, not the payment
    return isinstance(error, GatewayError) and not error.retryable


@attrs.define
class BatchReport:
    """What one run did, and the state of every input id (this run's outcome, or the
    journal's for ids skipped as already settled)."""

    journal: str
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
    transient_failed: int = 0
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
        return self.prior[OutcomeState.FAILED.value] + self.failed_for_good

    def states(self) -> collections.Counter[str]:
        """Current state of every input id reached so far, by state."""
        return self.prior + self.outcomes

    def record(self, outcome: CancelOutcome, *, final: bool) -> None:
        """Count one outcome of this run (``final``: as journaled)."""
        self.outcomes[outcome.state.value] += 1
        self.attempts += outcome.attempts
        self.unsettled += not final
        if _is_permanent(outcome, final):
            self.failed_for_good += 1
            self.refused_unsigned += not final
        elif outcome.state is OutcomeState.FAILED:
            self.transient_failed += 1
        error = outcome.error
        if error is not None and outcome.state.value not in _SETTLED_STATES:
            name = type(error).__name__
            self.errors[name] += 1
            if name not in self.error_examples:
                self.error_examples[name] = str(error)[:_EXAMPLE_LENGTH]
        if outcome.result is not None and outcome.result.confirmed_on_retry:
            self.confirmed_on_retry += 1

    @property
    def exit_code(self) -> int:
        """0, 1, 2, 3 or 130: see :data:`EXIT_CODES_TEXT`."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.aborted is not None:
            return self.abort_code
        if self.to_rerun:
            return EXIT_RERUN
        if self.permanent or any(s not in _SETTLED_STATES for s in +self.states()):
            return EXIT_FAILED
        if self.malformed and not self.allow_malformed:
            return EXIT_FAILED  # an id lost to a typo is silent non-work, not success
        return EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (``--summary-json``)."""
        states = self.states()
        return {
            "run": self.run,
            "gateway": self.gateway,
            "merchant_id": self.merchant_id,
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
            "sent_outcome_unknown": self.abandoned,
            "retry_later": self.retry_later,
            "to_rerun": self.to_rerun,
            "failed_for_good": self.permanent,
            "this_run": {state: self.outcomes[state] for state in _STATE_ORDER},
            "errors_this_run": {
                name: {"count": count, "example": self.error_examples.get(name, "")}
                for name, count in self.errors.most_common()
            },
            "unsettled_out": self.unsettled_out,
            "elapsed": round(self.elapsed, 3),
            "rate": round(self.sent / self.elapsed, 1) if self.elapsed > 0 else None,
            "interrupted": self.interrupted,
            "aborted": self.aborted,
            "exit_code": self.exit_code,
            "event_loop": self.event_loop,
        }

    def render(self, *, exit_line: bool = True) -> str:
        """The human summary printed at the end of a run (``exit_line``: end with the
        exit code)."""
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
        lines = ["summary:"]
        if self.gateway:
            lines.append(f"  gateway     {self.gateway} (merchant {self.merchant_id})")
        lines += [
            f"  input       {self.input_ids} unique ids{notes}",
            f"  journal     {self.journal} ({self.journal_records} records before this run)",
            f"  skipped     {self.skipped} ids already settled in the journal",
            f"  this run    {self.sent} ids, {self.attempts} HTTP attempts, "
            f"{self.elapsed:.1f} s{rate}{confirmed}",
            f"  event loop  {self.event_loop}"
            + (" (the speed extra)" if self.event_loop == "uvloop" else ""),
        ]
        for index, (name, count) in enumerate(self.errors.most_common(8)):
            label = "errors" if index == 0 else ""
            example = self.error_examples.get(name, "")
            lines.append(f"  {label:<12}{name} {count}" + (f", e.g. {example}" if example else ""))
        lines.append("  state of every input id:")
        lines += [f"    {state:<18}{states[state]:>9}" for state in _STATE_ORDER]
        if self.not_reached:
            lines.append(f"    {'not reached':<18}{self.not_reached:>9}")
        if self.abandoned:
            lines.append(
                f"  in flight   {_count(self.abandoned, 'id')} abandoned in flight: sent, "
                "outcome unknown (journaled as unknown)"
            )
        if self.interrupted:
            lines.append("  interrupted: what is left is for a rerun with the same --journal")
        elif self.aborted is not None:
            lines.append(f"  stopped: {self.aborted}")
        if self.to_rerun:
            parts = [
                (self.outcomes[OutcomeState.UNKNOWN.value], "unknown"),
                (self.outcomes[OutcomeState.PENDING.value], "pending"),
                (self.transient_failed, "transient failure"),
                (self.not_reached, "not reached"),
            ]
            shown = ", ".join(f"{n} {what}" for n, what in parts if n)
            lines.append(
                f"  to rerun    {_count(self.to_rerun, 'id')} not settled ({shown}): "
                "rerun with the same --journal to retry them"
            )
        if self.permanent:
            unsigned = (
                f"; {self.refused_unsigned} of them unsigned refusals: kept non-final in "
                "the journal (a refusal without a signature could be forged), so a rerun "
                "asks again, though the answer is not expected to change"
                if self.refused_unsigned
                else "; a rerun skips them"
            )
            lines.append(
                f"  failed      {_count(self.permanent, 'id')} failed for good: the gateway "
                f"refused them (see error_type in the journal){unsigned}"
            )
        if self.malformed:
            also = " (--allow-malformed: exit 0 allowed)" if self.allow_malformed else ""
            lines.append(
                f"  malformed   {_count(self.malformed, 'input line')} skipped, not cancelled: "
                f"fix the input (see the line numbers above){also}"
            )
        if self.unsettled_out is not None:
            more = " (input not read to the end: unread ids not listed)"
            more = more if self.input_not_listed else ""
            lines.append(f"  unsettled   ids still to settle written to {self.unsettled_out}{more}")
        if exit_line:
            lines.append(f"  exit code   {self.exit_code}")
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
