"""Compact maps and sets of payment ids: about 3 bytes per id, no Python object per id.

Ids are split by their high bits (``id >> 16``) into buckets; a bucket holds the low
16 bits of its ids as a sorted ``array('H')`` and one byte per id (a small code) in a
parallel ``bytearray``. Updates are buffered and folded in by bulk operations that run
in C (``dict(zip(...))``, ``sorted``, ``array.extend``), so building a map of ten
million ids takes seconds and its memory is the arrays plus a bounded buffer. Lookups
are a dict hit and a ``bisect`` (microseconds). Ids of any size work; memory is lowest
when ids cluster (a bucket costs a few hundred bytes of overhead, so ids spread more
than 65,536 apart cost that much each).
"""

from __future__ import annotations

import collections
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from itertools import compress, islice, repeat
from operator import and_, lt

__all__ = ["IdMap", "IdSet"]

_SHIFT = 16
_LOW = (1 << _SHIFT) - 1
#: A bucket's pending updates are folded in once they reach this many (or its size).
_MIN_FOLD = 4096


class _Bucket:
    __slots__ = ("clean", "codes", "lows", "pcodes", "plows")

    def __init__(self) -> None:
        self.lows = array("H")
        self.codes = bytearray()
        self.plows = array("H")
        self.pcodes = bytearray()
        #: Whether the pending lows are sorted and unique (one spill's worth).
        self.clean = True

    def push(self, lows: Iterable[int], codes: Iterable[int]) -> None:
        self.clean = not self.plows
        self.plows.extend(lows)
        self.pcodes.extend(codes)

    def fold(self, sticky: int) -> None:
        """Merge the pending updates (in order) into the sorted arrays."""
        if not self.plows:
            return
        if self.clean and (not self.lows or self.plows[0] > self.lows[-1]):
            # Ids arriving in ascending order (the common case): append, no sorting.
            self.lows.extend(self.plows)
            self.codes.extend(self.pcodes)
            self.plows, self.pcodes = array("H"), bytearray()
            return
        pending = dict(zip(self.plows, self.pcodes, strict=True))
        if sticky:
            stuck = map(and_, self.pcodes, repeat(sticky))
            pending.update(compress(zip(self.plows, self.pcodes, strict=True), stuck))
        self.plows, self.pcodes = array("H"), bytearray()
        if not self.lows:
            merged = pending
        else:
            merged = dict(zip(self.lows, self.codes, strict=True))
            if sticky:
                for low in merged.keys() & pending.keys():
                    old = merged[low]
                    if old & sticky and not pending[low] & sticky:
                        pending[low] = old
            merged.update(pending)
        keys = sorted(merged)
        self.lows = array("H", keys)
        self.codes = bytearray(map(merged.__getitem__, keys))


