"""The money faults: SLOW_PROCESSING (applied late) and LOST_REPLY (applied, never answered).

Everything runs in virtual time: the sandbox serves on loopback on an event loop whose
clock jumps to the next timer, so a 2.5 s processing delay or a 60 s hold costs nothing.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

import aiohttp
import pytest

from freedompay_async import (
    AsyncSession,
    CancelResult,
    Credentials,
    ResponseTimeoutError,
    RetryPolicy,
    SettlePolicy,
)
from freedompay_async.sandbox import Fault, FaultPlan, LedgerEntry, SandboxGateway, add_arguments
from freedompay_async.sandbox._command import gateway_from_args

from ..helpers import MERCHANT, SECRET, run_in_virtual_time
from .raw import ask, fields_for, post

OPERATIONS = ["cancel", "status_v2", "clearing", "refund"]


def applied(entry: LedgerEntry, script: str) -> bool:
    """Whether ``script``'s one request about the payment took effect."""
    if script == "cancel":
        return entry.state == "cancelled"
    if script == "status_v2":
        return entry.status_requests == 1
    if script == "clearing":
        return entry.clearings == 1
    return len(entry.refunds) == 1


def gateway(**plan: float) -> SandboxGateway:
    gw = SandboxGateway(MERCHANT, SECRET, faults=FaultPlan(**plan), status_lag=0)  # type: ignore[arg-type]
    gw.add_payments([1, 2])
    return gw


async def prepare(url: str, script: str) -> None:
    """A refund needs a cleared payment: clear payment 1 first, unfaulted."""
    if script == "refund":
        await ask(url, "clearing", 1)


# -- the plan ----------------------------------------------------------------------------------


def test_money_kinds_are_opt_in_and_seeded_plans_fault_as_before() -> None:
    assert (
        FaultPlan().kinds
        == FaultPlan.DEFAULT_KINDS
        == (
            Fault.RESET_BEFORE,
            Fault.RESET_AFTER,
            Fault.HTTP_503,
            Fault.HTTP_429,
            Fault.ERROR_9999,
            Fault.GARBAGE,
            Fault.SLOW,
            Fault.FORGED,
        )
    )
    assert FaultPlan.MONEY_KINDS == (Fault.SLOW_PROCESSING, Fault.LOST_REPLY)
    plan = FaultPlan(rate=0.3, seed=42)
    first = [(p, n, plan.choose(p, n)) for p in range(1, 16) for n in range(2)]
    # Pinned from the plan as it was before the money kinds existed.
    assert [(p, n, f.value) for p, n, f in first if f is not None] == [
        (1, 1, "reset_before"),
        (5, 0, "error_9999"),
        (7, 0, "http_429"),
        (8, 1, "http_503"),
        (9, 1, "garbage"),
        (11, 0, "reset_before"),
        (12, 0, "http_429"),
        (13, 1, "slow"),
        (14, 0, "reset_before"),
        (15, 0, "forged"),
    ]
    money = FaultPlan(rate=1.0, kinds=FaultPlan.DEFAULT_KINDS + FaultPlan.MONEY_KINDS)
    drawn = {money.choose(p, 0) for p in range(1, 300)}
    assert set(FaultPlan.MONEY_KINDS) <= drawn


def test_processing_delay_and_parsing() -> None:
    assert FaultPlan().processing_delay == 2.5
    for bad in (-0.1, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            FaultPlan(processing_delay=bad)
    assert Fault.parse("SLOW_PROCESSING") is Fault.SLOW_PROCESSING
    assert Fault.parse("lost_reply") is Fault.LOST_REPLY
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--port=0",
            "--fault-rate=0.5",
            "--faults=slow_processing,lost_reply",
            "--processing-delay=0.75",
        ]
    )
    assert gateway_from_args(args).faults == FaultPlan(
        rate=0.5, kinds=FaultPlan.MONEY_KINDS, processing_delay=0.75
    )


# -- SLOW_PROCESSING -----------------------------------------------------------------------------


@pytest.mark.parametrize("script", OPERATIONS)
def test_slow_processing_applies_the_operation_after_the_delay(script: str) -> None:
    async def main(clock: Callable[[], float]) -> tuple[LedgerEntry, LedgerEntry, str, float]:
        gw = gateway(processing_delay=2.5)
        async with gw.serve() as url:
            await prepare(url, script)
            gw.inject(1, Fault.SLOW_PROCESSING)
            start = clock()
            answer = asyncio.create_task(ask(url, script, 1))
            await asyncio.sleep(2.4)
            before = gw.ledger[1]
            reply = await answer
            took = clock() - start
        return before, gw.ledger[1], reply["pg_status"], took

    before, after, status, took = run_in_virtual_time(main)
    assert not applied(before, script)
    assert applied(after, script)
    assert status == "ok" and took >= 2.5
    assert after.requests == before.requests  # counted once, when it arrived


def test_a_client_that_gave_up_sees_nothing_yet_and_the_money_moves_later() -> None:
    async def main(clock: Callable[[], float]) -> list[object]:
        gw = gateway(processing_delay=2.5)
        seen: list[object] = []
        async with gw.serve() as url:
            gw.inject(1, Fault.SLOW_PROCESSING)
            start = clock()
            with pytest.raises(TimeoutError):
                await ask_with_timeout(url, "clearing", 1, 1.0)
            seen.append((await ask(url, "status_v2", 1))["pg_captured"])
            seen.append(gw.ledger[1].state)
            await asyncio.sleep(start + 2.5 - clock())
            seen.append((await ask(url, "status_v2", 1))["pg_captured"])
            seen.append(gw.ledger[1].money_movements)
        return seen

    assert run_in_virtual_time(main) == ["0", "held", "1", 1]


