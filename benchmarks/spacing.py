"""Batch throughput with per-payment spacing on (the default, 1.5 s) and off.

    python -m benchmarks.spacing --n 20000 --concurrency 64
    python -m benchmarks.spacing --quick      # a smoke run (numbers not judged)

Spacing only ever holds a request about a payment that had a request less than the
interval ago; a batch's first attempts are each about a different payment, so its
throughput must not change. Both contenders run ``cancel_many`` over the same ids
against the canned server, in interleaved rounds, each pass in a fresh session (a
fresh spacing table) after a warm-up on other ids. The verdict is the median over the
rounds of each round's on / off ratio (target >= 0.95): the two passes of a round run
back to back, so a drift in the machine's speed cancels. The ratios of best and median
passes and of client CPU per cancel are printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from collections.abc import Sequence

from freedompay_async import AsyncSession, Limits, OutcomeState, PaymentSpacing, RetryPolicy

from ._common import CREDENTIALS, BenchmarkError, Contender, Meter, Sample, Tally
from .canned_server import CannedServer

ON = "cancel_many(), spacing 1.5 s (default)"
OFF = "cancel_many(), spacing=None"
TARGET = 0.95


def contender(name: str, spacing: PaymentSpacing | None) -> Contender:
    async def run(
        url: str, warm: Sequence[int], ids: Sequence[int], concurrency: int, meter: Meter
    ) -> Sample:
        async def consume(fp: AsyncSession, batch: Sequence[int]) -> int:
            done = 0
            async for outcome in fp.cancel_many(batch, concurrency=concurrency):
                if outcome.state is not OutcomeState.CANCELLED:
                    raise BenchmarkError(f"unexpected outcome {outcome!r}")
                done += 1
            return done

        async with AsyncSession(
            CREDENTIALS,
            base_url=url,
            retry=RetryPolicy(),
            limits=Limits(max_connections=concurrency),
            spacing=spacing,
        ) as fp:
            await consume(fp, warm)
            meter.start()
            done = await consume(fp, ids)
            return meter.stop(name, done)

    return run


async def run(n: int, concurrency: int, rounds: int, warmup: int) -> Tally:
    ids, warm = range(1, n + 1), range(n + 1, n + warmup + 1)  # warm-up on other ids
    tally = Tally()
    chosen = [contender(ON, PaymentSpacing()), contender(OFF, None)]
    with CannedServer(prefill=n + warmup) as server:
        meter = Meter(server)
        for round_no in range(rounds):
            order = chosen if round_no % 2 == 0 else chosen[::-1]
            for each in order:
                sample = await each(server.url, warm, ids, concurrency, meter)
                tally.add(sample)
                print(f"  round {round_no + 1}: {sample.name:<42} {sample.rps:>9,.0f} req/s",
                      file=sys.stderr, flush=True)  # fmt: skip
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="timed cancels per pass")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=1_000, help="untimed cancels per pass")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--quick", action="store_true", help="--n 2000 --rounds 1 --warmup 200")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.rounds, args.warmup = 2_000, 1, 200
    if args.n < 1 or args.concurrency < 1 or args.rounds < 1 or args.warmup < 1:
        parser.error("--n, --concurrency, --rounds and --warmup must be >= 1")
    tally = asyncio.run(run(args.n, args.concurrency, args.rounds, args.warmup))
    print(f"\n{args.n} cancels at concurrency {args.concurrency}, {args.rounds} rounds")
    print(tally.table())
    best = tally.best_rps(ON) / tally.best_rps(OFF)
    median = tally.median_rps(ON) / tally.median_rps(OFF)
    # Each round runs both back to back, so a machine whose speed drifts (a shared VM)
    # slows both passes of a round alike: the median of the per-round ratios cancels
    # that drift, where the ratio of best passes compares passes minutes apart.
    paired = statistics.median(
        on.rps / off.rps for on, off in zip(tally.samples[ON], tally.samples[OFF], strict=True)
    )
    verdict = "met" if paired >= TARGET else "NOT met"
    print(f"\nspacing on / off, per-round pairs (median) = {paired:5.2f}"
          f"  (target >= {TARGET}: {verdict})")  # fmt: skip
    print(f"spacing on / off, best passes              = {best:5.2f}")
    print(f"spacing on / off, median passes            = {median:5.2f}")
    cpu = tally.median_cpu_us(OFF) / tally.median_cpu_us(ON)
    print(f"client CPU per cancel, off / on            = {cpu:5.2f}")
    return 1 if args.check and paired < TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
