"""Per-payment spacing, on a virtual clock: requests about one payment are never closer
than the interval (retries and status queries included); other payments never wait."""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import freedompay_async as fp
from freedompay_async import GatewayRequest, HttpResponse, MockTransport
from freedompay_async._layers.spacing import (
    PaymentSpacing,
    PaymentSpacingMiddleware,
)

from ..helpers import (
    MERCHANT,
    SECRET,
    FakeClock,
    error_fields,
    ok_fields,
    run_in_virtual_time,
    signed,
)

CREDS = fp.Credentials(MERCHANT, SECRET)


def already_cancelled(pid: int) -> list[tuple[str, str]]:
    """A signed 10033 naming the payment: bound, so it settles without a status query
    (these tests are about spacing, not about replayed replies)."""
    return [("pg_payment_id", str(pid)), *error_fields(10033)]


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
            return HttpResponse(200, signed(already_cancelled(pid)))
        return HttpResponse(200, signed(ok_fields(pid)))


def session(transport: MockTransport, clock: FakeClock, interval: float) -> fp.AsyncSession:
    retry = fp.RetryPolicy(attempts=3, wait_initial=0.0, deadline=None, sleep=clock.sleep)
    return fp.AsyncSession(
        CREDS,
        base_url="http://gw",
        transport=transport,
        retry=retry,
        spacing=PaymentSpacing(interval, clock=clock, sleep=clock.sleep),
        settle=fp.SettlePolicy(clock=clock, sleep=clock.sleep),
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
        fp.AsyncSession(CREDS, settle=3)  # type: ignore[arg-type]


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
                return HttpResponse(200, signed(already_cancelled(pid)))
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


def test_a_slot_queued_far_ahead_outlives_the_tables_turnover() -> None:
    """Five requests about payment 7 at once go out at 0, 1.5, ... 6.0 s (the last slot
    ends at 7.5); the table turns over every interval, and every slot still holds."""

    async def main(clock: Callable[[], float]) -> list[float]:
        middleware = PaymentSpacingMiddleware(PaymentSpacing(1.5, clock=clock))
        never = asyncio.Event()
        started: list[float] = []

        async def hang(request: GatewayRequest) -> fp.GatewayReply:
            started.append(clock() - 1000.0)
            await never.wait()
            return fp.GatewayReply(())

        def request(pid: int) -> GatewayRequest:
            return GatewayRequest("cancel", "http://gw", "cancel", pid, (), b"", "x")

        def send(pid: int) -> Awaitable[fp.GatewayReply]:
            return middleware(request(pid), lambda r: middleware.gate(r, hang))

        queued = [asyncio.ensure_future(send(7)) for _ in range(5)]
        for other, at in enumerate((1.6, 3.2, 4.8, 6.4), start=100):
            await asyncio.sleep(at - (clock() - 1000.0))  # each turns the table over
            assert middleware.try_now(other)  # another payment is never held
            assert not middleware.try_now(7), f"payment 7's queued slot was forgotten at {at}"
        await asyncio.sleep(7.5 - (clock() - 1000.0))
        assert middleware.try_now(7)
        for task in queued:
            task.cancel()
        await asyncio.gather(*queued, return_exceptions=True)
        assert len(middleware._busy) == 0
        return started

    assert run_in_virtual_time(main) == [0.0, 1.5, 3.0, 4.5, 6.0]


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
            # Never early: by no more than float rounding (the end is kept as base +
            # tick + interval, the test subtracts; the two may differ in the last bit).
            assert previous is None or clock.now - previous >= 1.5 - 1e-9
            last[pid] = clock.now
        else:
            assert previous is not None and clock.now - previous < 1.5 + 1.5 / 200 + 1e-9


# Held after the slot: the in-flight cap, pacing. The interval counts from real starts.
# These run in virtual time (every sleep is an exact timer), as they race concurrent
# sleepers against each other.


class Slow:
    """Answers every request, recording ``(payment_id, operation, time)``: the answer
    about ``slow`` takes ``delay`` seconds (it holds its connection slot that long), and
    the first cancel answer of each payment in ``lose`` is lost."""

    def __init__(self, clock: Callable[[], float], *, slow: int = 1, delay: float = 1.0,
                 lose: frozenset[int] = frozenset()) -> None:  # fmt: skip
        self.clock = clock
        self.slow, self.delay, self.lose = slow, delay, set(lose)
        self.sent: list[tuple[int, str, float]] = []

    async def __call__(self, request: GatewayRequest) -> HttpResponse:
        pid = request.payment_id
        assert pid is not None
        self.sent.append((pid, request.operation, self.clock()))
        if pid == self.slow:
            await asyncio.sleep(self.delay)
        if request.operation == "status":
            return HttpResponse(200, signed(status_fields(pid, "success"), "status_v2"))
        if pid in self.lose:
            self.lose.discard(pid)
            raise fp.ConnectionLostError("lost after sending", payment_id=pid)
        return HttpResponse(200, signed(ok_fields(pid)))

    def times(self, pid: int) -> list[float]:
        return [round(at - 1000.0, 6) for p, _op, at in self.sent if p == pid]


def held_session(
    transport: MockTransport, clock: Callable[[], float], **options: object
) -> fp.AsyncSession:
    retry = fp.RetryPolicy(attempts=3, wait_initial=0.0, deadline=None, clock=clock)
    return fp.AsyncSession(
        CREDS,
        base_url="http://gw",
        transport=transport,
        retry=retry,
        spacing=PaymentSpacing(1.5, clock=clock),
        **options,  # type: ignore[arg-type]
    )


def test_an_attempt_held_by_a_full_connection_pool_counts_from_its_real_start() -> None:
    """Payment 2's first attempt passes its slot at once but waits a second for the
    only connection; its retry must still come 1.5 s after it really went out."""

    async def main(clock: Callable[[], float]) -> list[float]:
        slow = Slow(clock, lose=frozenset({2}))
        pool = fp.Limits(max_connections=1)
        async with held_session(MockTransport(slow), clock, limits=pool) as s:
            await asyncio.gather(s.cancel(1), s.cancel(2))
        return slow.times(2)

    assert run_in_virtual_time(main) == [1.0, 2.5]


def test_an_attempt_held_by_pacing_counts_from_its_real_start() -> None:
    async def main(clock: Callable[[], float]) -> list[float]:
        slow = Slow(clock, slow=0, lose=frozenset({9}))
        pacing = fp.Pacing(0.5, clock=clock)
        async with held_session(MockTransport(slow), clock, pacing=pacing) as s:
            await asyncio.gather(*(s.cancel(pid) for pid in (1, 2, 3, 4, 9)))
        return slow.times(9)

    assert run_in_virtual_time(main) == [2.0, 3.5]


def test_a_request_already_waiting_is_pushed_back_by_an_earlier_ones_hold() -> None:
    """Two status calls about payment 2 at once: the second waits for its slot while
    the first is held for the connection; the second's slot moves back by the hold."""

    async def main(clock: Callable[[], float]) -> list[float]:
        slow = Slow(clock)
        pool = fp.Limits(max_connections=1)
        async with held_session(MockTransport(slow), clock, limits=pool) as s:
            await asyncio.gather(s.status(1), s.status(2), s.status(2))
        return slow.times(2)

    assert run_in_virtual_time(main) == [1.0, 2.5]


@settings(max_examples=120, deadline=None)
@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from([1, 2, 3]),
            st.sampled_from([0.0, 0.4, 1.1]),
            st.sampled_from(["status", "cancel"]),
        ),
        min_size=2,
        max_size=9,
    ),
    connections=st.sampled_from([1, 2, 8]),
    paced=st.booleans(),
)
def test_no_two_attempts_about_one_payment_start_closer_than_the_interval(
    calls: list[tuple[int, float, str]], connections: int, paced: bool
) -> None:
    """Any mix of concurrent status calls and cancels (each payment's first cancel
    answer lost, so retried), slow answers, a small pool and pacing: every attempt
    about a payment starts at least the interval after the one before it."""

    async def main(clock: Callable[[], float]) -> list[tuple[int, str, float]]:
        sent: list[tuple[int, str, float]] = []
        delays = iter([delay for _pid, delay, _op in calls])
        lost: set[int] = set()

        async def answer(request: GatewayRequest) -> HttpResponse:
            pid = request.payment_id
            assert pid is not None
            sent.append((pid, request.operation, clock()))
            await asyncio.sleep(next(delays, 0.0))
            if request.operation == "status":
                return HttpResponse(200, signed(status_fields(pid, "success"), "status_v2"))
            if pid not in lost:
                lost.add(pid)
                raise fp.ConnectionLostError("lost after sending", payment_id=pid)
            return HttpResponse(200, signed(already_cancelled(pid)))

        options: dict[str, object] = {"limits": fp.Limits(max_connections=connections)}
        if paced:
            options["pacing"] = fp.Pacing(0.3, clock=clock)
        async with held_session(MockTransport(answer), clock, **options) as s:
            results = await asyncio.gather(
                *(s.status(pid) if op == "status" else s.cancel(pid) for pid, _d, op in calls),
                return_exceptions=True,
            )
            # a second cancel call about a payment is told it is already cancelled
            failed = [r for r in results if isinstance(r, BaseException)]
            assert all(isinstance(r, fp.AlreadyCancelledError) for r in failed), failed
        return sent

    sent = run_in_virtual_time(main)
    assert len(sent) >= len(calls)
    for pid, between in gaps(sent).items():
        assert all(gap >= 1.5 - 1e-9 for gap in between), (pid, between)


