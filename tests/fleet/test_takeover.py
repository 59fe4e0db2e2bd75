"""A worker dies holding a payment's lease; another worker settles that payment.

Worker A starts a refund; the sandbox applies refunds slowly (``SLOW_PROCESSING``), and
A is SIGKILLed while it waits for the reply: no cleanup of any kind runs. Its lease
stays in Redis until it expires by itself; then worker B, given the same refund (the
job redelivered), takes the lease, finds A's note (the refund and its baseline), and
settles it by status instead of sending it again: the money moves once. The same two
workers without a coordinator refund twice, which is what the lease and note prevent.

Two equal refunds of one payment from two workers at once are told apart too: with a
coordinator both happen, each settled against a baseline that already shows the
other; without one, a worker whose refund was lost confirms the other's as its own.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import redis.asyncio

from freedompay_async import AsyncSession, Credentials
from freedompay_async.sandbox import Fault, FaultPlan, SandboxGateway

from ..helpers import MERCHANT, SECRET
from .harness import Worker, config, run_fleet

PAYMENT = 401
SPACING = 0.25
LEASE = 1.0


async def _clear(gateway: SandboxGateway, url: str) -> None:
    """Clear the payment (status shows it at once), then turn the status lag on."""
    gateway.status_lag = 0
    async with AsyncSession(Credentials(MERCHANT, SECRET), base_url=url, spacing=None) as fp:
        await fp.clear(PAYMENT, reconcile=False)
    gateway.status_lag = 0.3


def _gateway() -> SandboxGateway:
    gateway = SandboxGateway(MERCHANT, SECRET, faults=FaultPlan(processing_delay=1.0))
    gateway.add_payments([PAYMENT])
    return gateway


async def _until_refund_arrives(gateway: SandboxGateway) -> None:
    async with asyncio.timeout(10):
        while gateway.ledger[PAYMENT].refund_requests < 1:
            await asyncio.sleep(0.005)


async def _kill_a_then_run_b(
    gateway: SandboxGateway, url: str, redis_url: str | None, prefix: str
) -> dict[str, object]:
    jobs = [{"op": "refund", "payment_id": PAYMENT, "amount": "100.00"}]
    settings = {"redis_url": redis_url, "prefix": prefix, "spacing": SPACING, "lease_ttl": LEASE}
    a = await Worker.start(config(url, jobs, **settings))  # type: ignore[arg-type]
    b = await Worker.start(config(url, jobs, **settings))  # type: ignore[arg-type]
    a.go()
    await _until_refund_arrives(gateway)  # A holds the lease and waits for the reply
    await a.kill()
    b.go()
    (report,) = await b.reports()
    return report


async def test_a_killed_holders_refund_is_settled_by_the_next_worker_once(
    redis_url: str, prefix: str, redis_client: redis.asyncio.Redis
) -> None:
    gateway = _gateway()
    async with gateway.serve() as url:
        await _clear(gateway, url)
        gateway.inject(PAYMENT, None, Fault.SLOW_PROCESSING)  # baseline read, then the refund
        lease_key, notes_key = f"{prefix}:{{{PAYMENT}}}:lease", f"{prefix}:{{{PAYMENT}}}:notes"
        report_task = asyncio.create_task(_kill_a_then_run_b(gateway, url, redis_url, prefix))
        await _until_refund_arrives(gateway)
        await asyncio.sleep(0.05)  # the kill happens now, lease held
        holder_ttl = await redis_client.pttl(lease_key)
        note = await redis_client.hgetall(notes_key)
        report = await report_task
        assert await redis_client.exists(lease_key) == 0
        left = await redis_client.hgetall(notes_key)
    # settled: A's note is gone; B's refund is noted as done for the next holder
    assert set(left) == {"refunds:recent"}

    assert 0 < holder_ttl <= LEASE * 1000  # the dead worker's lease, expiring by itself
    assert set(note) == {"refund:100.00:"}  # A's note: its refund and baseline
    assert report["outcome"] == "ok" and report["confirmed_by_status"] is True
    entry = gateway.ledger[PAYMENT]
    assert entry.refunds and [amount for _, amount in entry.refunds] == [Decimal("100.00")]
    assert entry.refund_requests == 1  # B never sent it again


async def test_without_a_coordinator_the_next_worker_refunds_again(prefix: str) -> None:
    gateway = _gateway()
    async with gateway.serve() as url:
        await _clear(gateway, url)
        gateway.inject(PAYMENT, None, Fault.SLOW_PROCESSING)
        report = await _kill_a_then_run_b(gateway, url, None, prefix)
        await asyncio.sleep(1.0)  # A's refund is applied after its processing delay

    assert report["outcome"] == "ok"
    amounts = [amount for _, amount in gateway.ledger[PAYMENT].refunds]
    assert amounts == [Decimal("100.00"), Decimal("100.00")]  # the double movement


async def _equal_refunds(url: str, redis_url: str | None, prefix: str) -> list[dict[str, object]]:
    job = [{"op": "refund", "payment_id": PAYMENT, "amount": "100.00"}]
    return await run_fleet(
        config(url, job, redis_url=redis_url, prefix=prefix, spacing=SPACING) for _ in range(2)
    )


async def test_two_equal_refunds_from_two_workers_both_happen(redis_url: str, prefix: str) -> None:
    gateway = _gateway()
    async with gateway.serve() as url:
        await _clear(gateway, url)
        gateway.inject(PAYMENT, None, Fault.RESET_BEFORE)  # the first refund is lost unsent
        reports = await _equal_refunds(url, redis_url, prefix)

    assert [r["outcome"] for r in reports] == ["ok", "ok"]
    amounts = [amount for _, amount in gateway.ledger[PAYMENT].refunds]
    assert amounts == [Decimal("100.00"), Decimal("100.00")]


async def test_without_a_coordinator_a_worker_confirms_the_others_refund(prefix: str) -> None:
    gateway = _gateway()
    async with gateway.serve() as url:
        await _clear(gateway, url)
        # Both workers read their baseline first; the first refund to arrive is lost.
        gateway.inject(PAYMENT, None, None, Fault.RESET_BEFORE)
        reports = await _equal_refunds(url, None, prefix)

    assert [r["outcome"] for r in reports] == ["ok", "ok"]  # both believe they refunded
    assert sorted(r["confirmed_by_status"] for r in reports) == [False, True]
    assert [amount for _, amount in gateway.ledger[PAYMENT].refunds] == [Decimal("100.00")]
