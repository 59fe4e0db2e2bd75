"""Each rule of reconciling an ambiguous cancel, on a scripted in-memory gateway."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

import pytest

import freedompay_async as fp
from freedompay_async import GatewayRequest, HttpResponse, MockTransport
from freedompay_async._session.batch import run_cancel_many
from freedompay_async._settling.cancel import (
    Reconciled,
    SettledBy,
)
from freedompay_async._wire.xml import render_response

from ..helpers import MERCHANT, SECRET, FakeClock, error_fields, ok_fields, signed

CREDS = fp.Credentials(MERCHANT, SECRET)


def status_reply(pid: int, payment_status: str, **extra: str) -> HttpResponse:
    fields = [("pg_payment_id", str(pid)), ("pg_status", "ok"),
              ("pg_payment_status", payment_status), *extra.items()]  # fmt: skip
    return HttpResponse(200, signed(fields, "status_v2"))


def lost(request: GatewayRequest) -> HttpResponse:
    raise fp.ConnectionLostError("dropped after sending", payment_id=request.payment_id)


Answer = Callable[[GatewayRequest], HttpResponse]


def gateway(cancels: list[Answer], statuses: list[Answer]) -> tuple[MockTransport, dict[str, int]]:
    """Answers the n-th cancel and n-th status with the n-th scripted answer."""
    seen: collections.Counter[str] = collections.Counter()

    def answer(request: GatewayRequest) -> HttpResponse:
        script = cancels if request.operation == "cancel" else statuses
        n = seen[request.operation]
        seen[request.operation] += 1
        return script[min(n, len(script) - 1)](request)

    return MockTransport(answer), seen  # type: ignore[return-value]


def ok(request: GatewayRequest) -> HttpResponse:
    assert request.payment_id is not None
    return HttpResponse(200, signed(ok_fields(request.payment_id)))


async def run(transport: MockTransport) -> fp.CancelOutcome:
    async with fp.AsyncSession(
        CREDS, base_url="http://gw", transport=transport, retry=fp.RetryPolicy.none(), spacing=None
    ) as s:
        outcomes = [o async for o in s.cancel_many([5], concurrency=1)]
    assert len(outcomes) == 1
    return outcomes[0]


@pytest.mark.parametrize(
    ("statuses", "state", "settled_by", "cancels_sent"),
    [
        ([lambda r: status_reply(5, "revoked")], fp.OutcomeState.CANCELLED, "status", 1),
        ([lambda r: status_reply(5, "success", pg_captured="0")], fp.OutcomeState.CANCELLED,
         "resent", 2),
        ([lambda r: HttpResponse(200, signed(error_fields(11068), "status_v2"))],
         fp.OutcomeState.FAILED, "status", 1),
        ([lambda r: status_reply(5, "success", pg_captured="1")], fp.OutcomeState.FAILED,
         "status", 1),
        ([lambda r: status_reply(5, "pending")], fp.OutcomeState.UNKNOWN, None, 1),
        ([lost], fp.OutcomeState.UNKNOWN, None, 1),
    ],
)  # fmt: skip
async def test_what_status_says_decides_the_outcome(
    statuses: list[Answer], state: fp.OutcomeState, settled_by: str | None, cancels_sent: int
) -> None:
    transport, seen = gateway([lost, ok], statuses)
    outcome = await run(transport)
    assert (outcome.state, outcome.settled_by) == (state, settled_by)
    assert seen["cancel"] == cancels_sent
    if state is fp.OutcomeState.UNKNOWN:
        # A failing status query is asked again each round; "pending" ends at once.
        assert seen["status"] == (3 if statuses == [lost] else 1)
        assert isinstance(outcome.error, fp.ConnectionLostError)


async def test_a_forged_status_is_never_believed() -> None:
    genuine = status_reply(5, "revoked").body
    start = genuine.index(b"<pg_sig>") + len(b"<pg_sig>")
    wrong = b"0" if genuine[start : start + 1] != b"0" else b"1"
    body = genuine[:start] + wrong + genuine[start + 1 :]  # well-formed, signature wrong
    transport, seen = gateway([lost], [lambda r: HttpResponse(200, body)])
    outcome = await run(transport)
    assert outcome.state is fp.OutcomeState.UNKNOWN and seen["cancel"] == 1
    assert seen["status"] == 3  # refused each round, never believed


async def test_a_resend_that_is_lost_again_asks_status_again() -> None:
    transport, seen = gateway(
        [lost, lost, ok],
        [lambda r: status_reply(5, "success"), lambda r: status_reply(5, "success")],
    )
    outcome = await run(transport)
    assert (outcome.state, outcome.settled_by) == (fp.OutcomeState.CANCELLED, "resent")
    assert (seen["cancel"], seen["status"]) == (3, 2) and outcome.attempts == 5


def cancel_reply(revoke_status: str) -> Answer:
    def answer(request: GatewayRequest) -> HttpResponse:
        assert request.payment_id is not None
        return HttpResponse(200, signed(ok_fields(request.payment_id, revoke_status)))

    return answer


def status_of(payment_status: str, **extra: str) -> Answer:
    def answer(request: GatewayRequest) -> HttpResponse:
        assert request.payment_id is not None
        return status_reply(request.payment_id, payment_status, **extra)

    return answer


GONE = {
    "captured": status_of("success", pg_captured="1"),
    "refunded": status_of("success", pg_captured="1", pg_refund_amount="1.00"),
    "failed": status_of("failed"),
}
#: A verified answer that leaves the outcome open: a revoke status nobody knows, or
#: "error" after a first attempt that was lost after sending (and may have been acted on).
AMBIGUOUS_RESULTS = {"weird": [cancel_reply("weird")], "error": [lost, cancel_reply("error")]}


def retrying_session(transport: MockTransport) -> fp.AsyncSession:
    clock = FakeClock()
    return fp.AsyncSession(
        CREDS, base_url="http://gw", transport=transport, spacing=None,
        retry=fp.RetryPolicy(sleep=clock.sleep, clock=clock, attempt_timeout=None, deadline=None),
    )  # fmt: skip


@pytest.mark.parametrize("gone", sorted(GONE))
@pytest.mark.parametrize("first", sorted(AMBIGUOUS_RESULTS))
async def test_an_ambiguous_result_then_a_gone_hold_is_not_cancelled(first: str, gone: str) -> None:
    transport, seen = gateway(AMBIGUOUS_RESULTS[first], [GONE[gone]])
    async with retrying_session(transport) as s:
        async with asyncio.timeout(60):  # guards against a hang only; never reached
            outcomes = [o async for o in s.cancel_many([5], concurrency=1)]
    [outcome] = outcomes
    assert (outcome.state, outcome.settled_by) == (fp.OutcomeState.FAILED, "status")
    assert isinstance(outcome.error, fp.NotCancelledError) and outcome.error.state == gone
    assert seen["status"] == 1 and seen["cancel"] == len(AMBIGUOUS_RESULTS[first])


@pytest.mark.parametrize("gone", sorted(GONE))
@pytest.mark.parametrize("first", sorted(AMBIGUOUS_RESULTS))
async def test_a_single_cancel_raises_not_cancelled_when_status_says_so(
    first: str, gone: str
) -> None:
    transport, seen = gateway(AMBIGUOUS_RESULTS[first], [GONE[gone]])
    async with retrying_session(transport) as s:
        with pytest.raises(fp.NotCancelledError) as error:
            await s.cancel(5, reconcile=True)
    assert error.value.state == gone and error.value.payment_id == 5
    assert not error.value.outcome_unknown and error.value.attempts == seen["cancel"] + 1


async def test_a_batch_of_ambiguous_results_completes() -> None:
    transport, seen = gateway([cancel_reply("weird")], [GONE["captured"]])
    async with retrying_session(transport) as s:
        async with asyncio.timeout(60):  # guards against a hang only; never reached
            outcomes = [o async for o in s.cancel_many(range(1, 9), concurrency=2)]
    assert sorted(o.payment_id for o in outcomes) == list(range(1, 9))
    assert {o.state for o in outcomes} == {fp.OutcomeState.FAILED}
    assert seen["status"] == 8


@pytest.mark.parametrize(
    "settled",
    [
        Reconciled(None, None, SettledBy.STATUS, None, 2),  # neither result nor error
        Reconciled(None, fp.ConnectionLostError("x"), SettledBy.STATUS, object(), 2),  # type: ignore[arg-type]
    ],
)
async def test_a_broken_reconcile_step_is_an_internal_error_not_a_dead_worker(
    settled: Reconciled,
) -> None:
    async def cancel(request: fp.CancelRequest) -> fp.CancelResult:
        raise fp.ConnectionLostError("dropped after sending", payment_id=request.payment_id)

    async def settle(request: fp.CancelRequest, first: object) -> Reconciled:
        return settled

    async with asyncio.timeout(60):  # guards against a hang only; never reached
        outcomes = [o async for o in run_cancel_many(cancel, [1, 2, 3], concurrency=1,
                                                     settle=settle)]  # fmt: skip
    assert [o.payment_id for o in outcomes] == [1, 2, 3]
    assert all(isinstance(o.error, fp.InternalError) for o in outcomes)
    assert {o.state for o in outcomes} == {fp.OutcomeState.UNKNOWN}


async def test_an_unsigned_not_found_settles_nothing() -> None:
    unsigned = render_response([*error_fields(11068), ("pg_salt", "s4lt")])
    transport, seen = gateway([lost], [lambda r: HttpResponse(200, unsigned)])
    outcome = await run(transport)
    assert (outcome.state, outcome.settled_by) == (fp.OutcomeState.UNKNOWN, None)
    assert isinstance(outcome.error, fp.ConnectionLostError)
    assert (seen["cancel"], seen["status"]) == (1, 3)  # asked each round, never believed
