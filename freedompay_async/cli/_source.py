"""The input of a run, as the runner sees it: a regular file (counted first, so the
total is known, and read again lazily to send) or a pipe (read once, as it comes)."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Iterator
from typing import Protocol

from ._fileids import FileIds
from ._flow import Gate
from ._input import InputError, StreamSource, open_input, parser_for, why_no_ids
from ._journal import JournalState
from ._options import BatchJob
from ._outcome import Ids
from ._report import BatchReport
from ._select import Selector

__all__ = ["FileInput", "Input", "PipeInput", "open_batch_input", "open_id_input"]


class Input(Protocol):
    """What the runner reads ids from."""

    #: (device, inode) of the input, to tell it apart from the journal.
    identity: tuple[int, int]

    def prepare(self, state: JournalState) -> int | None:
        """Match the input with the journal; how many ids are to send (None: not known)."""
        ...

    def ids(self, gate: Gate) -> Ids:
        """The ids to send, handed out through ``gate``."""
        ...

    def leftovers(self, gate: Gate) -> Iterator[int]:
        """Ids to send that ``gate`` never handed out (a file's; none for a pipe)."""
        ...

    def any_id(self) -> int | None:
        """Some payment id of the input (of this shard), if any was read."""
        ...

    def payment_of(self, item: int) -> int:
        """The payment id an item handed out stands for."""
        ...

    async def aclose(self) -> None:
        """Stop reading and release the input."""
        ...


class FileInput:
    """A regular file, read and counted at once (see :class:`~._fileids.FileIds`)."""

    def __init__(
        self, fd: int, selector: Selector, report: BatchReport, column: str | None, delimiter: str
    ) -> None:
        self.identity = _identity(fd)
        self._selector = selector
        self.files = FileIds(fd, parser_for(column, delimiter), selector.valid, selector.shard)
        report.input_ids = self.files.unique
        report.duplicates = self.files.valid_ids - self.files.unique
        report.other_shard_ids = self.files.other_shards

    def prepare(self, state: JournalState) -> int:
        """Mark the ids the journal settled; how many are left to send."""
        return self._selector.fresh_file(self.files, state)

    def ids(self, gate: Gate) -> Iterator[int]:
        """The ids left, in input order."""
        return gate.over(self.files.remaining())

    def leftovers(self, gate: Gate) -> Iterator[int]:
        """The ids left that were not handed out."""
        return self.files.not_handed(gate.pulled)

    def any_id(self) -> int | None:
        """The lowest id of the file."""
        return next((pid for pid, _ in self.files.ids.items()), None)

    def payment_of(self, item: int) -> int:
        """The id itself."""
        return item

    async def aclose(self) -> None:
        """Close the file."""
        self.files.close()


class PipeInput:
    """A pipe or terminal, read once by a thread as the run goes (no total)."""

    def __init__(self, fd: int, selector: Selector, column: str | None, delimiter: str) -> None:
        self.identity = _identity(fd)
        self.tty = os.isatty(fd)
        self._selector = selector
        self._reader = StreamSource(fd, parser_for(column, delimiter))
        self._state = JournalState()
        self._streams: list[AsyncGenerator[int, None]] = []

    def prepare(self, state: JournalState) -> None:
        """Keep the journal's state, to skip settled ids as they come."""
        self._state = state

    async def _fresh(self) -> AsyncGenerator[int, None]:
        selector, state = self._selector, self._state
        async for item in self._reader.items():
            pid = selector.take(item)
            if pid is not None and selector.fresh(pid, state):
                yield pid

    def ids(self, gate: Gate) -> AsyncGenerator[int, None]:
        """The ids to send, as they are read."""
        inner = self._fresh()
        self._streams += [gate.over_stream(inner), inner]
        return self._streams[0]

    def leftovers(self, gate: Gate) -> Iterator[int]:
        """Nothing: ids not read are not known."""
        return iter(())

    def any_id(self) -> int | None:
        """The first id read."""
        return self._selector.first_id

    def payment_of(self, item: int) -> int:
        """The id itself."""
        return item

    async def aclose(self) -> None:
        """Stop the generators and the reader thread."""
        for generator in self._streams:
            await generator.aclose()
        self._reader.close()


def _identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def open_batch_input(
    path: str | None,
    selector: Selector,
    report: BatchReport,
    column: str | None,
    delimiter: str,
    stdin: int = 0,
) -> Input:
    """Open the input (``path``, or descriptor ``stdin`` for None or "-"). A regular
    file is read and counted now: one without any id is an
    :class:`~._input.InputError` before a journal exists."""
    fd, regular = open_input(path, stdin)
    if not regular:
        return PipeInput(fd, selector, column, delimiter)
    found = FileInput(fd, selector, report, column, delimiter)
    if not found.files.unique and not found.files.other_shards:
        found.files.close()
        raise InputError(why_no_ids(report.malformed, selector.first_bad, column))
    return found


def open_id_input(job: BatchJob, selector: Selector, report: BatchReport) -> Input:
    """The input of an operation on payment ids (``cancel``, ``status``)."""
    return open_batch_input(
        job.input_path, selector, report, job.csv_column, job.csv_delimiter, job.stdin
    )
