"""Bulk reading of a plain ids file: a block of well-formed lines becomes a list of ints.

A file of ten million ids read line by line costs seconds per pass in bytecode alone.
Here each block of complete lines (about 1 MB) is checked with one regular expression;
when every line is a canonical id (digits, no leading zero, no spaces, ``\\n`` endings)
the block is converted with ``bytes.split`` and ``int`` in C. Any other block (blank
lines, comments, spaces, CRLF, bad ids, the last line without a newline) goes through
the ordinary line parser, with its real line numbers, so the result is exactly that
parser's.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import IO

from .._operations.values import MAX_ID_DIGITS
from ._input import READ_CHUNK, Item, Parser, read_lines

__all__ = ["plain_blocks"]

_BLOCK = 1024 * 1024
_BOM = b"\xef\xbb\xbf"
_CANONICAL = re.compile(rb"(?:[1-9][0-9]{0,%d}\n)*" % (MAX_ID_DIGITS - 1))


def plain_blocks(stream: IO[bytes], parse: Parser) -> Iterator[list[int] | list[Item]]:
    """Blocks of the file in order: a list of ids (every line canonical) or of items.

    ``parse`` is the plain line parser (line numbers in its items are the file's).
    """
    lineno = 0
    carry = b""
    first = True
    while True:
        chunk = stream.read(_BLOCK)
        data = carry + chunk if carry else chunk
        if first:
            if chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                # UTF-16 text: the line reader decodes it; no bulk path.
                stream.seek(0)
                decoded = read_lines(lambda: stream.read(READ_CHUNK))
                yield from ([item] for item in parse(decoded))
                return
            data = data.removeprefix(_BOM)
            first = False
        if not chunk:
            if data:
                yield _parsed(data, lineno, parse)
            return
        end = data.rfind(b"\n") + 1
        lines, carry = data[:end], data[end:]
        if not lines:
            continue
        if _CANONICAL.fullmatch(lines):
            yield list(map(int, lines.split()))
        else:
            yield _parsed(lines, lineno, parse)
        lineno += lines.count(b"\n")


def _parsed(lines: bytes, lineno: int, parse: Parser) -> list[Item]:
    # Split on "\n" only, as the line reader does (not on str.splitlines' other breaks).
    *complete, last = lines.decode("utf-8", errors="replace").split("\n")
    text = [line + "\n" for line in complete] + ([last] if last else [])
    return [(number + lineno, pid, raw) for number, pid, raw in parse(text)]
