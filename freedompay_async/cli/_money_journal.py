"""What a money journal says beyond each row's state: the intents of open movements,
and the refunded totals that done refunds brought their payments to.

A row whose last line is an intent (the run died after journaling it) or ``unknown``
(the money may have moved) is *open*: a rerun never sends it blindly but settles it by
status first (``resume``), against the baseline journaled with its intent. Every open
movement of a payment also holds back that payment's other rows, whether or not the
open row is still in the input file.

A done refund records the refunded total it brought its payment to
(``expected_refunded``: its baseline plus its amount). Status lags a refund by seconds,
so the next refund of that payment reads its baseline only once status shows at least
that total (:mod:`._refund_floor`); otherwise the baseline would miss the earlier
refund, and a lost reply could be "confirmed" by it.
"""

from __future__ import annotations

import collections
from collections.abc import Set as AbstractSet
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from ._codec import decode_record
from ._journal import JournalError, JournalState
from ._scan import parse_line
from ._states import DONE, FINAL, INTENT, OPEN, state_of_code

__all__ = ["MoneyJournal", "open_keys", "open_payments", "read_money_journal"]

#: What the lines read here hold, compact or verbose (a cheap filter before parsing).
_MARKS = (b'"s":"i"', b'"intent"', b'"expected_refunded"')


def open_keys(state: JournalState) -> set[int]:
    """The row keys of ``state`` whose last record leaves the movement open."""
    return {
        key for key, code in state.ids.items() if not code & FINAL and state_of_code(code) in OPEN
    }


@attrs.define
class MoneyJournal:
    """The latest intent record (verbose) of each open row, and each payment's floor:
    the highest refunded total a done refund brought it to."""

    intents: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    floors: dict[int, Decimal] = attrs.field(factory=dict)

    def add(self, record: dict[str, Any], keys: AbstractSet[int]) -> None:
        """Fold one verbose record in."""
        state, row, pid = record.get("state"), record.get("row"), record.get("payment_id")
        if state == INTENT and isinstance(row, int) and row in keys:
            self.intents[row] = record
        elif state == DONE and isinstance(pid, int):
            try:
                total = Decimal(str(record.get("expected_refunded")))
            except InvalidOperation:
                return
            if total.is_finite():
                self.floors[pid] = max(total, self.floors.get(pid, total))


def read_money_journal(path: Path, keys: AbstractSet[int]) -> MoneyJournal:
    """The intents of the open rows ``keys``, and the payments' refund floors."""
    found = MoneyJournal()
    try:
        with path.open("rb") as stream:
            for line in stream:
                if not any(mark in line for mark in _MARKS):
                    continue
                record = parse_line(line)
                if record is not None:
                    found.add(decode_record(record), keys)
    except OSError as exc:
        raise JournalError(f"cannot read journal {str(path)!r}: {exc.strerror}") from exc
    return found


def open_payments(
    keys: AbstractSet[int], intents: dict[int, dict[str, Any]], payment_of: dict[int, int]
) -> dict[int, set[int]]:
    """Payment id -> its open row keys (the payment from the intent, else from the
    input's row; a key known to neither cannot hold anything back)."""
    opened: dict[int, set[int]] = collections.defaultdict(set)
    for key in keys:
        pid = intents.get(key, {}).get("payment_id", payment_of.get(key))
        if isinstance(pid, int):
            opened[pid].add(key)
    return dict(opened)
