"""RetryPolicy and RetryMiddleware to the letter: defaults, validation, backoff, the
deadline arithmetic at its boundary, the log line, and what each attempt carries."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

import freedompay_async as fp
from freedompay_async import HttpResponse, MockTransport

from ..helpers import MERCHANT, SECRET, FakeClock, error_fields, ok_fields, signed

CREDS = fp.Credentials(MERCHANT, SECRET)
OK = object()


def _scripted(steps: Sequence[object]) -> MockTransport:
    queue = list(steps)

    async def respond(request: fp.GatewayRequest) -> HttpResponse:
        step = queue.pop(0)
        if step is OK:
            return HttpResponse(200, signed(ok_fields(7)))
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, HttpResponse)
        return step

    return MockTransport(respond)


async def _run(
    steps: Sequence[object], clock: FakeClock, **kw: object
) -> tuple[fp.CancelResult | fp.FreedomPayError, MockTransport]:
    transport = _scripted(steps)
    policy = fp.RetryPolicy(clock=clock, sleep=clock.sleep, **kw)  # type: ignore[arg-type]
    # The retry layer alone decides here: per-payment spacing is off.
    session = fp.AsyncSession(
        CREDS, base_url="http://gw", transport=transport, retry=policy, spacing=None
    )
    async with session as s:
        try:
            return await s.cancel(7, reconcile=False), transport
        except fp.FreedomPayError as exc:
            return exc, transport


def test_the_documented_defaults() -> None:
    p = fp.RetryPolicy()
    assert (p.attempts, p.attempt_timeout, p.deadline) == (4, 20.0, 90.0)
    assert (p.wait_initial, p.wait_max, p.wait_exp_base) == (0.5, 10.0, 2.0)
    assert (p.honour_retry_after, p.min_attempt_time, p.retries) == (True, 0.5, True)
    assert p.on is fp.default_retry_on


def test_none_is_one_attempt_without_deadline() -> None:
    p = fp.RetryPolicy.none()
    assert (p.attempts, p.attempt_timeout, p.deadline, p.retries) == (1, 20.0, None, False)
    assert fp.RetryPolicy.none(attempt_timeout=None).attempt_timeout is None
    assert fp.RetryPolicy(attempts=2).retries is True


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"attempts": 0}, "attempts must be >= 1"),
        ({"attempt_timeout": 0}, "attempt_timeout must be positive or None"),
        ({"attempt_timeout": -1.0}, "attempt_timeout must be positive or None"),
        ({"deadline": 0.0}, "deadline must be positive or None"),
        ({"wait_initial": -0.1}, "backoff values must be >= 0 (exp base >= 1)"),
        ({"wait_max": -1}, "backoff values must be >= 0 (exp base >= 1)"),
        ({"wait_exp_base": 0.99}, "backoff values must be >= 0 (exp base >= 1)"),
    ],
)
def test_invalid_policies_say_what_is_wrong(kw: dict[str, float], message: str) -> None:
    with pytest.raises(fp.ConfigurationError) as info:
        fp.RetryPolicy(**kw)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_boundary_policies_are_valid() -> None:
    p = fp.RetryPolicy(
        attempts=1, attempt_timeout=None, deadline=None, wait_initial=0, wait_max=0, wait_exp_base=1
    )
    assert p.backoff(5, fp.ConnectError("x")) == 0.0


def test_backoff_takes_the_larger_of_jitter_and_retry_after() -> None:
    p = fp.RetryPolicy(wait_initial=1.0, wait_exp_base=3.0, random=lambda: 0.5)
    busy = fp.MalformedReplyError("busy", http_status=429, retry_after=1.0)
    assert p.backoff(1, busy) == 1.0  # max(0.5, 1.0)
    assert p.backoff(2, busy) == 1.5  # 0.5 * 1 * 3**1
    assert p.backoff(3, busy) == 4.5
    ignoring = fp.RetryPolicy(wait_initial=1.0, random=lambda: 0.5, honour_retry_after=False)
    assert ignoring.backoff(1, busy) == 0.5


async def test_a_retry_that_fits_the_deadline_exactly_is_made() -> None:
    """clock + delay + min_attempt_time == deadline still retries; the last attempt gets
    exactly what is left."""
    clock = FakeClock()
    busy = HttpResponse(429, b"", retry_after="9")
    result, transport = await _run(
        [busy, OK], clock, deadline=10.0, min_attempt_time=1.0, random=lambda: 0.0
    )
    assert isinstance(result, fp.CancelResult) and result.attempts == 2
    assert [r.timeout for r in transport.requests] == [10.0, 1.0]
    assert [r.attempt for r in transport.requests] == [1, 2]


async def test_a_retry_that_would_overrun_the_deadline_is_not_made() -> None:
    clock = FakeClock()
    busy = HttpResponse(429, b"", retry_after="9")
    error, transport = await _run(
        [busy, OK], clock, deadline=10.0, min_attempt_time=1.01, random=lambda: 0.0
    )
    assert isinstance(error, fp.MalformedReplyError) and error.attempts == 1
    assert len(transport.requests) == 1 and clock.sleeps == []


async def test_without_a_deadline_every_attempt_gets_the_attempt_timeout() -> None:
    clock = FakeClock()
    steps = [fp.ConnectError("a"), fp.ConnectError("b"), OK]
    result, transport = await _run(steps, clock, deadline=None, attempt_timeout=3.0)
    assert isinstance(result, fp.CancelResult) and result.attempts == 3
    assert [r.timeout for r in transport.requests] == [3.0, 3.0, 3.0]


async def test_without_any_limit_attempts_have_no_timeout() -> None:
    clock = FakeClock()
    result, transport = await _run(
        [fp.ConnectError("a"), OK], clock, deadline=None, attempt_timeout=None
    )
    assert isinstance(result, fp.CancelResult)
    assert [r.timeout for r in transport.requests] == [None, None]


async def test_a_first_attempt_reply_is_returned_as_is() -> None:
    clock = FakeClock()
    result, transport = await _run([OK], clock)
    assert isinstance(result, fp.CancelResult)
    assert (result.attempts, result.earlier_maybe_processed) == (1, False)
    assert transport.requests[0].attempt == 1 and transport.requests[0].timeout == 20.0


async def test_a_final_error_on_the_first_attempt_carries_attempts_and_flags() -> None:
    clock = FakeClock()
    named = [("pg_payment_id", "7"), *error_fields(11068)]  # bound: it settles the call
    error, _ = await _run([HttpResponse(200, signed(named))], clock)
    assert isinstance(error, fp.PaymentNotFoundError)
    assert (error.attempts, error.earlier_maybe_processed, error.outcome_unknown) == (
        1,
        False,
        False,
    )
    unbound, _ = await _run([HttpResponse(200, signed(error_fields(11068)))], clock)
    assert (unbound.attempts, unbound.earlier_maybe_processed, unbound.outcome_unknown) == (
        1,
        False,
        True,  # it names no payment: it could be another's, replayed
    )


async def test_an_exhausted_policy_raises_the_last_error() -> None:
    clock = FakeClock()
    error, transport = await _run(
        [fp.ConnectError("a"), fp.ConnectError("b")], clock, attempts=2, random=lambda: 0.0
    )
    assert isinstance(error, fp.ConnectError) and str(error) == "b"
    assert error.attempts == 2 and len(transport.requests) == 2


async def test_each_retry_is_logged_once_with_what_happened(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="freedompay_async._layers.retry")
    steps = [fp.ConnectError("x"), HttpResponse(200, signed(error_fields(9999))), OK]
    result, _ = await _run(steps, clock, random=lambda: 0.5)
    assert isinstance(result, fp.CancelResult)
    lines = [r.getMessage() for r in caplog.records if r.name == "freedompay_async._layers.retry"]
    assert lines == [
        "cancel payment=7 attempt 1/4 failed (ConnectError); retrying in 0.25s",
        "cancel payment=7 attempt 2/4 failed (TransientGatewayError code=9999); retrying in 0.50s",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name.endswith("_retry"))
