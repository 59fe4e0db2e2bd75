"""Journal records, one import point: the codec (:mod:`._codec`), the state codes
(:mod:`._states`) and the block scanner (:mod:`._scan`)."""

from __future__ import annotations

from ._codec import COMPACT_KEYS, LEGACY_REVOKE_STATUS, decode_record, encode_record
from ._scan import BLOCK, Scan, iter_records, parse_line, scan
from ._states import (
    FINAL,
    STATE_CODES,
    LastView,
    SettledView,
    code_of,
    record_code,
    state_counts,
    state_of_code,
)

__all__ = [
    "BLOCK",
    "COMPACT_KEYS",
    "FINAL",
    "LEGACY_REVOKE_STATUS",
    "STATE_CODES",
    "LastView",
    "Scan",
    "SettledView",
    "code_of",
    "decode_record",
    "encode_record",
    "iter_records",
    "parse_line",
    "record_code",
    "scan",
    "state_counts",
    "state_of_code",
]
