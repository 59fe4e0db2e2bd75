"""Per-payment spacing, on a virtual clock: requests about one payment are never closer
than the interval (retries and status queries included); other payments never wait."""

from __future__ import annotations

import asyncio
import collections
import itertools

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import freedompay_async as fp
from freedompay_async import GatewayRequest, HttpResponse, MockTransport
from freedompay_async._spacing import PaymentSpacing, PaymentSpacingMiddleware

from ..helpers import MERCHANT, SECRET, FakeClock, error_fields, ok_fields, signed

CREDS = fp.Credentials(MERCHANT, SECRET)


def status_fields(pid: int, payment_status: str) -> list[tuple[str, str]]:
    return [
        ("pg_payment_id", str(pid)),
        ("pg_status", "ok"),
        ("pg_payment_status", payment_status),
        ("pg_amount", "100.00"),
        ("pg_captured", "0"),
    ]


class Recorder:
    """Answers every request and records ``(payment_id, operation, virtual time)``."""

    def __init__(self, clock: FakeClock, lose_first: int = 0) -> None:
        self.clock = clock
        self.lose_first = lose_first  # per payment: this many cancel answers are lost
        self.sent: list[tuple[int, str, float]] = []
        self.cancels: collections.Counter[int] = collections.Counter()

    def __call__(self, request: GatewayRequest) -> HttpResponse:
        pid = request.payment_id
        assert pid is not None
        self.sent.append((pid, request.operation, self.clock()))
        if request.operation == "status":
            return HttpResponse(200, signed(status_fields(pid, "success"), "status_v2"))
        self.cancels[pid] += 1
        if self.cancels[pid] <= self.lose_first:
            raise fp.ConnectionLostError("lost after sending", payment_id=pid)
        if self.cancels[pid] > 1:
            return HttpResponse(200, signed(error_fields(10033)))
        return HttpResponse(200, signed(ok_fields(pid)))


def session(transport: MockTransport, clock: FakeClock, interval: float) -> fp.AsyncSession:
    retry = fp.RetryPolicy(attempts=3, wait_initial=0.0, deadline=None, sleep=clock.sleep)
    return fp.AsyncSession(
        CREDS,
        base_url="http://gw",
        transport=transport,
        retry=retry,
        spacing=PaymentSpacing(interval, clock=clock, sleep=clock.sleep),
    )


def gaps(sent: list[tuple[int, str, float]]) -> dict[int, list[float]]:
    times: dict[int, list[float]] = collections.defaultdict(list)
    for pid, _op, at in sent:
        times[pid].append(at)
    return {pid: [b - a for a, b in itertools.pairwise(ts)] for pid, ts in times.items()}


@pytest.mark.parametrize("interval", [1.5, 2.0])
async def test_retries_and_status_queries_of_one_payment_keep_the_interval(
    interval: float,
) -> None:
    clock = FakeClock()
    # Two lost answers per payment: retry, then status, then a second send.
    recorder = Recorder(clock, lose_first=3)
    transport = MockTransport(recorder)
    async with session(transport, clock, interval) as s:
        outcomes = [o async for o in s.cancel_many(range(1, 41), concurrency=40)]
    assert {o.state for o in outcomes} == {fp.OutcomeState.ALREADY_CANCELLED}
    per_payment = gaps(recorder.sent)
    assert all(len(g) >= 4 for g in per_payment.values())  # 3 cancels, a status, a resend
    assert min(min(g) for g in per_payment.values()) >= interval
    ops = {op for _pid, op, _at in recorder.sent}
    assert ops == {"cancel", "status"}


async def test_other_payments_are_not_held() -> None:
    clock = FakeClock()
    recorder = Recorder(clock)
    async with session(MockTransport(recorder), clock, 1.5) as s:
        outcomes = [o async for o in s.cancel_many(range(1, 201), concurrency=50)]
    assert all(o.state is fp.OutcomeState.CANCELLED for o in outcomes)
    assert {at for _pid, _op, at in recorder.sent} == {1000.0}  # nobody waited
    assert clock.sleeps == []


