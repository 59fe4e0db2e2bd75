"""Rows of a money-movement CSV (``clear`` and ``refund``): one movement per row.

The file has a header row naming its columns: ``payment_id`` always, ``amount``
(required for a refund, optional for a clearing: an empty amount clears the whole
hold) and ``currency`` (optional). Other columns are ignored, so an export can be used
as it is. Like the id parsers of :mod:`._input`, a bad row becomes an item with its
line number and the reason, never an exception; only a missing column is an
:class:`~._input.InputError`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal

import attrs

from .._exceptions import ValidationError
from .._operations.values import amount_value, coerce_payment_id, currency_value
from ._input import InputError

__all__ = ["Row", "RowItem", "parse_rows"]

PAYMENT_ID = "payment_id"
AMOUNT = "amount"
CURRENCY = "currency"


@attrs.frozen
class Row:
    """One money movement: a payment, the amount (None: all of it) and a currency."""

    payment_id: int
    amount: Decimal | None = None
    currency: str | None = None


#: (line number, the row, its text) or, for a bad row, (line number, None, why).
RowItem = tuple[int, Row | None, str]
_Columns = tuple[int, int | None, int | None]


def _columns(header: Sequence[str], amount_required: bool) -> _Columns:
    names = [name.strip().lower() for name in header]
    required = [PAYMENT_ID, AMOUNT] if amount_required else [PAYMENT_ID]
    missing = [name for name in required if name not in names]
    if missing:
        shown = ", ".join(repr(name) for name in names[:20])
        raise InputError(
            f"the CSV header has no {' and no '.join(map(repr, missing))} column; columns: {shown}"
        )
    index = names.index
    return (
        index(PAYMENT_ID),
        index(AMOUNT) if AMOUNT in names else None,
        index(CURRENCY) if CURRENCY in names else None,
    )


def _cell(row: Sequence[str], index: int | None) -> str | None:
    if index is None or index >= len(row):
        return None
    return row[index].strip() or None


def _row(cells: Sequence[str], columns: _Columns, amount_required: bool) -> Row:
    pid_at, amount_at, currency_at = columns
    if pid_at >= len(cells):
        raise ValidationError(f"the row has no {PAYMENT_ID!r} column")
    amount = _cell(cells, amount_at)
    if amount is None and amount_required:
        raise ValidationError("the row has no amount")
    return Row(
        coerce_payment_id(cells[pid_at].strip()),
        None if amount is None else amount_value(amount),
        currency_value(_cell(cells, currency_at)),
    )


def parse_rows(
    lines: Iterable[str], *, amount_required: bool, delimiter: str = ","
) -> Iterator[RowItem]:
    """The rows of a CSV with a header (see the module); blank rows are skipped.

    Raises :class:`~._input.InputError` if there is no header or a required column is
    missing.
    """
    reader = csv.reader(lines, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise InputError("the CSV input is empty (a header row is expected)")
    columns = _columns(header, amount_required)
    previous = reader.line_num
    for cells in reader:
        lineno, previous = previous + 1, reader.line_num
        if not cells or all(not cell.strip() for cell in cells):
            continue
        text = delimiter.join(cells)
        try:
            yield lineno, _row(cells, columns, amount_required), text
        except ValidationError as exc:
            yield lineno, None, f"{exc.message}: {text[:60]!r}"
