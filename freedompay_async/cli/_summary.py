"""The human summary of a run, as lines: what came in, what was sent, the state of
every input id, and what is left to do.

It reads the run's facts (:class:`RunFacts`: what :class:`~._report.BatchReport`
holds) and knows nothing else of the report, which renders itself with these lines.
"""

from __future__ import annotations

import collections
from typing import Protocol

__all__ = ["RunFacts", "dry_run_lines", "summary_lines"]


class RunFacts(Protocol):
    """What the summary reads of a run (see :class:`~._report.BatchReport`)."""

    operation: str
    unit: str
    verb: str
    journaled: bool
    journal: str | None
    journal_records: int
    gateway: str
    merchant_id: int | None
    shard: str | None
    other_shard_ids: int
    input_ids: int
    duplicates: int
    malformed: int
    allow_malformed: bool
    skipped: int
    attempts: int
    confirmed_on_retry: int
    elapsed: float
    event_loop: str
    errors: collections.Counter[str]
    error_examples: dict[str, str]
    state_order: tuple[str, ...]
    rerun_as: collections.Counter[str]
    abandoned: int
    refused_unsigned: int
    interrupted: bool
    aborted: str | None
    unsettled_out: str | None
    unsettled_listed: int
    input_not_listed: bool
    planned: int
    credentials: str

    @property
    def sent(self) -> int:
        """How many items this run tried."""

    @property
    def not_reached(self) -> int:
        """Input items neither settled before nor tried."""

    @property
    def to_rerun(self) -> int:
        """Input items whose outcome a rerun can still change."""

    @property
    def permanent(self) -> int:
        """Input items the gateway refused for good."""

    def states(self) -> collections.Counter[str]:
        """The current state of every input item reached so far, by state."""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _items(report: RunFacts, n: int) -> str:
    """``n`` of the report's input items: "3 ids", "1 row"."""
    return _count(n, report.unit)


def summary_lines(report: RunFacts) -> list[str]:
    """Every line of the summary but the exit code."""
    return [
        "summary:",
        *_input_lines(report),
        *_run_lines(report),
        *_error_lines(report),
        *_state_lines(report),
        *_left_lines(report),
    ]


def dry_run_lines(report: RunFacts) -> list[str]:
    """The summary of a ``--dry-run``: what would be sent, and the credentials."""
    lines = ["dry run: nothing was sent but one status query", *_input_lines(report)]
    planned = _items(report, report.planned)
    lines.append(f"  would send  {planned} ({report.operation}; listed on stdout)")
    if report.credentials:
        lines.append(f"  credentials {report.credentials}")
    if report.malformed:
        lines += _failed_lines(report)
    return lines


def _input_lines(report: RunFacts) -> list[str]:
    notes = []
    if report.duplicates:
        notes.append(f"{_count(report.duplicates, 'duplicate id')} ignored")
    if report.malformed:
        notes.append(f"{_count(report.malformed, 'malformed line')} skipped")
    if report.shard is not None:
        notes.append(f"{_items(report, report.other_shard_ids)} of other shards left to them")
    shown = f" ({', '.join(notes)})" if notes else ""
    where = f" in shard {report.shard}" if report.shard is not None else ""
    read = _items(report, report.input_ids)
    read = f"{report.input_ids} unique ids" if report.unit == "id" else read
    lines = []
    if report.gateway:
        lines.append(f"  gateway     {report.gateway} (merchant {report.merchant_id})")
    lines.append(f"  input       {read}{where}{shown}")
    if report.journaled:
        lines += [
            f"  journal     {report.journal} ({report.journal_records} records before this run)",
            f"  skipped     {_items(report, report.skipped)} already settled in the journal",
        ]
    return lines


