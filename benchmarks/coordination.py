"""What coordinating a fleet costs: Redis against in-process, measured in the same run.

    python -m benchmarks.coordination             # starts a redis-server of its own
    python -m benchmarks.coordination --redis redis://127.0.0.1:6379/0
    python -m benchmarks.coordination --quick     # a smoke run (numbers not judged)

1. **Per request.** ``cancel()`` from ``--concurrency`` tasks against the canned server
   (a process of its own), in interleaved rounds: a session without a coordinator (the
   default: its own spacing table and the direct cancel lane), with a
   ``MemoryCoordinator`` (the coordinated chain, in process: the lane steps aside) and
   with a ``RedisCoordinator``. Ratios are of medians over the rounds.
2. **The coordinator alone.** One request's coordination (``start`` + ``finish``) and
   one money movement's (acquire, note, two checks, drop, release), one at a time, on
   each coordinator: microseconds each, and Redis / memory.
3. **N workers, one sandbox.** N worker processes (``fleet_worker.py``) cancel M held
   payments of one sandbox served by this process, all at once: partitioned by payment
   id (each payment to one worker) with and without Redis, and overlapping (each of
   ``--overlap`` payments to two workers, as a redelivered message would) with and
   without Redis. Cancels a second over all workers, and the closest two requests
   about one payment came at the sandbox (the spacing is the default 1.5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from freedompay_async import (
    AsyncSession,
    Coordinator,
    Limits,
    MemoryCoordinator,
    RedisCoordinator,
    RevokeStatus,
)
from freedompay_async.coordination import new_token
from freedompay_async.sandbox import SandboxGateway

from ._common import CREDENTIALS, BenchmarkError, Contender, Meter, Sample, Tally, drive
from ._redis import RedisUnavailable, redis_server
from .canned_server import CannedServer

DEFAULT = "cancel(), no coordinator (default)"
MEMORY = "cancel(), MemoryCoordinator"
REDIS = "cancel(), RedisCoordinator"
MakeCoordinator = Callable[[], Coordinator | None]


def contender(name: str, make: MakeCoordinator) -> Contender:
    async def run(
        url: str, warm: Sequence[int], ids: Sequence[int], concurrency: int, meter: Meter
    ) -> Sample:
        async with AsyncSession(
            CREDENTIALS,
            base_url=url,
            limits=Limits(max_connections=concurrency),
            coordinator=make(),
        ) as fp:

            async def call(pid: int) -> None:
                result = await fp.cancel(pid)
                if result.revoke_status is not RevokeStatus.SUCCESS:
                    raise BenchmarkError(f"unexpected result {result!r}")

            await drive(call, warm, concurrency)
            meter.start()
            done = await drive(call, ids, concurrency, meter.latencies)
            return meter.stop(name, done)

    return run


async def per_request(redis_url: str, n: int, concurrency: int, rounds: int) -> Tally:
    """Part 1: the three contenders in interleaved rounds against the canned server."""
    def redis() -> Coordinator:
        return RedisCoordinator.from_url(redis_url, prefix=f"bench{uuid.uuid4().hex[:8]}")

    chosen = [contender(DEFAULT, lambda: None), contender(MEMORY, MemoryCoordinator),
              contender(REDIS, redis)]  # fmt: skip
    warmup = max(n // 10, 100)
    tally = Tally()
    with CannedServer(prefill=(n + warmup) * rounds) as server:
        meter = Meter(server)
        for round_no in range(rounds):
            base = round_no * (n + warmup)  # fresh ids each round: spacing never waits
            warm = range(base + 1, base + warmup + 1)
            ids = range(base + warmup + 1, base + warmup + n + 1)
            order = chosen if round_no % 2 == 0 else chosen[::-1]
            for each in order:
                sample = await each(server.url, warm, ids, concurrency, meter)
                tally.add(sample)
                print(f"  round {round_no + 1}: {sample.name:<38} {sample.rps:>8,.0f} req/s",
                      file=sys.stderr, flush=True)  # fmt: skip
    return tally


async def _timed(step: Callable[[int], Awaitable[None]], n: int) -> float:
    """Microseconds per ``step(i)``, run one after the other."""
    start = time.perf_counter()
    for i in range(n):
        await step(i)
    return (time.perf_counter() - start) / n * 1e6


async def coordinator_alone(coordinator: Coordinator, n: int) -> tuple[float, float]:
    """Part 2: µs per request's coordination and per money movement's."""
    token = new_token()

    async def request(i: int) -> None:
        await coordinator.start(i, 1.5, token)
        await coordinator.finish(i, token, 0.001)

    async def movement(i: int) -> None:
        pid = 10_000_000 + i
        if not (await coordinator.acquire(pid, token)).held:
            raise BenchmarkError("lease not free")
        await coordinator.note(pid, token, "refund:1.00:", "{}")
        await coordinator.renew(pid, token)  # the check before the send
        await coordinator.renew(pid, token)  # the check before the outcome
        await coordinator.note(pid, token, "refund:1.00:", None)
        await coordinator.release(pid, token)

    return await _timed(request, n), await _timed(movement, n)


async def _worker(config: dict[str, Any]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.fleet_worker", json.dumps(config),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    if (await proc.stdout.readline()).strip() != b"ready":
        raise BenchmarkError("a worker did not start")
    return proc


async def fleet_pass(
    workers: int, payments: int, redis_url: str | None, overlap: bool
) -> tuple[float, int, float]:
    """Part 3, one pass: seconds, cancels sent by all workers, closest gap at the sandbox."""
    gateway = SandboxGateway()
    ids = range(1, payments + 1)
    gateway.add_payments(ids)
    shares: list[list[int]] = [[] for _ in range(workers)]
    for pid in ids:
        shares[pid % workers].append(pid)
        if overlap and workers > 1:
            shares[(pid + 1) % workers].append(pid)
    prefix = f"fleet{uuid.uuid4().hex[:8]}"
    async with gateway.serve() as url:
        procs = await asyncio.gather(*(
            _worker({"base_url": url, "merchant_id": gateway.merchant_id,
                     "secret_key": gateway.secret_key, "redis": redis_url, "prefix": prefix,
                     "ids": share, "concurrency": 32})
            for share in shares
        ))  # fmt: skip
        start = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
        outputs = await asyncio.gather(*(proc.communicate() for proc in procs))
        seconds = time.perf_counter() - start
    reports = [json.loads(out.decode().splitlines()[-1]) for out, _ in outputs]
    if sum(r["settled"] for r in reports) != sum(len(s) for s in shares):
        raise BenchmarkError(f"not every cancel settled: {reports}")
    if any(gateway.ledger[pid].cancellations != 1 for pid in ids):
        raise BenchmarkError("a payment was not cancelled exactly once")
    return seconds, sum(len(s) for s in shares), _closest(gateway, ids)


def _closest(gateway: SandboxGateway, ids: range) -> float:
    gaps = (
        b - a
        for pid in ids
        for (a, _), (b, _) in itertools.pairwise(gateway.ledger[pid].arrivals)
    )
    return min(gaps, default=float("inf"))


def _print_per_request(tally: Tally) -> None:
    print(tally.table())
    cpu = {name: tally.median_cpu_us(name) for name in (DEFAULT, MEMORY, REDIS)}
    rps = {name: tally.median_rps(name) for name in (DEFAULT, MEMORY, REDIS)}
    print(f"\nclient CPU per cancel, Redis / no coordinator   = {cpu[REDIS] / cpu[DEFAULT]:5.2f}")
    print(f"client CPU per cancel, Redis / MemoryCoordinator = {cpu[REDIS] / cpu[MEMORY]:5.2f}")
    print(f"client CPU per cancel, Memory / no coordinator  = {cpu[MEMORY] / cpu[DEFAULT]:5.2f}"
          "  (the direct lane stepping aside)")  # fmt: skip
    print(f"req/s, Redis / no coordinator                   = {rps[REDIS] / rps[DEFAULT]:5.2f}")
    print(f"req/s, Redis / MemoryCoordinator                = {rps[REDIS] / rps[MEMORY]:5.2f}")


async def run(args: argparse.Namespace, redis_url: str) -> None:
    print(f"1. per request: {args.n} cancels at concurrency {args.concurrency}, "
          f"{args.rounds} rounds, Redis at {redis_url}")  # fmt: skip
    _print_per_request(await per_request(redis_url, args.n, args.concurrency, args.rounds))
    memory = await coordinator_alone(MemoryCoordinator(), args.micro)
    remote = RedisCoordinator.from_url(redis_url, prefix=f"micro{uuid.uuid4().hex[:8]}")
    try:
        redis = await coordinator_alone(remote, args.micro)
    finally:
        await remote.aclose()
    print(f"\n2. the coordinator alone, {args.micro} each, one at a time (us)")
    print(f"{'':<22}{'memory':>10}{'redis':>10}{'redis / memory':>16}")
    rows = (("a request", memory[0], redis[0]), ("a money movement", memory[1], redis[1]))
    for label, m, r in rows:
        print(f"{label:<22}{m:>10.1f}{r:>10.1f}{r / m:>16.0f}")
    print(f"\n3. N workers against one sandbox: {args.payments} payments partitioned, "
          f"{args.overlap} overlapping")  # fmt: skip
    print(f"{'workers':>7}  {'mode':<32}{'cancels':>8}{'seconds':>9}{'cancels/s':>11}"
          f"{'closest gap s':>15}")  # fmt: skip
    for workers in args.workers:
        for mode, url, overlap in (("partitioned, no coordinator", None, False),
                                   ("partitioned, Redis", redis_url, False),
                                   ("overlapping x2, no coordinator", None, True),
                                   ("overlapping x2, Redis", redis_url, True)):  # fmt: skip
            if overlap and workers == 1:
                continue
            payments = args.overlap if overlap else args.payments
            seconds, cancels, gap = await fleet_pass(workers, payments, url, overlap)
            shown = "-" if gap == float("inf") else f"{gap:.3f}"
            print(f"{workers:>7}  {mode:<32}{cancels:>8}{seconds:>9.2f}"
                  f"{cancels / seconds:>11,.0f}{shown:>15}", flush=True)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", help="a Redis URL (default: start a redis-server)")
    parser.add_argument("--n", type=int, default=10_000, help="timed cancels per pass")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--micro", type=int, default=5_000, help="steps in part 2")
    parser.add_argument("--payments", type=int, default=4_000, help="payments in part 3")
    parser.add_argument("--overlap", type=int, default=400, help="overlapping payments")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.rounds, args.micro, args.workers = 1_000, 1, 500, [1, 2]
        args.payments, args.overlap = 400, 100
    try:
        if args.redis:
            asyncio.run(run(args, args.redis))
        else:
            with redis_server() as url:
                asyncio.run(run(args, url))
    except RedisUnavailable as exc:
        print(f"benchmarks.coordination: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
