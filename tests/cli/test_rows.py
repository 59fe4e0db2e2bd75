"""The money-movement CSV (``payment_id,amount[,currency]``), read row by row."""

from __future__ import annotations

from decimal import Decimal

import pytest

from freedompay_async.cli._input import InputError
from freedompay_async.cli._rows import Row, parse_rows


def _rows(text: str, *, amount_required: bool = True, delimiter: str = ",") -> list[object]:
    lines = text.splitlines(keepends=True)
    return list(parse_rows(lines, amount_required=amount_required, delimiter=delimiter))


def test_rows_with_amount_and_currency_in_any_column_order() -> None:
    text = 'Currency,note,Payment_ID,amount\nkzt,x,101,1000.50\n,,102,7\n\n,,103,"2,5"\n'
    rows = _rows(text)
    assert rows[0] == (2, Row(101, Decimal("1000.50"), "KZT"), "kzt,x,101,1000.50")
    assert rows[1] == (3, Row(102, Decimal("7"), None), ",,102,7")
    assert rows[2][0] == 5 and rows[2][1] is None and "amount" in rows[2][2]


def test_amount_is_optional_for_clearing_and_required_for_refund() -> None:
    assert _rows("payment_id\n5\n", amount_required=False) == [(2, Row(5), "5")]
    assert _rows("payment_id,amount\n5,\n", amount_required=False)[0][1] == Row(5)
    with pytest.raises(InputError, match="no 'amount' column"):
        _rows("payment_id\n5\n")
    (_, row, why) = _rows("payment_id,amount\n5,\n")[0]
    assert row is None and "no amount" in why


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("abc,10", "payment id"),
        ("7,0", "at least 0.01"),
        ("7,1.005", "two decimal places"),
        ("7,ten", "decimal number"),
        ("7,10,KZTT", "three-letter code"),
    ],
)
def test_a_bad_row_is_an_item_with_its_reason(line: str, why: str) -> None:
    (lineno, row, text) = _rows(f"payment_id,amount,currency\n{line}\n")[0]
    assert lineno == 2 and row is None and why in text


def test_no_header_or_no_payment_id_column_is_an_input_error() -> None:
    with pytest.raises(InputError, match="empty"):
        _rows("")
    with pytest.raises(InputError, match="no 'payment_id' column"):
        _rows("id;amount\n1;2\n", delimiter=";")
    assert _rows("payment_id;amount\n1;2\n", delimiter=";")[0][1] == Row(1, Decimal(2))
