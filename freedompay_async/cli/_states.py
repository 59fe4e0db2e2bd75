"""The states a journal records, their one-letter codes and their in-memory state byte.

A record's ``state`` is an :class:`~freedompay_async.OutcomeState` value; the compact
line writes it as one letter (:data:`STATE_CODES`). In memory an id's state is one
byte: the state's index (1..5) plus :data:`FINAL` when a rerun may skip the id. A
settled state (cancelled, already cancelled) is always final.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from .._session.batch import OutcomeState
from ._idset import IdMap

__all__ = [
    "FINAL",
    "SETTLED",
    "STATE_CODES",
    "STATE_OF_LETTER",
    "LastView",
    "SettledView",
    "code_of",
    "record_code",
    "state_counts",
    "state_of_code",
]

#: State value -> its one-letter compact code.
STATE_CODES: dict[str, str] = {
    OutcomeState.CANCELLED.value: "c",
    OutcomeState.ALREADY_CANCELLED.value: "a",
    OutcomeState.PENDING.value: "p",
    OutcomeState.FAILED.value: "f",
    OutcomeState.UNKNOWN.value: "u",
}
STATE_OF_LETTER = {letter: state for state, letter in STATE_CODES.items()}
#: The settled state values (always final).
SETTLED = frozenset(state.value for state in OutcomeState if state.settled)

#: Bit set in a state byte when the record (and so the id) is final.
FINAL = 8
_STATE_INDEX = {state.value: index for index, state in enumerate(OutcomeState, 1)}
_STATE_BY_INDEX = {index: state for state, index in _STATE_INDEX.items()}


def code_of(state: str, final: bool) -> int:
    """The state byte of a record; a settled state is always final (belt and braces)."""
    return _STATE_INDEX[state] | (FINAL if final or state in SETTLED else 0)


def state_of_code(code: int) -> str:
    """The state value a state byte stands for."""
    return _STATE_BY_INDEX[code & 7]


def record_code(record: Mapping[str, Any]) -> tuple[int, int] | None:
    """(payment id, state byte) of a parsed outcome record of either shape, or None."""
    if "payment_id" in record:
        pid, state, final = record.get("payment_id"), record.get("state"), record.get("final")
    else:
        pid, letter, final = record.get("p"), record.get("s"), record.get("f", 0)
        state = STATE_OF_LETTER.get(letter) if isinstance(letter, str) else None
    if isinstance(pid, bool) or not isinstance(state, str):
        return None
    if not isinstance(pid, int) or pid <= 0 or state not in _STATE_INDEX:
        return None
    return pid, code_of(state, final is True or final == 1)


def state_counts(ids: IdMap) -> dict[str, int]:
    """How many ids of an :class:`IdMap` of state bytes are in each state, and how
    many are final ("final")."""
    totals = dict.fromkeys(STATE_CODES, 0)  # every state, in OutcomeState order
    final = 0
    for code, count in ids.counts().items():
        totals[state_of_code(code)] += count
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
