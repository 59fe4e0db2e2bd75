"""The "an earlier attempt may have been processed" flag survives every later attempt.

The chain that matters: attempt 1 times out (the gateway may have cancelled), attempt 2
is refused before anything is sent (says nothing either way), attempt 3 ends the call.
Whatever attempt 3 says, the call's outcome must stay "the gateway may have acted": a
bookkeeping that only remembers the *last* failed attempt turns it into a clean failure,
and a rerun would skip (or a report would write off) a payment that may be cancelled.

Played twice: on the library's MockTransport (through ``cancel()`` and ``cancel_many``),
and over loopback with a real server that hangs, then is gone (connection refused), then
answers, so the real transport's error mapping is in the chain too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from aiohttp import web

import freedompay_async as fp
from freedompay_async import HttpResponse, MockTransport, OutcomeState

from ..helpers import MERCHANT, SECRET, FakeClock, error_fields, ok_fields, signed

CREDS = fp.Credentials(MERCHANT, SECRET)
PID = 7


def _ok(status: str = "success") -> HttpResponse:
    return HttpResponse(200, signed(ok_fields(PID, status)))


def _err(code: int) -> HttpResponse:
    """A signed error naming the payment (bound): on its own it settles the attempt, so
    only the earlier timeout can keep the outcome open."""
    return HttpResponse(200, signed([("pg_payment_id", str(PID)), *error_fields(code)]))


def _scripted(steps: Sequence[object]) -> MockTransport:
    queue = list(steps)

    async def respond(request: fp.GatewayRequest) -> HttpResponse:
        step = queue.pop(0)
        if isinstance(step, BaseException):
            raise step
        assert isinstance(step, HttpResponse)
        return step

    return MockTransport(respond)


def _session(steps: Sequence[object], clock: FakeClock, attempts: int = 4) -> fp.AsyncSession:
    policy = fp.RetryPolicy(attempts=attempts, clock=clock, sleep=clock.sleep, random=lambda: 0.0)
    # The chain under test is the retry layer's alone: no per-payment spacing, no
    # reconciling status queries (tests/client/test_reconcile_rules.py covers those).
    return fp.AsyncSession(
        CREDS, base_url="http://gw", transport=_scripted(steps), retry=policy, spacing=None
    )


def _timeout() -> fp.FreedomPayError:
    return fp.ResponseTimeoutError("no reply", payment_id=PID)


def _refused() -> fp.FreedomPayError:
    return fp.ConnectError("refused", payment_id=PID)


#: Third attempts that end the call with an error. None of them, on its own, says the
#: gateway may have acted on *it*; the first attempt's timeout must still count.
FINAL_ERRORS = [
    pytest.param(lambda: _err(11068), fp.PaymentNotFoundError, id="signed-not-found"),
    pytest.param(lambda: _err(1100), fp.InvalidRequestSignatureError, id="signed-1100"),
    pytest.param(lambda: _err(11003), fp.GatewayDeclinedError, id="signed-declined"),
    pytest.param(lambda: HttpResponse(404, b"nope"), fp.MalformedReplyError, id="http-404"),
    pytest.param(lambda: HttpResponse(429, b"slow"), fp.MalformedReplyError, id="429-last"),
    pytest.param(_refused, fp.ConnectError, id="refused-last"),
]


@pytest.mark.parametrize(("third", "error_type"), FINAL_ERRORS)
async def test_cancel_error_after_timeout_then_refusal_keeps_outcome_unknown(
    third: object, error_type: type[fp.FreedomPayError]
) -> None:
    clock = FakeClock()
    steps = [_timeout(), _refused(), third()]  # type: ignore[operator]
    async with _session(steps, clock, attempts=3) as s:
        with pytest.raises(error_type) as info:
            await s.cancel(PID, reconcile=False)
    error = info.value
    assert error.attempts == 3
    assert error.earlier_maybe_processed is True
    assert error.outcome_unknown is True


@pytest.mark.parametrize(("third", "error_type"), FINAL_ERRORS)
async def test_cancel_many_outcome_after_timeout_then_refusal_is_unknown(
    third: object, error_type: type[fp.FreedomPayError]
) -> None:
    clock = FakeClock()
    steps = [_timeout(), _refused(), third()]  # type: ignore[operator]
    async with _session(steps, clock, attempts=3) as s:
        outcomes = [o async for o in s.cancel_many([PID], concurrency=1, reconcile=False)]
    [outcome] = outcomes
    assert outcome.state is OutcomeState.UNKNOWN
    assert isinstance(outcome.error, error_type)
    assert outcome.attempts == 3
    assert not outcome.final  # a rerun must try this id again


async def test_the_control_refusal_then_final_error_is_a_clean_failure() -> None:
    """Without the timeout the same chain is a definite failure: the flag is not stuck on."""
    clock = FakeClock()
    async with _session([_refused(), _refused(), _err(11068)], clock) as s:
        with pytest.raises(fp.PaymentNotFoundError) as info:
            await s.cancel(PID, reconcile=False)
        outcomes = [o async for o in s.cancel_many([], concurrency=1, reconcile=False)]
    assert info.value.attempts == 3
    assert info.value.earlier_maybe_processed is False
    assert info.value.outcome_unknown is False
    assert outcomes == []


async def test_cancel_many_control_chain_is_failed_and_final() -> None:
    clock = FakeClock()
    async with _session([_refused(), _refused(), _err(11068)], clock) as s:
        [outcome] = [o async for o in s.cancel_many([PID], concurrency=1, reconcile=False)]
    assert outcome.state is OutcomeState.FAILED
    assert outcome.final


async def test_reply_after_timeout_then_refusal_carries_the_flag() -> None:
    clock = FakeClock()
    async with _session([_timeout(), _refused(), _ok()], clock) as s:
        result = await s.cancel(PID, reconcile=False)
    assert result.attempts == 3
    assert result.earlier_maybe_processed is True


async def test_revoke_error_after_timeout_then_refusal_is_unknown_not_failed() -> None:
    """A revoke status ``error`` on attempt 3 is FAILED only if no attempt may have acted."""
    clock = FakeClock()
    async with _session([_timeout(), _refused(), _ok("error")], clock) as s:
        [outcome] = [o async for o in s.cancel_many([PID], concurrency=1, reconcile=False)]
    assert outcome.state is OutcomeState.UNKNOWN
    assert outcome.result is not None and outcome.result.earlier_maybe_processed


async def test_already_cancelled_after_timeout_then_refusal_is_confirmed() -> None:
    clock = FakeClock()
    async with _session([_timeout(), _refused(), _err(10033)], clock) as s:
        result = await s.cancel(PID, reconcile=False)
    assert result.confirmed_on_retry is True
    assert result.revoke_status is fp.RevokeStatus.SUCCESS
    assert result.attempts == 3


async def test_longer_chain_timeout_then_three_refusals_then_final() -> None:
    clock = FakeClock()
    steps = [_timeout(), _refused(), _refused(), _refused(), _err(11068)]
    async with _session(steps, clock, attempts=5) as s:
        with pytest.raises(fp.PaymentNotFoundError) as info:
            await s.cancel(PID, reconcile=False)
    assert info.value.attempts == 5 and info.value.outcome_unknown


# --- the same chain over loopback, through the real transport --------------------------


class _ThreeActs:
    """A loopback gateway that hangs (attempt 1), is gone (attempt 2), then answers.

    The retry policy's injected ``sleep`` moves between acts, so no timing decides
    which attempt sees what.
    """

    def __init__(self, final: HttpResponse) -> None:
        self.final = final
        self.hits = 0
        self.release = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.sleeps = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        await request.read()
        if self.hits == 1:
            await self.release.wait()  # never answers in time: the client times out
        return web.Response(status=self.final.status, body=self.final.body, content_type="text/xml")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/g2g/cancel", self.handle)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        self.release.set()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def replay(self) -> None:
        """Play the three acts again from the start."""
        await self.stop()
        self.hits = self.sleeps = 0
        self.release = asyncio.Event()
        await self.start()

    async def between_attempts(self, _delay: float) -> None:
        self.sleeps += 1
        if self.sleeps == 1:
            await self.stop()  # attempt 2: nobody listens -> connection refused
        elif self.sleeps == 2:
            self.release = asyncio.Event()
            await self.start()  # attempt 3: the same port answers again


@pytest.mark.parametrize(
    ("final", "error_type"),
    [
        pytest.param(_err(11068), fp.PaymentNotFoundError, id="signed-not-found"),
        pytest.param(HttpResponse(404, b"gone"), fp.MalformedReplyError, id="http-404"),
    ],
)
async def test_loopback_timeout_refused_final_keeps_outcome_unknown(
    final: HttpResponse, error_type: type[fp.FreedomPayError]
) -> None:
    acts = _ThreeActs(final)
    await acts.start()
    policy = fp.RetryPolicy(
        attempts=3,
        attempt_timeout=0.2,  # what attempt 1 waits for; attempt 3 answers in a few ms
        deadline=None,
        sleep=acts.between_attempts,
        random=lambda: 0.0,
    )
    try:
        async with fp.AsyncSession(
            CREDS, base_url=f"http://127.0.0.1:{acts.port}", retry=policy, spacing=None
        ) as s:
            with pytest.raises(error_type) as info:
                await s.cancel(PID, reconcile=False)
            await acts.replay()
            [outcome] = [o async for o in s.cancel_many([PID], concurrency=1, reconcile=False)]
    finally:
        await acts.stop()
    assert info.value.attempts == 3
    assert info.value.outcome_unknown is True
    assert outcome.state is OutcomeState.UNKNOWN
    assert outcome.attempts == 3
