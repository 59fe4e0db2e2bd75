"""Each rule of reconciling an ambiguous cancel, on a scripted in-memory gateway."""

from __future__ import annotations

import collections
from collections.abc import Callable

import pytest

import freedompay_async as fp
from freedompay_async import GatewayRequest, HttpResponse, MockTransport

from ..helpers import MERCHANT, SECRET, error_fields, ok_fields, signed

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
