"""AsyncSession with a RedisCoordinator, against the sandbox: two sessions are two workers.

Each session has a coordinator of its own on one real redis-server, as two processes
would; what they share is only what Redis holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis.asyncio

import freedompay_async as fp
from freedompay_async.sandbox import Fault, SandboxGateway

from ..helpers import MERCHANT, SECRET
from .harness import closest_gap
from .redis_server import running_redis

SPACING = 0.2
KEPT = SPACING + 0.05  # the margin the docs advise (see test_multiprocess)


def _session(url: str, coordinator: fp.Coordinator | None) -> fp.AsyncSession:
    return fp.AsyncSession(
        fp.Credentials(MERCHANT, SECRET),
        base_url=url,
        coordinator=coordinator,
        spacing=fp.PaymentSpacing(KEPT),
        retry=fp.RetryPolicy(attempts=3, attempt_timeout=0.3, wait_initial=0.02, wait_max=0.1),
        settle=fp.SettlePolicy(window=1.0, poll_initial=0.05, poll_max=0.2),
        log_attempts=False,
    )


@contextlib.asynccontextmanager
async def _workers(
    url: str, redis_url: str | None, prefix: str, lease_ttl: float = 1.0
) -> AsyncIterator[tuple[fp.AsyncSession, fp.AsyncSession]]:
    def coordinator() -> fp.Coordinator | None:
        if redis_url is None:
            return None
        return fp.RedisCoordinator.from_url(redis_url, prefix=prefix, lease_ttl=lease_ttl)

    async with _session(url, coordinator()) as one, _session(url, coordinator()) as two:
        yield one, two


async def _statuses(fp_: fp.AsyncSession, pid: int) -> None:
    await asyncio.gather(*(fp_.status(pid) for _ in range(3)))


async def test_two_workers_keep_the_spacing_between_them(
    served: tuple[SandboxGateway, str], redis_url: str, prefix: str
) -> None:
    gateway, url = served
    async with _workers(url, redis_url, prefix) as (one, two):
        await asyncio.gather(_statuses(one, 11), _statuses(two, 11))
    assert gateway.ledger[11].status_requests == 6
    assert closest_gap(gateway.ledger[11]) >= SPACING


async def test_without_a_coordinator_each_worker_spaces_only_its_own(
    served: tuple[SandboxGateway, str], prefix: str
) -> None:
    gateway, url = served
    async with _workers(url, None, prefix) as (one, two):
        await asyncio.gather(_statuses(one, 12), _statuses(two, 12))
    assert closest_gap(gateway.ledger[12]) < SPACING / 4  # the two workers' requests collide


async def test_cancels_take_the_chain_and_leave_a_start_record(
    served: tuple[SandboxGateway, str],
    redis_url: str,
    prefix: str,
    redis_client: redis.asyncio.Redis,
) -> None:
    gateway, url = served
    async with _workers(url, redis_url, prefix) as (one, _):
        result = await one.cancel(13)
        assert result.revoke_status is fp.RevokeStatus.SUCCESS
        assert await redis_client.exists(f"{prefix}:{{13}}:start") == 1
    assert gateway.ledger[13].cancellations == 1


async def test_redis_unavailable_fails_typed_and_sends_nothing(
    served: tuple[SandboxGateway, str],
) -> None:
    gateway, url = served
    coordinator = fp.RedisCoordinator.from_url("redis://127.0.0.1:9/0", timeout=0.5)
    async with _session(url, coordinator) as session:
        with pytest.raises(fp.CoordinationUnavailableError) as cancelled:
            await session.cancel(14)
        with pytest.raises(fp.CoordinationUnavailableError) as refunded:
            await session.refund(15, "10.00")
        with pytest.raises(fp.CoordinationUnavailableError):
            await session.clear(15)
    assert not cancelled.value.outcome_unknown and not refunded.value.outcome_unknown
    assert "Redis at redis://127.0.0.1:9/0" in str(cancelled.value)
    assert gateway.ledger[14].requests == 0 and gateway.ledger[15].requests == 0


async def _cleared(gateway: SandboxGateway, url: str, pid: int) -> None:
    gateway.status_lag = 0
    async with fp.AsyncSession(fp.Credentials(MERCHANT, SECRET), base_url=url, spacing=None) as s:
        await s.clear(pid, reconcile=False)
    gateway.status_lag = 0.2


async def _until_refund_arrives(gateway: SandboxGateway, pid: int) -> None:
    async with asyncio.timeout(10):
        while gateway.ledger[pid].refund_requests < 1:
            await asyncio.sleep(0.005)


async def test_a_worker_whose_lease_was_taken_confirms_nothing(
    served: tuple[SandboxGateway, str],
    redis_url: str,
    prefix: str,
    redis_client: redis.asyncio.Redis,
) -> None:
    gateway, url = served
    await _cleared(gateway, url, 16)
    gateway.inject(16, None, Fault.LOST_REPLY)  # the baseline read, then the refund: lost
    lease = f"{prefix}:{{16}}:lease"
    async with _workers(url, redis_url, prefix) as (one, _):
        refund = asyncio.create_task(one.refund(16, "100.00"))
        await _until_refund_arrives(gateway, 16)
        await redis_client.set(lease, "another-worker", px=5000)  # taken over meanwhile
        with pytest.raises(fp.LeaseLostError) as caught:
            await refund
        notes = await redis_client.hgetall(f"{prefix}:{{16}}:notes")
    assert caught.value.outcome_unknown  # it sent the refund: it may have happened
    assert "would have reported" in "".join(caught.value.__notes__)
    assert set(notes) == {"refund:100.00:"}  # left for whoever settles it
    entry = gateway.ledger[16]
    assert (entry.refund_requests, len(entry.refunds)) == (1, 1)  # never sent again


async def test_redis_lost_after_the_send_leaves_the_outcome_unknown(
    served: tuple[SandboxGateway, str], tmp_path: Path, prefix: str
) -> None:
    gateway, url = served
    await _cleared(gateway, url, 17)
    gateway.inject(17, None, Fault.LOST_REPLY)
    with running_redis(tmp_path) as server:
        async with _workers(url, server.url, prefix) as (one, _):
            refund = asyncio.create_task(one.refund(17, "100.00"))
            await _until_refund_arrives(gateway, 17)
            server.stop()
            with pytest.raises(fp.CoordinationUnavailableError) as caught:
                await refund
    assert caught.value.outcome_unknown
    assert [amount for _, amount in gateway.ledger[17].refunds] == [Decimal("100.00")]
    assert gateway.ledger[17].refund_requests == 1


async def test_two_workers_clear_and_refund_one_payment_one_at_a_time(
    served: tuple[SandboxGateway, str], redis_url: str, prefix: str
) -> None:
    gateway, url = served
    gateway.status_lag = 0.2
    gateway.inject(18, Fault.LOST_REPLY)  # the clearing's reply is lost: settled by status
    async with _workers(url, redis_url, prefix) as (one, two):
        cleared = await one.clear(18)
        refunds = await asyncio.gather(two.refund(18, "100.00"), one.refund(18, "100.00"))
    assert cleared.confirmed_by_status
    assert all(r.refund_status is fp.RefundStatus.SUCCESS for r in refunds)
    entry = gateway.ledger[18]
    assert (entry.clearings, sorted(a for _, a in entry.refunds)) == (
        1, [Decimal("100.00"), Decimal("100.00")],
    )  # fmt: skip


async def test_a_worker_never_takes_another_workers_lagging_refund_for_its_own(
    served: tuple[SandboxGateway, str], redis_url: str, prefix: str
) -> None:
    """Worker one refunds; worker two refunds the same payment at once after, while status
    still lags the first refund, and two's refund is lost before the gateway saw it.
    Status then shows one's refund: two must not report it as its own."""
    gateway, url = served
    await _cleared(gateway, url, 19)
    gateway.status_lag = 0.4
    async with _workers(url, redis_url, prefix) as (one, two):
        first = await one.refund(19, "10.00")
        # two's baseline read goes through (it lags one's refund); its refund is lost
        gateway.inject(19, None, Fault.RESET_BEFORE)
        second = await two.refund(19, "10.00")
    entry = gateway.ledger[19]
    assert [amount for _, amount in entry.refunds] == [Decimal("10.00")] * 2
    assert first.refund_id != second.refund_id
    assert {first.refund_id, second.refund_id} == {rid for rid, _ in entry.refunds}