def test_an_attempt_that_fails_or_is_cancelled_before_it_starts_hands_its_turn_on() -> None:
    """The first attempt about payment 7 fails inside (before the gate), the second is
    cancelled while queued behind it: the third still goes, once, and nothing about
    the payment is left under way."""

    async def main(clock: Callable[[], float]) -> tuple[list[str], int]:
        middleware = PaymentSpacingMiddleware(PaymentSpacing(1.5, clock=clock))
        events: list[str] = []

        def request() -> GatewayRequest:
            return GatewayRequest("status", "http://gw", "status_v2", 7, (), b"", "x")

        async def fails_inside(request: GatewayRequest) -> fp.GatewayReply:
            await asyncio.sleep(0.2)  # e.g. waiting for a connection, then giving up
            events.append("first failed")
            raise fp.DeadlineExceededError("gave up", payment_id=7)

        async def sends(request: GatewayRequest) -> fp.GatewayReply:
            events.append(f"third sent at {clock() - 1000.0:.1f}")
            return fp.GatewayReply(())

        first = asyncio.ensure_future(middleware(request(), fails_inside))
        second = asyncio.ensure_future(middleware(request(), lambda r: middleware.gate(r, sends)))
        third = asyncio.ensure_future(middleware(request(), lambda r: middleware.gate(r, sends)))
        await asyncio.sleep(0.1)
        second.cancel()
        with pytest.raises(fp.DeadlineExceededError):
            await first
        with pytest.raises(asyncio.CancelledError):
            await second
        await third
        return events, len(middleware._busy)

    events, under_way = run_in_virtual_time(main)
    # the first attempt's slot stays reserved (spacing errs on the slow side)
    assert events == ["first failed", "third sent at 1.5"] and under_way == 0


