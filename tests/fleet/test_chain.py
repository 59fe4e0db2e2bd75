"""The coordinated spacing in a session's chain, in virtual time on the memory coordinator.

An attempt held after its grant (here by a full connection pool) claims its start again
at the chain's innermost layer, so the interval counts from its real start; the end of
each exchange moves the next start further when it came later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import freedompay_async as fp
from freedompay_async import GatewayRequest, HttpResponse, MockTransport

from ..helpers import MERCHANT, SECRET, run_in_virtual_time, signed


def status_fields(pid: int, payment_status: str) -> list[tuple[str, str]]:
    """A status reply's fields naming the payment (unsigned)."""
    return [
        ("pg_payment_id", str(pid)),
        ("pg_status", "ok"),
        ("pg_payment_status", payment_status),
        ("pg_amount", "100.00"),
        ("pg_captured", "0"),
    ]


def _session(
    transport: MockTransport, clock: Callable[[], float], **options: object
) -> fp.AsyncSession:
    settings: dict[str, object] = {
        "retry": fp.RetryPolicy(attempts=1, deadline=None, clock=clock, sleep=asyncio.sleep),
        "spacing": fp.PaymentSpacing(1.0, clock=clock, sleep=asyncio.sleep),
        "limits": fp.Limits(max_connections=1),
        "log_attempts": False,
        **options,
    }
    return fp.AsyncSession(
        fp.Credentials(MERCHANT, SECRET), base_url="http://gw", transport=transport,
        **settings,  # type: ignore[arg-type]
    )  # fmt: skip


Made = Callable[[Callable[[], float]], fp.Coordinator | None]


def _run(coordinator: Made, slow: float = 0.0) -> list[tuple[int, float]]:
    async def main(clock: Callable[[], float]) -> list[tuple[int, float]]:
        sent: list[tuple[int, float]] = []

        async def answer(request: GatewayRequest) -> HttpResponse:
            pid = request.payment_id
            assert pid is not None
            sent.append((pid, clock() - 1000.0))
            await asyncio.sleep(0.5 if pid == 2 else slow)  # payment 2 holds the only slot
            return HttpResponse(200, signed(status_fields(pid, "success"), "status_v2"))

        async with _session(MockTransport(answer), clock, coordinator=coordinator(clock)) as s:
            first = asyncio.create_task(s.status(2))
            await asyncio.sleep(0)
            second = asyncio.create_task(s.status(1))  # granted now, held by the pool
            await asyncio.sleep(0.1)
            await asyncio.gather(first, second, s.status(1))
        return sent

    return run_in_virtual_time(main)


def test_an_attempt_held_after_its_grant_counts_from_its_real_start() -> None:
    sent = _run(lambda clock: fp.MemoryCoordinator(clock=clock))
    assert sent == [(2, 0.0), (1, 0.5), (1, 1.5)]


def test_the_in_process_spacing_does_the_same_without_a_coordinator() -> None:
    assert _run(lambda clock: None) == [(2, 0.0), (1, 0.5), (1, 1.5)]


def test_a_slow_exchange_moves_the_next_start_to_its_end() -> None:
    sent = _run(lambda clock: fp.MemoryCoordinator(clock=clock), slow=0.75)
    # payment 1's first exchange ends at 1.25: its request had reached the gateway by
    # then at the latest, so the next counts from there (with no coordinator: from 0.5)
    assert sent == [(2, 0.0), (1, 0.5), (1, 2.25)]


def test_a_wait_past_the_deadline_is_refused_unsent() -> None:
    async def main(clock: Callable[[], float]) -> tuple[bool, int]:
        sent: list[int] = []

        def answer(request: GatewayRequest) -> HttpResponse:
            pid = request.payment_id
            assert pid is not None
            sent.append(pid)
            return HttpResponse(200, signed(status_fields(pid, "success"), "status_v2"))

        retry = fp.RetryPolicy(attempts=1, deadline=0.5, clock=clock, sleep=asyncio.sleep)
        coordinator = fp.MemoryCoordinator(clock=clock)
        async with _session(
            MockTransport(answer), clock, coordinator=coordinator, retry=retry
        ) as s:
            await s.status(3)
            with pytest.raises(fp.DeadlineExceededError) as caught:
                await s.status(3)  # its slot is 1 s away, its deadline 0.5 s
        return caught.value.outcome_unknown, len(sent)

    assert run_in_virtual_time(main) == (False, 1)
