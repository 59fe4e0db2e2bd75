"""The middleware chain's own pieces: order, the error descriptions, the DEBUG log line."""

from __future__ import annotations

import logging

import pytest

import freedompay_async as fp
from freedompay_async import HttpResponse
from freedompay_async._layers.attempt_log import LoggingMiddleware
from freedompay_async._layers.chain import (
    build_chain,
    cut_to_deadline,
    describe_error,
)

from ..helpers import ok_fields, signed

REQUEST = fp.GatewayRequest("cancel", "http://gw/g2g/cancel", "cancel", 7, (), b"", "x", attempt=2)
REPLY = fp.GatewayReply((("pg_status", "ok"),))


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (fp.PaymentNotFoundError(11068, "нет"), "PaymentNotFoundError code=11068"),
        (fp.MalformedReplyError("m", http_status=503), "MalformedReplyError http=503"),
        (fp.MalformedReplyError("m"), "MalformedReplyError"),
        (
            fp.SignatureVerificationError("s", http_status=200),
            "SignatureVerificationError http=200",
        ),
        (fp.ConnectError("secret text"), "ConnectError"),
    ],
)
def test_describe_error_is_short_and_says_no_more(error: fp.FreedomPayError, text: str) -> None:
    assert describe_error(error) == text


async def test_the_first_middleware_is_the_outermost() -> None:
    order: list[str] = []

    def layer(name: str) -> fp.Middleware:
        async def middleware(request: fp.GatewayRequest, call_next: fp.Handler) -> fp.GatewayReply:
            order.append(f"{name} in")
            reply = await call_next(request)
            order.append(f"{name} out")
            return reply

        return middleware

    async def handler(request: fp.GatewayRequest) -> fp.GatewayReply:
        order.append("handler")
        return REPLY

    chain = build_chain(handler, [layer("a"), layer("b")])
    assert await chain(REQUEST) is REPLY
    assert order == ["a in", "b in", "handler", "b out", "a out"]
    assert build_chain(handler, []) is handler


class Ticks:
    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def __call__(self) -> float:
        return self.values.pop(0)


async def test_debug_lines_for_success_and_failure(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.fp.attempts")
    caplog.set_level(logging.DEBUG, logger="test.fp.attempts")
    middleware = LoggingMiddleware(log, clock=Ticks(10.0, 12.0, 20.0, 20.5))

    async def ok(request: fp.GatewayRequest) -> fp.GatewayReply:
        return REPLY

    async def fail(request: fp.GatewayRequest) -> fp.GatewayReply:
        raise fp.ConnectError("refused")

    assert await middleware(REQUEST, ok) is REPLY
    with pytest.raises(fp.ConnectError):
        await middleware(REQUEST, fail)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "cancel payment=7 attempt=2 ok (2000.0 ms)"),
        (logging.DEBUG, "cancel payment=7 attempt=2 failed: ConnectError (500.0 ms)"),
    ]


async def test_without_debug_nothing_is_logged_or_timed(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.fp.quiet")
    caplog.set_level(logging.INFO, logger="test.fp.quiet")
    middleware = LoggingMiddleware(log, clock=Ticks())  # any clock call would fail

    async def ok(request: fp.GatewayRequest) -> fp.GatewayReply:
        return REPLY

    assert await middleware(REQUEST, ok) is REPLY
    assert caplog.records == []


async def test_the_session_logs_attempts_on_the_library_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="freedompay_async")

    async def answer(request: fp.GatewayRequest) -> HttpResponse:
        return HttpResponse(200, signed(ok_fields(7)))

    creds = fp.Credentials(1234, "test-secret-key-0123456789")
    transport = fp.MockTransport(answer)
    async with fp.AsyncSession(creds, base_url="http://gw", transport=transport) as s:
        await s.cancel(7)
    logger = "freedompay_async._layers.attempt_log"
    lines = [r.getMessage() for r in caplog.records if r.name == logger]
    assert len(lines) == 1 and lines[0].startswith("cancel payment=7 attempt=1 ok (")


def _with_deadline(deadline: float | None, timeout: float | None) -> fp.GatewayRequest:
    return fp.GatewayRequest(
        "cancel", "http://gw", "cancel", 7, (), b"", "x", timeout=timeout, deadline=deadline
    )


@pytest.mark.parametrize(
    ("deadline", "timeout", "now", "expected"),
    [
        (None, 5.0, 100.0, 5.0),  # no deadline: unchanged
        (110.0, 20.0, 100.0, 10.0),  # less left than the timeout: cut
        (110.0, 10.0, 100.0, 10.0),  # exactly the timeout left: unchanged
        (110.0, 5.0, 100.0, 5.0),  # more left: unchanged
        (110.0, None, 100.0, 10.0),  # no timeout: what is left
        (110.0, None, 109.5, 0.5),
    ],
)
def test_cut_to_deadline(
    deadline: float | None, timeout: float | None, now: float, expected: float
) -> None:
    request = _with_deadline(deadline, timeout)
    cut = cut_to_deadline(request, lambda: now, "a slot")
    assert cut.timeout == expected
    if expected == timeout:
        assert cut is request


@pytest.mark.parametrize("now", [110.0, 111.0])
def test_cut_to_deadline_refuses_when_nothing_is_left(now: float) -> None:
    with pytest.raises(fp.DeadlineExceededError) as info:
        cut_to_deadline(_with_deadline(110.0, 5.0), lambda: now, "a connection slot")
    assert str(info.value) == (
        "the call's deadline passed while waiting for a connection slot; not sent (payment 7)"
    )
    assert info.value.payment_id == 7 and not info.value.outcome_unknown
