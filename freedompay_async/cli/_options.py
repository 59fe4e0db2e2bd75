"""The ``cancel`` options: declared on a parser, and read (with the environment and a
key file) into one :class:`CancelJob` value."""

from __future__ import annotations

import argparse
import os
import stat
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import attrs

from .._argtypes import non_negative_int, positive_float, positive_int
from .._config import Credentials, GatewayURL
from .._exceptions import ConfigurationError
from .._layers.pacing import Pacing
from .._layers.retry import RetryPolicy
from .._layers.spacing import DEFAULT_PAYMENT_INTERVAL
from ._report import PROG

__all__ = [
    "ENV_BASE_URL",
    "ENV_MERCHANT_ID",
    "ENV_SECRET_KEY",
    "CancelJob",
    "UsageError",
    "add_cancel_arguments",
    "configure_logging",
    "gateway_url",
    "job_from_args",
]

ENV_MERCHANT_ID = "FREEDOMPAY_MERCHANT_ID"
ENV_SECRET_KEY = "FREEDOMPAY_SECRET_KEY"  # noqa: S105 - the variable's name, not a key
ENV_BASE_URL = "FREEDOMPAY_BASE_URL"

_DEFAULT_RETRY = RetryPolicy()


class UsageError(Exception):
    """A problem with the command line, credentials or input: exit code 2."""


@attrs.frozen
class CancelJob:
    """Everything one ``cancel`` run needs (built from the command line, or by ``demo``)."""

    credentials: Credentials
    base_url: GatewayURL
    journal: Path
    input_path: str | None = None  # None or "-": standard input
    csv_column: str | None = None
    concurrency: int = 20
    retry: RetryPolicy = _DEFAULT_RETRY
    pacing: Pacing | None = None
    progress: str = "auto"
    summary_json: Path | None = None
    reconcile: bool = True
    payment_interval: float = DEFAULT_PAYMENT_INTERVAL
    csv_delimiter: str = ","
    #: Consecutive attempts failing without a gateway answer that stop the run (0: never).
    fail_fast_after: int = 20
    #: Seconds a first signal waits for the replies in flight.
    grace: float = 10.0
    unsettled_out: Path | None = None
    #: Move a journal of another gateway or merchant aside and start a new one.
    start_over: bool = False
    #: Malformed input lines do not stop the run from exiting 0.
    allow_malformed: bool = False


_LOG_LEVELS = ("debug", "info", "warning", "error")


def configure_logging(level: str | None) -> None:
    """Show the library's own log lines (the ``freedompay_async`` logger) on stderr."""
    if level is None:
        return
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    library = logging.getLogger("freedompay_async")
    library.addHandler(handler)
    library.setLevel(level.upper())


def _delimiter(text: str) -> str:
    value = {"tab": "\t", "\\t": "\t", "semicolon": ";", "comma": ","}.get(text, text)
    if len(value) != 1 or value in '\r\n"':
        raise UsageError(f"--csv-delimiter takes one character (or 'tab'), got {text!r}")
    return value


def _credentials(
    args: argparse.Namespace, environ: os._Environ[str] | dict[str, str]
) -> Credentials:
    merchant = args.merchant_id or environ.get(ENV_MERCHANT_ID)
    if not merchant:
        raise UsageError(f"no merchant id: pass --merchant-id or set {ENV_MERCHANT_ID}")
    if args.secret_key_file is not None:
        try:
            with open(args.secret_key_file, encoding="utf-8") as stream:
                secret = stream.read().strip()
                mode = os.fstat(stream.fileno()).st_mode
        except (OSError, UnicodeDecodeError) as exc:
            # The path is not echoed: someone may have passed the key itself by mistake.
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise UsageError(f"cannot read the file given to --secret-key-file: {reason}") from None
        if not secret:
            raise UsageError("the file given to --secret-key-file is empty")
        if stat.S_ISREG(mode) and mode & 0o077:
            print(
                f"{PROG}: warning: the secret key file is readable by other users "
                f"(mode {stat.S_IMODE(mode):04o}); consider chmod 600",
                file=sys.stderr,
            )
    else:
        secret = environ.get(ENV_SECRET_KEY, "").strip()
        if not secret:
            raise UsageError(
                f"no secret key: set {ENV_SECRET_KEY} or pass --secret-key-file PATH "
                "(the key itself is never accepted on the command line)"
            )
    try:
        return Credentials(merchant, secret)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


