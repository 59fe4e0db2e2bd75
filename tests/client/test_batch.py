"""cancel_many: exactly one outcome per input, bounded concurrency, clean cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest

import freedompay_async as fp
from freedompay_async import HttpResponse, MockTransport

from ..helpers import MERCHANT, SECRET, error_fields, ok_fields, signed

CREDS = fp.Credentials(MERCHANT, SECRET)


def by_id_transport(gate: asyncio.Event | None = None) -> tuple[MockTransport, dict[str, int]]:
    """Replies depend on the payment id: %7==0 not found (unsigned), %11==0 already
    cancelled (signed, naming no payment, as the gateway's errors do), %13==0 timeout
    (ambiguous), %17==0 pending; otherwise success."""
    stats = {"in_flight": 0, "peak": 0}

    async def respond(request: fp.GatewayRequest) -> HttpResponse:
        stats["in_flight"] += 1
        stats["peak"] = max(stats["peak"], stats["in_flight"])
        try:
            if gate is not None:
                await gate.wait()
            await asyncio.sleep(0)
            pid = request.payment_id
            assert pid is not None
            if pid % 7 == 0:
                return HttpResponse(
                    200,
                    b"<response><pg_status>error</pg_status>"
                    b"<pg_error_code>11068</pg_error_code></response>",
                )
            if pid % 11 == 0:
                return HttpResponse(200, signed(error_fields(10033)))
            if pid % 13 == 0:
                raise fp.ResponseTimeoutError("slow", payment_id=pid)
            if pid % 17 == 0:
                return HttpResponse(200, signed(ok_fields(pid, "pending")))
            return HttpResponse(200, signed(ok_fields(pid)))
        finally:
            stats["in_flight"] -= 1

    return MockTransport(respond), stats


def expected_state(pid: int) -> fp.OutcomeState:
    """Without reconciling: an unsigned "not found" or a signed "already cancelled" that
    names no payment proves nothing about this payment (unknown until status says)."""
    if pid % 7 == 0 or pid % 11 == 0:
        return fp.OutcomeState.UNKNOWN
    if pid % 13 == 0:
        return fp.OutcomeState.UNKNOWN
    if pid % 17 == 0:
        return fp.OutcomeState.PENDING
    return fp.OutcomeState.CANCELLED


def session(transport: MockTransport) -> fp.AsyncSession:
    return fp.AsyncSession(
        CREDS,
        base_url="http://gw",
        transport=transport,
        retry=fp.RetryPolicy.none(),
        spacing=None,  # these tests are about the pool, not about timing
        settle=fp.SettlePolicy(window=0),  # one status query settles or gives up
    )


async def test_every_input_gets_exactly_one_classified_outcome() -> None:
    transport, stats = by_id_transport()
    async with session(transport) as s:
        outcomes = [o async for o in s.cancel_many(range(1, 501), concurrency=8, reconcile=False)]
    assert sorted(o.payment_id for o in outcomes if o.payment_id) == list(range(1, 501))
    for o in outcomes:
        assert o.payment_id is not None
        assert o.state is expected_state(o.payment_id), o
        assert o.attempts == 1 and o.elapsed >= 0
    assert stats["peak"] <= 8


async def test_invalid_items_are_failed_outcomes_not_exceptions() -> None:
    transport, _ = by_id_transport()
    async with session(transport) as s:
        items: list[object] = [1, "abc", -5, "2", None, fp.CancelRequest(3)]
        outcomes = [o async for o in s.cancel_many(items, concurrency=2)]  # type: ignore[arg-type]
    assert len(outcomes) == 6
    bad = [o for o in outcomes if o.payment_id is None]
    assert {repr(o.item) for o in bad} == {"'abc'", "-5", "None"}
    assert all(
        o.state is fp.OutcomeState.FAILED and isinstance(o.error, fp.ValidationError) for o in bad
    )
    assert all(o.final for o in bad)


async def test_async_iterables_and_generators_are_read_lazily() -> None:
    transport, _ = by_id_transport()
    pulled = 0

    async def ids() -> AsyncIterator[int]:
        nonlocal pulled
        for pid in range(1, 101):
            pulled += 1
            yield pid

    async with session(transport) as s:
        seen = 0
        async for _ in s.cancel_many(ids(), concurrency=4):
            seen += 1
            # Never more than concurrency in flight + concurrency queued ahead of the reader.
            assert pulled <= seen + 2 * 4 + 1
    assert seen == 100


async def test_a_million_item_generator_is_not_materialised() -> None:
    transport, _ = by_id_transport()
    produced = 0

    def ids() -> Iterator[int]:
        nonlocal produced
        for pid in range(1, 1_000_001):
            produced += 1
            yield pid

    async with session(transport) as s:
        async with contextlib.aclosing(s.cancel_many(ids(), concurrency=5)) as outcomes:
            async for outcome in outcomes:
                if outcome.payment_id == 50:
                    break
    assert produced < 100


async def test_cancelling_the_consumer_leaves_no_task_behind() -> None:
    gate = asyncio.Event()
    transport, stats = by_id_transport(gate)
    before = asyncio.all_tasks()

    async def consume(s: fp.AsyncSession) -> None:
        async for _ in s.cancel_many(range(1, 10_000), concurrency=20):
            pass

    async with session(transport) as s:
        task = asyncio.create_task(consume(s))
        while stats["in_flight"] < 20:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert asyncio.all_tasks() == before
    assert stats["in_flight"] == 0


async def test_breaking_out_with_aclosing_stops_the_workers() -> None:
    transport, stats = by_id_transport()
    before = asyncio.all_tasks()
    async with session(transport) as s:
        async with contextlib.aclosing(s.cancel_many(range(1, 10_000), concurrency=10)) as outcomes:
            async for _ in outcomes:
                break
    assert asyncio.all_tasks() == before
    assert stats["in_flight"] == 0
    assert len(transport.requests) < 100


async def test_an_input_iterator_that_raises_still_reports_what_was_started() -> None:
    transport, _ = by_id_transport()

    def ids() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("bad input file")

    before = asyncio.all_tasks()
    seen: list[int | None] = []
    async with session(transport) as s:
        with pytest.raises(RuntimeError, match="bad input file"):
            async for outcome in s.cancel_many(ids(), concurrency=3):
                seen.append(outcome.payment_id)
    assert sorted(seen, key=str) == [1, 2]
    assert asyncio.all_tasks() == before


async def test_concurrency_must_be_positive() -> None:
    transport, _ = by_id_transport()
    async with session(transport) as s:
        with pytest.raises(fp.ConfigurationError):
            async for _ in s.cancel_many([1], concurrency=0):
                pass


def test_finality_of_outcomes() -> None:
    make = fp.CancelOutcome.from_error
    bound_not_found = fp.PaymentNotFoundError(11068, "x", signed=True, bound=True)
    unbound_not_found = fp.PaymentNotFoundError(11068, "x", signed=True)
    unsigned_not_found = fp.PaymentNotFoundError(11068, "x", signed=False)
    assert make(1, 1, bound_not_found, 0.0).final
    # A signed refusal that names no payment could be another payment's, replayed.
    assert not make(1, 1, unbound_not_found, 0.0).final
    assert make(1, 1, fp.NotCancelledError("x", state="captured", payment_status_raw=""), 0.0).final
    # An unsigned refusal could come from anyone on the path: try again later.
    assert not make(1, 1, unsigned_not_found, 0.0).final
    assert not make(1, 1, fp.TransientGatewayError(9999, "x", signed=True), 0.0).final
    assert make(1, None, fp.ValidationError("bad id"), 0.0).final
    assert not make(1, 1, fp.MalformedReplyError("404", http_status=404), 0.0).final
    ambiguous = make(1, 1, fp.ResponseTimeoutError("t"), 0.0)
    assert ambiguous.state is fp.OutcomeState.UNKNOWN and not ambiguous.final


def test_a_revoke_error_after_an_ambiguous_attempt_is_unknown() -> None:
    def result(earlier: bool) -> fp.CancelResult:
        return fp.CancelResult(
            1, 2, "ok", fp.RevokeStatus.ERROR, "error", earlier_maybe_processed=earlier
        )

    plain = fp.CancelOutcome.from_result(1, result(False), 0.0)
    assert plain.state is fp.OutcomeState.FAILED and not plain.final
    after_ambiguity = fp.CancelOutcome.from_result(1, result(True), 0.0)
    assert after_ambiguity.state is fp.OutcomeState.UNKNOWN


async def test_an_unexpected_exception_is_an_unknown_outcome_not_a_lost_batch() -> None:
    async def respond(request: fp.GatewayRequest) -> HttpResponse:
        if request.payment_id == 3:
            raise RuntimeError("a bug in a transport")
        assert request.payment_id is not None
        return HttpResponse(200, signed(ok_fields(request.payment_id)))

    async with session(MockTransport(respond)) as s:
        outcomes = {o.payment_id: o async for o in s.cancel_many(range(1, 6), concurrency=2)}
    assert sorted(outcomes) == [1, 2, 3, 4, 5]
    assert outcomes[3].state is fp.OutcomeState.UNKNOWN
    assert isinstance(outcomes[3].error, fp.InternalError)
    assert isinstance(outcomes[3].error.__cause__, RuntimeError)
    assert all(outcomes[p].state is fp.OutcomeState.CANCELLED for p in (1, 2, 4, 5))


async def test_closing_the_session_under_a_batch_reports_started_items_then_raises() -> None:
    transport, stats = by_id_transport()
    s = session(transport)
    outcomes: list[fp.CancelOutcome] = []
    with pytest.raises(fp.SessionClosedError):
        async for outcome in s.cancel_many(range(1, 1000), concurrency=4):
            outcomes.append(outcome)
            if len(outcomes) == 1:
                await s.aclose()
    assert len(outcomes) < 20 and len({o.payment_id for o in outcomes}) == len(outcomes)
    assert stats["in_flight"] == 0
