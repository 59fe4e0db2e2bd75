"""Peak memory of ``cancel_many`` over a lazy generator: 1,000,000 ids vs 100,000.

    python -m benchmarks.memory            # 1,000,000 and 100,000 cancels
    python -m benchmarks.memory --quick    # 50,000 and 5,000 (a smoke run)

Each run is a fresh child process (``python -m benchmarks.memory --child ...``) so its
peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss`` at the end) is its own. The child feeds
``AsyncSession.cancel_many`` a generator whose payment ids cycle over 1..100,000 (the
canned server pre-signs replies for that range, so its reply cache stays bounded),
consumes every outcome and checks each one is CANCELLED. Targets: the large run peaks
at <= 100 MB and at <= 10 MB above the small one (memory flat in the number of ids).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from freedompay_async import AsyncSession, Limits, OutcomeState

from ._common import CREDENTIALS, BenchmarkError
from .canned_server import CannedServer

ID_SPACE = 100_000
TARGET_PEAK_MB = 100.0
TARGET_GROWTH_MB = 10.0


def _peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def payment_ids(n: int) -> Iterator[int]:
    """``n`` payment ids cycling over ``1..ID_SPACE``, produced lazily."""
    for i in range(n):
        yield i % ID_SPACE + 1


async def child(url: str, n: int, concurrency: int) -> dict[str, float]:
    start_rss = _peak_rss_mb()
    done = 0
    started = time.perf_counter()
    async with AsyncSession(
        CREDENTIALS, base_url=url, limits=Limits(max_connections=concurrency)
    ) as fp:
        async for outcome in fp.cancel_many(payment_ids(n), concurrency=concurrency):
            if outcome.state is not OutcomeState.CANCELLED:
                raise BenchmarkError(f"unexpected outcome {outcome!r}")
            done += 1
    elapsed = time.perf_counter() - started
    if done != n:
        raise BenchmarkError(f"{done} outcomes for {n} inputs")
    return {
        "n": n,
        "outcomes": done,
        "seconds": elapsed,
        "rss_after_import_mb": start_rss,
        "peak_rss_mb": _peak_rss_mb(),
    }


def run_child(url: str, n: int, concurrency: int, timeout: float) -> dict[str, float]:
    """Run one measurement in a fresh interpreter and return what it printed."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.memory",
            "--child",
            "--url",
            url,
            "--n",
            str(n),
            "--concurrency",
            str(concurrency),
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        timeout=timeout,
        check=True,
    )
    result: dict[str, float] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=1_000_000, help="ids in the large run")
    parser.add_argument("--small", type=int, default=100_000, help="ids in the small run")
    parser.add_argument("--quick", action="store_true", help="50,000 vs 5,000 ids")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per child run")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if not args.url or args.n is None:
            parser.error("--child needs --url and --n")
        print(json.dumps(asyncio.run(child(args.url, args.n, args.concurrency))), flush=True)
        return 0
    large, small = (50_000, 5_000) if args.quick else (args.large, args.small)
    if small < 1 or large < small or args.concurrency < 1:
        parser.error("need 1 <= --small <= --large and --concurrency >= 1")
    results = []
    with CannedServer(prefill=ID_SPACE, cache=ID_SPACE + 1) as server:
        # Small first: a warm server and page cache for both; each child starts cold.
        for n in (small, large):
            result = run_child(server.url, n, args.concurrency, args.timeout)
            results.append(result)
            print(
                f"  {n:>9,} cancels: peak RSS {result['peak_rss_mb']:.1f} MB "
                f"(after imports {result['rss_after_import_mb']:.1f} MB), "
                f"{result['seconds']:.1f} s, {result['n'] / result['seconds']:,.0f} req/s",
                file=sys.stderr,
                flush=True,
            )
    small_run, large_run = results
    growth = large_run["peak_rss_mb"] - small_run["peak_rss_mb"]
    peak = large_run["peak_rss_mb"]
    print(f"\ncancel_many over a generator, concurrency {args.concurrency}, fresh process each")
    print(f"{small:>9,} ids: peak RSS {small_run['peak_rss_mb']:6.1f} MB")
    print(f"{large:>9,} ids: peak RSS {peak:6.1f} MB")
    print(f"difference:     {growth:+6.1f} MB")
    ok_peak = peak <= TARGET_PEAK_MB
    ok_growth = growth <= TARGET_GROWTH_MB
    print(
        f"targets: peak <= {TARGET_PEAK_MB:.0f} MB {'met' if ok_peak else 'NOT met'}; "
        f"growth <= {TARGET_GROWTH_MB:.0f} MB {'met' if ok_growth else 'NOT met'}"
    )
    return 1 if args.check and not (ok_peak and ok_growth) else 0


if __name__ == "__main__":
    sys.exit(main())
