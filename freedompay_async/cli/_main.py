"""The ``freedompay-async`` parser and dispatch: ``cancel``, ``status``, ``clear``,
``refund``, ``sandbox``, ``demo``, ``journal``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from .._argtypes import positive_int, probability
from ._args import add_batch_arguments
from ._exit import EXIT_CODES_TEXT, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, PROG
from ._input import InputError
from ._journal import JournalError
from ._loop import event_loop_factory
from ._options import (
    ENV_MERCHANT_ID,
    ENV_SECRET_KEY,
    BatchJob,
    UsageError,
    job_from_args,
    library_log,
)
from ._run import run_batch
from ._signals import Interrupt
from ._stdio import Stdio, open_standard_descriptors

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

__all__ = ["build_parser", "main", "run_command"]


async def _batch_main(job: BatchJob, out: TextIO, err: TextIO) -> int:
    interrupt = Interrupt(err, grace=job.grace)
    interrupt.install()
    try:
        report = await run_batch(job, interrupt=interrupt, err=err, out=out)
    except (JournalError, InputError, UsageError) as exc:
        print(f"{PROG} {job.operation}: error: {exc}", file=err)
        return EXIT_USAGE
    except asyncio.CancelledError:
        interrupt.swallow()
        return EXIT_INTERRUPTED
    finally:
        interrupt.uninstall()
    # The summary goes to stdout unless stdout carries the run's own lines.
    summary = err if job.dry_run or job.operation == "status" else out
    print(report.render(), file=summary, flush=True)
    return report.exit_code


def _cmd_batch(args: argparse.Namespace, stdio: Stdio) -> int:
    try:
        job = job_from_args(args, stdio.environ, stdin=stdio.stdin, err=stdio.err)
    except UsageError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=stdio.err)
        return EXIT_USAGE
    try:
        with (
            library_log(args.log_level, stdio.err),
            asyncio.Runner(loop_factory=event_loop_factory()) as runner,
        ):
            return runner.run(_batch_main(job, stdio.out, stdio.err))
    except asyncio.CancelledError:  # a signal in the last instant, after the summary
        return EXIT_INTERRUPTED


def _cmd_sandbox(args: argparse.Namespace, stdio: Stdio) -> int:
    from .. import sandbox

    try:
        asyncio.run(sandbox.run_from_args(args, out=stdio.out))
    except KeyboardInterrupt:
        return EXIT_OK
    except OSError as exc:
        print(
            f"{PROG} sandbox: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}",
            file=stdio.err,
        )
        return EXIT_INCOMPLETE
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace, stdio: Stdio) -> int:
    from ._demo import run_demo

    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(run_demo(args, stdio.out, stdio.err))
    except asyncio.CancelledError:
        return EXIT_INTERRUPTED


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that never echoes the values of unrecognised arguments (they might hold
    a secret someone tried to pass on the command line), and prints its help, usage and
    errors on the command's own streams (``stdio``) rather than on ``sys.stdout`` and
    ``sys.stderr`` as they are."""

    def __init__(self, *args: object, stdio: Stdio | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.stdio = stdio

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        # argparse names the stream it means as sys.stdout or sys.stderr; the command's
        # own stand in for them.
        if self.stdio is not None and message:
            file = self.stdio.out if file is sys.stdout else self.stdio.err
        super()._print_message(message, file)

    def add_subparsers(self, **kwargs: Any) -> Any:
        # A subcommand's parser prints on the same streams as its parent.
        kwargs.setdefault("parser_class", functools.partial(type(self), stdio=self.stdio))
        return super().add_subparsers(**kwargs)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            names = [extra.split("=", 1)[0] for extra in extras if extra.startswith("-")]
            shown = " ".join(names) if names else "(values not shown)"
            self.error(f"unrecognized arguments: {shown}")
        return parsed


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--n", type=positive_int, default=10_000, metavar="N", help="held payments (10000)")
    add("--concurrency", "-c", type=positive_int, default=50, metavar="N", help="(default 50)")
    add(
        "--fault-rate",
        type=probability,
        default=0.05,
        metavar="P",
        help="probability of a fault on each request, all kinds (default 0.05)",
    )
    add("--seed", type=int, default=1, help="fault plan seed (default 1)")
    add(
        "--progress",
        choices=("auto", "bar", "plain", "none"),
        default="auto",
        help="progress display on stderr (default auto)",
    )
    add(
        "--keep",
        metavar="DIR",
        default=None,
        help="write the ids file, journal and summary into DIR and keep them "
        "(default: a temporary directory, removed at the end)",
    )


def _add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    from ..sandbox import add_arguments

    add_arguments(parser)


def _add_journal_arguments(parser: argparse.ArgumentParser) -> None:
    from ._journal_tool import add_journal_arguments

    add_journal_arguments(parser)


@attrs.frozen
class _Command:
    """One subcommand: its texts, its options and its handler."""

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace, Stdio], int] | None
    epilog: str | None = None


