"""The states a journal records, their one-letter codes and their in-memory state byte.

A record's ``state`` is an :class:`~freedompay_async.OutcomeState` value for a cancel,
or one of :data:`MONEY_STATES` (and the journal-only :data:`INTENT`) for a clearing or
a refund; the compact line writes it as one letter (:data:`STATE_CODES`). In memory a
key's state is one byte: the state's index (1..9) plus :data:`FINAL` when a rerun may
skip it. A settled state (cancelled, already cancelled, done, already done) is always
final. A cancel journal is keyed by payment id, a money journal by row key (``row``:
see :mod:`._rowkeys`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from .._session.batch import OutcomeState
from ._idset import IdMap

__all__ = [
    "CANCEL_STATES",
    "DONE",
    "FINAL",
    "HELD",
    "INTENT",
    "MONEY_STATES",
    "OPEN",
    "SETTLED",
    "STATE_CODES",
    "STATE_OF_LETTER",
    "LastView",
    "SettledView",
    "code_of",
    "record_code",
    "state_counts",
    "state_of_code",
    "states_of",
]

#: A clearing or refund the gateway made (its reply, or status, says so).
DONE = "done"
#: The gateway says, bound to the payment, that it was cleared or refunded before.
ALREADY_DONE = "already_done"
#: Not sent: an earlier movement of the same payment is still unsettled.
HELD = "held"
#: Journal only: the movement is about to be sent (written, fsynced, before sending).
INTENT = "intent"
_FAILED, _UNKNOWN = OutcomeState.FAILED.value, OutcomeState.UNKNOWN.value

#: A cancel's states, in the order the summary lists them.
CANCEL_STATES: tuple[str, ...] = tuple(state.value for state in OutcomeState)
#: A clearing's or refund's outcome states, in the order the summary lists them.
MONEY_STATES: tuple[str, ...] = (DONE, ALREADY_DONE, HELD, _FAILED, _UNKNOWN)
#: The states of a money row whose movement may have been sent and is not settled:
#: a rerun settles it by status (resumes it), never sends it blindly.
OPEN = frozenset({INTENT, _UNKNOWN})

#: State value -> its one-letter compact code (the cancel's first, as ever).
STATE_CODES: dict[str, str] = {
    OutcomeState.CANCELLED.value: "c",
    OutcomeState.ALREADY_CANCELLED.value: "a",
    OutcomeState.PENDING.value: "p",
    _FAILED: "f",
    _UNKNOWN: "u",
    DONE: "d",
    ALREADY_DONE: "b",
    HELD: "h",
    INTENT: "i",
}
STATE_OF_LETTER = {letter: state for state, letter in STATE_CODES.items()}
#: The settled state values (always final).
SETTLED = frozenset({*(state.value for state in OutcomeState if state.settled), DONE, ALREADY_DONE})

#: Bit set in a state byte when the record (and so the key) is final.
FINAL = 0x80
_INDEX = FINAL - 1
_STATE_INDEX = {state: index for index, state in enumerate(STATE_CODES, 1)}
_STATE_BY_INDEX = {index: state for state, index in _STATE_INDEX.items()}


def states_of(operation: str | None) -> tuple[str, ...]:
    """The outcome states of a journal's operation (a cancel's for an unknown one)."""
    return MONEY_STATES if operation in ("clear", "refund") else CANCEL_STATES


def code_of(state: str, final: bool) -> int:
    """The state byte of a record; a settled state is always final (belt and braces)."""
    return _STATE_INDEX[state] | (FINAL if final or state in SETTLED else 0)


def state_of_code(code: int) -> str:
    """The state value a state byte stands for."""
    return _STATE_BY_INDEX[code & _INDEX]


def record_code(record: Mapping[str, Any]) -> tuple[int, int] | None:
    """(key, state byte) of a parsed outcome record of either shape, or None. The key
    is the payment id, or a money record's row key (``row``, compact ``w``)."""
    if "payment_id" in record:
        pid, state, final = record.get("payment_id"), record.get("state"), record.get("final")
        pid = record.get("row", pid)
    else:
        pid, letter, final = record.get("p"), record.get("s"), record.get("f", 0)
        pid = record.get("w", pid)
        state = STATE_OF_LETTER.get(letter) if isinstance(letter, str) else None
    if isinstance(pid, bool) or not isinstance(state, str):
        return None
    if not isinstance(pid, int) or pid <= 0 or state not in _STATE_INDEX:
        return None
    return pid, code_of(state, final is True or final == 1)


def state_counts(ids: IdMap, states: Iterable[str] = CANCEL_STATES) -> dict[str, int]:
    """How many keys of an :class:`IdMap` of state bytes are in each state (``states``
    first, in their order, then any other state found), and how many are final
    ("final")."""
    totals = dict.fromkeys(states, 0)
    final = 0
    for code, count in sorted(ids.counts().items()):
        state = state_of_code(code)
        totals[state] = totals.get(state, 0) + count
        final += count if code & FINAL else 0
    return {**totals, "final": final}


class LastView(Mapping[int, str]):
    """Read-only mapping view of an :class:`IdMap` of state bytes: id -> state."""

    def __init__(self, ids: IdMap) -> None:
        self._ids = ids

    def __getitem__(self, pid: int) -> str:
        code = self._ids.get(pid) if isinstance(pid, int) else 0
        if not code:
            raise KeyError(pid)
        return state_of_code(code)

    def __iter__(self) -> Iterator[int]:
        return (pid for pid, _ in self._ids.items())

    def __len__(self) -> int:
        return len(self._ids)


class SettledView(AbstractSet[int]):
    """Read-only set view of the final ids of an :class:`IdMap` of state bytes."""

    def __init__(self, ids: IdMap) -> None:
        self._ids = ids

    def __contains__(self, pid: object) -> bool:
        return isinstance(pid, int) and bool(self._ids.get(pid) & FINAL)

    def __iter__(self) -> Iterator[int]:
        return (pid for pid, code in self._ids.items() if code & FINAL)

    def __len__(self) -> int:
        return sum(n for code, n in self._ids.counts().items() if code & FINAL)
