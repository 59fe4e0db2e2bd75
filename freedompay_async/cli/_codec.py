"""Journal records: one codec for both record shapes, the shape chosen by the keys.

A reader decides by the keys of each record, never by the journal's version: a record
with ``"payment_id"`` is verbose (the format of older journals), one with ``"p"`` is
compact. A record of ``clear`` or ``refund`` (verbose ``row``, compact ``w``) has the
table of :mod:`._money_codec`; any other record the table of :mod:`._cancel_codec`,
on which the money table builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._cancel_codec import (
    COMPACT_KEYS,
    LEGACY_REVOKE_STATUS,
    decode_cancel,
    encode_cancel,
    ms_to_time,
    one_vocabulary,
    time_to_ms,
)
from ._money_codec import decode_money, encode_money

__all__ = [
    "COMPACT_KEYS",
    "LEGACY_REVOKE_STATUS",
    "decode_record",
    "encode_record",
    "ms_to_time",
    "time_to_ms",
]


def encode_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The compact form of a record (verbose or already compact; see the key tables).

    Known keys with a null or default value are left out; keys outside the table are
    kept as they are. A record without ``payment_id`` (a header, say) is returned
    unchanged. Raises ValueError for a key that would collide with a compact key.
    """
    if "payment_id" not in record:
        return dict(record)
    if "row" in record:
        return encode_money(record)
    return encode_cancel(record)


def decode_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The verbose form (every known key, defaults filled in) of a compact record.

    A verbose record is returned as it is, a header or anything else without ``"p"``
    unchanged; in both record shapes a legacy ``revoke_status`` (see
    :data:`LEGACY_REVOKE_STATUS`) reads as "success".
    """
    if "p" not in record or "payment_id" in record:
        return one_vocabulary(dict(record))
    if "w" in record:
        return decode_money(record)
    return decode_cancel(record)
