"""``freedompay-async journal show PATH`` and ``journal summary PATH [PATH ...]``:
journals as JSON, for other tools.

``show`` prints every line as one JSON object per line (JSON Lines): the header as it
is, every record in its verbose form (every known key, long names, defaults filled
in; keys outside the table kept), whatever the journal's format. ``summary`` prints
one JSON object about one journal or several read as one (:mod:`._journal_summary`).

Both only read: no lock is taken, so a journal in use by a running ``cancel`` can be
inspected (its last line may then be incomplete and is reported, not repaired).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from ._codec import decode_record
from ._exit import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, PROG
from ._journal_summary import journal_summary
from ._scan import iter_records
from ._states import record_code
from ._stdio import Stdio

__all__ = ["add_journal_arguments", "journal_show", "journal_summary"]


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _payment(record: dict[str, Any]) -> object:
    """A record's payment id, either shape (a money record is keyed by its row)."""
    return record.get("payment_id", record.get("p"))


def journal_show(path: Path, ids: set[int] | None, out: TextIO, err: TextIO) -> int:
    """Print the journal as verbose JSON Lines; 1 if some lines were unreadable."""
    bad = 0
    try:
        stream = path.open("rb")
    except OSError as exc:
        print(f"{PROG} journal: cannot open {str(path)!r}: {exc.strerror}", file=err)
        return EXIT_USAGE
    with stream:
        for lineno, record, raw in iter_records(stream):
            pair = record_code(record) if record is not None else None
            if pair is None and (record is None or not (lineno == 1 and "journal" in record)):
                bad += 1
                shown = "torn last line" if not raw.endswith(b"\n") else "unreadable line"
                print(f"{PROG} journal: line {lineno}: {shown} skipped", file=err)
                continue
            assert record is not None
            if ids is not None and (pair is None or _payment(record) not in ids):
                continue
            out.write(_dump(decode_record(record)) + "\n")
    return EXIT_INCOMPLETE if bad else EXIT_OK


def _cmd_show(args: argparse.Namespace, stdio: Stdio) -> int:
    ids = set(args.id) if args.id else None
    return journal_show(Path(args.path), ids, stdio.out, stdio.err)


def _cmd_summary(args: argparse.Namespace, stdio: Stdio) -> int:
    return journal_summary([Path(path) for path in args.paths], stdio.out, stdio.err)


def add_journal_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``show`` and ``summary`` subcommands of ``journal``."""
    from .._argtypes import positive_int

    commands = parser.add_subparsers(dest="journal_command", metavar="COMMAND", required=True)
    show = commands.add_parser(
        "show",
        help="print every line as verbose JSON (JSON Lines), whatever the format",
        description="Print the journal's header and records as JSON Lines, records in "
        "their verbose form (long key names, defaults filled in). Exit 1 if some lines "
        "were unreadable (they are reported on stderr and skipped).",
        allow_abbrev=False,
    )
    show.add_argument("path", metavar="PATH", help="the journal file")
    show.add_argument(
        "--id",
        type=positive_int,
        action="append",
        metavar="PAYMENT_ID",
        help="only the records of this payment id (repeatable)",
    )
    show.set_defaults(handler=_cmd_show)
    summary = commands.add_parser(
        "summary",
        help="print one JSON object: header, counts by last state, settled, damage",
        description="Read the journal (streaming, compact memory) and print one JSON "
        "object: its header, records, ids, the last state of every id by state, how "
        "many ids a rerun skips (settled) or retries, and unreadable lines. Given several "
        "journals (one per shard), read them as one: the counts over all their ids, the "
        "shards found and missing, and each journal's own counts. Exit 2 for a file that "
        "is not a journal of this tool, or journals of different gateways or operations.",
        allow_abbrev=False,
    )
    summary.add_argument("paths", metavar="PATH", nargs="+", help="the journal files")
    summary.set_defaults(handler=_cmd_summary)