def _batch(name: str) -> Callable[[argparse.ArgumentParser], None]:
    return lambda parser: add_batch_arguments(parser, name)


_STATUS_EXIT_CODES = """\
exit codes:
  0    every input id was answered, and every input line was an id
  1    some ids were refused for good (such as "payment not found"), or input
       lines were malformed (see --allow-malformed)
  2    usage or environment error: bad option or input, no ids in the input,
       missing credentials, the gateway refused the credentials, or the gateway
       is plainly wrong (--fail-fast-after)
  3    some ids could not be answered now: ask again
  130  interrupted (Ctrl-C / SIGTERM / SIGHUP): the replies in flight were waited
       for (--grace) and printed
"""
_MONEY_EXIT_CODES = """\
exit codes:
  0    every row is done (cleared or refunded, now or confirmed by status) or was
       already done, and every input row was a movement
  1    some rows could not be done for good, and a rerun will not change that: the
       gateway refused them, or status shows they cannot happen; or input rows were
       malformed (skipped; fix them, or pass --allow-malformed)
  2    usage or environment error: bad option or input, no rows, missing
       credentials, journal in use or of another gateway/merchant/operation/shard,
       journal not writable, the gateway refused the credentials, or the gateway is
       plainly wrong (--fail-fast-after)
  3    some rows remain to rerun: their outcome is unknown (the rerun settles them
       by status before anything is sent again), they were held back behind an
       unsettled movement of their payment, failed transiently or were not reached:
       rerun with the same --journal
  130  interrupted (Ctrl-C / SIGTERM / SIGHUP): the replies in flight were waited
       for (--grace) and journaled; rerun with the same --journal to resume
"""
_EXAMPLE = f"\nexample:\n  export {ENV_MERCHANT_ID}=123456 {ENV_SECRET_KEY}=...\n  {PROG} "
_COMMANDS = (
    _Command(
        "cancel",
        "cancel (void) held payments listed in a file, with a resumable journal",
        "Cancel held two-step payments through /g2g/cancel, journaling every outcome "
        "durably. Safe to interrupt or kill and rerun with the same --journal: settled ids "
        "are skipped, the rest are tried again, and no id is lost.",
        _batch("cancel"),
        _cmd_batch,
        EXIT_CODES_TEXT + _EXAMPLE + "cancel --base-url kz --input ids.txt --journal cancel.jsonl",
    ),
    _Command(
        "status",
        "read the status of payments listed in a file (one JSON line per id)",
        "Ask /g2g/status_v2 about every id of the input and write one JSON line per id on "
        "stdout (the status value, or the error). Changes nothing; no journal. Progress and "
        "the summary go to stderr.",
        _batch("status"),
        _cmd_batch,
        _STATUS_EXIT_CODES + _EXAMPLE + "status --base-url kz --input ids.txt > statuses.jsonl",
    ),
    _Command(
        "clear",
        "clear (capture) held payments listed in a CSV, each row at most once",
        "Clear held two-step payments through /g2g/clearing, one row of the CSV per "
        "clearing (columns payment_id and, optionally, amount: empty clears the whole "
        "hold). Each row's intent is journaled and fsynced before it is sent; a rerun "
        "with the same --journal settles by status what an earlier run may have sent, "
        "and never clears a row twice.",
        _batch("clear"),
        _cmd_batch,
        _MONEY_EXIT_CODES + _EXAMPLE + "clear --base-url kz --input day.csv --journal clear.jsonl",
    ),
    _Command(
        "refund",
        "refund payments listed in a CSV, each row at most once",
        "Refund one-step or cleared payments through /g2g/refund, one row of the CSV per "
        "refund (columns payment_id, amount and, optionally, currency). Each row's intent "
        "and the payment's refunds before it (its baseline) are journaled and fsynced "
        "before it is sent; a rerun with the same --journal settles by status what an "
        "earlier run may have sent, and never refunds a row twice.",
        _batch("refund"),
        _cmd_batch,
        _MONEY_EXIT_CODES
        + _EXAMPLE
        + "refund --base-url kz --input returns.csv --journal refund.jsonl",
    ),
    _Command(
        "sandbox",
        "run a local sandbox gateway (ledger, fault injection)",
        "Serve a local Freedom Pay Gateway API sandbox (/g2g/cancel, status_v2, clearing, "
        "refund) until Ctrl-C or SIGTERM. It prints its URL, merchant id and (throwaway) "
        "secret key.",
        _add_sandbox_arguments,
        _cmd_sandbox,
    ),
    _Command(
        "demo",
        "cancel 10,000 payments against an in-process faulty sandbox and check them",
        "Start the sandbox in-process with random faults (resets, 503, 429, 9999, garbage, "
        "slow and forged replies), hold N payments, cancel them with the same code path as "
        "'cancel' (journal included, in a temporary directory), rerun on the same journal "
        "for any id left unsettled, and check the journal against the sandbox ledger.",
        _add_demo_arguments,
        _cmd_demo,
        "exit codes: 0 check passed, 1 check failed, 130 interrupted",
    ),
    _Command(
        "journal",
        "read journals: 'show' one as JSON Lines, or a JSON 'summary' of one or several",
        "Read journals (any format version) for people and tools; the journals of the "
        "shards of one run are read as one.",
        _add_journal_arguments,
        None,
    ),
)