def test_an_attempt_never_started_leaves_its_payment_free() -> None:
    """A caller's middleware may drop ``call_next(request)`` unawaited, or cancel its
    task before the first step (``wait_for`` with no time left): nothing about the
    payment may stay under way, or every later attempt about it would wait forever."""

    async def main(clock: Callable[[], float]) -> tuple[int, bool, list[float]]:
        middleware = PaymentSpacingMiddleware(PaymentSpacing(1.5, clock=clock))
        started: list[float] = []

        async def sends(request: GatewayRequest) -> fp.GatewayReply:
            started.append(clock() - 1000.0)
            return fp.GatewayReply(())

        def request() -> GatewayRequest:
            return GatewayRequest("status", "http://gw", "status_v2", 7, (), b"", "x")

        def attempt() -> Awaitable[fp.GatewayReply]:
            return middleware(request(), lambda r: middleware.gate(r, sends))

        dropped = attempt()
        dropped.close()  # type: ignore[attr-defined]
        early = asyncio.ensure_future(attempt())
        early.cancel()  # before its first step
        with pytest.raises(asyncio.CancelledError):
            await early
        free = middleware.try_now(7)
        await asyncio.wait_for(attempt(), 10)  # goes, and is not stuck behind them
        return len(middleware._busy), free, started

    under_way, free, started = run_in_virtual_time(main)
    assert (under_way, free) == (0, True)
    assert started == [1.5]  # after the slot try_now reserved at 0


def test_waiting_in_line_counts_against_the_deadline() -> None:
    """A status call queued behind a batch's attempt about the same payment (waiting
    for the batch's only slot for 30 s) gives up at its deadline, unsent."""

    async def main(clock: Callable[[], float]) -> tuple[float, list[tuple[int, str, float]]]:
        sent: list[tuple[int, str, float]] = []

        async def answer(request: GatewayRequest) -> HttpResponse:
            pid = request.payment_id
            assert pid is not None
            sent.append((pid, request.operation, clock() - 1000.0))
            if pid == 1:
                await asyncio.sleep(30)  # a slow answer holding the batch's only slot
            if request.operation == "status":
                return HttpResponse(200, signed(status_fields(pid, "success"), "status_v2"))
            return HttpResponse(200, signed(ok_fields(pid)))

        retry = fp.RetryPolicy(attempts=2, attempt_timeout=20.0, deadline=5.0, clock=clock)
        async with fp.AsyncSession(
            CREDS, base_url="http://gw", transport=MockTransport(answer), retry=retry,
            spacing=PaymentSpacing(1.5, clock=clock),
        ) as s:  # fmt: skip
            await s.status(7)  # payment 7's next slot: 1.5
            batch = asyncio.ensure_future(
                collect(s.cancel_many([7, 1], concurrency=1, reconcile=False))
            )
            await asyncio.sleep(2.0)  # the batch's cancel of 7 waits for the slot
            with pytest.raises(fp.DeadlineExceededError):
                await s.status(7)
            gave_up = clock() - 1000.0
            await batch
        return gave_up, sent

    gave_up, sent = run_in_virtual_time(main)
    assert gave_up == pytest.approx(7.0)  # its own deadline: 2.0 + 5.0
    assert [(pid, op) for pid, op, _at in sent].count((7, "status")) == 1  # only the first


async def collect(outcomes: AsyncIterator[fp.CancelOutcome]) -> list[fp.CancelOutcome]:
    return [outcome async for outcome in outcomes]
