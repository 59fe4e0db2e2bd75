"""The ``freedompay-async`` command line: ``cancel``, ``sandbox`` and ``demo``.

``cancel`` reads payment ids (one per line, or a CSV column), cancels them with
:meth:`AsyncSession.cancel_many` and appends every outcome to a durable JSON Lines
journal (:mod:`freedompay_async._journal`). Rerunning with the same journal skips the
ids already settled and tries the rest again, so a crash, SIGKILL or Ctrl-C never
loses an id and never re-sends a cancel the journal already records as done.

Exit codes: 0 every input id is cancelled or already cancelled; 1 some id failed, is
unknown or pending (or was not reached); 2 usage or configuration error; 130
interrupted (SIGINT/SIGTERM), journal flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import secrets
import signal
import stat
import sys
import textwrap
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import attrs

from ._argtypes import positive_int
from ._batch import CancelOutcome, OutcomeState
from ._config import Credentials, GatewayURL
from ._exceptions import ConfigurationError, GatewayError
from ._input import InputError, Item, StreamSource, open_input, parser_for, read_regular
from ._journal import CREDENTIAL_ERRORS, Journal, JournalError, JournalState, outcome_record
from ._pacing import Pacing
from ._progress import Progress, make_progress
from ._retry import RetryPolicy
from ._session import AsyncSession
from ._transport import Limits

__all__ = [
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "BatchReport",
    "CancelJob",
    "build_parser",
    "main",
    "run_batch",
]

PROG = "freedompay-async"

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

PRESETS: dict[str, GatewayURL] = {
    "kz": GatewayURL.KZ,
    "kz-test": GatewayURL.KZ_TEST,
    "uz": GatewayURL.UZ,
    "uz-test": GatewayURL.UZ_TEST,
    "kg": GatewayURL.KG,
    "kg-test": GatewayURL.KG_TEST,
    "money": GatewayURL.MONEY,
    "money-test": GatewayURL.MONEY_TEST,
}

ENV_MERCHANT_ID = "FREEDOMPAY_MERCHANT_ID"
ENV_SECRET_KEY = "FREEDOMPAY_SECRET_KEY"  # noqa: S105 - the variable's name, not a key
ENV_BASE_URL = "FREEDOMPAY_BASE_URL"

_DEFAULT_RETRY = RetryPolicy()
_OK_STATES = frozenset({OutcomeState.CANCELLED.value, OutcomeState.ALREADY_CANCELLED.value})
_STATE_ORDER = [state.value for state in OutcomeState]
#: At most this many malformed input lines are reported one by one.
_MAX_LINE_REPORTS = 50
_TICK = 0.5

EXIT_CODES_TEXT = """\
exit codes:
  0    every input id is cancelled or already cancelled
  1    some id failed, is unknown or pending, or was not reached; a rerun with the
       same --journal retries all of them except final failures (such as
       "payment not found"), which it skips like the cancelled ones
  2    usage or configuration error (bad option, missing credentials, journal in use,
       or the gateway refused the credentials)
  130  interrupted (Ctrl-C / SIGTERM): the journal is flushed; rerun to resume