async def test_the_table_forgets_payments_whose_interval_has_passed() -> None:
    clock = FakeClock()
    middleware = PaymentSpacingMiddleware(PaymentSpacing(1.5, clock=clock, sleep=clock.sleep))
    transport = MockTransport(Recorder(clock))
    async with session(transport, clock, 1.5):
        pass
    replies: list[int] = []

    async def call_next(request: GatewayRequest) -> fp.GatewayReply:
        replies.append(request.payment_id or 0)
        return fp.GatewayReply(())

    for pid in range(1, 1001):
        request = GatewayRequest("cancel", "http://gw", "cancel", pid, (), b"", "x")
        await middleware(request, call_next)
    assert len(middleware) == 1000
    clock.now += 1.6
    await middleware(GatewayRequest("cancel", "http://gw", "cancel", 5, (), b"", "x"), call_next)
    assert len(middleware) == 1 and replies[-1] == 5


def test_the_interval_must_be_positive() -> None:
    for bad in (0, -1.0, True, "1.5"):
        with pytest.raises(fp.ConfigurationError):
            PaymentSpacing(bad)  # type: ignore[arg-type]


async def test_concurrent_requests_about_one_payment_queue_at_the_interval() -> None:
    clock = FakeClock()
    recorder = Recorder(clock)
    async with session(MockTransport(recorder), clock, 1.5) as s:
        results = await asyncio.gather(*(s.status(7) for _ in range(6)), s.status(8))
    assert all(r.held for r in results)
    sevens = sorted(at for pid, _op, at in recorder.sent if pid == 7)
    assert sevens == [1000.0 + 1.5 * i for i in range(6)]
    assert [at for pid, _op, at in recorder.sent if pid == 8] == [1000.0]


def test_the_session_refuses_a_spacing_that_is_not_one() -> None:
    with pytest.raises(fp.ConfigurationError):
        fp.AsyncSession(CREDS, spacing=1.5)  # type: ignore[arg-type]
    with pytest.raises(fp.ConfigurationError):
        fp.AsyncSession(CREDS, reconcile_rounds=0)


async def test_a_batch_keeps_other_payments_moving_while_one_waits_for_its_slot() -> None:
    """concurrency=1: payment 1's retry waits for its slot, and the batch's one slot
    goes to payments 2-5 meanwhile (the wait ends only once they have been answered)."""
    clock = FakeClock()
    others_done = asyncio.Event()
    answered: list[int] = []
    in_flight = peak = 0

    async def respond(request: GatewayRequest) -> HttpResponse:
        nonlocal in_flight, peak
        pid = request.payment_id
        assert pid is not None
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0)
            if pid == 1 and request.attempt == 1:
                raise fp.ConnectionLostError("lost after sending", payment_id=pid)
            answered.append(pid)
            if sorted(answered) == [2, 3, 4, 5]:
                others_done.set()
            if pid == 1:
                return HttpResponse(200, signed(error_fields(10033)))
            return HttpResponse(200, signed(ok_fields(pid)))
        finally:
            in_flight -= 1

    async def wait_for_others(_seconds: float) -> None:
        await others_done.wait()

    retry = fp.RetryPolicy(attempts=2, wait_initial=0.0, deadline=None, sleep=clock.sleep)
    spacing = PaymentSpacing(1.5, clock=clock, sleep=wait_for_others)
    async with fp.AsyncSession(
        CREDS, base_url="http://gw", transport=MockTransport(respond), retry=retry,
        spacing=spacing,
    ) as s:  # fmt: skip

        async def collect() -> list[fp.CancelOutcome]:
            return [o async for o in s.cancel_many(range(1, 6), concurrency=1, reconcile=False)]

        outcomes = await asyncio.wait_for(collect(), timeout=30)  # a hang guard only
    assert {o.payment_id: o.state for o in outcomes}[1] is fp.OutcomeState.CANCELLED
    assert answered[-1] == 1 and sorted(answered) == [1, 2, 3, 4, 5]
    assert peak == 1  # never more than the batch's concurrency in flight


