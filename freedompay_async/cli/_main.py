"""The ``freedompay-async`` parser and dispatch: ``cancel``, ``sandbox``, ``demo``, ``journal``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import TextIO

from .._argtypes import positive_int, probability
from ._input import InputError
from ._journal import JournalError
from ._loop import event_loop_factory
from ._options import (
    ENV_MERCHANT_ID,
    ENV_SECRET_KEY,
    CancelJob,
    UsageError,
    add_cancel_arguments,
    configure_logging,
    job_from_args,
)
from ._report import EXIT_CODES_TEXT, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, PROG
from ._run import run_batch
from ._signals import Interrupt

__all__ = ["build_parser", "main"]


async def _cancel_main(job: CancelJob, out: TextIO, err: TextIO) -> int:
    interrupt = Interrupt(err, grace=job.grace)
    interrupt.install()
    try:
        report = await run_batch(job, interrupt=interrupt, err=err)
    except (JournalError, InputError, UsageError) as exc:
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
        job = job_from_args(args, os.environ)
    except UsageError as exc:
        print(f"{PROG} cancel: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(args.log_level)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(_cancel_main(job, sys.stdout, sys.stderr))
    except asyncio.CancelledError:  # a signal in the last instant, after the summary
        return EXIT_INTERRUPTED


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from .. import sandbox

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
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(run_demo(args, sys.stdout, sys.stderr))
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


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--n", type=positive_int, default=10_000, metavar="N", help="held payments (10000)"
    )
    parser.add_argument(
        "--concurrency", "-c", type=positive_int, default=50, metavar="N", help="(default 50)"
    )
    parser.add_argument(
        "--fault-rate",
        type=probability,
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
    from .._version import __version__

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
    add_cancel_arguments(cancel)
    cancel.set_defaults(handler=_cmd_cancel)

    sandbox = commands.add_parser(
        "sandbox",
        help="run a local sandbox gateway (ledger, fault injection)",
        description="Serve a local Freedom Pay /g2g/cancel sandbox until Ctrl-C or SIGTERM. "
        "It prints its URL, merchant id and (throwaway) secret key.",
        allow_abbrev=False,
    )
    from ..sandbox import add_arguments as add_sandbox_arguments

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

    from ._journal_tool import add_journal_arguments

    journal = commands.add_parser(
        "journal",
        help="read a cancel journal: 'show' it as JSON Lines or print a JSON 'summary'",
        description="Read a cancel journal (any format version) for people and tools.",
        allow_abbrev=False,
    )
    add_journal_arguments(journal)
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
