"""``freedompay-async journal summary PATH [PATH ...]``: one JSON object about one
journal, or about the journals of several shards read as one.

One journal: its header, record and id counts (a money journal's: row counts), the
last state of every id by state,
how many a rerun would skip (``settled``) or send again (``retry``), and any damage.
Several (the journals of one run's shards, say): the same counts over the union of
their ids (an id settled in any of them is settled), the shards found and missing,
ids found in more than one journal, and each journal's own counts. A file that is not
a journal of this tool, or journals of different gateways, merchants or operations,
are refused with exit 2.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs

from ._exit import EXIT_OK, EXIT_USAGE, PROG
from ._header import JournalHeader
from ._idset import IdMap
from ._journal import JournalState, read_state
from ._shard import shard_spec
from ._states import FINAL, INTENT, MONEY_STATES, code_of, state_counts, states_of

__all__ = ["journal_summary"]

_FAILED_FOR_GOOD = code_of("failed", final=True)
_MERGE_BATCH = 1 << 16


class SummaryError(Exception):
    """A journal that cannot be summarised (exit 2)."""


@attrs.frozen
class _Read:
    path: Path
    state: JournalState
    size: int


def _read(path: Path) -> _Read:
    try:
        with path.open("rb") as stream:
            state, _ = read_state(stream)
            size = stream.tell()
    except OSError as exc:
        raise SummaryError(f"cannot read {str(path)!r}: {exc.strerror}") from exc
    if state.header_error is not None:
        raise SummaryError(f"{str(path)!r}: {state.header_error} (damaged?)")
    empty = state.header is None and not state.records and not state.torn_header
    if state.foreign is not None or empty:
        why = state.foreign or "no header and no journal record"
        raise SummaryError(f"{str(path)!r} is not a journal of this tool ({why})")
    return _Read(path, state, size)


def _header_dict(header: JournalHeader | None) -> dict[str, Any] | None:
    if header is None:
        return None
    out: dict[str, Any] = {
        "version": header.version,
        "operation": header.operation,
        "base_url": header.base_url,
        "merchant_id": header.merchant_id,
        "started": header.started,
    }
    if header.shard is not None:
        out["shard"] = header.shard
    return out


def _listed_states(header: JournalHeader | None) -> tuple[str, ...]:
    """The states a summary lists: the operation's (a money journal's intents too)."""
    states = states_of(header.operation if header is not None else None)
    return (*states, INTENT) if states == MONEY_STATES else states


def _counts(ids: IdMap, header: JournalHeader | None) -> dict[str, Any]:
    counts = state_counts(ids, _listed_states(header))
    final = counts.pop("final")
    total = sum(counts.values())
    return {
        "ids": total,
        "states": counts,
        "settled": final,
        "failed_for_good": ids.counts()[_FAILED_FOR_GOOD],
        "retry": total - final,
    }


def _one(read: _Read) -> dict[str, Any]:
    state = read.state
    return {
        "journal": str(read.path),
        "header": _header_dict(state.header),
        "records": state.records,
        **_counts(state.ids, state.header),
        "unreadable_lines": state.bad_count,
        "first_unreadable_lines": state.bad_lines[:10],
        "torn_tail": state.repaired_tail,
        "bytes": read.size,
        "bytes_per_record": round(read.size / state.records, 1) if state.records else None,
    }


def _merge(union: IdMap, ids: IdMap) -> None:
    batch: list[int] = []
    codes = bytearray()
    for pid, code in ids.items():
        batch.append(pid)
        codes.append(code)
        if len(batch) >= _MERGE_BATCH:
            union.update(batch, codes)
            batch, codes = [], bytearray()
    union.update(batch, codes)


def _common_header(reads: Sequence[_Read]) -> JournalHeader | None:
    headers = [read.state.header for read in reads if read.state.header is not None]
    for header in headers[1:]:
        differences = [d for d in headers[0].differs_from(header) if not d.startswith("shard")]
        if differences:
            raise SummaryError(
                "these journals belong to different gateways, merchants or operations and "
                f"cannot be read as one: {'; '.join(differences)}"
            )
    return headers[0] if headers else None


def _shard_count(text: str) -> int | None:
    try:
        return shard_spec(text).count
    except argparse.ArgumentTypeError:
        return None


def _shards(reads: Sequence[_Read]) -> dict[str, Any]:
    """The shards the journals were started for and, when every journal names one of
    the same N, the shards of that N none of them holds."""
    shards = [read.state.header.shard if read.state.header else None for read in reads]
    named = sorted({shard for shard in shards if shard is not None})
    counts = {_shard_count(shard) for shard in named}
    missing: list[str] = []
    if len(counts) == 1 and None not in counts and len(named) == len(shards):
        count = counts.pop() or 0
        missing = [f"{k}/{count}" for k in range(count) if f"{k}/{count}" not in named]
    return {"shards": named, "missing_shards": missing}


def _many(reads: Sequence[_Read]) -> dict[str, Any]:
    header = _common_header(reads)
    union = IdMap(sticky=FINAL)
    for read in reads:
        _merge(union, read.state.ids)
    union.freeze()
    each = [_one(read) for read in reads]
    merged = _counts(union, header)
    common = _header_dict(header)
    if common is not None:
        common.pop("shard", None)
        common.pop("started", None)
    return {
        "journals": [str(read.path) for read in reads],
        "header": common,
        **_shards(reads),
        "records": sum(read.state.records for read in reads),
        **merged,
        "ids_in_several_journals": sum(one["ids"] for one in each) - merged["ids"],
        "unreadable_lines": sum(read.state.bad_count for read in reads),
        "torn_tails": [one["journal"] for one in each if one["torn_tail"]],
        "bytes": sum(read.size for read in reads),
        "per_journal": [
            {key: one[key] for key in ("journal", "records", "ids", "settled", "retry")}
            | {"shard": (one["header"] or {}).get("shard")}
            for one in each
        ],
    }


def journal_summary(paths: Sequence[Path], out: TextIO, err: TextIO) -> int:
    """Print the summary of one journal, or of several read as one, as a JSON object."""
    try:
        reads = [_read(path) for path in paths]
        summary = _one(reads[0]) if len(reads) == 1 else _many(reads)
    except SummaryError as exc:
        print(f"{PROG} journal: {exc}", file=err)
        return EXIT_USAGE
    out.write(json.dumps(summary, indent=2) + "\n")
    return EXIT_OK
