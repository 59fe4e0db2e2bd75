"""A batch command's options (declared in :mod:`._args`) read, with the environment and
a key file, into one :class:`BatchJob` value."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import stat
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

import attrs

from .._config import Credentials, GatewayURL, merchant_id_of
from .._exceptions import ConfigurationError
from .._layers.pacing import Pacing
from .._layers.retry import RetryPolicy
from .._layers.spacing import DEFAULT_PAYMENT_INTERVAL
from .._operations.families import Api
from .._settling.policy import SettlePolicy
from ._exit import PROG
from ._shard import Shard

__all__ = [
    "ENV_BASE_URL",
    "ENV_MERCHANT_ID",
    "ENV_SECRET_KEY",
    "BatchJob",
    "CancelJob",
    "UsageError",
    "credentials_from",
    "gateway_url",
    "job_from_args",
    "library_log",
    "settle_policy",
]

ENV_MERCHANT_ID = "FREEDOMPAY_MERCHANT_ID"
ENV_SECRET_KEY = "FREEDOMPAY_SECRET_KEY"  # noqa: S105 - the variable's name, not a key
ENV_BASE_URL = "FREEDOMPAY_BASE_URL"

_DEFAULT_RETRY = RetryPolicy()


class UsageError(Exception):
    """A problem with the command line, credentials or input: exit code 2."""


def _api(value: object) -> Api:
    return Api.of(value)


@attrs.frozen
class BatchJob:
    """Everything one batch run needs (built from the command line, or by ``demo``).

    ``operation`` is the command (``cancel``, ``status``, ``clear``, ``refund``);
    ``journal`` is None for an operation that keeps none. ``shard`` keeps only the ids of one shard
    (:class:`~._shard.Shard`); ``dry_run`` sends nothing but one status query that
    checks the credentials.
    """

    credentials: Credentials
    base_url: GatewayURL
    journal: Path | None
    input_path: str | None = None  # None or "-": standard input
    #: The descriptor standard input is read from.
    stdin: int = 0
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
    operation: str = "cancel"
    shard: Shard | None = None
    dry_run: bool = False
    #: Seconds between two plain progress lines.
    progress_interval: float = 2.0
    #: How an attempt whose outcome is open is settled by status (the settle window).
    settle: SettlePolicy = attrs.field(factory=SettlePolicy)
    #: The API family the session speaks (``gateway`` or ``merchant``).
    api: Api = attrs.field(default=Api.GATEWAY, converter=_api)


#: The name this value had when ``cancel`` was the only batch command.
CancelJob = BatchJob


_LOG_LEVELS = ("debug", "info", "warning", "error")


@contextlib.contextmanager
def library_log(level: str | None, err: TextIO) -> Iterator[None]:
    """Show the library's own log lines (the ``freedompay_async`` logger) on ``err``
    at ``level`` for the duration of the block; nothing when ``level`` is None."""
    if level is None:
        yield
        return
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    library = logging.getLogger("freedompay_async")
    before = library.level
    library.addHandler(handler)
    library.setLevel(level.upper())
    try:
        yield
    finally:
        library.removeHandler(handler)
        library.setLevel(before)


def _delimiter(text: str) -> str:
    value = {"tab": "\t", "\\t": "\t", "semicolon": ";", "comma": ","}.get(text, text)
    if len(value) != 1 or value in '\r\n"':
        raise UsageError(f"--csv-delimiter takes one character (or 'tab'), got {text!r}")
    return value


@attrs.frozen
class _Environment:
    """What a batch command reads from the environment, the key out of its ``repr``."""

    base_url: str | None
    merchant_id: str | None
    secret_key: str = attrs.field(repr=False)

    @classmethod
    def of(cls, environ: Mapping[str, str]) -> _Environment:
        return cls(
            environ.get(ENV_BASE_URL),
            environ.get(ENV_MERCHANT_ID),
            environ.get(ENV_SECRET_KEY, "").strip(),
        )


def credentials_from(
    args: argparse.Namespace, environ: Mapping[str, str], *, err: TextIO | None = None
) -> Credentials:
    """The merchant id and secret key: options first, then the environment. A key
    file that other users can read is warned about on ``err`` (default: stderr).

    Everything that can be refused is checked before the key is read or apart from
    it, and no frame on the way holds the environment itself, so that no frame of a
    raised :class:`UsageError` holds the key."""
    env = _Environment.of(environ)
    del environ
    return _credentials(args, env, sys.stderr if err is None else err)


def _credentials(args: argparse.Namespace, env: _Environment, err: TextIO) -> Credentials:
    merchant = _merchant_from(args.merchant_id or env.merchant_id)
    if args.secret_key_file is not None:
        return Credentials(merchant, _secret_from_file(args.secret_key_file, err))
    if not env.secret_key:
        raise UsageError(
            f"no secret key: set {ENV_SECRET_KEY} or pass --secret-key-file PATH "
            "(the key itself is never accepted on the command line)"
        )
    return Credentials(merchant, env.secret_key)


def _merchant_from(merchant: str | None) -> int:
    if not merchant:
        raise UsageError(f"no merchant id: pass --merchant-id or set {ENV_MERCHANT_ID}")
    try:
        return merchant_id_of(merchant)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


def _secret_from_file(path: str, err: TextIO) -> str:
    """The key in ``path``, or UsageError (raised only while no key is a local here)."""
    read = _read_key_file(path)
    if isinstance(read, str):
        # The path is not echoed: someone may have passed the key itself by mistake.
        raise UsageError(f"cannot read the file given to --secret-key-file: {read}")
    secret, mode = read
    if not secret:
        raise UsageError("the file given to --secret-key-file is empty")
    if stat.S_ISREG(mode) and mode & 0o077:
        print(
            f"{PROG}: warning: the secret key file is readable by other users "
            f"(mode {stat.S_IMODE(mode):04o}); consider chmod 600",
            file=err,
        )
    return secret


def _read_key_file(path: str) -> tuple[str, int] | str:
    """The file's stripped text and mode, or why it cannot be read. The reason is
    returned, not raised from here: a decoding error holds the file's bytes, and would
    ride along as the context of the caller's UsageError."""
    try:
        with open(path, encoding="utf-8") as stream:
            return stream.read().strip(), os.fstat(stream.fileno()).st_mode
    except OSError as exc:
        return exc.strerror or "cannot be opened"
    except UnicodeDecodeError:
        return "not UTF-8 text"


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


