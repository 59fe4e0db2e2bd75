"""The per-attempt middleware seam: ``AsyncSession(attempt_middlewares=...)`` runs once per
HTTP attempt, inside the retry layer and after every wait (spacing, in-flight cap, pacing),
against a served sandbox; the caller's ``middlewares`` still run once per call."""

from __future__ import annotations

import asyncio
import itertools

import pytest

import freedompay_async as fp
from freedompay_async import GatewayReply, GatewayRequest, Handler
from freedompay_async.sandbox import Fault, SandboxGateway

from ..helpers import FakeClock


def virtual(clock: FakeClock) -> dict[str, object]:
    """Retry and spacing options on a virtual clock: backoff and spacing waits are instant."""
    return {
        "retry": fp.RetryPolicy(attempts=4, wait_initial=0.5, clock=clock, sleep=clock.sleep),
        "spacing": fp.PaymentSpacing(clock=clock, sleep=clock.sleep),
    }


class Seen:
    """Records each request it sees (operation, attempt, virtual time) and what ended it."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock
        self.requests: list[tuple[str, int, float]] = []
        self.ends: list[str] = []
        self.active = 0
        self.most_active = 0

    async def __call__(self, request: GatewayRequest, call_next: Handler) -> GatewayReply:
        at = self.clock() if self.clock is not None else 0.0
        self.requests.append((request.operation, request.attempt, at))
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            reply = await call_next(request)
        except fp.FreedomPayError as exc:
            self.ends.append(type(exc).__name__)
            raise
        finally:
            self.active -= 1
        self.ends.append("ok")
        return reply


async def test_attempt_middlewares_see_each_attempt_and_caller_middlewares_each_call(
    served: tuple[SandboxGateway, str], credentials: fp.Credentials
) -> None:
    gateway, url = served
    gateway.inject(21, Fault.HTTP_503, Fault.ERROR_9999, None)
    clock = FakeClock()
    per_call, per_attempt = Seen(), Seen(clock)
    async with fp.AsyncSession(
        credentials,
        base_url=url,
        middlewares=[per_call],
        attempt_middlewares=[per_attempt],
        **virtual(clock),  # type: ignore[arg-type]
    ) as session:
        result = await session.cancel(21)  # a plain id: the direct path would skip both
    assert result.attempts == 3
    assert [attempt for _op, attempt, _at in per_call.requests] == [1]
    assert per_call.ends == ["ok"]
    assert [attempt for _op, attempt, _at in per_attempt.requests] == [1, 2, 3]
    assert per_attempt.ends == ["MalformedReplyError", "TransientGatewayError", "ok"]
    # After the spacing: each retry about payment 21 starts 1.5 s after the one before.
    times = [at for _op, _attempt, at in per_attempt.requests]
    assert all(b - a >= 1.5 for a, b in itertools.pairwise(times))


async def test_the_first_attempt_middleware_listed_is_the_outermost(
    served: tuple[SandboxGateway, str], credentials: fp.Credentials
) -> None:
    _gateway, url = served
    order: list[str] = []

    def layer(name: str) -> fp.Middleware:
        async def middleware(request: GatewayRequest, call_next: Handler) -> GatewayReply:
            order.append(f"{name} in")
            reply = await call_next(request)
            order.append(f"{name} out")
            return reply

        return middleware

    async with fp.AsyncSession(
        credentials, base_url=url, attempt_middlewares=[layer("a"), layer("b")]
    ) as session:
        await session.status(22)
    assert order == ["a in", "b in", "b out", "a out"]


async def test_attempt_middlewares_run_inside_the_in_flight_cap(
    served: tuple[SandboxGateway, str], credentials: fp.Credentials
) -> None:
    _gateway, url = served
    per_call, per_attempt = Seen(), Seen()
    async with fp.AsyncSession(
        credentials,
        base_url=url,
        limits=fp.Limits(max_connections=1),
        middlewares=[per_call],
        attempt_middlewares=[per_attempt],
    ) as session:
        results = await asyncio.gather(*(session.cancel(pid) for pid in range(23, 29)))
    assert [r.payment_id for r in results] == list(range(23, 29))
    assert per_call.most_active > 1  # the calls overlap...
    assert per_attempt.most_active == 1  # ...their exchanges do not: one connection
    assert len(per_attempt.requests) == 6


async def test_attempt_middlewares_run_after_pacing(credentials: fp.Credentials) -> None:
    gateway = SandboxGateway(credentials.merchant_id, credentials.secret_key)
    gateway.add_payments(range(31, 35))
    clock = FakeClock()
    per_attempt = Seen(clock)
    async with (
        gateway.serve() as url,
        fp.AsyncSession(
            credentials,
            base_url=url,
            pacing=fp.Pacing(min_interval=0.25, clock=clock, sleep=clock.sleep),
            attempt_middlewares=[per_attempt],
        ) as session,
    ):
        for pid in range(31, 35):
            await session.cancel(pid)
    times = [at for _op, _attempt, at in per_attempt.requests]
    assert len(times) == 4
    assert all(b - a >= 0.25 for a, b in itertools.pairwise(times))


async def test_a_plain_cancel_skips_no_attempt_middleware(
    served: tuple[SandboxGateway, str], credentials: fp.Credentials
) -> None:
    # Alone, an attempt middleware still turns the direct cancel path off: that path
    # runs a first attempt without the chain, so the middleware would never see it.
    _gateway, url = served
    per_attempt = Seen()
    async with fp.AsyncSession(
        credentials, base_url=url, log_attempts=False, attempt_middlewares=[per_attempt]
    ) as session:
        for pid in (41, 42):
            await session.cancel(pid)
        outcomes = [o async for o in session.cancel_many([43, 44])]
    assert {o.state for o in outcomes} == {fp.OutcomeState.CANCELLED}
    assert per_attempt.requests == [("cancel", 1, 0.0)] * 4
    assert per_attempt.ends == ["ok"] * 4


@pytest.mark.parametrize("value", ["abc", [object()], print])
def test_attempt_middlewares_must_be_a_sequence_of_callables(
    credentials: fp.Credentials, value: object
) -> None:
    with pytest.raises(fp.ConfigurationError, match="attempt_middlewares"):
        fp.AsyncSession(credentials, attempt_middlewares=value)  # type: ignore[arg-type]
