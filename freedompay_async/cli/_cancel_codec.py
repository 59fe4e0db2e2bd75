"""Journal records of ``cancel``: the compact line format and its key table.

A compact record carries only what is set, under short stable keys (the table below,
also in the operator guide). A reader decides by the keys of each record, never by the
journal's version: a record with ``"payment_id"`` is verbose (the format of older
journals), one with ``"p"`` is compact. Keys outside the table (such as
``"settled_by"``) are written and read back under their own names, so a field added
later is never lost.

=====  ======================  ==========================================================
key    verbose name            value (omitted when it is the default)
=====  ======================  ==========================================================
p      payment_id              int
s      state                   c cancelled, a already_cancelled, p pending, f failed,
                               u unknown
f      final                   1 or 0; default: 1 for c and a, 0 otherwise
a      attempts                int; default 1
e      elapsed                 seconds (float)
r      revoke_id               int
v      revoke_status           success, pending, error or unknown (the parsed
                               ``pg_revoke_status``); default "success" when the
                               state is c. How the outcome was learnt is
                               ``settled_by``, never this field: the values older
                               versions wrote there (``10033``, ``11017``,
                               ``revoked``) are read back as "success"
k      confirmed_on_retry      1; default false
x      error_type              text (an exception class name)
c      error_code              int
d      error_description       text
h      http_status             int
t      time                    milliseconds since the Unix epoch (int), written as ISO
                               8601 UTC text by ``journal show``; a time that is not
                               exactly that shape is kept as text
u      run                     text (the run id)
=====  ======================  ==========================================================

A record of ``clear`` or ``refund`` (it has ``row``) has a table of its own, in
:mod:`._money_codec`; :mod:`._codec` picks the table by the record's keys.

The writer puts ``p``, ``s`` and ``f`` first, in that order, so that the reader
(:mod:`._scan`) can take the payment id, state and finality of most lines with one
regular expression over a whole block of lines.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from ._states import SETTLED as _SETTLED
from ._states import STATE_CODES, STATE_OF_LETTER

__all__ = [
    "COMPACT_KEYS",
    "LEGACY_REVOKE_STATUS",
    "decode_cancel",
    "encode_cancel",
    "ms_to_time",
    "one_vocabulary",
    "time_to_ms",
]

#: Verbose name -> compact key.
COMPACT_KEYS: dict[str, str] = {
    "payment_id": "p",
    "state": "s",
    "final": "f",
    "attempts": "a",
    "elapsed": "e",
    "revoke_id": "r",
    "revoke_status": "v",
    "confirmed_on_retry": "k",
    "error_type": "x",
    "error_code": "c",
    "error_description": "d",
    "http_status": "h",
    "time": "t",
    "run": "u",
}
_VERBOSE_KEYS = {short: name for name, short in COMPACT_KEYS.items()}
#: The compact keys of money records (:mod:`._money_codec`): ``w`` would make a
#: reader take a cancel record for a money row's.
_MONEY_ONLY = frozenset({"w", "l", "m", "y", "b", "g"})
#: ``revoke_status`` values older versions wrote for a cancel learnt another way (the
#: code of a retry's "already cancelled", a status "revoked"): read back as "success".
LEGACY_REVOKE_STATUS = frozenset({"10033", "11017", "revoked"})
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_MS = _dt.timedelta(milliseconds=1)


def time_to_ms(value: str) -> int | str:
    try:
        moment = _dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.utcoffset() != _dt.timedelta(0):
        return value
    ms = (moment - _EPOCH) // _MS
    return ms if ms_to_time(ms) == value else value


def ms_to_time(ms: int) -> str:
    return (_EPOCH + ms * _MS).isoformat(timespec="milliseconds")


def encode_cancel(record: Mapping[str, Any]) -> dict[str, Any]:
    """The compact form of a verbose cancel record (see the key table).

    Known keys with a null or default value are left out; keys outside the table are
    kept as they are. Raises ValueError for a key that would collide with a compact key.
    """
    state = record.get("state")
    letter = STATE_CODES.get(state, state) if isinstance(state, str) else state
    out: dict[str, Any] = {"p": record["payment_id"], "s": letter}
    settled = state in _SETTLED
    final = record.get("final")
    if final is not None and bool(final) != settled:
        out["f"] = 1 if final else 0
    attempts = record.get("attempts")
    if attempts is not None and attempts != 1:
        out["a"] = attempts
    for name in ("elapsed", "revoke_id"):
        if record.get(name) is not None:
            out[COMPACT_KEYS[name]] = record[name]
    status = record.get("revoke_status")
    if status is not None and not (status == "success" and state == "cancelled"):
        out["v"] = status
    if record.get("confirmed_on_retry"):
        out["k"] = 1
    for name in ("error_type", "error_code", "error_description", "http_status"):
        if record.get(name) is not None:
            out[COMPACT_KEYS[name]] = record[name]
    time = record.get("time")
    if time is not None:
        out["t"] = time_to_ms(time) if isinstance(time, str) else time
    if record.get("run") is not None:
        out["u"] = record["run"]
    for key, value in record.items():
        if key in COMPACT_KEYS:
            continue
        if key in _VERBOSE_KEYS or key in _MONEY_ONLY:
            raise ValueError(f"record key {key!r} collides with a compact journal key")
        out[key] = value
    return out


def decode_cancel(record: Mapping[str, Any]) -> dict[str, Any]:
    """The verbose form (every known key, defaults filled in) of a compact cancel
    status record; a legacy ``revoke_status`` (see :data:`LEGACY_REVOKE_STATUS`) reads
    as "success"."""
    letter = record.get("s")
    state = STATE_OF_LETTER.get(letter, letter) if isinstance(letter, str) else letter
    settled = state in _SETTLED
    time = record.get("t")
    out: dict[str, Any] = {
        "payment_id": record["p"],
        "state": state,
        "final": bool(record["f"]) if "f" in record else settled,
        "attempts": record.get("a", 1),
        "elapsed": record.get("e"),
        "revoke_id": record.get("r"),
        "revoke_status": record.get("v", "success" if state == "cancelled" else None),
        "confirmed_on_retry": bool(record.get("k", False)),
        "error_type": record.get("x"),
        "error_code": record.get("c"),
        "error_description": record.get("d"),
        "http_status": record.get("h"),
        "time": ms_to_time(time) if isinstance(time, int) and not isinstance(time, bool) else time,
        "run": record.get("u"),
    }
    for key, value in record.items():
        if key not in _VERBOSE_KEYS:
            out[key] = value
    return one_vocabulary(out)


def one_vocabulary(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` (verbose, of either shape) with a legacy ``revoke_status`` read as
    "success"."""
    if record.get("revoke_status") in LEGACY_REVOKE_STATUS and "payment_id" in record:
        record["revoke_status"] = "success"
    return record
