"""An operation of the batch runner, as a small strategy: what one item does, and how
its outcome (:class:`~._outcome.Outcome`) is classified.

``cancel`` is :mod:`._op_cancel`, ``status`` :mod:`._op_status`, ``clear`` and
``refund`` :mod:`._op_money`; the runner (:mod:`._runner`) is one loop for all of them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from .._session.session import AsyncSession
from ._journal import Journal, JournalState
from ._options import BatchJob
from ._outcome import Ids, Outcome
from ._report import BatchReport
from ._select import Selector
from ._source import Input

__all__ = ["BatchOperation"]


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
