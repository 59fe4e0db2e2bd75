"""Journal records: the compact line format, its key table, and the streaming reader.

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
v      revoke_status           text; default "success" when the state is c
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

The writer puts ``p``, ``s`` and ``f`` first, in that order, so that the reader can
take the payment id, state and finality of most lines with one regular expression
over a whole block of lines (:func:`scan`) instead of one ``json.loads`` per line.
A block in which any line does not fit that frame is parsed line by line in full.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import IO, Any

from .._session.batch import OutcomeState
from ._idset import IdMap

__all__ = [
    "COMPACT_KEYS",
    "FINAL",
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
#: State value -> its one-letter compact code.
STATE_CODES: dict[str, str] = {
    OutcomeState.CANCELLED.value: "c",
    OutcomeState.ALREADY_CANCELLED.value: "a",
    OutcomeState.PENDING.value: "p",
    OutcomeState.FAILED.value: "f",
    OutcomeState.UNKNOWN.value: "u",
}
_STATE_OF_LETTER = {letter: state for state, letter in STATE_CODES.items()}
_SETTLED = frozenset(state.value for state in OutcomeState if state.settled)

# In-memory state byte of one id: the state's index (1..5) plus FINAL when final.
#: Bit set in a state byte when the record (and so the id) is final.
FINAL = 8
_STATE_INDEX = {state.value: index for index, state in enumerate(OutcomeState, 1)}
_STATE_BY_INDEX = {index: state for state, index in _STATE_INDEX.items()}

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_MS = _dt.timedelta(milliseconds=1)


def code_of(state: str, final: bool) -> int:
    """The state byte of a record; a settled state is always final (belt and braces)."""
    return _STATE_INDEX[state] | (FINAL if final or state in _SETTLED else 0)


def state_of_code(code: int) -> str:
    """The state value a state byte stands for."""
    return _STATE_BY_INDEX[code & 7]


def _time_to_ms(value: str) -> int | str:
    try:
        moment = _dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.utcoffset() != _dt.timedelta(0):
        return value
    ms = (moment - _EPOCH) // _MS
    return ms if _ms_to_time(ms) == value else value


def _ms_to_time(ms: int) -> str:
    return (_EPOCH + ms * _MS).isoformat(timespec="milliseconds")


def encode_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The compact form of a record (verbose or already compact; see the key table).

    Known keys with a null or default value are left out; keys outside the table are
    kept as they are. A record without ``payment_id`` (a header, say) is returned
    unchanged. Raises ValueError for a key that would collide with a compact key.
    """
    if "payment_id" not in record:
        return dict(record)
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
        out["t"] = _time_to_ms(time) if isinstance(time, str) else time
    if record.get("run") is not None:
        out["u"] = record["run"]
    for key, value in record.items():
        if key in COMPACT_KEYS:
            continue
        if key in _VERBOSE_KEYS:
            raise ValueError(f"record key {key!r} collides with a compact journal key")
        out[key] = value
    return out