def build_parser(stdio: Stdio | None = None) -> argparse.ArgumentParser:
    """The ``freedompay-async`` argument parser; it prints its help and errors on
    ``stdio``'s streams (default: ``sys.stdout`` and ``sys.stderr``)."""
    from .._version import __version__

    parser = _ArgumentParser(
        stdio=stdio,
        prog=PROG,
        description="Freedom Pay gateway tools: batch cancels, status queries, clearings "
        "and refunds with fail-fast, journals and shards, a local sandbox gateway, and a "
        "self-contained demo.",
        epilog=f"Start with '{PROG} demo'. Run '{PROG} COMMAND --help' for a command's options.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS:
        sub = commands.add_parser(
            command.name,
            help=command.help,
            description=textwrap.fill(command.description, 78),
            epilog=command.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        command.add_arguments(sub)
        if command.handler is not None:
            sub.set_defaults(handler=command.handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``freedompay-async`` / ``python -m freedompay_async``; returns the
    exit status."""
    open_standard_descriptors()
    return run_command(argv, Stdio.of_process())


def run_command(argv: Sequence[str] | None, stdio: Stdio) -> int:
    """Run one command line on ``stdio``'s streams and environment; returns the exit
    status. Off the main thread a run installs no signal handlers."""
    parser = build_parser(stdio)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Callable[[argparse.Namespace, Stdio], int] = args.handler
    try:
        return handler(args, stdio)
    except KeyboardInterrupt:  # pragma: no cover - a signal outside our handlers
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # pragma: no cover - e.g. piped into head
        with contextlib.suppress(OSError):
            stdio.err.close()
        return EXIT_INCOMPLETE
