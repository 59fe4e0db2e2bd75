"""Shared pieces of the benchmarks: contenders, the request driver, CPU metering."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

import aiohttp
import xmltodict

from freedompay_async import (
    AsyncSession,
    Credentials,
    Limits,
    OutcomeState,
    PaymentSpacing,
    RetryPolicy,
    RevokeStatus,
)
from freedompay_async._wire.multipart import render_multipart

from .canned_server import DEFAULT_MERCHANT_ID, DEFAULT_SECRET, SCRIPT, CannedServer

SECRET = DEFAULT_SECRET
MERCHANT_ID = DEFAULT_MERCHANT_ID
CREDENTIALS = Credentials(MERCHANT_ID, SECRET)
CANCEL_PATH = "/g2g/cancel"
#: Per-request time limit every contender applies (the library's default attempt_timeout).
REQUEST_TIMEOUT = 20.0
BASELINE_NAME = "baseline: aiohttp FormData + xmltodict + md5"
FLOOR_NAME = "floor: aiohttp posting prebuilt bytes"


class BenchmarkError(RuntimeError):
    """A contender got an answer it should not have: the numbers would be meaningless."""


@dataclass
class Sample:
    """One timed pass of one contender."""

    name: str
    requests: int
    wall: float
    client_cpu: float
    server_cpu: float | None
    latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.wall

    @property
    def cpu_us(self) -> float:
        """Client CPU microseconds per request: steadier than req/s on a shared machine."""
        return self.client_cpu / self.requests * 1e6

    def latency_ms(self, quantile: float) -> float:
        """A latency quantile of this pass in milliseconds (0.0 when none were recorded)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000

    @property
    def client_load(self) -> float:
        return self.client_cpu / self.wall

    @property
    def server_load(self) -> float | None:
        return None if self.server_cpu is None else self.server_cpu / self.wall


@dataclass
class Meter:
    """Wall clock, this process's CPU time and the server's CPU time over one pass."""

    server: CannedServer
    #: Per-request latencies of the pass under way (seconds), appended by ``drive``.
    latencies: list[float] = field(default_factory=list)
    _wall: float = 0.0
    _cpu: float = 0.0
    _server_cpu: float | None = None

    def start(self) -> None:
        self.latencies = []
        self._server_cpu = self.server.cpu_seconds()
        self._cpu = time.process_time()
        self._wall = time.perf_counter()

    def stop(self, name: str, requests: int) -> Sample:
        wall = time.perf_counter() - self._wall
        cpu = time.process_time() - self._cpu
        end = self.server.cpu_seconds()
        server = None if end is None or self._server_cpu is None else end - self._server_cpu
        return Sample(name, requests, wall, cpu, server, self.latencies)


async def drive(
    call: Callable[[int], Awaitable[None]],
    ids: Iterable[int],
    concurrency: int,
    latencies: list[float] | None = None,
) -> int:
    """Await ``call(pid)`` for every id from ``concurrency`` tasks sharing one iterator.

    With ``latencies``, each call's duration (seconds) is appended to it: the same two
    clock reads for every contender.
    """
    source = iter(ids)
    done = 0
    clock = time.perf_counter

    async def worker() -> None:
        nonlocal done
        for pid in source:
            if latencies is None:
                await call(pid)
            else:
                start = clock()
                await call(pid)
                latencies.append(clock() - start)
            done += 1

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return done


#: A contender: (url, warm-up ids, timed ids, concurrency, meter) -> one timed Sample.
Contender = Callable[[str, Sequence[int], Sequence[int], int, Meter], Awaitable[Sample]]


# The library contenders run with the session's defaults, per-payment spacing included:
# within one session the warm-up ids and the timed ids are disjoint (``id_ranges``), so,
# as in a real batch, no payment is asked about twice and spacing never holds a request.
#: The session's default spacing, for contenders that take it as a parameter.
DEFAULT_SPACING = PaymentSpacing()


def library_cancel(
    name: str,
    retry: Callable[[], RetryPolicy],
    *,
    log_attempts: bool = True,
    limits: Limits | None = None,
) -> Contender:
    """``AsyncSession.cancel(pid)`` from ``concurrency`` worker tasks."""

    async def run(
        url: str, warm: Sequence[int], ids: Sequence[int], concurrency: int, meter: Meter
    ) -> Sample:
        async with AsyncSession(
            CREDENTIALS,
            base_url=url,
            retry=retry(),
            limits=limits or Limits(max_connections=concurrency),
            log_attempts=log_attempts,
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


def library_cancel_many(
    name: str,
    retry: Callable[[], RetryPolicy],
    *,
    spacing: PaymentSpacing | None = DEFAULT_SPACING,
) -> Contender:
    """``AsyncSession.cancel_many(ids, concurrency=C)``, consuming every outcome."""

    async def run(
        url: str, warm: Sequence[int], ids: Sequence[int], concurrency: int, meter: Meter
    ) -> Sample:
        async with AsyncSession(
            CREDENTIALS,
            base_url=url,
            retry=retry(),
            limits=Limits(max_connections=concurrency),
            spacing=spacing,
        ) as fp:

            async def consume(batch: Sequence[int]) -> int:
                done = 0
                async for outcome in fp.cancel_many(batch, concurrency=concurrency):
                    if outcome.state is not OutcomeState.CANCELLED:
                        raise BenchmarkError(f"unexpected outcome {outcome!r}")
                    done += 1
                return done

            await consume(warm)
            meter.start()
            done = await consume(ids)
            return meter.stop(name, done)

    return run


def _md5_sig(values: Iterable[str]) -> str:
    pre_image = ";".join([SCRIPT, *values, SECRET])
    return hashlib.md5(pre_image.encode(), usedforsecurity=False).hexdigest()


def _connector(concurrency: int) -> aiohttp.TCPConnector:
    # The same pool shape AiohttpTransport builds from Limits(max_connections=C).
    return aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)


