"""What the default middleware chain costs per cancel, against the leanest session there is.

    python -m benchmarks.middleware_overhead --n 10000 --concurrency 64 --rounds 9

"chain" is ``AsyncSession`` as shipped: ``RetryPolicy()`` (4 attempts, 20 s per attempt,
90 s deadline) then ``LoggingMiddleware`` (logging at WARNING, so its DEBUG lines are
skipped), pacing off. "lean" is ``retry=RetryPolicy.none(), log_attempts=False``: no
middleware at all (only the session's in-flight cap, which is part of the transport's
contract, stays).

Both run interleaved (order alternating) against the same canned server, each pass with
a fresh session after a warm-up. The verdict uses the best pass of each (other load on
the machine only ever slows a pass down); the median of per-round ratios, the ratio of
median req/s and the CPU time per cancel are printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys

from freedompay_async import RetryPolicy

from ._common import Meter, Tally, id_ranges, library_cancel
from .canned_server import CannedServer

CHAIN = "chain: RetryPolicy() + LoggingMiddleware"
LEAN = "lean: no middleware (RetryPolicy.none(), log_attempts=False)"
TARGET_COST = 0.05


async def run(
    n: int, concurrency: int, rounds: int, warmup: int
) -> tuple[Tally, list[float], list[float]]:
    warm, ids = id_ranges(n, warmup)
    chain = library_cancel(CHAIN, RetryPolicy)
    lean = library_cancel(LEAN, RetryPolicy.none, log_attempts=False)
    tally = Tally()
    paired: list[float] = []
    paired_cpu: list[float] = []
    with CannedServer(prefill=n + warmup) as server:
        meter = Meter(server)
        # One untimed pass of each first, so neither pays for the process warming up.
        for contender in (chain, lean):
            await contender(server.url, warm, warm, concurrency, meter)
        for round_no in range(rounds):
            order = (chain, lean) if round_no % 2 == 0 else (lean, chain)
            got = {}
            for contender in order:
                sample = await contender(server.url, warm, ids, concurrency, meter)
                tally.add(sample)
                got[sample.name] = sample
            paired.append(got[CHAIN].rps / got[LEAN].rps)
            paired_cpu.append(got[LEAN].cpu_us / got[CHAIN].cpu_us)
            print(
                f"  round {round_no + 1}: chain {got[CHAIN].rps:,.0f} req/s "
                f"({got[CHAIN].cpu_us:.1f} us CPU), lean {got[LEAN].rps:,.0f} req/s "
                f"({got[LEAN].cpu_us:.1f} us CPU), ratio {paired[-1]:.3f}",
                file=sys.stderr,
                flush=True,
            )
    return tally, paired, paired_cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="timed cancels per pass")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=1_000, help="untimed cancels per pass")
    parser.add_argument("--check", action="store_true", help="exit 1 when over the target")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: --n 2000 --rounds 2 --warmup 200"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.rounds, args.warmup = 2_000, 2, 200
    if args.n < 1 or args.concurrency < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--n, --concurrency and --rounds must be >= 1, --warmup >= 0")
    tally, paired, paired_cpu = asyncio.run(run(args.n, args.concurrency, args.rounds, args.warmup))
    print(f"\n{args.n} cancels at concurrency {args.concurrency}, {args.rounds} interleaved rounds")
    print(tally.table())
    best_ratio = tally.best_rps(CHAIN) / tally.best_rps(LEAN)
    cost = 1 - best_ratio
    print()
    print(f"chain / lean, best pass of each              = {best_ratio:.3f}")
    print(f"chain / lean, median of per-round ratios     = {statistics.median(paired):.3f}")
    print(
        f"chain / lean, ratio of median req/s          = "
        f"{tally.median_rps(CHAIN) / tally.median_rps(LEAN):.3f}"
    )
    cpu_ratio = statistics.median(paired_cpu)
    print(
        f"chain / lean, by client CPU per request      = {cpu_ratio:.3f} "
        f"(chain costs {1 / cpu_ratio - 1:+.1%} CPU per cancel)"
    )
    verdict = "met" if cost <= TARGET_COST else "NOT met"
    print(
        f"chain cost (best vs best) = {cost:.2%} of throughput "
        f"(target <= {TARGET_COST:.0%}: {verdict})"
    )
    return 1 if args.check and cost > TARGET_COST else 0


if __name__ == "__main__":
    sys.exit(main())
