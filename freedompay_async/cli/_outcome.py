"""What the batch runner knows of an operation: the outcome of one id, and the
operation itself as a small strategy.

The runner (:mod:`._runner`) is one loop for every operation: it reads the input,
opens the journal, sends, journals, counts and reports. What differs is here: what one
id does and how its outcome is classified (:class:`BatchOperation`), and the outcome
the runner reads (:class:`Outcome`): the state to show, whether the job is done for
this id (``settled``), whether a rerun may skip it (``final``), whether the gateway
refused it for good (``permanent``), and the line to journal or print (``record``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from .._exceptions import FreedomPayError
from .._session.session import AsyncSession

if TYPE_CHECKING:  # the runner's parts; they import this module
    from ._journal import Journal, JournalState
    from ._options import BatchJob
    from ._report import BatchReport
    from ._select import Selector
    from ._source import Input

__all__ = ["BatchOperation", "Ids", "Outcome"]

#: The ids a run hands to an operation: a file's (read lazily) or a pipe's.
Ids = Iterator[int] | AsyncIterator[int]


@attrs.frozen
class Outcome:
    """The outcome of one id, whatever the operation.

    ``state`` is one of the operation's :attr:`~BatchOperation.states`. ``settled``:
    the job is done for this id. ``final``: a rerun may skip it (settled, or refused
    for good in a signed reply). ``permanent``: the gateway refused it and asking again
    is not expected to change that (it may still be non-final: an unsigned refusal
    could be forged, so a rerun asks again). ``rerun_as`` names, for an id a rerun
    would try again, what it is waiting for ("unknown", "pending", "transient
    failure", ...; empty otherwise). ``record`` is the id's journal line (verbose form)
    or, for an operation without a journal, the line it prints. ``key`` is what the
    runner hands out and the journal is keyed by, when it is not the payment id (a
    money row's key).
    """

    payment_id: int
    state: str
    settled: bool
    final: bool
    attempts: int = 1
    error: FreedomPayError | None = None
    permanent: bool = False
    rerun_as: str = ""
    confirmed_on_retry: bool = False
    record: Mapping[str, Any] = attrs.field(factory=dict)
    key: int | None = None

    @property
    def item(self) -> int:
        """What the runner handed out for this outcome: ``key``, else the payment id."""
        return self.payment_id if self.key is None else self.key


class BatchOperation(Protocol):
    """One operation of the batch runner (``cancel``, ``status``, ``clear``, ``refund``).

    The runner hands out *items*: payment ids, or for the money movements the keys of
    the input's rows (:mod:`._rowkeys`)."""

    #: The subcommand, the progress label and the journal header's ``operation``.
    name: str
    #: Every state an outcome can have, in the order the summary lists them.
    states: tuple[str, ...]
    #: The states in which the job is done for an id.
    settled_states: frozenset[str]
    #: What a skipped input line is not ("not cancelled").
    verb: str
    #: Whether outcomes are journaled (a read-only operation keeps no journal).
    journaled: bool
    #: What one item of the input is, for the summary ("id", "row").
    unit: str

    def open_input(self, job: BatchJob, selector: Selector, report: BatchReport) -> Input:
        """Open the operation's input (ids, or a money CSV's rows)."""
        ...

    def bind(self, source: Input, journal: Journal | None, state: JournalState) -> None:
        """Learn the run's input, journal (None: a dry run, or none kept) and what the
        journal said, before anything is sent."""
        ...

    def outcomes(self, fp: AsyncSession, ids: Ids, concurrency: int) -> AsyncIterator[Outcome]:
        """One outcome per id, as they complete, ``concurrency`` ids at a time; closing
        the iterator stops the work and waits for it."""
        ...

    def abandoned(self, item: int) -> Outcome:
        """The outcome of an item abandoned in flight (sent: outcome unknown)."""
        ...

    def show(self, outcome: Outcome) -> None:
        """Print what the operation prints per id (``status``: one JSON line)."""
        ...

    def plan(self, item: int) -> str:
        """The line ``--dry-run`` prints for an item that would be sent."""
        ...
