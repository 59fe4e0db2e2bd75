"""Several worker processes, one sandbox, one Redis: each money movement exactly once.

Four real worker processes (``worker.py``), each with its own session and its own
``RedisCoordinator.from_url(...)``, share one sandbox served by the test (status lags
clearings and refunds; scripted money faults: slow processing, lost replies, dropped
connections) and one real redis-server. They cancel, clear and refund overlapping
payments, all at once: every payment is worked on by two workers. The sandbox's ledger
must show each intended money movement exactly once, and no two requests about one
payment may arrive closer than the spacing.

The spacing is kept between the moments workers hand their requests to the transport;
at the gateway a gap is shorter by however much longer one request took to arrive and
be read than the other (a new connection, a busy event loop on either side: up to tens
of milliseconds while every worker starts at once). So, as the docs advise, the
workers keep the gateway's spacing plus a margin, and the test asserts the gateway's
spacing at the gateway.
"""

from __future__ import annotations

import collections
from decimal import Decimal
from typing import Any

from freedompay_async import AsyncSession, Credentials
from freedompay_async.sandbox import Fault, FaultPlan, SandboxGateway

from ..helpers import MERCHANT, SECRET
from .harness import closest_gap, config, run_fleet

WORKERS = 4
#: The spacing the gateway must see, and the one the workers keep (with a margin).
SPACING = 0.2
KEPT = SPACING + 0.05
CANCELS = range(101, 109)
CLEARINGS = range(201, 207)
#: Each refund payment's intended refunds, by worker (two of them twice the same amount).
REFUNDS: dict[int, list[tuple[int, str]]] = {
    301: [(0, "100.00"), (1, "50.00")],
    302: [(1, "100.00"), (2, "100.00")],
    303: [(2, "100.00"), (3, "50.00")],
    304: [(3, "200.00"), (0, "100.00")],
    305: [(0, "100.00"), (2, "100.00")],
    306: [(1, "300.00"), (3, "50.00")],
}


def _jobs() -> list[list[dict[str, Any]]]:
    jobs: list[list[dict[str, Any]]] = [[] for _ in range(WORKERS)]
    for pid in CANCELS:  # every cancel by two workers (a redelivered message)
        for worker in (pid % WORKERS, (pid + 1) % WORKERS):
            jobs[worker].append({"op": "cancel", "payment_id": pid})
    for pid in CLEARINGS:  # every clearing by two workers too
        for worker in (pid % WORKERS, (pid + 2) % WORKERS):
            jobs[worker].append({"op": "clear", "payment_id": pid})
    for pid, refunds in REFUNDS.items():  # two intended refunds each, by two workers
        for worker, amount in refunds:
            jobs[worker].append({"op": "refund", "payment_id": pid, "amount": amount})
    return jobs


async def _gateway() -> SandboxGateway:
    gateway = SandboxGateway(MERCHANT, SECRET, faults=FaultPlan(processing_delay=0.5))
    gateway.add_payments([*CANCELS, *CLEARINGS, *REFUNDS])
    return gateway


async def _clear_first(url: str, ids: list[int]) -> None:
    async with AsyncSession(Credentials(MERCHANT, SECRET), base_url=url, spacing=None) as fp:
        for pid in ids:
            await fp.clear(pid, reconcile=False)


def _inject_money_faults(gateway: SandboxGateway) -> None:
    # A payment's first request of the run gets the fault; a refund's first request is
    # its baseline status query, so the refund itself is the second.
    gateway.inject(101, Fault.RESET_AFTER)
    gateway.inject(103, Fault.SLOW_PROCESSING)
    gateway.inject(105, Fault.LOST_REPLY)
    gateway.inject(201, Fault.SLOW_PROCESSING)
    gateway.inject(203, Fault.LOST_REPLY)
    gateway.inject(205, Fault.RESET_AFTER)
    gateway.inject(301, None, Fault.SLOW_PROCESSING)
    gateway.inject(302, None, Fault.LOST_REPLY)
    gateway.inject(303, None, Fault.RESET_AFTER)
    gateway.inject(305, None, Fault.SLOW_PROCESSING)


async def test_a_fleet_moves_each_intended_amount_exactly_once(
    redis_url: str, prefix: str
) -> None:
    gateway = await _gateway()
    async with gateway.serve() as url:
        gateway.status_lag = 0
        await _clear_first(url, list(REFUNDS))
        gateway.status_lag = 0.3
        _inject_money_faults(gateway)
        start = gateway.clock()
        configs = [
            config(url, jobs, redis_url=redis_url, prefix=prefix, spacing=KEPT)
            for jobs in _jobs()
        ]
        reports = await run_fleet(configs)

    assert len(reports) == sum(len(jobs) for jobs in _jobs())
    assert [r for r in reports if r["outcome_unknown"]] == []
    done = collections.Counter((r["op"], r["payment_id"]) for r in reports if r["outcome"] == "ok")
    for pid in CANCELS:
        entry = gateway.ledger[pid]
        assert (entry.state, entry.cancellations) == ("cancelled", 1)
        assert done["cancel", pid] >= 1
    for pid in CLEARINGS:
        entry = gateway.ledger[pid]
        assert (entry.state, entry.clearings, entry.money_movements) == ("cleared", 1, 1)
        assert done["clear", pid] == 1  # the other worker is told it was cleared before
    for pid, refunds in REFUNDS.items():
        entry = gateway.ledger[pid]
        assert sorted(amount for _, amount in entry.refunds) == sorted(
            Decimal(amount) for _, amount in refunds
        ), pid
        assert done["refund", pid] == len(refunds)
    outcomes = collections.Counter(r["outcome"] for r in reports)
    assert set(outcomes) <= {"ok", "AlreadyCancelledError", "AlreadyClearedError"}, outcomes
    for pid in [*CANCELS, *CLEARINGS, *REFUNDS]:
        entry = gateway.ledger[pid]
        assert closest_gap(entry, since=start) >= SPACING, (pid, entry.arrivals)
