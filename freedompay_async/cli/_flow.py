"""The flow of ids through a run: the gate that stops handing them out, and the
``--unsettled-out`` file of ids still to settle."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import TextIO

from ._options import UsageError

__all__ = ["Gate", "UnsettledOut", "check_output_path", "same_file"]


class Gate:
    """Hands ids to ``cancel_many`` until stopped; knows which ids are in flight."""

    def __init__(self) -> None:
        self.stopped: str | None = None
        self.in_flight: set[int] = set()
        self.pulled = 0
        self.exhausted = False

    def stop(self, why: str) -> None:
        """Hand out no more ids (the first reason is kept)."""
        if self.stopped is None:
            self.stopped = why

    def done(self, pid: int) -> None:
        """``pid`` has its outcome."""
        self.in_flight.discard(pid)

    def over(self, ids: Iterable[int]) -> Iterator[int]:
        """``ids`` until stopped."""
        for pid in ids:
            if self.stopped is not None:
                return
            self.pulled += 1
            self.in_flight.add(pid)
            yield pid
        self.exhausted = True

    async def over_stream(self, ids: AsyncIterator[int]) -> AsyncGenerator[int, None]:
        """``ids`` until stopped."""
        async for pid in ids:
            if self.stopped is not None:
                return
            self.pulled += 1
            self.in_flight.add(pid)
            yield pid
        self.exhausted = True


class UnsettledOut:
    """``--unsettled-out``: ids still to settle, streamed to PATH.tmp, renamed at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._tmp = path.with_name(path.name + ".tmp")
        self._stream: TextIO | None = self._tmp.open("w", encoding="ascii")

    def add(self, pid: int) -> None:
        """List ``pid``."""
        if self._stream is not None:
            self._stream.write(f"{pid}\n")
            self.count += 1

    def close(self) -> None:
        """Finish the file and move it into place."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
            self._tmp.replace(self.path)


def check_output_path(option: str, path: Path | None) -> None:
    """Refuse an output path that cannot be written, before anything happens."""
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a directory")
    if not parent.is_dir():
        raise UsageError(f"{option} {str(path)!r}: no such directory {str(parent)!r}")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{option} {str(path)!r} is not writable")


def same_file(path: Path | None, identity: tuple[int, int]) -> bool:
    """Whether ``path`` names the file whose (device, inode) is ``identity``."""
    if path is None:
        return False
    try:
        info = path.stat()
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == identity
