"""Reading payment ids for the command line: plain lines or a CSV column, from a file or a pipe.

A regular file is read up front (so the total is known); a pipe or terminal is read by
a daemon thread that hands parsed batches to the event loop, which therefore never
blocks on the input. Malformed ids are yielded as items (with their line number) for
the caller to report; they never stop the reading.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import os
import stat
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator

from .._exceptions import ValidationError
from .._operations.values import coerce_payment_id

__all__ = [
    "InputError",
    "Item",
    "Parser",
    "StreamSource",
    "open_input",
    "parse_csv",
    "parse_plain",
    "parser_for",
    "read_lines",
    "why_no_ids",
]

READ_CHUNK = 64 * 1024


class InputError(Exception):
    """The input cannot be opened or read, or a CSV has no such column."""


#: One input record: (line number, payment id, the text) or, for a malformed one,
#: (line number, None, why it was rejected).
Item = tuple[int, int | None, str]
#: Turns decoded lines into items.
Parser = Callable[[Iterable[str]], Iterator[Item]]


def read_lines(
    read: Callable[[], bytes], before_read: Callable[[], None] | None = None
) -> Iterator[str]:
    """Decode chunks from ``read`` (b"" at EOF) as UTF-8 lines ending in "\\n".

    A UTF-8 byte-order mark is dropped; a UTF-16 one (a spreadsheet's "Unicode text"
    export) switches to UTF-16. Undecodable bytes become U+FFFD (and so a malformed
    id, never a crash). ``before_read`` runs before each (possibly blocking) read.
    """
    decoder: codecs.IncrementalDecoder | None = None
    pending = ""
    at_start = True
    while True:
        if before_read is not None:
            before_read()
        chunk = read()
        if decoder is None:
            utf16 = chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
            decoder = codecs.getincrementaldecoder("utf-16" if utf16 else "utf-8")("replace")
        text = decoder.decode(chunk, final=not chunk)
        if at_start and text:
            text = text.removeprefix("\ufeff")
            at_start = False
        pending += text
        if "\n" in pending:
            *complete, pending = pending.split("\n")
            for line in complete:
                yield line + "\n"
        if not chunk:
            if pending:
                yield pending
            return


def parse_plain(lines: Iterable[str]) -> Iterator[Item]:
    """One payment id per line; blank lines and ``#`` comments (whole lines, or after
    an id: ``12345  # note``) are ignored."""
    for lineno, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            yield lineno, coerce_payment_id(text), text
        except ValidationError:
            yield lineno, None, _not_an_id(text)


def _not_an_id(text: str) -> str:
    return f"not a payment id: {text[:60]!r}"


def parse_csv(lines: Iterable[str], column: str, delimiter: str = ",") -> Iterator[Item]:
    """Payment ids from the column named ``column`` of a CSV file with a header row,
    fields separated by ``delimiter``.

    Raises :class:`InputError` if there is no header or no such column.
    """
    reader = csv.reader(lines, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        raise InputError("the CSV input is empty (a header row is expected)")
    names = [name.strip() for name in header]
    if column not in names:
        shown = ", ".join(repr(name) for name in names[:20])
        hint = ""
        if len(names) == 1:
            other = next(
                (d for d in (";", "\t", "|", ",") if d != delimiter and d in header[0]), None
            )
            if other is not None:
                hint = f" (the header looks {other!r}-separated: pass --csv-delimiter {other!r})"
        raise InputError(f"CSV column {column!r} not found in the header; columns: {shown}{hint}")
    index = names.index(column)
    previous = reader.line_num
    for row in reader:
        lineno, previous = previous + 1, reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) <= index:
            yield lineno, None, f"the row has no column {column!r}"
            continue
        text = row[index].strip()
        try:
            yield lineno, coerce_payment_id(text), text
        except ValidationError:
            yield lineno, None, _not_an_id(text)


class _Stopped(Exception):
    pass