async def ask_with_timeout(url: str, script: str, pid: int, limit: float) -> dict[str, str]:
    return await post(url, script, fields_for(script, pid), limit=limit)


def test_a_blind_refund_retry_during_slow_processing_refunds_twice() -> None:
    # What the fault is for: a refund is not idempotent, so re-sending one whose
    # answer is late moves the money twice. A careful client asks first (over time).
    async def main(_clock: Callable[[], float]) -> LedgerEntry:
        gw = gateway(processing_delay=2.5)
        async with gw.serve() as url:
            await ask(url, "clearing", 1)
            gw.inject(1, Fault.SLOW_PROCESSING)
            with pytest.raises(TimeoutError):
                await ask_with_timeout(url, "refund", 1, 1.0)
            assert (await ask(url, "refund", 1))["pg_status"] == "ok"  # the blind retry
            await asyncio.sleep(2.0)
        return gw.ledger[1]

    entry = run_in_virtual_time(main)
    assert entry.refund_requests == 2
    assert len(entry.refunds) == 2
    assert entry.money_movements == 3  # one clearing, two refunds


# -- LOST_REPLY -----------------------------------------------------------------------------------


@pytest.mark.parametrize("script", OPERATIONS)
def test_lost_reply_applies_and_the_client_times_out(script: str) -> None:
    async def main(_clock: Callable[[], float]) -> tuple[LedgerEntry, BaseException]:
        gw = gateway(processing_delay=2.5)
        async with gw.serve() as url:
            await prepare(url, script)
            gw.inject(1, Fault.LOST_REPLY)
            try:
                await ask_with_timeout(url, script, 1, 20.0)
            except Exception as exc:  # the test inspects what it was
                error: BaseException = exc
            else:
                raise AssertionError("a lost reply was answered")
        return gw.ledger[1], error

    entry, error = run_in_virtual_time(main)
    assert applied(entry, script)
    assert isinstance(error, TimeoutError), repr(error)
    assert not isinstance(error, aiohttp.ServerDisconnectedError)


def test_lost_reply_through_the_session_is_a_timeout_not_a_reset() -> None:
    async def main(
        clock: Callable[[], float],
    ) -> tuple[BaseException, LedgerEntry, int, CancelResult, LedgerEntry]:
        gw = gateway()
        gw.add_payments([3])
        gw.inject(1, Fault.LOST_REPLY)
        gw.inject(3, Fault.LOST_REPLY)
        credentials = Credentials(MERCHANT, SECRET)
        retry = RetryPolicy.none(attempt_timeout=5.0)
        settle = SettlePolicy(window=10.0, clock=clock)  # its waits are virtual here too
        async with (
            gw.serve() as url,
            AsyncSession(credentials, base_url=url, retry=retry, settle=settle) as fp,
        ):
            with pytest.raises(ResponseTimeoutError) as info:
                await fp.cancel(1, reconcile=False)  # what the exchange itself gives
            other = await fp.cancel(2)  # the pool survives
            settled = await fp.cancel(3)  # by default, status settles the lost reply
        return info.value, gw.ledger[1], other.payment_id, settled, gw.ledger[3]

    error, entry, other, settled, entry3 = run_in_virtual_time(main)
    assert isinstance(error, ResponseTimeoutError) and error.outcome_unknown
    assert entry.state == "cancelled" and entry.cancellations == 1
    assert other == 2
    assert settled.confirmed_by_status and settled.revoke_id == entry3.revoke_id
    assert (entry3.cancel_requests, entry3.cancellations, entry3.status_requests) == (1, 1, 1)


def test_a_lost_reply_is_dropped_after_its_bound() -> None:
    async def main(clock: Callable[[], float]) -> tuple[BaseException, float]:
        gw = gateway(processing_delay=0.01)  # the hold is at least 60 s anyway
        async with gw.serve() as url:
            gw.inject(1, Fault.LOST_REPLY)
            start = clock()
            with pytest.raises(aiohttp.ClientConnectionError) as info:
                await ask(url, "cancel", 1)  # no client timeout at all
            return info.value, clock() - start

    error, held = run_in_virtual_time(main)
    assert isinstance(error, aiohttp.ServerDisconnectedError)
    assert held >= 60.0


def test_shutdown_releases_held_replies_at_once_and_finishes_slow_operations() -> None:
    async def main(clock: Callable[[], float]) -> tuple[object, ...]:
        gw = gateway(processing_delay=2.5)
        gw.inject(1, Fault.SLOW_PROCESSING)
        gw.inject(2, Fault.LOST_REPLY)
        start = clock()
        ended: dict[str, float] = {}
        async with gw.serve() as url:
            slow = asyncio.create_task(ask(url, "clearing", 1))
            lost = asyncio.create_task(ask(url, "cancel", 2))
            slow.add_done_callback(lambda _: ended.setdefault("slow", clock() - start))
            lost.add_done_callback(lambda _: ended.setdefault("lost", clock() - start))
            await asyncio.sleep(0.5)
        # serve() has returned: the held cancel reply was dropped as the shutdown began,
        # the clearing was applied and answered once its processing delay was over.
        results = await asyncio.gather(slow, lost, return_exceptions=True)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return ended, results, gw.ledger[1].state, gw.ledger[2].state, left

    ended, results, cleared, cancelled, left = run_in_virtual_time(main)
    assert isinstance(results, list)
    assert isinstance(results[0], dict) and results[0]["pg_status"] == "ok"
    assert isinstance(results[1], aiohttp.ServerDisconnectedError)
    assert (cleared, cancelled) == ("cleared", "cancelled")
    assert ended == {"lost": pytest.approx(0.5), "slow": pytest.approx(2.5)}
    assert left == []
