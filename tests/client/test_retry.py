"""Retry policy and the middleware chain, on an in-memory transport with a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import attrs
import pytest

import freedompay_async as fp
from freedompay_async import HttpResponse, MockTransport

from ..helpers import MERCHANT, SECRET, FakeClock, error_fields, ok_fields, signed, virtual_spacing

CREDS = fp.Credentials(MERCHANT, SECRET)
OK = object()


def scripted(steps: Sequence[object]) -> MockTransport:
    """Each attempt takes the next step: OK, an exception, or an HttpResponse."""
    queue = list(steps)

    async def respond(request: fp.GatewayRequest) -> HttpResponse:
        step = queue.pop(0)
        if step is OK:
            assert request.payment_id is not None
            return HttpResponse(200, signed(ok_fields(request.payment_id)))
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, HttpResponse)
        return step

    return MockTransport(respond)


def policy(clock: FakeClock, **kw: object) -> fp.RetryPolicy:
    return fp.RetryPolicy(clock=clock, sleep=clock.sleep, random=lambda: 0.5, **kw)  # type: ignore[arg-type]


def err(code: int, pid: int | None = None) -> HttpResponse:
    """A signed error reply; naming payment ``pid`` binds it (the gateway's name none)."""
    named = [] if pid is None else [("pg_payment_id", str(pid))]
    return HttpResponse(200, signed([*named, *error_fields(code)]))


async def cancel_with(
    steps: Sequence[object], clock: FakeClock, **kw: object
) -> tuple[fp.CancelResult, MockTransport]:
    transport = scripted(steps)
    async with fp.AsyncSession(
        CREDS,
        base_url="http://gw",
        transport=transport,
        retry=policy(clock, **kw),
        spacing=virtual_spacing(),  # its own clock: ``clock.sleeps`` holds the retry's only
    ) as s:
        return await s.cancel(7, reconcile=False), transport  # the chain's own answer


async def test_transient_failures_are_retried_until_success_with_the_same_bytes() -> None:
    clock = FakeClock()
    steps = [
        fp.ConnectError("refused"),
        HttpResponse(502, b"<html>bad gateway</html>"),
        err(9999),
        OK,
    ]
    result, transport = await cancel_with(steps, clock, attempts=4)
    assert result.attempts == 4 and not result.confirmed_on_retry
    assert len({r.body for r in transport.requests}) == 1
    assert [r.attempt for r in transport.requests] == [1, 2, 3, 4]
    # full jitter with random()=0.5: 0.5 * min(10, 0.5 * 2**(n-1))
    assert clock.sleeps == [0.25, 0.5, 1.0]


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (1100, fp.InvalidRequestSignatureError),
        (9998, fp.UnknownMerchantError),
        (11068, fp.PaymentNotFoundError),
        (9013, fp.GatewayDeclinedError),
    ],
)
async def test_final_gateway_errors_are_never_retried(code: int, cls: type[Exception]) -> None:
    clock = FakeClock()
    with pytest.raises(cls) as info:
        await cancel_with([err(code), OK], clock)
    assert clock.sleeps == [] and info.value.attempts == 1  # type: ignore[attr-defined]


async def test_a_forged_reply_is_not_retried_into_a_success() -> None:
    clock = FakeClock()
    forged = HttpResponse(200, signed(ok_fields(7), signer=fp.Md5Signer("attacker")))
    with pytest.raises(fp.SignatureVerificationError) as info:
        await cancel_with([forged, OK], clock)
    assert info.value.outcome_unknown


async def test_retry_after_seconds_is_honoured() -> None:
    clock = FakeClock()
    result, _ = await cancel_with([HttpResponse(429, b"", retry_after="3"), OK], clock)
    assert clock.sleeps == [3.0] and result.attempts == 2


async def test_retry_after_beyond_the_deadline_gives_up_instead_of_sleeping() -> None:
    clock = FakeClock()
    with pytest.raises(fp.MalformedReplyError) as info:
        await cancel_with([HttpResponse(429, b"", retry_after="500"), OK], clock, deadline=60.0)
    assert clock.sleeps == [] and info.value.http_status == 429


async def test_attempts_are_bounded() -> None:
    clock = FakeClock()
    with pytest.raises(fp.TransientGatewayError) as info:
        await cancel_with([err(9999)] * 3, clock, attempts=3)
    assert info.value.attempts == 3 and len(clock.sleeps) == 2


async def test_each_attempt_timeout_is_cut_to_what_is_left_of_the_deadline() -> None:
    clock = FakeClock()
    _, transport = await cancel_with(
        [fp.ConnectError("x"), OK], clock, attempt_timeout=20.0, deadline=20.1, wait_initial=0.2
    )
    assert transport.requests[0].timeout == pytest.approx(20.0)
    assert transport.requests[1].timeout == pytest.approx(20.1 - 0.1)


