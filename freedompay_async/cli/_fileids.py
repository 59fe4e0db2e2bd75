"""A regular input file's ids in compact memory: counted now, sent later, in input order.

A list of ten million ids costs about 360 MB in Python objects. Here the file is read
twice instead. The first pass (:class:`FileIds` itself) parses it, reports malformed
lines through the caller, and deduplicates the ids into an :class:`~._idset.IdMap`
(about 3 bytes per id); :meth:`FileIds.select` joins that map with the journal's;
:meth:`FileIds.remaining` rereads the file lazily and yields each id still to send at
its first occurrence. Ids found only by the second pass (the file changed meanwhile)
are ignored. With a :class:`~._shard.Shard`, the ids of other shards are counted
(:attr:`FileIds.other_shards`) and otherwise left out.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterator
from typing import BinaryIO

from ._idset import IdMap
from ._input import READ_CHUNK, Item, Parser, parse_plain, read_lines
from ._plain import plain_blocks
from ._shard import Shard
from ._states import FINAL, code_of

__all__ = ["FileIds"]

_SEND, _SKIP, _SKIP_UNSETTLED, _SENT = 1, 2, 3, 4
_FAILED_FINAL = code_of("failed", final=True)
# Journal state byte -> this file's code: settled ids are skipped, final failures too
# (listed as still to settle), everything else is sent.
_SELECT = bytes(
    (_SKIP_UNSETTLED if code == _FAILED_FINAL else _SKIP) if code & FINAL else _SEND
    for code in range(256)
)


def _blocks(stream: BinaryIO, parse: Parser) -> Iterator[list[int] | list[Item]]:
    if parse is parse_plain:
        return plain_blocks(stream, parse)
    return ([item] for item in parse(read_lines(lambda: stream.read(READ_CHUNK))))


class FileIds:
    """The unique ids of a regular file (owns ``fd``; :meth:`close` when done).

    ``valid(item)`` is called for every parsed item that is not a canonical id line:
    it reports a malformed one and returns its id or None. ``valid_ids`` counts the
    valid ids of this shard (duplicates included), ``other_shards`` those of others.
    """

    def __init__(
        self,
        fd: int,
        parse: Parser,
        valid: Callable[[Item], int | None],
        shard: Shard | None = None,
    ) -> None:
        self._stream = os.fdopen(fd, "rb")
        self._parse = parse
        self._shard = shard
        self.ids = IdMap()
        self.valid_ids = 0
        self.other_shards = 0
        self.yielded = 0
        self._last: int | None = None
        self._pass: Iterator[int] | None = None
        self.to_send: int | None = None  # known once selected
        try:
            for block in _blocks(self._stream, parse):
                if block and isinstance(block[0], int):
                    self._add(block)
                    continue
                for item in block:
                    pid = valid(item)  # type: ignore[arg-type]
                    if pid is not None:
                        self._add([pid])
            self.unique = len(self.ids)
        except BaseException:
            self._stream.close()
            raise

    def _add(self, ids: list[int]) -> None:
        if self._shard is not None:
            mine = self._shard.keep(ids)
            self.other_shards += len(ids) - len(mine)
            ids = mine
        self.valid_ids += len(ids)
        self.ids.update(ids, bytes([_SEND]) * len(ids))

    def select(self, journal_ids: IdMap) -> collections.Counter[int]:
        """Mark the ids the journal settled; how many have each journal state byte."""
        counts = self.ids.relabel(journal_ids, _SELECT)
        self.to_send = sum(n for code, n in counts.items() if _SELECT[code] == _SEND)
        return counts

    def skipped_unsettled(self) -> Iterator[int]:
        """Ids skipped although not settled (final failures), ascending."""
        return (pid for pid, code in self.ids.items() if code == _SKIP_UNSETTLED)

    def remaining(self) -> Iterator[int]:
        """The ids to send, in input order (the second pass; one iterator only)."""
        if self._pass is None:
            self._pass = self._second_pass()
        return self._pass

    def _second_pass(self) -> Iterator[int]:
        if self.to_send == 0:
            return  # everything settled: no need to read the file again
        stream = self._stream
        stream.seek(0)
        with stream:
            for block in _blocks(stream, self._parse):
                for entry in block:
                    pid = entry if isinstance(entry, int) else entry[1]
                    if pid is not None and self.ids.swap(pid, _SEND, _SENT):
                        self.yielded += 1
                        self._last = pid
                        yield pid
                        if self.yielded == self.to_send:
                            return  # the rest of the file holds nothing new

    def not_handed(self, handed: int) -> Iterator[int]:
        """Ids to send that a consumer which took ``handed`` of them did not get."""
        if self.yielded > handed and self._last is not None:
            yield self._last  # taken from the iterator, then dropped by a stop
        yield from self.remaining()

    def close(self) -> None:
        """Close the file (ends the second pass)."""
        self._stream.close()