def gateway_url(value: str) -> GatewayURL:
    """A preset name (kz, kz-test, uz, ...) or an http(s) URL."""
    presets = GatewayURL.presets()
    preset = presets.get(value.strip().lower())
    if preset is not None:
        return preset
    try:
        return GatewayURL(value)
    except ConfigurationError as exc:
        raise UsageError(f"{exc}; or use a preset: {', '.join(presets)}") from None


def job_from_args(
    args: argparse.Namespace, environ: os._Environ[str] | dict[str, str]
) -> CancelJob:
    base = args.base_url or environ.get(ENV_BASE_URL)
    if not base:
        raise UsageError(
            f"no gateway: pass --base-url (a URL or one of {', '.join(GatewayURL.presets())}) "
            f"or set {ENV_BASE_URL}"
        )
    url = gateway_url(base)
    credentials = _credentials(args, environ)
    if args.csv_column is not None and not args.csv_column.strip():
        raise UsageError("--csv-column needs a column name")
    try:
        retry = RetryPolicy(
            attempts=args.attempts,
            attempt_timeout=args.attempt_timeout,
            deadline=args.deadline,
        )
        pacing = None
        if args.rate is not None:
            pacing = Pacing.per_second(args.rate)
        elif args.min_interval is not None:
            pacing = Pacing(args.min_interval)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    delimiter = _delimiter(args.csv_delimiter)
    if args.csv_delimiter != "," and args.csv_column is None:
        raise UsageError("--csv-delimiter needs --csv-column")
    return CancelJob(
        credentials=credentials,
        base_url=url,
        journal=Path(args.journal),
        input_path=args.input,
        csv_column=args.csv_column.strip() if args.csv_column else None,
        concurrency=args.concurrency,
        retry=retry,
        pacing=pacing,
        progress=args.progress,
        summary_json=Path(args.summary_json) if args.summary_json else None,
        reconcile=not getattr(args, "no_reconcile", False),
        payment_interval=getattr(args, "payment_interval", DEFAULT_PAYMENT_INTERVAL),
        csv_delimiter=delimiter,
        fail_fast_after=args.fail_fast_after,
        grace=args.grace,
        unsettled_out=Path(args.unsettled_out) if args.unsettled_out else None,
        start_over=args.start_over,
        allow_malformed=args.allow_malformed,
    )