async def test_already_cancelled_after_an_ambiguous_attempt_is_a_confirmed_success() -> None:
    clock = FakeClock()
    result, _ = await cancel_with([fp.ResponseTimeoutError("t"), err(10033, pid=7)], clock)
    assert result.confirmed_on_retry and result.attempts == 2
    assert result.revoke_status is fp.RevokeStatus.SUCCESS


async def test_already_cancelled_after_a_connection_lost_is_confirmed_too() -> None:
    clock = FakeClock()
    result, _ = await cancel_with([fp.ConnectionLostError("reset"), err(11017, pid=7)], clock)
    assert result.confirmed_on_retry


async def test_already_cancelled_naming_no_payment_confirms_nothing_on_its_own() -> None:
    # The gateway's 10033 names no payment: it could be another payment's, replayed.
    clock = FakeClock()
    with pytest.raises(fp.UnconfirmedReplyError) as info:
        await cancel_with([fp.ResponseTimeoutError("t"), err(10033)], clock)
    assert info.value.claimed_code == 10033 and info.value.outcome_unknown


async def test_already_cancelled_after_a_clean_failure_stays_an_error() -> None:
    clock = FakeClock()
    with pytest.raises(fp.AlreadyCancelledError) as info:
        await cancel_with([fp.ConnectError("refused"), err(10033, pid=7)], clock)
    assert not info.value.earlier_maybe_processed and info.value.attempts == 2


async def test_an_unsigned_already_cancelled_never_confirms_a_cancel() -> None:
    clock = FakeClock()
    unsigned = HttpResponse(
        200,
        b"<response><pg_status>error</pg_status><pg_error_code>10033</pg_error_code></response>",
    )
    with pytest.raises(fp.SignatureVerificationError) as info:
        await cancel_with([fp.ResponseTimeoutError("t"), unsigned], clock)
    assert info.value.claimed_code == 10033 and info.value.outcome_unknown


async def test_policy_none_makes_one_attempt() -> None:
    clock = FakeClock()
    transport = scripted([fp.ConnectError("x"), OK])
    async with fp.AsyncSession(
        CREDS,
        base_url="http://gw",
        transport=transport,
        retry=attrs.evolve(
            fp.RetryPolicy.none(attempt_timeout=3.0), clock=clock, sleep=clock.sleep
        ),
    ) as s:
        with pytest.raises(fp.ConnectError):
            await s.cancel(7, reconcile=False)
    assert len(transport.requests) == 1 and transport.requests[0].timeout == 3.0
    assert clock.sleeps == []


async def test_custom_on_predicate_decides_what_is_retried() -> None:
    clock = FakeClock()
    with pytest.raises(fp.ConnectError):
        await cancel_with([fp.ConnectError("x"), OK], clock, on=lambda e: False)


async def test_cancelling_during_backoff_propagates_cancelled_error() -> None:
    started = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        started.set()
        await asyncio.sleep(3600)

    transport = scripted([fp.ConnectError("x"), OK])
    retry = fp.RetryPolicy(sleep=slow_sleep)
    async with fp.AsyncSession(CREDS, base_url="http://gw", transport=transport, retry=retry) as s:
        task = asyncio.create_task(s.cancel(7, reconcile=False))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(transport.requests) == 1


async def test_user_middleware_sees_parsed_errors_and_every_call_outermost() -> None:
    clock = FakeClock()
    seen: list[str] = []

    class Audit:
        async def __call__(
            self, request: fp.GatewayRequest, call_next: fp.Handler
        ) -> fp.GatewayReply:
            try:
                reply = await call_next(request)
            except fp.GatewayError as exc:
                seen.append(f"error {exc.code}")
                raise
            seen.append(f"ok after {reply.attempts}")
            return reply

    transport = scripted([err(9999), OK, err(11068)])
    async with fp.AsyncSession(
        CREDS,
        base_url="http://gw",
        transport=transport,
        retry=policy(clock),
        middlewares=[Audit()],
        spacing=virtual_spacing(),
    ) as s:
        await s.cancel(7, reconcile=False)
        with pytest.raises(fp.PaymentNotFoundError):
            await s.cancel(8, reconcile=False)
    assert seen == ["ok after 2", "error 11068"]


def test_backoff_is_capped_and_jittered() -> None:
    p = fp.RetryPolicy(wait_initial=1.0, wait_max=4.0, random=lambda: 1.0)
    assert [p.backoff(n, fp.ConnectError("x")) for n in (1, 2, 3, 4, 5)] == [
        1.0,
        2.0,
        4.0,
        4.0,
        4.0,
    ]
    zero = fp.RetryPolicy(random=lambda: 0.0)
    assert zero.backoff(3, fp.ConnectError("x")) == 0.0


@pytest.mark.parametrize(
    "kw", [{"attempts": 0}, {"attempt_timeout": 0}, {"deadline": -1.0}, {"wait_exp_base": 0.5}]
)
def test_invalid_policies_raise_configuration_error(kw: dict[str, float]) -> None:
    with pytest.raises(fp.ConfigurationError):
        fp.RetryPolicy(**kw)  # type: ignore[arg-type]
