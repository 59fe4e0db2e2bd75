"""``--shard K/N``: one input split across N machines, the same way on every one of them.

The shard of a payment id is a hash of the id, the same on every machine and every
Python version (not Python's ``hash()``, which is salted per process for text and
differs between builds): the first 8 bytes of the SHA-256 digest of the id written in
decimal ASCII digits, read as a big-endian unsigned integer, modulo N::

    shard = int.from_bytes(hashlib.sha256(b"700000042").digest()[:8], "big") % N

so ``printf 700000042 | sha256sum`` gives the same digest anywhere. Shard K keeps the
ids whose shard is K (0 <= K < N). Every id falls in exactly one shard, whatever the
order of the input, and a rerun of shard K finds the same ids.
"""

from __future__ import annotations

import argparse
import hashlib

import attrs

__all__ = ["Shard", "shard_of", "shard_spec"]

#: At most this many shards (a bound, so a typo cannot ask for billions).
MAX_SHARDS = 100_000


def shard_of(payment_id: int, count: int) -> int:
    """The shard (0 .. count-1) of ``payment_id`` among ``count`` shards."""
    digest = hashlib.sha256(str(payment_id).encode("ascii")).digest()
    return int.from_bytes(digest[:8], "big") % count


@attrs.frozen
class Shard:
    """Shard ``index`` of ``count`` (``str()`` gives ``K/N``)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, payment_id: int) -> bool:
        """Whether ``payment_id`` belongs to this shard."""
        return shard_of(payment_id, self.count) == self.index

    def keep(self, ids: list[int]) -> list[int]:
        """The ids of ``ids`` that belong to this shard, in order."""
        count, index = self.count, self.index
        sha = hashlib.sha256
        return [
            pid
            for pid in ids
            if int.from_bytes(sha(str(pid).encode("ascii")).digest()[:8], "big") % count == index
        ]


def shard_spec(text: str) -> Shard:
    """``K/N`` for argparse: 0 <= K < N <= 100000."""
    index, slash, count = text.strip().partition("/")
    if not slash or not _digits(index) or not _digits(count):
        raise argparse.ArgumentTypeError(f"expected K/N (such as 0/4), got {text!r}")
    shard = Shard(int(index), int(count))
    if not 0 < shard.count <= MAX_SHARDS or shard.index >= shard.count:
        raise argparse.ArgumentTypeError(
            f"{text!r}: K/N needs 0 <= K < N <= {MAX_SHARDS} (shards are numbered from 0)"
        )
    return shard


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 6