class _RefuseSecret(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> NoReturn:
        parser.error(
            f"{option_string} is not accepted: a key on the command line leaks into shell "
            f"history and the process list; set {ENV_SECRET_KEY} or use --secret-key-file PATH"
        )


def add_cancel_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("input")
    src.add_argument(
        "--input",
        "-i",
        metavar="PATH",
        default=None,
        help="file of payment ids, one per line ('#' comments, also after an id, and "
        "blank lines ignored; UTF-8, or UTF-16 with a byte-order mark); '-' or absent: "
        "standard input. Malformed lines are reported with their line number and "
        "skipped, and make the run exit 1 (see --allow-malformed); duplicate ids are "
        "cancelled once; an input without any id is an error",
    )
    src.add_argument(
        "--allow-malformed",
        action="store_true",
        help="malformed input lines are still reported and counted, but do not keep a "
        "run whose every id is cancelled from exiting 0",
    )
    src.add_argument(
        "--csv-column",
        metavar="NAME",
        default=None,
        help="read the input as CSV with a header row and take ids from column NAME",
    )
    src.add_argument(
        "--csv-delimiter",
        metavar="C",
        default=",",
        help="the CSV field separator: one character, or 'tab' (default ',')",
    )
    jr = parser.add_argument_group("journal and output")
    jr.add_argument(
        "--journal",
        "-j",
        metavar="PATH",
        required=True,
        help="JSON Lines journal, one line per outcome, fsynced at least every second. "
        "Rerunning with the same journal skips ids already settled (cancelled, already "
        "cancelled, or a final failure such as 'payment not found') and retries the "
        "rest (unknown, pending, transient failures, ids never reached)",
    )
    jr.add_argument(
        "--start-over",
        action="store_true",
        help="if the journal belongs to another gateway or merchant, move it aside to "
        "PATH.<time>.old and start a new one (without this, such a journal is refused "
        "with exit 2); a journal of this gateway and merchant is resumed as usual",
    )
    jr.add_argument(
        "--summary-json", metavar="PATH", default=None, help="also write the summary as JSON"
    )
    jr.add_argument(
        "--unsettled-out",
        metavar="PATH",
        default=None,
        help="write the input ids not settled at the end (one per line) to PATH",
    )
    jr.add_argument(
        "--log-level",
        choices=_LOG_LEVELS,
        default=None,
        help="show the library's log lines at this level on stderr ('info': retries, "
        "'debug': every attempt); default: none",
    )
    jr.add_argument(
        "--progress",
        choices=("auto", "bar", "plain", "none"),
        default="auto",
        help="progress on stderr: 'auto' (a tqdm bar on a terminal if tqdm is installed, "
        "else a plain line every 2 s), 'bar', 'plain' or 'none' (default auto)",
    )
    gw = parser.add_argument_group(
        "gateway and credentials",
        textwrap.fill(
            f"The secret key comes from ${ENV_SECRET_KEY} or --secret-key-file, never from "
            "a command-line value (--secret-key is refused: it would leak into shell "
            "history and the process list). It is never printed or journaled.",
            76,
        ),
    )
    gw.add_argument(
        "--base-url",
        metavar="URL|PRESET",
        default=None,
        help=f"gateway URL or preset ({', '.join(GatewayURL.presets())}); default ${ENV_BASE_URL}",
    )
    gw.add_argument(
        "--merchant-id",
        metavar="ID",
        default=None,
        help=f"merchant id; default ${ENV_MERCHANT_ID}",
    )
    gw.add_argument(
        "--secret-key-file",
        metavar="PATH",
        default=None,
        help=f"file holding the secret key (surrounding whitespace ignored); "
        f"default ${ENV_SECRET_KEY}",
    )
    gw.add_argument(
        "--secret-key",
        action=_RefuseSecret,
        nargs="?",
        help=argparse.SUPPRESS,
    )
    flow = parser.add_argument_group("concurrency, pacing and retry")
    flow.add_argument(
        "--concurrency",
        "-c",
        type=positive_int,
        default=20,
        metavar="N",
        help="cancels in flight at once (default 20)",
    )
    pace = flow.add_mutually_exclusive_group()
    pace.add_argument(
        "--rate",
        type=positive_float,
        default=None,
        metavar="N",
        help="at most N HTTP attempts per second, retries included (default: no pacing)",
    )
    pace.add_argument(
        "--min-interval",
        type=positive_float,
        default=None,
        metavar="S",
        help="at least S seconds between HTTP attempts (Freedom Pay advises 1.5-2)",
    )
    flow.add_argument(
        "--payment-interval",
        type=positive_float,
        default=DEFAULT_PAYMENT_INTERVAL,
        metavar="S",
        help="at least S seconds between requests about the same payment, retries and "
        f"status queries included (default {DEFAULT_PAYMENT_INTERVAL:g}, as Freedom Pay "
        "advises); other payments are not slowed",
    )
    flow.add_argument(
        "--no-reconcile",
        action="store_true",
        help="do not settle ambiguous cancels by asking /g2g/status_v2 (default: ask; "
        "revoked counts as cancelled, still held is cancelled again, not found fails)",
    )
    flow.add_argument(
        "--attempts",
        type=positive_int,
        default=_DEFAULT_RETRY.attempts,
        metavar="N",
        help=f"HTTP attempts per id, the first included (default {_DEFAULT_RETRY.attempts})",
    )
    flow.add_argument(
        "--attempt-timeout",
        type=positive_float,
        default=_DEFAULT_RETRY.attempt_timeout,
        metavar="S",
        help=f"seconds one attempt may take (default {_DEFAULT_RETRY.attempt_timeout:g})",
    )
    flow.add_argument(
        "--deadline",
        type=positive_float,
        default=_DEFAULT_RETRY.deadline,
        metavar="S",
        help=f"seconds one id may take, retries and backoff included "
        f"(default {_DEFAULT_RETRY.deadline:g})",
    )
    flow.add_argument(
        "--fail-fast-after",
        type=non_negative_int,
        default=20,
        metavar="N",
        help="stop (exit 2) after N consecutive HTTP attempts fail without a gateway "
        "answer: refused connection, DNS, TLS, timeout, HTTP 404/405/5xx, a body that "
        "is not gateway XML, a reply that fails verification (default 20; 0: never)",
    )
    flow.add_argument(
        "--grace",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="on a first Ctrl-C/SIGTERM/SIGHUP, seconds to wait for the replies in "
        "flight before abandoning them (default 10); a second signal abandons them at once",
    )
