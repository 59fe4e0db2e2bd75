"""``python -m freedompay_async.sandbox``: run the sandbox gateway until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

from .._argtypes import non_negative_float, positive_int, probability
from ._faults import Fault, FaultPlan
from ._gateway import DEFAULT_STATUS_LAG, SandboxGateway

__all__ = ["add_arguments", "gateway_from_args", "main", "run_from_args"]


def _payments(text: str) -> range:
    start, sep, count = text.partition(":")
    try:
        first, number = int(start), int(count)
    except ValueError:
        first = number = -1
    if not sep or first < 1 or number < 0:
        raise argparse.ArgumentTypeError(f"expected START:COUNT (START >= 1), got {text!r}")
    return range(first, first + number)


def _fault_kinds(text: str) -> tuple[Fault, ...]:
    try:
        return tuple(Fault.parse(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _key(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("the secret key must not be empty")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox options to ``parser`` (also used by ``freedompay-async sandbox``)."""
    parser.add_argument("--port", type=int, required=True, help="TCP port (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--merchant-id", type=positive_int, default=1000, help="merchant id (1000)")
    parser.add_argument(
        "--secret-key", type=_key, default=None, help="secret key (default: a random throwaway key)"
    )
    parser.add_argument(
        "--payments",
        type=_payments,
        default=range(0),
        metavar="START:COUNT",
        help="hold COUNT payments with ids START, START+1, ...",
    )
    parser.add_argument(
        "--auto-hold", action="store_true", help="treat any unknown payment id as held"
    )
    parser.add_argument(
        "--status-lag",
        type=non_negative_float,
        default=DEFAULT_STATUS_LAG,
        metavar="SECONDS",
        help="seconds before status_v2 shows a clearing or a refund "
        f"({DEFAULT_STATUS_LAG:g}; 0: at once)",
    )
    _add_fault_arguments(parser)


def _add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fault-rate", type=probability, default=0.0, help="probability of a random fault (0)"
    )
    parser.add_argument(
        "--faults",
        type=_fault_kinds,
        default=FaultPlan.DEFAULT_KINDS,
        metavar="KIND,KIND",
        help="fault kinds to draw from (default: "
        + ", ".join(f.value for f in FaultPlan.DEFAULT_KINDS)
        + "; also "
        + ", ".join(f.value for f in FaultPlan.MONEY_KINDS)
        + " when named)",
    )
    parser.add_argument("--seed", type=int, default=0, help="fault plan seed (0)")
    parser.add_argument(
        "--retry-after",
        type=positive_int,
        default=1,
        help="seconds in the Retry-After header of an 'http_429' fault (1)",
    )
    parser.add_argument(
        "--slow-delay",
        type=non_negative_float,
        default=0.2,
        help="seconds a 'slow' reply waits (0.2)",
    )
    parser.add_argument(
        "--processing-delay",
        type=non_negative_float,
        default=2.5,
        metavar="SECONDS",
        help="seconds a 'slow_processing' operation takes before it is applied (2.5)",
    )


def gateway_from_args(args: argparse.Namespace) -> SandboxGateway:
    """Build the gateway the parsed options describe."""
    plan = None
    if args.fault_rate > 0:
        plan = FaultPlan(
            rate=args.fault_rate,
            kinds=args.faults,
            seed=args.seed,
            slow_delay=args.slow_delay,
            retry_after=args.retry_after,
            processing_delay=args.processing_delay,
        )
    gateway = SandboxGateway(
        args.merchant_id,
        args.secret_key,
        faults=plan,
        auto_hold=args.auto_hold,
        status_lag=args.status_lag,
    )
    gateway.add_payments(args.payments)
    return gateway


async def run_from_args(args: argparse.Namespace, *, out: TextIO | None = None) -> None:
    """Serve the sandbox the options describe until cancelled (Ctrl-C) or sent SIGTERM.

    Prints three lines on ``out`` (default: stdout) on startup: ``url: ...``,
    ``merchant_id: ...`` and ``secret_key: ...`` (the sandbox's throwaway key; printing
    it is the point).
    """
    out = sys.stdout if out is None else out
    gateway = gateway_from_args(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handles_term = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        handles_term = True
    try:
        async with gateway.serve(args.host, args.port) as url:
            print(f"url: {url}", file=out, flush=True)
            print(f"merchant_id: {gateway.merchant_id}", file=out, flush=True)
            print(f"secret_key: {gateway.secret_key}", file=out, flush=True)
            await stop.wait()
    finally:
        if handles_term:
            loop.remove_signal_handler(signal.SIGTERM)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m freedompay_async.sandbox",
        description="A local Freedom Pay Gateway API sandbox (cancel, status_v2, clearing, "
        "refund) with a ledger and fault injection.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        asyncio.run(run_from_args(args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        parser.exit(1, f"sandbox: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}\n")
    return 0
