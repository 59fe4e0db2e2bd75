"""Row keys of a money CSV (``clear``, ``refund``): which movement a row is, run after run.

A row is identified by its content and its position among equal rows: the payment id,
the amount (two decimals; empty for a clearing of the whole hold), the currency (empty:
the payment's own) and ``n``, how many rows with that same content come before it in
the file (0 for the first). Two equal refunds of one payment in one file are therefore
two movements (``n`` 0 and 1), and adding, removing or reordering *other* rows changes
no key. Editing a row's amount or currency, or adding or removing a row equal to
another, does: the edited row is a new movement, and a journaled movement whose row is
gone is no longer sent (a rerun holds back the other rows of its payment while it is
unsettled, see :mod:`._op_money`).

The key is the first 8 bytes of the BLAKE2b digest of the text
``payment_id|amount|currency|n``, read big-endian and shifted right by one bit (a
positive 63-bit integer; 0 is read as 1), so that the journal can keep it in its
compact id map.
"""

from __future__ import annotations

import collections
import hashlib

from ._rows import Row

__all__ = ["RowKeys", "row_key", "row_text"]


def row_text(row: Row, occurrence: int) -> str:
    """The text a row's key is the digest of."""
    amount = "" if row.amount is None else f"{row.amount:.2f}"
    return f"{row.payment_id}|{amount}|{row.currency or ''}|{occurrence}"


def row_key(row: Row, occurrence: int) -> int:
    """The key of the ``occurrence``-th (from 0) row of a file with this content."""
    digest = hashlib.blake2b(row_text(row, occurrence).encode("ascii"), digest_size=8).digest()
    return (int.from_bytes(digest, "big") >> 1) or 1


class RowKeys:
    """Keys the rows of one file, in file order (counting equal rows as it goes)."""

    def __init__(self) -> None:
        self._seen: collections.Counter[Row] = collections.Counter()

    def key(self, row: Row) -> int:
        """The next row's key."""
        occurrence = self._seen[row]
        self._seen[row] += 1
        return row_key(row, occurrence)