def _client_timeout() -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=REQUEST_TIMEOUT, sock_connect=10.0)


async def baseline(
    url: str, warm: Sequence[int], ids: Sequence[int], concurrency: int, meter: Meter
) -> Sample:
    """What a competent user writes without the library: FormData, xmltodict, md5, hmac."""
    cancel_url = url + CANCEL_PATH
    async with aiohttp.ClientSession(
        connector=_connector(concurrency), timeout=_client_timeout()
    ) as session:

        async def call(pid: int) -> None:
            fields = {
                "pg_merchant_id": str(MERCHANT_ID),
                "pg_payment_id": str(pid),
                "pg_salt": secrets.token_hex(8),
            }
            fields["pg_sig"] = _md5_sig(fields[name] for name in sorted(fields))
            form = aiohttp.FormData(fields, default_to_multipart=True)
            async with session.post(cancel_url, data=form) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise BenchmarkError(f"HTTP {resp.status}")
            reply = xmltodict.parse(body)["response"]
            signature = reply.pop("pg_sig", "")
            expected = _md5_sig(str(reply[name] or "") for name in sorted(reply))
            if not hmac.compare_digest(expected, signature):
                raise BenchmarkError("reply signature does not verify")
            if reply.get("pg_status") != "ok" or reply.get("pg_payment_id") != str(pid):
                raise BenchmarkError(f"unexpected reply {reply!r}")

        await drive(call, warm, concurrency)
        meter.start()
        done = await drive(call, ids, concurrency, meter.latencies)
        return meter.stop(BASELINE_NAME, done)


async def floor(
    url: str, warm: Sequence[int], ids: Sequence[int], concurrency: int, meter: Meter
) -> Sample:
    """Plain aiohttp posting one prebuilt multipart body and reading the reply: no work."""
    cancel_url = url + CANCEL_PATH
    body, content_type = render_multipart(
        [("pg_merchant_id", str(MERCHANT_ID)), ("pg_payment_id", "1"), ("pg_salt", "f" * 16)]
    )
    headers = {"Content-Type": content_type}
    async with aiohttp.ClientSession(
        connector=_connector(concurrency), timeout=_client_timeout()
    ) as session:

        async def call(pid: int) -> None:
            async with session.post(cancel_url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    raise BenchmarkError(f"HTTP {resp.status}")

        await drive(call, warm, concurrency)
        meter.start()
        done = await drive(call, ids, concurrency, meter.latencies)
        return meter.stop(FLOOR_NAME, done)


@dataclass
class Tally:
    """All samples of a run, grouped by contender name in first-seen order."""

    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def add(self, sample: Sample) -> None:
        self.samples.setdefault(sample.name, []).append(sample)

    def median_rps(self, name: str) -> float:
        return statistics.median(s.rps for s in self.samples[name])

    def best_rps(self, name: str) -> float:
        return max(s.rps for s in self.samples[name])

    def median_cpu_us(self, name: str) -> float:
        return statistics.median(s.cpu_us for s in self.samples[name])

    def best_cpu_us(self, name: str) -> float:
        return min(s.cpu_us for s in self.samples[name])

    def median_latency_ms(self, name: str, quantile: float) -> float:
        return statistics.median(s.latency_ms(quantile) for s in self.samples[name])

    def table(self) -> str:
        width = max(len(name) for name in self.samples)
        lines = [
            f"{'contender':<{width}}  {'median req/s':>12}  {'best req/s':>10}  "
            f"{'CPU us/req':>10}  {'client CPU':>10}  {'server CPU':>10}  "
            f"{'p50 ms':>7}  {'p99 ms':>7}"
        ]
        for name, runs in self.samples.items():
            client = statistics.median(s.client_load for s in runs)
            loads = [s.server_load for s in runs if s.server_load is not None]
            server = f"{statistics.median(loads):.0%}" if loads else "n/a"
            lines.append(
                f"{name:<{width}}  {self.median_rps(name):>12,.0f}  {self.best_rps(name):>10,.0f}  "
                f"{self.median_cpu_us(name):>10.1f}  {client:>10.0%}  {server:>10}  "
                + (
                    f"{self.median_latency_ms(name, 0.5):>7.2f}  "
                    f"{self.median_latency_ms(name, 0.99):>7.2f}"
                    if any(s.latencies for s in runs)
                    else f"{'n/a':>7}  {'n/a':>7}"
                )
            )
        return "\n".join(lines)


def id_ranges(n: int, warmup: int) -> tuple[range, range]:
    """Warm-up ids and timed ids, disjoint (no session asks about a payment twice) and
    inside ``1..n + warmup`` (pre-sign that range)."""
    return range(n + 1, n + warmup + 1), range(1, n + 1)
