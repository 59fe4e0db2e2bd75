"""What the batch runner reads of one id's outcome, whatever the operation.

The runner (:mod:`._runner`) is one loop for every operation: it reads the input,
opens the journal, sends, journals, counts and reports. What differs is the operation's
(:class:`~._operation.BatchOperation`): what one id does, and how its outcome is
classified into an :class:`Outcome`: the state to show, whether the job is done for
this id (``settled``), whether a rerun may skip it (``final``), whether the gateway
refused it for good (``permanent``), and the line to journal or print (``record``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import attrs

from .._exceptions import FreedomPayError

__all__ = ["Ids", "Outcome"]

#: The ids a run hands to an operation: a file's (read lazily) or a pipe's.
Ids = Iterator[int] | AsyncIterator[int]


@attrs.frozen
class Outcome:
    """The outcome of one id, whatever the operation.

    ``state`` is one of the operation's :attr:`~._operation.BatchOperation.states`. ``settled``:
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