def _retry_and_pacing(args: argparse.Namespace) -> tuple[RetryPolicy, Pacing | None]:
    try:
        retry = RetryPolicy(
            attempts=args.attempts, attempt_timeout=args.attempt_timeout, deadline=args.deadline
        )
        pacing = None
        if args.rate is not None:
            pacing = Pacing.per_second(args.rate)
        elif args.min_interval is not None:
            pacing = Pacing(args.min_interval)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    return retry, pacing


def settle_policy(window: float | None = None, poll: float | None = None) -> SettlePolicy:
    """The settle window of ``--settle-window`` and ``--settle-poll`` (None: the
    library's default). The waits between status queries grow from ``poll`` up to a
    quarter of the window (at most the default's longest wait, never below ``poll``),
    so that a short window still gets several readings."""
    default = SettlePolicy()
    window = default.window if window is None else window
    poll = default.poll_initial if poll is None else poll
    try:
        return SettlePolicy(
            window=window, poll_initial=poll, poll_max=max(poll, min(default.poll_max, window / 4))
        )
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None


def _settle(args: argparse.Namespace) -> SettlePolicy:
    return settle_policy(getattr(args, "settle_window", None), getattr(args, "settle_poll", None))


def _optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None


def job_from_args(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    *,
    stdin: int = 0,
    err: TextIO | None = None,
) -> BatchJob:
    """The job a batch command's parsed options describe, reading standard input (when
    the input is) from descriptor ``stdin`` and warning on ``err`` (default: stderr);
    :class:`UsageError` if they cannot make one (no frame on the way holds the
    environment, and so the key)."""
    env = _Environment.of(environ)
    del environ
    base = args.base_url or env.base_url
    if not base:
        raise UsageError(
            f"no gateway: pass --base-url (a URL or one of {', '.join(GatewayURL.presets())}) "
            f"or set {ENV_BASE_URL}"
        )
    url = gateway_url(base)
    credentials = _credentials(args, env, sys.stderr if err is None else err)
    column: str | None = getattr(args, "csv_column", None)
    if column is not None and not column.strip():
        raise UsageError("--csv-column needs a column name")
    retry, pacing = _retry_and_pacing(args)
    delimiter = _delimiter(args.csv_delimiter)
    if args.csv_delimiter != "," and column is None and hasattr(args, "csv_column"):
        raise UsageError("--csv-delimiter needs --csv-column")
    return BatchJob(
        credentials=credentials,
        base_url=url,
        journal=_optional_path(getattr(args, "journal", None)),
        input_path=args.input,
        stdin=stdin,
        csv_column=column.strip() if column else None,
        concurrency=args.concurrency,
        retry=retry,
        pacing=pacing,
        progress=args.progress,
        summary_json=_optional_path(args.summary_json),
        reconcile=not getattr(args, "no_reconcile", False),
        payment_interval=args.payment_interval,
        csv_delimiter=delimiter,
        fail_fast_after=args.fail_fast_after,
        grace=args.grace,
        unsettled_out=_optional_path(args.unsettled_out),
        start_over=getattr(args, "start_over", False),
        allow_malformed=args.allow_malformed,
        operation=args.command,
        shard=args.shard,
        dry_run=args.dry_run,
        progress_interval=args.progress_interval,
        settle=_settle(args),
        api=args.api,
    )
