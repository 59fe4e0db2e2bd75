"""Cancels per second: the library vs a hand-written aiohttp client vs the transport floor.

    python -m benchmarks.throughput --n 20000 --concurrency 64
    python -m benchmarks.throughput --check     # exit 1 when a target ratio is missed
    python -m benchmarks.throughput --sweep     # also concurrency 1..1024, p50/p99
    python -m benchmarks.throughput --quick     # a smoke run for CI (numbers not judged)

Every contender sends N cancels at concurrency C to the same canned server (another
process, loopback), each pass with a fresh client session and pool of C connections,
after a warm-up. Contenders run in interleaved rounds (the order rotates each round).
The table shows median and best req/s over rounds, client CPU per request and latency
percentiles; the target ratios are judged on the best pass of each contender (noise
from other processes only ever slows a pass) on the standard asyncio loop, and the
ratios of medians and of CPU time per request are printed beside them, with the
library's own share of CPU per request (library minus floor) in microseconds.

With uvloop installed (the ``speed`` extra) the whole run is repeated on uvloop and
reported separately (``--loop`` picks one).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from freedompay_async import Limits, RetryPolicy

from ._common import (
    BASELINE_NAME,
    FLOOR_NAME,
    Contender,
    Meter,
    Tally,
    baseline,
    floor,
    id_ranges,
    library_cancel,
    library_cancel_many,
)
from .canned_server import CannedServer

LIB_DEFAULT = "library: cancel(), default middleware (retry+logging)"
LIB_NO_RETRY = "library: cancel(), RetryPolicy.none()"
LIB_MANY = "library: cancel_many(), default middleware"
LIB_LIMITS_DEFAULT = "library: cancel(), default Limits() (100 connections)"
BASELINE = BASELINE_NAME
FLOOR = FLOOR_NAME

TARGET_VS_BASELINE = 2.5
TARGET_VS_FLOOR = 0.8
SWEEP = (1, 16, 64, 256, 1024)


def contenders(include_many: bool) -> list[Contender]:
    chosen = [
        library_cancel(LIB_DEFAULT, RetryPolicy),
        library_cancel(LIB_NO_RETRY, RetryPolicy.none),
        baseline,
        floor,
    ]
    if include_many:
        chosen.insert(2, library_cancel_many(LIB_MANY, RetryPolicy))
    return chosen


async def run(
    chosen: list[Contender], n: int, concurrency: int, rounds: int, warmup: int, quiet: bool
) -> Tally:
    warm, ids = id_ranges(n, warmup)
    tally = Tally()
    with CannedServer(prefill=n + warmup) as server:
        meter = Meter(server)
        # One untimed pass of each first, so no contender pays for the process warming up.
        for contender in chosen:
            await contender(server.url, warm, ids[: len(warm)], concurrency, meter)
        for round_no in range(rounds):
            shift = round_no % len(chosen)
            for contender in chosen[shift:] + chosen[:shift]:
                sample = await contender(server.url, warm, ids, concurrency, meter)
                tally.add(sample)
                if not quiet:
                    print(
                        f"  c={concurrency} round {round_no + 1}: {sample.name:<55} "
                        f"{sample.rps:>9,.0f} req/s",
                        file=sys.stderr,
                        flush=True,
                    )
    return tally


def _ratio_line(label: str, value: float, target: float | None = None) -> str:
    line = f"{label:<34} = {value:5.2f}"
    if target is not None:
        line += f"  (target >= {target}: {'met' if value >= target else 'NOT met'})"
    return line


def report(tally: Tally, n: int, concurrency: int, rounds: int, loop: str) -> bool:
    print(f"\n[{loop}] {n} cancels at concurrency {concurrency}, {rounds} interleaved rounds")
    print(tally.table())
    best, median, cpu = tally.best_rps, tally.median_rps, tally.median_cpu_us
    vs_baseline = best(LIB_DEFAULT) / best(BASELINE)
    vs_floor = best(LIB_DEFAULT) / best(FLOOR)
    print("\nthroughput ratios, best pass of each (other load on the machine only ever slows")
    print("a pass down, so the best is the steadiest estimate; the verdicts use these):")
    print(_ratio_line("library (default) / baseline", vs_baseline, TARGET_VS_BASELINE))
    print(_ratio_line("library (default) / floor", vs_floor, TARGET_VS_FLOOR))
    print(_ratio_line("library (no retry) / baseline", best(LIB_NO_RETRY) / best(BASELINE)))
    print(_ratio_line("library (no retry) / floor", best(LIB_NO_RETRY) / best(FLOOR)))
    print("throughput ratios, median pass of each:")
    print(_ratio_line("library (default) / baseline", median(LIB_DEFAULT) / median(BASELINE)))
    print(_ratio_line("library (default) / floor", median(LIB_DEFAULT) / median(FLOOR)))
    print("CPU-cost ratios (median client CPU per request):")
    print(_ratio_line("library (default) / baseline", cpu(BASELINE) / cpu(LIB_DEFAULT)))
    print(_ratio_line("library (default) / floor", cpu(FLOOR) / cpu(LIB_DEFAULT)))
    print("client CPU per request over the floor (median; best pass in brackets):")
    for name in tally.samples:
        if name != FLOOR:
            own = cpu(name) - cpu(FLOOR)
            own_best = tally.best_cpu_us(name) - tally.best_cpu_us(FLOOR)
            print(f"  {name:<55} {own:+7.1f} us  [{own_best:+7.1f} us]")
    return vs_baseline >= TARGET_VS_BASELINE and vs_floor >= TARGET_VS_FLOOR


def sweep_contenders() -> list[Contender]:
    return [
        library_cancel(LIB_DEFAULT, RetryPolicy),
        library_cancel(LIB_LIMITS_DEFAULT, RetryPolicy, limits=Limits()),
        floor,
    ]


def sweep(runner: asyncio.Runner, n: int, rounds: int, warmup: int, loop: str) -> None:
    print(f"\n[{loop}] concurrency sweep: {n} cancels per pass, {rounds} round(s), medians")
    print(
        f"{'C':>5}  {'contender':<55}  {'req/s':>8}  {'CPU us/req':>10}  "
        f"{'p50 ms':>8}  {'p99 ms':>8}"
    )
    for concurrency in SWEEP:
        tally = runner.run(run(sweep_contenders(), n, concurrency, rounds, warmup, quiet=True))
        for name in tally.samples:
            print(
                f"{concurrency:>5}  {name:<55}  {tally.median_rps(name):>8,.0f}  "
                f"{tally.median_cpu_us(name):>10.1f}  {tally.median_latency_ms(name, 0.5):>8.2f}  "
                f"{tally.median_latency_ms(name, 0.99):>8.2f}",
                flush=True,
            )


def loop_factories(choice: str) -> list[tuple[str, Callable[[], asyncio.AbstractEventLoop]]]:
    """The event loops to run on: asyncio's own, uvloop's when installed (or asked for)."""
    chosen: list[tuple[str, Callable[[], asyncio.AbstractEventLoop]]] = []
    if choice in ("asyncio", "both", "auto"):
        chosen.append(("asyncio", asyncio.new_event_loop))
    if choice in ("uvloop", "both", "auto"):
        try:
            import uvloop
        except ImportError:
            if choice != "auto":
                raise SystemExit("uvloop is not installed (the speed extra)") from None
        else:
            chosen.append(("uvloop", uvloop.new_event_loop))
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="timed cancels per pass")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=2_000, help="untimed cancels per pass")
    parser.add_argument(
        "--no-cancel-many", action="store_true", help="skip the cancel_many() contender"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a target ratio is not met (judged on the asyncio loop)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: --n 2000 --rounds 1 --warmup 200"
    )
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop", "both"),
        default="auto",
        help="event loop(s); auto: asyncio, and uvloop too when it is installed",
    )
    parser.add_argument("--sweep", action="store_true", help=f"also sweep concurrency over {SWEEP}")
    parser.add_argument("--sweep-n", type=int, default=5_000, help="timed cancels per sweep pass")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.rounds, args.warmup, args.sweep_n = 2_000, 1, 200, 1_000
    if args.n < 1 or args.concurrency < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--n, --concurrency and --rounds must be >= 1, --warmup >= 0")
    met = True
    for loop, factory in loop_factories(args.loop):
        with asyncio.Runner(loop_factory=factory) as runner:
            chosen = contenders(not args.no_cancel_many)
            tally = runner.run(
                run(chosen, args.n, args.concurrency, args.rounds, args.warmup, quiet=False)
            )
            loop_met = report(tally, args.n, args.concurrency, args.rounds, loop)
            if loop == "asyncio" or args.loop == "uvloop":
                met = loop_met
            if args.sweep:
                sweep(runner, args.sweep_n, 1, min(args.warmup, args.sweep_n), loop)
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
