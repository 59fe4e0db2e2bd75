"""Journal records of ``clear`` and ``refund``: one line per intent or outcome of a row.

A money record is keyed by its row (``row``: :mod:`._rowkeys`), not by its payment: two
rows of one payment are two movements. Its compact form puts ``w`` first, so the block
reader's fast frame (``{"p":...``, cancel lines) never matches it and such blocks are
read line by line. Besides the keys a cancel record shares (``p s f a e x c d h t u``,
see :mod:`._cancel_codec`):

=====  ======================  ==========================================================
key    verbose name            value (omitted when it is the default, null)
=====  ======================  ==========================================================
w      row                     int: the row key (payment, amount, currency, occurrence)
l      line                    int: the row's line in the input file, for people
m      amount                  text: the row's amount (null: a clearing of the whole hold)
y      currency                text: the row's currency (null: the payment's own)
b      baseline                a refund's baseline, ``{"refunded": "0.00",
                               "refund_ids": [...]}``: what status showed before it was
                               sent (intent lines)
g      refund_id               int: the refund entry the gateway created
=====  ======================  ==========================================================

States: ``i`` intent (journal only: written and fsynced before the request goes out),
``d`` done, ``b`` already_done, ``h`` held, ``f`` failed, ``u`` unknown. Keys outside
the table (``settled_by``, ``clearing_amount``) are kept under their own names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._cancel_codec import COMPACT_KEYS, ms_to_time, time_to_ms
from ._states import SETTLED, STATE_CODES, STATE_OF_LETTER

__all__ = ["MONEY_KEYS", "decode_money", "encode_money"]

#: The verbose names of a money record, in order, with their compact keys.
MONEY_KEYS: dict[str, str] = {
    "row": "w",
    "payment_id": "p",
    "state": "s",
    "final": "f",
    "attempts": "a",
    "elapsed": "e",
    "line": "l",
    "amount": "m",
    "currency": "y",
    "baseline": "b",
    "refund_id": "g",
    "error_type": "x",
    "error_code": "c",
    "error_description": "d",
    "http_status": "h",
    "time": "t",
    "run": "u",
}
_VERBOSE = {short: name for name, short in MONEY_KEYS.items()}
#: Every compact key of either record shape: never a key of its own in a record.
_SHORT = frozenset(MONEY_KEYS.values()) | frozenset(COMPACT_KEYS.values())
#: Written as they are: the keys whose default is null.
_PLAIN = tuple(name for name in MONEY_KEYS if name not in ("row", "payment_id", "state"))


def encode_money(record: Mapping[str, Any]) -> dict[str, Any]:
    """The compact form of a verbose money record (``row``, ``p``, ``s`` first)."""
    state = record.get("state")
    letter = STATE_CODES.get(state, state) if isinstance(state, str) else state
    out: dict[str, Any] = {"w": record["row"], "p": record.get("payment_id"), "s": letter}
    for name in _PLAIN:
        value = record.get(name)
        if name == "final":
            if value is not None and bool(value) != (state in SETTLED):
                out["f"] = 1 if value else 0
        elif name == "attempts":
            if value is not None and value != 1:
                out["a"] = value
        elif name == "time" and isinstance(value, str):
            out["t"] = time_to_ms(value)
        elif value is not None:
            out[MONEY_KEYS[name]] = value
    for key, value in record.items():
        if key in MONEY_KEYS:
            continue
        if key in _SHORT:
            raise ValueError(f"record key {key!r} collides with a compact journal key")
        out[key] = value
    return out


def decode_money(record: Mapping[str, Any]) -> dict[str, Any]:
    """The verbose form (every known key, defaults filled in) of a compact money record."""
    letter = record.get("s")
    state = STATE_OF_LETTER.get(letter, letter) if isinstance(letter, str) else letter
    out: dict[str, Any] = {name: record.get(short) for name, short in MONEY_KEYS.items()}
    out["state"] = state
    out["final"] = bool(record["f"]) if "f" in record else state in SETTLED
    out["attempts"] = record.get("a", 1)
    time = out["time"]
    if isinstance(time, int) and not isinstance(time, bool):
        out["time"] = ms_to_time(time)
    for key, value in record.items():
        if key not in _VERBOSE:
            out[key] = value
    return out