async def test_a_wait_that_would_outlast_the_deadline_is_refused_unsent() -> None:
    clock = FakeClock()
    middleware = PaymentSpacingMiddleware(PaymentSpacing(1.5, clock=clock, sleep=clock.sleep))
    sent: list[GatewayRequest] = []

    async def call_next(request: GatewayRequest) -> fp.GatewayReply:
        sent.append(request)
        return fp.GatewayReply(())

    first = GatewayRequest("status", "http://gw", "status_v2", 9, (), b"", "x")
    await middleware(first, call_next)
    late = attrs.evolve(first, deadline=clock() + 1.0, timeout=5.0)
    with pytest.raises(fp.DeadlineExceededError):
        await middleware(late, call_next)
    in_time = attrs.evolve(first, deadline=clock() + 2.0, timeout=5.0)
    await middleware(in_time, call_next)
    assert len(sent) == 2 and sent[1].timeout is not None and sent[1].timeout <= 2.0


async def test_a_slot_queued_far_ahead_outlives_the_tables_turnover() -> None:
    """Five requests about payment 7 at once queue to 1006.0 (their last slot ends at
    1007.5); the table turns over every interval, and the slot still holds."""
    clock = FakeClock()
    middleware = PaymentSpacingMiddleware(PaymentSpacing(1.5, clock=clock, sleep=clock.sleep))
    never = asyncio.Event()

    async def call_next(request: GatewayRequest) -> fp.GatewayReply:
        await never.wait()
        return fp.GatewayReply(())

    def request(pid: int) -> GatewayRequest:
        return GatewayRequest("cancel", "http://gw", "cancel", pid, (), b"", "x")

    queued = [asyncio.ensure_future(middleware(request(7), call_next)) for _ in range(5)]
    for other, now in enumerate((1001.6, 1003.2, 1004.8, 1006.4), start=100):
        clock.now = now  # each of these turns the table over
        assert middleware.try_now(other)  # another payment is never held
        assert not middleware.try_now(7), f"payment 7's queued slot was forgotten at {now}"
    clock.now = 1007.5
    assert middleware.try_now(7)
    for task in queued:
        task.cancel()
    await asyncio.gather(*queued, return_exceptions=True)


async def test_a_worker_back_from_a_spacing_wait_goes_before_new_items() -> None:
    """concurrency=1, 20 payments: payment 1's retry waits for its slot; once the wait
    is over it is sent next, not after every other payment of the batch."""
    clock = FakeClock()
    answered: list[int] = []
    two_others = asyncio.Event()

    async def respond(request: GatewayRequest) -> HttpResponse:
        pid = request.payment_id
        assert pid is not None
        await asyncio.sleep(0)
        if pid == 1 and request.attempt == 1:
            raise fp.ConnectionLostError("lost after sending", payment_id=pid)
        answered.append(pid)
        if len(answered) >= 2:
            two_others.set()
        if pid == 1:
            return HttpResponse(200, signed(error_fields(10033)))
        return HttpResponse(200, signed(ok_fields(pid)))

    async def wait_for_two(_seconds: float) -> None:
        await two_others.wait()

    retry = fp.RetryPolicy(attempts=2, wait_initial=0.0, deadline=None, sleep=clock.sleep)
    spacing = PaymentSpacing(1.5, clock=clock, sleep=wait_for_two)
    async with fp.AsyncSession(
        CREDS, base_url="http://gw", transport=MockTransport(respond), retry=retry,
        spacing=spacing,
    ) as s:  # fmt: skip
        outcomes = [o async for o in s.cancel_many(range(1, 21), concurrency=1, reconcile=False)]
    assert len(outcomes) == 20
    assert answered.index(1) <= 3, answered  # two others, at most one more in flight, then 1


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(1, 3), st.floats(0, 2.0)), max_size=60))
def test_the_direct_check_never_lets_a_payment_in_early_nor_much_late(
    steps: list[tuple[int, float]],
) -> None:
    """``try_now`` at random times: accepted requests of one payment are at least the
    interval apart, and one is refused only within the interval plus one tick."""
    clock = FakeClock()
    middleware = PaymentSpacingMiddleware(PaymentSpacing(1.5, clock=clock, sleep=clock.sleep))
    last: dict[int, float] = {}
    for pid, dt in steps:
        clock.now += dt
        accepted = middleware.try_now(pid)
        previous = last.get(pid)
        if accepted:
            assert previous is None or clock.now - previous >= 1.5
            last[pid] = clock.now
        else:
            assert previous is not None and clock.now - previous < 1.5 + 1.5 / 200 + 1e-9