def _run_lines(report: RunFacts) -> list[str]:
    sent, elapsed = report.sent, report.elapsed
    rate = f", {sent / elapsed:.1f}/s" if elapsed > 0 and sent else ""
    confirmed = report.confirmed_on_retry
    also = f", {confirmed} confirmed on retry" if confirmed else ""
    speed = " (the speed extra)" if report.event_loop == "uvloop" else ""
    return [
        f"  this run    {_items(report, sent)}, {report.attempts} HTTP attempts, "
        f"{elapsed:.1f} s{rate}{also}",
        f"  event loop  {report.event_loop}{speed}",
    ]


def _error_lines(report: RunFacts) -> list[str]:
    lines = []
    for index, (name, count) in enumerate(report.errors.most_common(8)):
        label = "errors" if index == 0 else ""
        example = report.error_examples.get(name, "")
        lines.append(f"  {label:<12}{name} {count}" + (f", e.g. {example}" if example else ""))
    return lines


def _state_lines(report: RunFacts) -> list[str]:
    states = report.states()
    lines = [f"  state of every input {report.unit}:"]
    lines += [f"    {state:<18}{states[state]:>9}" for state in report.state_order]
    if report.not_reached:
        lines.append(f"    {'not reached':<18}{report.not_reached:>9}")
    return lines


_RERUN_ORDER = ("unknown", "pending", "held back", "transient failure")


def _waiting(report: RunFacts) -> list[tuple[str, int]]:
    """What the ids to rerun wait for, in a fixed order, ids not reached last."""
    kinds = [kind for kind in _RERUN_ORDER if kind in report.rerun_as]
    kinds += sorted(kind for kind in report.rerun_as if kind not in _RERUN_ORDER)
    return [*((kind, report.rerun_as[kind]) for kind in kinds), ("not reached", report.not_reached)]


def _left_lines(report: RunFacts) -> list[str]:
    lines = []
    if report.abandoned:
        journaled = " (journaled as unknown)" if report.journaled else ""
        lines.append(
            f"  in flight   {_items(report, report.abandoned)} abandoned in flight: sent, "
            f"outcome unknown{journaled}"
        )
    if report.interrupted:
        later = "a rerun with the same --journal" if report.journaled else "another run"
        lines.append(f"  interrupted: what is left is for {later}")
    elif report.aborted is not None:
        lines.append(f"  stopped: {report.aborted}")
    if report.to_rerun:
        shown = ", ".join(f"{n} {what}" for what, n in _waiting(report) if n)
        hint = (
            "rerun with the same --journal to retry them"
            if report.journaled
            else ("run again to ask them again")
        )
        lines.append(
            f"  to rerun    {_items(report, report.to_rerun)} not settled ({shown}): {hint}"
        )
    return lines + _failed_lines(report)


def _failed_lines(report: RunFacts) -> list[str]:
    lines = []
    if report.permanent:
        unsigned = (
            f"; {report.refused_unsigned} of them unsigned refusals: kept non-final in "
            "the journal (a refusal without a signature could be forged), so a rerun "
            "asks again, though the answer is not expected to change"
            if report.refused_unsigned
            else "; a rerun skips them"
        )
        where = "error_type in the journal" if report.journaled else "their error lines"
        lines.append(
            f"  failed      {_items(report, report.permanent)} failed for good: the gateway "
            f"refused them (see {where}){unsigned if report.journaled else ''}"
        )
    if report.malformed:
        also = " (--allow-malformed: exit 0 allowed)" if report.allow_malformed else ""
        lines.append(
            f"  malformed   {_count(report.malformed, 'input line')} skipped, not "
            f"{report.verb}: fix the input (see the line numbers above){also}"
        )
    if report.unsettled_out is not None and report.unsettled_listed:
        more = " (input not read to the end: unread ids not listed)"
        more = more if report.input_not_listed else ""
        listed = _count(report.unsettled_listed, "id" if report.unit == "id" else "payment id")
        lines.append(
            f"  unsettled   {listed} still to settle written to {report.unsettled_out}{more}"
        )
    return lines
