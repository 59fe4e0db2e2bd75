"""The input of ``clear`` and ``refund``: a CSV file of money movements, one per row.

The file is read whole when the run opens (a money batch is a file an operator keeps
next to its journal; a row costs under a kilobyte in memory, its key in the journal's
state included). It must
be a regular file: a rerun must read the very same rows to find their keys
(:mod:`._rowkeys`) in the journal, which a pipe cannot promise. The runner sees each
row by its key; what a key stands for is :attr:`RowInput.rows`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import attrs

from ._flow import Gate
from ._input import READ_CHUNK, InputError, open_input, read_lines, why_no_ids
from ._journal import JournalState
from ._report import BatchReport
from ._rowkeys import RowKeys
from ._rows import PAYMENT_ID, Row, parse_rows
from ._select import Selector
from ._states import FINAL, SETTLED, state_of_code

__all__ = ["PlannedRow", "RowInput", "open_row_input"]


@attrs.frozen
class PlannedRow:
    """One row of the input: its key, its line in the file and the movement."""

    key: int
    line: int
    row: Row


class RowInput:
    """The rows of a money CSV (of this shard), keyed; owns nothing once built."""

    def __init__(
        self, fd: int, selector: Selector, report: BatchReport, *, amount_required: bool,
        delimiter: str,
    ) -> None:  # fmt: skip
        info = os.fstat(fd)
        self.identity = (info.st_dev, info.st_ino)
        self._selector = selector
        self.rows: dict[int, PlannedRow] = {}
        self._to_send: list[int] = []
        keys, shard = RowKeys(), selector.shard
        with os.fdopen(fd, "rb") as stream:
            lines = read_lines(lambda: stream.read(READ_CHUNK))
            for lineno, row, text in parse_rows(
                lines, amount_required=amount_required, delimiter=delimiter
            ):
                if row is None:
                    selector.valid((lineno, None, text))  # reported, counted, skipped
                    continue
                key = keys.key(row)  # every row counts, whatever its shard
                if shard is not None and not shard.holds(row.payment_id):
                    report.other_shard_ids += 1
                    continue
                self.rows[key] = PlannedRow(key, lineno, row)
        report.input_ids = len(self.rows)
        self._report = report

    def prepare(self, state: JournalState) -> int:
        """Skip the rows the journal settled (or refused for good); how many are left."""
        report, unsettled = self._report, self._selector.unsettled
        for key, planned in self.rows.items():
            code = state.ids.get(key)
            if not code & FINAL:
                self._to_send.append(key)
                continue
            report.skipped += 1
            report.prior[state_of_code(code)] += 1
            if unsettled is not None and state_of_code(code) not in SETTLED:
                unsettled.add(planned.row.payment_id)
        return len(self._to_send)

    def ids(self, gate: Gate) -> Iterator[int]:
        """The keys of the rows to send, in file order."""
        return gate.over(iter(self._to_send))

    def leftovers(self, gate: Gate) -> Iterator[int]:
        """The payment ids of the rows to send that ``gate`` never handed out."""
        return (self.rows[key].row.payment_id for key in self._to_send[gate.pulled :])

    def any_id(self) -> int | None:
        """The payment id of the first row, if any."""
        return next((planned.row.payment_id for planned in self.rows.values()), None)

    def payment_of(self, key: int) -> int:
        """The payment id of the row ``key``."""
        return self.rows[key].row.payment_id

    async def aclose(self) -> None:
        """Nothing to release: the file was read and closed."""


def open_row_input(
    path: str | None, selector: Selector, report: BatchReport, *, amount_required: bool,
    delimiter: str, stdin: int = 0,
) -> RowInput:  # fmt: skip
    """Read the money CSV at ``path``; :class:`~._input.InputError` if it is not a
    regular file, has no header or column, or no row at all is a movement."""
    fd, regular = open_input(path, stdin)
    if not regular:
        os.close(fd)
        raise InputError(
            "clear and refund read a CSV file: pass --input FILE.csv (a rerun must read "
            "the same rows again, which a pipe cannot promise)"
        )
    rows = RowInput(fd, selector, report, amount_required=amount_required, delimiter=delimiter)
    if not rows.rows and not report.other_shard_ids:
        raise InputError(why_no_ids(report.malformed, selector.first_bad, PAYMENT_ID))
    return rows