class IdMap:
    """Payment id -> code (1..255), compact (see the module docstring).

    ``update`` and ``add`` are buffered and keep input order: a later code for an id
    replaces an earlier one, except that a code with a ``sticky`` bit is only
    replaced by another code with that bit (the journal's "a settled id stays
    settled"). Lookups (``get``, ``in``, ``len``) fold the buffer in first.
    """

    def __init__(self, *, sticky: int = 0, buffer: int = 1 << 16) -> None:
        self._sticky = sticky
        self._buffer = buffer
        self._buckets: dict[int, _Bucket] = {}
        self._ids: list[int] = []
        self._codes = bytearray()
        self._dirty = False

    def add(self, pid: int, code: int) -> None:
        """Record ``code`` for ``pid`` (buffered)."""
        self._ids.append(pid)
        self._codes.append(code)
        self._dirty = True
        if len(self._ids) >= self._buffer:
            self._spill()

    def update(self, ids: list[int], codes: bytes | bytearray) -> None:
        """Record ``codes[i]`` for ``ids[i]``, in order (buffered)."""
        if len(ids) != len(codes):
            raise ValueError("ids and codes differ in length")
        self._ids.extend(ids)
        self._codes.extend(codes)
        self._dirty = True
        if len(self._ids) >= self._buffer:
            self._spill()

    def _spill(self) -> None:
        ids, codes = self._ids, self._codes
        self._ids, self._codes = [], bytearray()
        if not ids:
            return
        sticky = self._sticky
        if all(map(lt, ids, islice(ids, 1, None))):
            # Strictly ascending (the usual journal and input): no dict, no sort.
            keys, ordered = ids, True
            latest: dict[int, int] = {}
        else:
            latest = dict(zip(ids, codes, strict=True))
            unique = len(latest) == len(ids)
            if sticky and not unique:
                stuck = map(and_, codes, repeat(sticky))
                latest.update(compress(zip(ids, codes, strict=True), stuck))
            keys = sorted(latest)
            # Ids already ascending and unique: their codes are the input's, in order.
            ordered = unique and keys == ids
        buckets = self._buckets
        start, n = 0, len(keys)
        while start < n:
            high = keys[start] >> _SHIFT
            end = bisect_left(keys, (high + 1) << _SHIFT, start)
            bucket = buckets.get(high)
            if bucket is None:
                bucket = buckets[high] = _Bucket()
            part = keys[start:end]
            bucket.push(
                map(and_, part, repeat(_LOW)),
                codes[start:end] if ordered else map(latest.__getitem__, part),
            )
            if len(bucket.plows) >= max(_MIN_FOLD, len(bucket.lows)):
                bucket.fold(sticky)
            start = end

    def freeze(self) -> None:
        """Fold every buffered update in (lookups do this themselves)."""
        if self._dirty:
            self._spill()
            for bucket in self._buckets.values():
                bucket.fold(self._sticky)
            self._dirty = False

    def _find(self, pid: int) -> tuple[_Bucket, int] | None:
        if self._dirty:
            self.freeze()
        bucket = self._buckets.get(pid >> _SHIFT)
        if bucket is None:
            return None
        low = pid & _LOW
        lows = bucket.lows
        index = bisect_left(lows, low)
        if index < len(lows) and lows[index] == low:
            return bucket, index
        return None

    def get(self, pid: int) -> int:
        """The code of ``pid``, 0 if absent."""
        if pid <= 0:
            return 0
        found = self._find(pid)
        return 0 if found is None else found[0].codes[found[1]]

    def replace(self, pid: int, code: int) -> bool:
        """Set the code of an id already present (in place); False if absent."""
        found = self._find(pid) if pid > 0 else None
        if found is None:
            return False
        found[0].codes[found[1]] = code
        return True

    def swap(self, pid: int, old: int, new: int) -> bool:
        """If ``pid``'s code is ``old``, make it ``new`` and return True."""
        found = self._find(pid) if pid > 0 else None
        if found is None or found[0].codes[found[1]] != old:
            return False
        found[0].codes[found[1]] = new
        return True

    def relabel(self, other: IdMap, table: bytes) -> collections.Counter[int]:
        """Give every id the code ``table[c]``, ``c`` its code in ``other`` (0 if absent).

        Returns how many of this map's ids have each code ``c`` in ``other``. A join of
        two sorted maps, bucket by bucket, in bulk operations (no per-id bytecode).
        """
        self.freeze()
        other.freeze()
        counts: collections.Counter[int] = collections.Counter()
        for high, bucket in self._buckets.items():
            theirs_bucket = other._buckets.get(high)
            if theirs_bucket is None:
                theirs = bytes(len(bucket.lows))
            elif theirs_bucket.lows == bucket.lows:  # the same ids (a resume): no lookups
                theirs = bytes(theirs_bucket.codes)
            else:
                index = dict(zip(theirs_bucket.lows, theirs_bucket.codes, strict=True))
                theirs = bytes(map(index.get, bucket.lows, repeat(0)))
            for code in set(theirs):
                found = theirs.count(code)
                if found:
                    counts[code] += found
            bucket.codes = bytearray(theirs.translate(table))
        return counts

    def __contains__(self, pid: object) -> bool:
        return isinstance(pid, int) and self.get(pid) != 0

    def __len__(self) -> int:
        self.freeze()
        return sum(len(bucket.lows) for bucket in self._buckets.values())

    def items(self) -> Iterator[tuple[int, int]]:
        """(id, code) pairs in ascending id order."""
        self.freeze()
        for high in sorted(self._buckets):
            bucket = self._buckets[high]
            base = high << _SHIFT
            for low, code in zip(bucket.lows, bucket.codes, strict=True):
                yield base + low, code

    def counts(self) -> collections.Counter[int]:
        """How many ids have each code."""
        self.freeze()
        total: collections.Counter[int] = collections.Counter()
        for bucket in self._buckets.values():
            total.update(collections.Counter(bucket.codes))
        return total

    def nbytes(self) -> int:
        """Bytes held by the arrays (a lower bound of the memory used)."""
        held = sum(
            b.lows.itemsize * len(b.lows) + len(b.codes) + 2 * len(b.plows) + len(b.pcodes)
            for b in self._buckets.values()
        )
        return held + 8 * len(self._ids) + len(self._codes)


class IdSet:
    """A set of payment ids in compact memory: ``add`` (True if new), ``in``, ``len``.

    New ids wait in a small Python set (at most ``buffer`` of them) and are then
    folded into an :class:`IdMap`; memory stays about 3 bytes per id.
    """

    def __init__(self, ids: Iterable[int] = (), *, buffer: int = 1 << 16) -> None:
        self._map = IdMap(buffer=buffer)
        self._recent: set[int] = set()
        self._limit = buffer
        for pid in ids:
            self.add(pid)

    def add(self, pid: int) -> bool:
        """Add ``pid``; True if it was not in the set."""
        if pid in self._recent or pid in self._map:
            return False
        self._recent.add(pid)
        if len(self._recent) >= self._limit:
            self._flush()
        return True

    def _flush(self) -> None:
        recent, self._recent = self._recent, set()
        ids = sorted(recent)
        self._map.update(ids, b"\1" * len(ids))
        self._map.freeze()

    def __contains__(self, pid: object) -> bool:
        return pid in self._recent or pid in self._map

    def __len__(self) -> int:
        return len(self._recent) + len(self._map)

    def __iter__(self) -> Iterator[int]:
        self._flush()
        return (pid for pid, _ in self._map.items())