class StreamSource:
    """Reads and parses a pipe or terminal in a daemon thread, handing batches to the loop.

    The event loop never blocks on the input; at most a few batches wait in memory
    (back-pressure). The thread owns ``fd`` and closes it when done. Raw ``os.read``
    is used so that no buffered-reader lock is held at interpreter exit.
    """

    def __init__(self, fd: int, parse: Parser, *, batches: int = 8) -> None:
        self._fd = fd
        self._parse = parse
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[list[Item] | BaseException | None] = asyncio.Queue()
        self._slots = threading.Semaphore(batches)
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="freedompay-input", daemon=True)

    def _put(self, value: list[Item] | BaseException | None) -> None:
        while not self._slots.acquire(timeout=0.2):
            if self._stop.is_set():
                raise _Stopped
        if self._stop.is_set():
            self._slots.release()
            raise _Stopped
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, value)
        except RuntimeError:  # the loop is closed
            raise _Stopped from None

    def _run(self) -> None:
        batch: list[Item] = []

        def flush() -> None:
            nonlocal batch
            if batch:
                self._put(batch)
                batch = []

        def before_read() -> None:
            if self._stop.is_set():
                raise _Stopped
            flush()

        try:
            try:
                lines = read_lines(lambda: os.read(self._fd, READ_CHUNK), before_read)
                for item in self._parse(lines):
                    batch.append(item)
                    if len(batch) >= 1024:
                        flush()
                flush()
                self._put(None)
            except _Stopped:
                raise
            except OSError as exc:
                self._put(InputError(f"cannot read the input: {exc.strerror or exc}"))
            except Exception as exc:
                self._put(exc)
        except _Stopped:
            pass
        finally:
            os.close(self._fd)  # owned by this thread: never closed under a blocked read

    async def items(self) -> AsyncIterator[Item]:
        """Every parsed item, in input order."""
        if self._closed:
            return
        if self._thread.ident is None:
            self._thread.start()
        try:
            while True:
                value = await self._queue.get()
                self._slots.release()
                if value is None:
                    return
                if isinstance(value, BaseException):
                    raise value
                for item in value:
                    yield item
        finally:
            self._stop.set()

    def close(self) -> None:
        """Stop reading; closes the descriptor now if reading never started."""
        self._stop.set()
        if self._thread.ident is None and not self._closed:
            self._closed = True  # the reader never starts now
            os.close(self._fd)


def parser_for(csv_column: str | None, delimiter: str = ",") -> Parser:
    """The parser for plain lines (None) or for the CSV column ``csv_column``."""
    if csv_column is None:
        return parse_plain
    return lambda lines: parse_csv(lines, csv_column, delimiter)


def why_no_ids(malformed: int, first_bad: str | None, csv_column: str | None) -> str:
    """What to tell an operator whose input yielded no payment id at all."""
    if not malformed:
        what = "rows" if csv_column else "lines"
        return f"the input holds no payment ids (no {what} other than blanks, comments or a header)"
    text = f"none of the {malformed} non-blank {'rows' if csv_column else 'lines'} is a payment id"
    bad = first_bad or ""
    if "\\x00" in bad or "\ufffd" in bad:
        text += "; the input is not UTF-8 text (UTF-16 without a byte-order mark?)"
    elif csv_column is None and any(sep in bad for sep in (",", ";", "\\t")):
        text += "; it looks like CSV: pass --csv-column NAME (and --csv-delimiter if not ',')"
    return text + (f"; first: {bad}" if bad else "")


def open_input(path: str | None, stdin_fd: int = 0) -> tuple[int, bool]:
    """Open the input (None or "-": a duplicate of ``stdin_fd``); returns the descriptor
    and whether it is a regular file."""
    try:
        if path is None or path == "-":
            fd = os.dup(stdin_fd)
        else:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"cannot open input {path or '-'!r}: {exc.strerror}") from exc
    return fd, stat.S_ISREG(os.fstat(fd).st_mode)


def read_regular(fd: int, parse: Parser) -> Iterator[Item]:
    """Every item of a regular file (closes ``fd`` when exhausted or closed)."""
    with os.fdopen(fd, "rb") as stream:
        yield from parse(read_lines(lambda: stream.read(READ_CHUNK)))
