"""The journal's streaming reader: a whole block of lines per regular expression.

The writer puts ``p``, ``s`` and ``f`` first, in that order (see :mod:`._codec`), so
:func:`scan` takes the payment id, state and finality of most lines with one regular
expression over a whole block of lines instead of one ``json.loads`` per line. A block
in which any line does not fit that frame is parsed line by line in full.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import IO, Any

from ._states import SETTLED as _SETTLED
from ._states import STATE_CODES, code_of, record_code

__all__ = ["BLOCK", "Scan", "iter_records", "parse_line", "scan"]


def parse_line(line: bytes) -> dict[str, Any] | None:
    """One journal line as a JSON object, or None."""
    try:
        value = json.loads(line)
    except ValueError:  # includes UnicodeDecodeError
        return None
    return value if isinstance(value, dict) else None


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
        #: Whether the only line is the start of a header torn by a crash.
        self.torn_header = False
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
    block: int | None = None,
) -> Scan:
    """Read a journal from its start, streaming: ``feed(ids, state_bytes)`` per block.

    ``feed`` gets the outcome records of each block of lines, in order. A header is
    recognised on the first line only (a ``"journal"`` key). The last line, if it has
    no newline, is a torn tail: reported in ``Scan.tail`` and fed only if it is a
    whole record. ``block`` is the read size (default :data:`BLOCK`, read at call time).
    """
    size = BLOCK if block is None else block
    result = Scan()
    lineno = 0
    offset = 0
    carry = b""
    while True:
        chunk = stream.read(size)
        if not chunk:
            _last_line(carry, lineno, offset, result, feed)
            return result
        # One copy per block; the newline in front lets every match start at one.
        data = b"\n" + carry + chunk
        end = data.rfind(b"\n") + 1
        carry = data[end:]
        start = 0
        if lineno == 0:
            start = _header(data, result)
            if start:
                offset += start
                lineno = 1
        count = data.count(b"\n", start + 1, end)
        if count and not _fast_block(data, start, end, count, feed):
            _slow_block(data[start + 1 : end], lineno, result, feed, max_bad_lines)
        else:
            result.records += count
        lineno += count
        offset += end - start - 1


def _header(data: bytes, result: Scan) -> int:
    """Read a header on the block's first line (``data`` starts with a newline); the
    index of the newline before the next line, or 0 when there is none to skip.

    A first line without its newline yet is left in the carry: the next block (or, at
    the end, the torn-tail rule) decides it.
    """
    first_end = data.find(b"\n", 1) + 1
    if not (first_end and data.startswith(b'\n{"journal"')):
        return 0
    result.header = parse_line(data[1:first_end])
    if result.header is None:
        result.header_error = "line 1 looks like a journal header but is not JSON"
        return 0
    return first_end - 1  # keep the newline before the next line


def _last_line(
    carry: bytes,
    lineno: int,
    offset: int,
    result: Scan,
    feed: Callable[[list[int], bytearray], None],
) -> None:
    """The end of the stream: a last line without its newline is a torn tail."""
    if carry:
        item = parse_line(carry)
        pair = record_code(item) if item is not None else None
        whole_header = lineno == 0 and item is not None and "journal" in item
        if whole_header:
            result.header = item  # a whole header that lost only its newline
        result.torn_header = lineno == 0 and carry.startswith(b'{"journal"')
        result.tail = (lineno + 1, offset, pair is not None or whole_header)
        if pair is not None:
            result.records += 1
            feed([pair[0]], bytearray([pair[1]]))
    result.bytes = offset + len(carry)


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
