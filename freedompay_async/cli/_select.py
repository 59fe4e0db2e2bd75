"""Choosing the ids to send: malformed lines reported, other shards' ids left to them,
duplicates dropped, ids the journal settled skipped."""

from __future__ import annotations

from ._console import Console
from ._fileids import FileIds
from ._flow import UnsettledOut
from ._idset import IdSet
from ._input import Item
from ._journal import JournalState
from ._report import BatchReport
from ._shard import Shard
from ._states import FINAL, SETTLED, state_of_code

__all__ = ["Selector"]

#: At most this many malformed input lines are reported one by one.
MAX_LINE_REPORTS = 50


class Selector:
    """Turns parsed input into the ids to send, counting into ``report``. Its memory is
    a few bytes per unique id (:mod:`._idset`), not a Python object."""

    def __init__(self, report: BatchReport, console: Console, shard: Shard | None = None) -> None:
        self._report = report
        self._console = console
        self.shard = shard
        self._seen = IdSet()
        self.first_bad: str | None = None
        self.first_id: int | None = None
        self.unsettled: UnsettledOut | None = None

    def valid(self, item: Item) -> int | None:
        """The id of this input item, or None (a malformed line, reported)."""
        lineno, pid, raw = item
        report = self._report
        if pid is None:
            report.malformed += 1
            if self.first_bad is None:
                self.first_bad = f"line {lineno}: {raw}"
            if report.malformed <= MAX_LINE_REPORTS:
                self._console.say(f"input line {lineno}: {raw} (skipped)")
            elif report.malformed == MAX_LINE_REPORTS + 1:
                self._console.say("more malformed input lines are not shown")
        return pid

    def take(self, item: Item) -> int | None:
        """The unique id of this shard in this input item, or None."""
        pid = self.valid(item)
        if pid is None:
            return None
        report = self._report
        if self.shard is not None and not self.shard.holds(pid):
            report.other_shard_ids += 1
            return None
        if not self._seen.add(pid):
            report.duplicates += 1
            return None
        report.input_ids += 1
        if self.first_id is None:
            self.first_id = pid
        return pid

    def fresh(self, pid: int, state: JournalState) -> bool:
        """Whether ``pid`` is to be sent (False: the journal settled it already)."""
        last = state.settled_state(pid)
        if last is None:
            return True
        report = self._report
        report.skipped += 1
        report.prior[last] += 1
        if self.unsettled is not None and last not in SETTLED:
            self.unsettled.add(pid)
        return False

    def fresh_file(self, files: FileIds, state: JournalState) -> int:
        """Skip the file's ids the journal settled (bulk :meth:`fresh`); how many remain."""
        report = self._report
        for code, count in files.select(state.ids).items():
            if code & FINAL:
                report.skipped += count
                report.prior[state_of_code(code)] += count
        if self.unsettled is not None and report.skipped:
            for pid in files.skipped_unsettled():
                self.unsettled.add(pid)
        return report.input_ids - report.skipped