def decode_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The verbose form (every known key, defaults filled in) of a compact record.

    A verbose record, a header or anything else without ``"p"`` is returned unchanged.
    """
    if "p" not in record or "payment_id" in record:
        return dict(record)
    letter = record.get("s")
    state = _STATE_OF_LETTER.get(letter, letter) if isinstance(letter, str) else letter
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
        "time": _ms_to_time(time) if isinstance(time, int) and not isinstance(time, bool) else time,
        "run": record.get("u"),
    }
    for key, value in record.items():
        if key not in _VERBOSE_KEYS:
            out[key] = value
    return out


def record_code(record: Mapping[str, Any]) -> tuple[int, int] | None:
    """(payment id, state byte) of a parsed outcome record of either shape, or None."""
    if "payment_id" in record:
        pid, state, final = record.get("payment_id"), record.get("state"), record.get("final")
    else:
        pid, letter, final = record.get("p"), record.get("s"), record.get("f", 0)
        state = _STATE_OF_LETTER.get(letter) if isinstance(letter, str) else None
    if isinstance(pid, bool) or not isinstance(state, str):
        return None
    if not isinstance(pid, int) or pid <= 0 or state not in _STATE_INDEX:
        return None
    return pid, code_of(state, final is True or final == 1)


def parse_line(line: bytes) -> dict[str, Any] | None:
    """One journal line as a JSON object, or None."""
    try:
        value = json.loads(line)
    except ValueError:  # includes UnicodeDecodeError
        return None
    return value if isinstance(value, dict) else None


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


# -- the streaming reader ------------------------------------------------------------------

# The frame of a compact line as the writer lays it out: the id, the state and the
# optional final flag, matched from the newline before the line (one match per line).
_FRAME = re.compile(rb'\n\{"p":([1-9][0-9]{0,19}),"s":("[capfu]"(?:,"f":[01])?)[,}]')
# The same, for a block of one state without final flags (the usual resume: all "c").
_UNIFORM = {
    letter: re.compile(rb'\n\{"p":([1-9][0-9]{0,19}),"s":"%s"(?!,"f":)[,}]' % letter.encode())
    for letter in ("c", "a", "u", "p", "f")
}
_FRAME_CODE = {
    f'"{letter}"{flag}'.encode(): code_of(state, final)
    for state, letter in STATE_CODES.items()
    for flag, final in (("", state in _SETTLED), (',"f":1', True), (',"f":0', False))
}
BLOCK = 1024 * 1024


class Scan:
    """What :func:`scan` found besides the records: header, bad lines, torn tail."""

    def __init__(self) -> None:
        self.header: dict[str, Any] | None = None
        self.records = 0
        self.bad_lines: list[int] = []
        self.bad_count = 0
        #: (line number, byte offset, whether that unterminated line is a whole record).
        self.tail: tuple[int, int, bool] | None = None
        #: Why a first line that looks like a header (``{"journal"``) cannot be read.
        self.header_error: str | None = None
        self.bytes = 0

    def repair(self) -> tuple[str | None, tuple[str, int] | None]:
        """What to say and do about a torn last line: (message, (action, offset))."""
        if self.tail is None:
            return None, None
        lineno, start, whole = self.tail
        if whole:
            return f"line {lineno}: completed an unterminated record", ("complete", start)
        return f"line {lineno}: dropped a torn record", ("drop", start)


def scan(
    stream: IO[bytes],
    feed: Callable[[list[int], bytearray], None],
    *,
    max_bad_lines: int = 1000,
    block: int = BLOCK,
) -> Scan:
    """Read a journal from its start, streaming: ``feed(ids, state_bytes)`` per block.

    ``feed`` gets the outcome records of each block of lines, in order. A header is
    recognised on the first line only (a ``"journal"`` key). The last line, if it has
    no newline, is a torn tail: reported in ``Scan.tail`` and fed only if it is a
    whole record.
    """
    result = Scan()
    lineno = 0
    offset = 0
    carry = b""
    while True:
        chunk = stream.read(block)
        if not chunk:
            if carry:
                item = parse_line(carry)
                pair = record_code(item) if item is not None else None
                whole_header = lineno == 0 and item is not None and "journal" in item
                if whole_header:
                    result.header = item  # a whole header that lost only its newline
                result.tail = (lineno + 1, offset, pair is not None or whole_header)
                if pair is not None:
                    result.records += 1
                    feed([pair[0]], bytearray([pair[1]]))
            result.bytes = offset + len(carry)
            return result
        # One copy per block; the newline in front lets every match start at one.
        data = b"\n" + carry + chunk
        end = data.rfind(b"\n") + 1
        carry = data[end:]
        start = 0
        # A first line without its newline yet is left in ``carry``: the next block (or,
        # at the end, the torn-tail rule) decides it.
        first_end = data.find(b"\n", 1) + 1
        if lineno == 0 and first_end and data.startswith(b'\n{"journal"'):
            result.header = parse_line(data[1:first_end])
            if result.header is not None:
                offset += first_end - 1
                lineno = 1
                start = first_end - 1  # keep the newline before the next line
            else:
                result.header_error = "line 1 looks like a journal header but is not JSON"
        count = data.count(b"\n", start + 1, end)
        if count and not _fast_block(data, start, end, count, feed):
            _slow_block(data[start + 1 : end], lineno, result, feed, max_bad_lines)
        else:
            result.records += count
        lineno += count
        offset += end - start - 1


def _fast_block(
    data: bytes, start: int, end: int, count: int, feed: Callable[[list[int], bytearray], None]
) -> bool:
    """Feed a block whose every line is a framed compact record; False if one is not.

    ``data[start]`` is the newline before the first line, ``data[end - 1]`` the last
    line's. Every line must also end in ``}``.
    """
    if data.count(b"}\n", start, end) != count:
        return False
    # Try the state of the block's first line as the state of all (one regex pass).
    letter = data[start + 1 : start + 40].partition(b'"s":"')[2][:1].decode("latin-1")
    uniform = _UNIFORM.get(letter)
    if uniform is not None:
        ids = uniform.findall(data, start, end)
        if len(ids) == count:
            code = _FRAME_CODE[f'"{letter}"'.encode()]
            feed(list(map(int, ids)), bytearray([code]) * count)
            return True
    found = _FRAME.findall(data, start, end)
    if len(found) != count:
        return False
    ids_raw, frames = zip(*found, strict=True)
    feed(list(map(int, ids_raw)), bytearray(map(_FRAME_CODE.__getitem__, frames)))
    return True


def _slow_block(
    lines: bytes,
    lineno: int,
    result: Scan,
    feed: Callable[[list[int], bytearray], None],
    max_bad_lines: int,
) -> None:
    ids: list[int] = []
    codes = bytearray()
    for number, line in enumerate(lines.split(b"\n")[:-1], lineno + 1):
        if not line.strip():
            continue
        record = parse_line(line)
        if number == 1 and record is not None and "journal" in record:
            result.header = record
            continue
        pair = record_code(record) if record is not None else None
        if pair is None:
            result.bad_count += 1
            if len(result.bad_lines) < max_bad_lines:
                result.bad_lines.append(number)
            continue
        ids.append(pair[0])
        codes.append(pair[1])
    if ids:
        result.records += len(ids)
        feed(ids, codes)


def iter_records(stream: IO[bytes]) -> Iterator[tuple[int, dict[str, Any] | None, bytes]]:
    """(line number, parsed object or None, raw line) for every non-blank line, streaming."""
    for lineno, line in enumerate(stream, 1):
        if line.strip():
            yield lineno, parse_line(line) if line.endswith(b"\n") else None, line
