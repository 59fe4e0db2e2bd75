"""The ``status`` command: one JSON line per payment id on stdout, read through
``/g2g/status_v2``; progress and a summary on stderr, no journal (it changes nothing)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncGenerator, Iterator
from decimal import Decimal
from typing import Any, TextIO

from .._argtypes import positive_float, positive_int
from .._config import Limits
from .._exceptions import FreedomPayError, GatewayError, ReplyError
from .._layers.retry import RetryPolicy
from .._operations.status import StatusResult
from .._session.session import AsyncSession
from ._input import InputError, Item, StreamSource, open_input, parser_for, read_regular
from ._options import (
    ENV_BASE_URL,
    ENV_MERCHANT_ID,
    ENV_SECRET_KEY,
    UsageError,
    _credentials,
    _RefuseSecret,
    gateway_url,
)
from ._progress import make_progress
from ._report import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_RERUN, EXIT_USAGE, PROG

__all__ = ["add_status_arguments", "cmd_status", "status_record"]

_DEFAULT_RETRY = RetryPolicy()


def _text(value: object) -> object:
    return str(value) if isinstance(value, Decimal) else value


def status_record(
    payment_id: int, result: StatusResult | None, error: FreedomPayError | None
) -> dict[str, Any]:
    """The JSON line for one id: the status value's fields (amounts as strings, the
    derived ``state``), or the error. Holds no card data (the value never keeps any)."""
    if result is not None:
        return {
            "payment_id": payment_id,
            "state": result.state.value,
            "payment_status": result.payment_status_raw,
            "amount": _text(result.amount),
            "clearing_amount": _text(result.clearing_amount),
            "refund_amount": _text(result.refund_amount),
            "currency": result.currency,
            "captured": result.captured,
            "payment_date": result.payment_date,
            "order_id": result.order_id,
            "revoked_payments": [r.payment_id for r in result.revoked_payments],
            "refund_payments": [
                {
                    "payment_id": r.payment_id,
                    "status": r.payment_status_raw,
                    "amount": _text(r.amount),
                }
                for r in result.refund_payments
            ],
            "attempts": result.attempts,
        }
    assert error is not None
    return {
        "payment_id": payment_id,
        "state": "error",
        "error_type": type(error).__name__,
        "error_code": error.code if isinstance(error, GatewayError) else None,
        "error_description": error.description
        if isinstance(error, GatewayError)
        else error.message,
        "http_status": error.http_status if isinstance(error, ReplyError) else None,
        "attempts": error.attempts,
    }


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``status`` options (input, gateway and credentials as for ``cancel``)."""
    parser.add_argument(
        "--input",
        "-i",
        metavar="PATH",
        default=None,
        help="file of payment ids, one per line; '-' or absent: standard input",
    )
    parser.add_argument(
        "--csv-column",
        metavar="NAME",
        default=None,
        help="read the input as CSV and take ids from column NAME",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL|PRESET",
        default=None,
        help=f"gateway URL or preset; default ${ENV_BASE_URL}",
    )
    parser.add_argument(
        "--merchant-id", metavar="ID", default=None, help=f"default ${ENV_MERCHANT_ID}"
    )
    parser.add_argument(
        "--secret-key-file",
        metavar="PATH",
        default=None,
        help=f"file holding the secret key; default ${ENV_SECRET_KEY} (never a value on "
        "the command line)",
    )
    parser.add_argument("--secret-key", action=_RefuseSecret, nargs="?", help=argparse.SUPPRESS)
    parser.add_argument(
        "--concurrency",
        "-c",
        type=positive_int,
        default=20,
        metavar="N",
        help="queries in flight at once (default 20)",
    )
    parser.add_argument(
        "--attempts",
        type=positive_int,
        default=_DEFAULT_RETRY.attempts,
        metavar="N",
        help="HTTP attempts per id (default %(default)s)",
    )
    parser.add_argument(
        "--attempt-timeout",
        type=positive_float,
        default=_DEFAULT_RETRY.attempt_timeout,
        metavar="S",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "bar", "plain", "none"),
        default="auto",
        help="progress on stderr (default auto)",
    )


async def _ids(args: argparse.Namespace, err: TextIO, bad: list[int]) -> AsyncGenerator[int, None]:
    parse = parser_for(args.csv_column)
    fd, regular = open_input(args.input, sys.stdin.fileno() if sys.stdin else 0)
    seen: set[int] = set()

    def keep(item: Item) -> int | None:
        lineno, pid, raw = item
        if pid is None:
            bad.append(lineno)
            if len(bad) <= 50:
                print(f"{PROG}: input line {lineno}: {raw} (skipped)", file=err)
            return None
        if pid in seen:
            return None
        seen.add(pid)
        return pid

    if regular:
        items: Iterator[Item] = read_regular(fd, parse)
        for item in items:
            if (pid := keep(item)) is not None:
                yield pid
        return
    source = StreamSource(fd, parse)
    try:
        async for item in source.items():
            if (pid := keep(item)) is not None:
                yield pid
    finally:
        source.close()


async def run_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Query every id of the input; returns the exit status: 0 every id answered, 1 some
    refused for good (not found), 3 some could not be answered now (ask again)."""
    base = args.base_url or os.environ.get(ENV_BASE_URL)
    if not base:
        raise UsageError(f"no gateway: pass --base-url or set {ENV_BASE_URL}")
    url = gateway_url(base)
    credentials = _credentials(args, os.environ)
    retry = RetryPolicy(attempts=args.attempts, attempt_timeout=args.attempt_timeout)
    counts: collections.Counter[str] = collections.Counter()
    bad: list[int] = []
    progress = make_progress(args.progress, None, err, label="status")
    start = time.monotonic()
    ids = _ids(args, err, bad)
    lock = asyncio.Lock()
    async with AsyncSession(
        credentials, base_url=url, retry=retry, limits=Limits(max_connections=args.concurrency)
    ) as fp:

        async def worker() -> None:
            while True:
                async with lock:
                    pid = await anext(ids, None)
                if pid is None:
                    return
                result: StatusResult | None = None
                error: FreedomPayError | None = None
                try:
                    result = await fp.status(pid)
                except FreedomPayError as exc:
                    error = exc
                record = status_record(pid, result, error)
                counts[record["state"]] += 1
                if error is not None and not _final(error):
                    counts["_rerun"] += 1
                print(json.dumps(record, ensure_ascii=False), file=out, flush=True)
                progress.advance(record["state"])

        try:
            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        finally:
            progress.close()
            await ids.aclose()
    rerun = counts.pop("_rerun", 0)
    shown = ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "no ids"
    print(
        f"{PROG} status: {sum(counts.values())} ids in {time.monotonic() - start:.1f}s: {shown}"
        + (f"; {len(bad)} malformed input lines skipped" if bad else ""),
        file=err,
    )
    if rerun:
        return EXIT_RERUN
    return EXIT_FAILED if counts.get("error") else EXIT_OK


def _final(error: FreedomPayError) -> bool:
    """Whether asking again could not change the answer: a gateway refusal that is not
    transient (the documented 11068 comes unsigned, and is final here: a status query
    changes nothing, so believing it risks nothing)."""
    return isinstance(error, GatewayError) and not error.retryable


def cmd_status(args: argparse.Namespace) -> int:
    """The ``status`` subcommand's handler."""
    try:
        return asyncio.run(run_status(args, sys.stdout, sys.stderr))
    except UsageError as exc:
        print(f"{PROG} status: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InputError as exc:
        print(f"{PROG} status: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, asyncio.CancelledError):
        with contextlib.suppress(OSError):
            sys.stderr.flush()
        return EXIT_INTERRUPTED