"""


class UsageError(Exception):
    """A problem with the command line, credentials or input: exit code 2."""


# -- the batch -----------------------------------------------------------------------------


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


@attrs.define
class BatchReport:
    """What one run did, and the state of every input id (this run's outcome, or the
    journal's for ids skipped as already settled)."""

    journal: str
    run: str
    journal_records: int = 0
    input_ids: int = 0
    duplicates: int = 0
    malformed: int = 0
    skipped: int = 0
    prior: collections.Counter[str] = attrs.field(factory=collections.Counter)
    outcomes: collections.Counter[str] = attrs.field(factory=collections.Counter)
    errors: collections.Counter[str] = attrs.field(factory=collections.Counter)
    unsettled: int = 0
    failed_for_good: int = 0
    attempts: int = 0
    confirmed_on_retry: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    aborted: str | None = None
    abort_code: int = EXIT_INCOMPLETE

    @property
    def sent(self) -> int:
        """How many ids this run tried (one outcome each)."""
        return sum(self.outcomes.values())

    @property
    def not_reached(self) -> int:
        """Input ids neither settled before nor tried by this run (interrupted/aborted)."""
        return max(0, self.input_ids - self.skipped - self.sent)

    @property
    def retry_later(self) -> int:
        """Input ids a rerun with the same journal would send again."""
        return self.unsettled + self.not_reached

    def states(self) -> collections.Counter[str]:
        """Current state of every input id reached so far, by state."""
        return self.prior + self.outcomes

    def record(self, outcome: CancelOutcome, *, final: bool) -> None:
        """Count one outcome of this run (``final``: as journaled)."""
        self.outcomes[outcome.state.value] += 1
        self.attempts += outcome.attempts
        self.unsettled += not final
        self.failed_for_good += final and outcome.state is OutcomeState.FAILED
        if outcome.error is not None and outcome.state.value not in _OK_STATES:
            self.errors[type(outcome.error).__name__] += 1
        if outcome.result is not None and outcome.result.confirmed_on_retry:
            self.confirmed_on_retry += 1

    @property
    def exit_code(self) -> int:
        """0, 1, 2 or 130: see the module docstring."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.aborted is not None:
            return self.abort_code
        if self.not_reached or any(s not in _OK_STATES for s in +self.states()):
            return EXIT_INCOMPLETE
        return EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (``--summary-json``)."""
        states = self.states()
        return {
            "run": self.run,
            "journal": self.journal,
            "journal_records_before": self.journal_records,
            "input_ids": self.input_ids,
            "duplicates": self.duplicates,
            "malformed_lines": self.malformed,
            "skipped_settled": self.skipped,
            "sent": self.sent,
            "attempts": self.attempts,
            "confirmed_on_retry": self.confirmed_on_retry,
            "states": {state: states[state] for state in _STATE_ORDER},
            "not_reached": self.not_reached,
            "retry_later": self.retry_later,
            "this_run": {state: self.outcomes[state] for state in _STATE_ORDER},
            "errors_this_run": dict(self.errors.most_common()),
            "elapsed": round(self.elapsed, 3),
            "rate": round(self.sent / self.elapsed, 1) if self.elapsed > 0 else None,
            "interrupted": self.interrupted,
            "aborted": self.aborted,
            "exit_code": self.exit_code,
        }

    def render(self) -> str:
        """The human summary printed at the end of a run."""
        rate = f", {self.sent / self.elapsed:.1f}/s" if self.elapsed > 0 and self.sent else ""
        input_notes = []
        if self.duplicates:
            input_notes.append(f"{_count(self.duplicates, 'duplicate id')} ignored")
        if self.malformed:
            input_notes.append(f"{_count(self.malformed, 'malformed line')} skipped")
        notes = f" ({', '.join(input_notes)})" if input_notes else ""
        confirmed = (
            f", {self.confirmed_on_retry} confirmed on retry" if self.confirmed_on_retry else ""
        )
        states = self.states()
        lines = [
            "summary:",
            f"  input       {self.input_ids} unique ids{notes}",
            f"  journal     {self.journal} ({self.journal_records} records before this run)",
            f"  skipped     {self.skipped} ids already settled in the journal",
            f"  this run    {self.sent} ids, {self.attempts} HTTP attempts, "
            f"{self.elapsed:.1f} s{rate}{confirmed}",
        ]
        if self.errors:
            shown = ", ".join(f"{name} {count}" for name, count in self.errors.most_common(6))
            lines.append(f"  errors      {shown}")
        lines.append("  state of every input id:")
        lines += [f"    {state:<18}{states[state]:>9}" for state in _STATE_ORDER]
        if self.not_reached:
            lines.append(f"    {'not reached':<18}{self.not_reached:>9}")
        if self.interrupted:
            lines.append("  interrupted: rerun with the same --journal to resume")
        elif self.aborted is not None:
            lines.append(f"  stopped: {self.aborted}")
        if self.retry_later and not self.interrupted:
            lines.append(
                f"  {_count(self.retry_later, 'id')} not settled (unknown, pending, transient "
                "failure or not reached):\n  rerun with the same --journal to retry them"
            )
        final_failures = self.prior[OutcomeState.FAILED.value] + self.failed_for_good
        if final_failures:
            lines.append(
                f"  {_count(final_failures, 'id')} failed for good (see error_type in the "
                "journal);\n  a rerun skips them"
            )
        lines.append(f"  exit code   {self.exit_code}")
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


class _Selector:
    """Turns parsed input into the ids to send: reports malformed lines, drops
    duplicates, and skips ids the journal already settled."""

    def __init__(self, state: JournalState, report: BatchReport, err: TextIO) -> None:
        self._state = state
        self._report = report
        self._err = err
        self._seen: set[int] = set()

    def take(self, item: Item) -> int | None:
        """The id to send for this input item, or None."""
        lineno, pid, raw = item
        report = self._report
        if pid is None:
            report.malformed += 1
            if report.malformed <= _MAX_LINE_REPORTS:
                print(
                    f"{PROG}: input line {lineno}: {raw} (skipped)",
                    file=self._err,
                )
            elif report.malformed == _MAX_LINE_REPORTS + 1:
                print(f"{PROG}: more malformed input lines are not shown", file=self._err)
            return None
        if pid in self._seen:
            report.duplicates += 1
            return None
        self._seen.add(pid)
        report.input_ids += 1
        if pid in self._state.settled:
            report.skipped += 1
            report.prior[self._state.last.get(pid, OutcomeState.CANCELLED.value)] += 1
            return None
        return pid

    def forget(self) -> None:
        """Drop the duplicate filter's memory."""
        self._seen = set()


class _Interrupt:
    """SIGINT/SIGTERM handling: the first signal cancels the run (which then flushes the
    journal and prints the summary); a second one exits at once."""

    def __init__(self, err: TextIO) -> None:
        self.requested = False
        self._err = err
        self._task: asyncio.Task[Any] | None = None
        self._journals: list[Journal] = []
        self._installed: list[signal.Signals] = []

    def install(self) -> None:
        """Take over SIGINT and SIGTERM for the current task."""
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                continue
            self._installed.append(sig)

    def uninstall(self) -> None:
        """Give the signals back."""
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed = []

    def watch(self, journal: Journal) -> None:
        """fsync ``journal`` if a second signal forces an immediate exit."""
        self._journals.append(journal)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.requested:
            print(f"{PROG}: {sig.name} again: exiting now", file=self._err, flush=True)
            for journal in self._journals:
                with contextlib.suppress(OSError, JournalError):
                    journal.sync()
            os._exit(EXIT_INTERRUPTED)
        self.requested = True
        print(
            f"{PROG}: {sig.name}: stopping; the journal is being flushed",
            file=self._err,
            flush=True,
        )
        if self._task is not None:
            self._task.cancel()

    def swallow(self) -> None:
        """Call in an ``except CancelledError`` block: re-raise unless we caused it."""
        task = asyncio.current_task()
        if not self.requested or task is None:
            raise asyncio.CancelledError
        task.uncancel()


async def _ticker(progress: Progress) -> None:
    while True:
        await asyncio.sleep(_TICK)
        progress.tick()


async def run_batch(
    job: CancelJob,
    *,
    interrupt: _Interrupt,
    err: TextIO = sys.stderr,
    label: str = "cancel",
) -> BatchReport:
    """Run one ``cancel`` job to completion, interruption or abort; never raises for a
    per-id failure. Raises :class:`JournalError` if the journal cannot be opened and
    :class:`InputError` for unusable input.
    """
    journal, state = Journal.open(job.journal)
    interrupt.watch(journal)
    report = BatchReport(journal=str(job.journal), run=secrets.token_hex(6))
    report.journal_records = state.records
    if state.repaired_tail:
        print(f"{PROG}: journal {job.journal}: {state.repaired_tail}", file=err)
    if state.bad_lines:
        shown = ", ".join(map(str, state.bad_lines[:10]))
        print(
            f"{PROG}: journal {job.journal}: {len(state.bad_lines)} unreadable lines ignored "
            f"(lines {shown}{', ...' if len(state.bad_lines) > 10 else ''})",
            file=err,
        )
    start = time.monotonic()
    selector = _Selector(state, report, err)
    parse = parser_for(job.csv_column)
    streamed: AsyncGenerator[int, None] | None = None
    source: StreamSource | None = None
    try:
        fd, regular = open_input(job.input_path, sys.stdin.fileno() if sys.stdin else 0)
        if os.isatty(fd):
            print(f"{PROG}: reading payment ids from the terminal; end with Ctrl-D", file=err)
        ids: list[int] | AsyncIterator[int]
        total: int | None
        if regular:
            # A regular file: read and count it first, so the total (and ETA) is known.
            ids = [pid for item in read_regular(fd, parse) if (pid := selector.take(item))]
            selector.forget()
            total = len(ids)
        else:
            source = reader = StreamSource(fd, parse)

            async def stream() -> AsyncGenerator[int, None]:
                async for item in reader.items():
                    pid = selector.take(item)
                    if pid is not None:
                        yield pid

            ids = streamed = stream()
            total = None
        progress = make_progress(job.progress, total, err, label=label)
        journal.start()
        ticker = asyncio.create_task(_ticker(progress))
        try:
            await _drive(job, ids, journal, report, progress, err)
        except asyncio.CancelledError:
            interrupt.swallow()
            report.interrupted = True
        except JournalError as exc:
            report.aborted = str(exc)
            print(f"{PROG}: {exc}", file=err)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            progress.close()
    except asyncio.CancelledError:
        interrupt.swallow()
        report.interrupted = True
    finally:
        if streamed is not None:
            await streamed.aclose()
        if source is not None:
            source.close()  # stops the reader thread
        report.elapsed = time.monotonic() - start
        await journal.aclose()
    if job.summary_json is not None:
        _write_summary_json(job.summary_json, report, err)
    return report


async def _drive(
    job: CancelJob,
    ids: list[int] | AsyncIterator[int],
    journal: Journal,
    report: BatchReport,
    progress: Progress,
    err: TextIO,
) -> None:
    session = AsyncSession(
        job.credentials,
        base_url=job.base_url,
        retry=job.retry,
        pacing=job.pacing,
        limits=Limits(max_connections=job.concurrency),
    )
    async with session as fp:
        outcomes = fp.cancel_many(ids, concurrency=job.concurrency)
        try:
            async for outcome in outcomes:
                if outcome.payment_id is None:  # pragma: no cover - ids are validated
                    continue
                record = outcome_record(outcome, run=report.run)
                journal.append(record)
                report.record(outcome, final=record["final"])
                progress.advance(outcome.state.value)
                error = outcome.error
                if isinstance(error, GatewayError) and isinstance(error, CREDENTIAL_ERRORS):
                    report.aborted = (
                        f"the gateway refused the credentials ({type(error).__name__}, "
                        f"code {error.code}): check the merchant id and secret key"
                    )
                    report.abort_code = EXIT_USAGE
                    print(f"{PROG}: {report.aborted}; stopping", file=err)
                    return
        finally:
            # Stops the workers (cancel_many is an async generator) and waits for them.
            aclose = getattr(outcomes, "aclose", None)
            if aclose is not None:
                await aclose()


def _write_summary_json(path: Path, report: BatchReport, err: TextIO) -> None:
    data = json.dumps(report.as_dict(), indent=2) + "\n"
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(data, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        print(f"{PROG}: cannot write summary {str(path)!r}: {exc.strerror}", file=err)


# -- configuration from the command line and the environment ---------------------------------


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
    preset = PRESETS.get(value.strip().lower())
    if preset is not None:
        return preset
    try:
        return GatewayURL(value)
    except ConfigurationError as exc:
        raise UsageError(f"{exc}; or use a preset: {', '.join(PRESETS)}") from None


def _job_from_args(
    args: argparse.Namespace, environ: os._Environ[str] | dict[str, str]
) -> CancelJob:
    base = args.base_url or environ.get(ENV_BASE_URL)
    if not base:
        raise UsageError(
            f"no gateway: pass --base-url (a URL or one of {', '.join(PRESETS)}) "
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
    )


# -- subcommands ---------------------------------------------------------------------------


async def _cancel_main(job: CancelJob, out: TextIO, err: TextIO) -> int:
    interrupt = _Interrupt(err)
    interrupt.install()
    try:
        report = await run_batch(job, interrupt=interrupt, err=err)
    except (JournalError, InputError) as exc:
        print(f"{PROG} cancel: error: {exc}", file=err)
        return EXIT_USAGE
    except asyncio.CancelledError:
        interrupt.swallow()
        return EXIT_INTERRUPTED
    finally:
        interrupt.uninstall()
    print(report.render(), file=out, flush=True)
    return report.exit_code


def _cmd_cancel(args: argparse.Namespace) -> int:
    try:
        job = _job_from_args(args, os.environ)
    except UsageError as exc:
        print(f"{PROG} cancel: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return asyncio.run(_cancel_main(job, sys.stdout, sys.stderr))
    except asyncio.CancelledError:  # a signal in the last instant, after the summary
        return EXIT_INTERRUPTED


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from . import sandbox

    try:
        asyncio.run(sandbox.run_from_args(args))
    except KeyboardInterrupt:
        return EXIT_OK
    except OSError as exc:
        print(
            f"{PROG} sandbox: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    try:
        return asyncio.run(run_demo(args, sys.stdout, sys.stderr))
    except asyncio.CancelledError:
        return EXIT_INTERRUPTED


# -- argument parsing ----------------------------------------------------------------------


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that never echoes the values of unrecognised arguments (they might hold
    a secret someone tried to pass on the command line)."""

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            names = [extra.split("=", 1)[0] for extra in extras if extra.startswith("-")]
            shown = " ".join(names) if names else "(values not shown)"
            self.error(f"unrecognized arguments: {shown}")
        return parsed


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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _add_cancel_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("input")
    src.add_argument(
        "--input",
        "-i",
        metavar="PATH",
        default=None,
        help="file of payment ids, one per line ('#' comments and blank lines ignored); "
        "'-' or absent: standard input. Malformed lines are reported with their line "
        "number and skipped; duplicate ids are cancelled once",
    )
    src.add_argument(
        "--csv-column",
        metavar="NAME",
        default=None,
        help="read the input as CSV with a header row and take ids from column NAME",
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
        "--summary-json", metavar="PATH", default=None, help="also write the summary as JSON"
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
        help=f"gateway URL or preset ({', '.join(PRESETS)}); default ${ENV_BASE_URL}",
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
        type=_positive_float,
        default=None,
        metavar="N",
        help="at most N HTTP attempts per second, retries included (default: no pacing)",
    )
    pace.add_argument(
        "--min-interval",
        type=_positive_float,
        default=None,
        metavar="S",
        help="at least S seconds between HTTP attempts (Freedom Pay advises 1.5-2)",
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
        type=_positive_float,
        default=_DEFAULT_RETRY.attempt_timeout,
        metavar="S",
        help=f"seconds one attempt may take (default {_DEFAULT_RETRY.attempt_timeout:g})",
    )
    flow.add_argument(
        "--deadline",
        type=_positive_float,
        default=_DEFAULT_RETRY.deadline,
        metavar="S",
        help=f"seconds one id may take, retries and backoff included "
        f"(default {_DEFAULT_RETRY.deadline:g})",
    )


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--n", type=positive_int, default=10_000, metavar="N", help="held payments (10000)"
    )
    parser.add_argument(
        "--concurrency", "-c", type=positive_int, default=50, metavar="N", help="(default 50)"
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.05,
        metavar="P",
        help="probability of a fault on each request, all kinds (default 0.05)",
    )
    parser.add_argument("--seed", type=int, default=1, help="fault plan seed (default 1)")
    parser.add_argument(
        "--progress",
        choices=("auto", "bar", "plain", "none"),
        default="auto",
        help="progress display on stderr (default auto)",
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        default=None,
        help="write the ids file, journal and summary into DIR and keep them "
        "(default: a temporary directory, removed at the end)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``freedompay-async`` argument parser."""
    from . import __version__

    parser = _ArgumentParser(
        prog=PROG,
        description="Freedom Pay gateway tools: batch cancels with a durable journal, a "
        "local sandbox gateway, and a self-contained demo.",
        epilog=f"Start with '{PROG} demo'. Run '{PROG} COMMAND --help' for a command's options.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    cancel = commands.add_parser(
        "cancel",
        help="cancel (void) held payments listed in a file, with a resumable journal",
        description=textwrap.fill(
            "Cancel held two-step payments through /g2g/cancel, journaling every outcome "
            "durably. Safe to interrupt or kill and rerun with the same --journal: settled "
            "ids are skipped, the rest are tried again, and no id is lost.",
            78,
        ),
        epilog=EXIT_CODES_TEXT
        + f"\nexample:\n  export {ENV_MERCHANT_ID}=123456 {ENV_SECRET_KEY}=...\n"
        f"  {PROG} cancel --base-url kz --input ids.txt --journal cancel.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    _add_cancel_arguments(cancel)
    cancel.set_defaults(handler=_cmd_cancel)

    sandbox = commands.add_parser(
        "sandbox",
        help="run a local sandbox gateway (ledger, fault injection)",
        description="Serve a local Freedom Pay /g2g/cancel sandbox until Ctrl-C or SIGTERM. "
        "It prints its URL, merchant id and (throwaway) secret key.",
        allow_abbrev=False,
    )
    from .sandbox import add_arguments as add_sandbox_arguments

    add_sandbox_arguments(sandbox)
    sandbox.set_defaults(handler=_cmd_sandbox)

    demo = commands.add_parser(
        "demo",
        help="cancel 10,000 payments against an in-process faulty sandbox and check them",
        description="Start the sandbox in-process with random faults (resets, 503, 429, 9999, "
        "garbage, slow and forged replies), hold N payments, cancel them with the same "
        "code path as 'cancel' (journal included, in a temporary directory), rerun on the "
        "same journal for any id left unsettled, and check the journal against the "
        "sandbox ledger.",
        epilog="exit codes: 0 check passed, 1 check failed, 130 interrupted",
        allow_abbrev=False,
    )
    _add_demo_arguments(demo)
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``freedompay-async`` / ``python -m freedompay_async``; returns the
    exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:  # pragma: no cover - a signal outside our handlers
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # pragma: no cover - e.g. piped into head
        with contextlib.suppress(OSError):
            sys.stderr.close()
        return EXIT_INCOMPLETE
