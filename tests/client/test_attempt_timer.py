"""Attempt time limits by one timer: a limit that passes is a timeout, a reply that
completes as the limit passes never leaks a cancellation, a caller's cancel always wins.

The unit tests bracket an await exactly as ``AiohttpTransport._exchange`` does
(``limited`` below); the loopback tests go through the transport itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import aiohttp
import pytest
from aiohttp import web

import freedompay_async as fp
from freedompay_async._transport._timer import AttemptTimer

from ..helpers import MERCHANT, SECRET, ok_fields, serve, signed

T = TypeVar("T")
CREDS = fp.Credentials(MERCHANT, SECRET)


class TimedOut(Exception):
    pass


async def limited(timer: AttemptTimer, limit: float, awaitable: Awaitable[T]) -> T:
    """The transport's bracket around one exchange."""
    task = timer.start(limit)
    try:
        return await awaitable
    except asyncio.CancelledError:
        if task is not None and timer.expired(task):
            raise TimedOut from None
        raise
    finally:
        if task is not None:
            timer.stop(task)


async def attempt_then_go_on(timer: AttemptTimer, limit: float, fut: asyncio.Future[str]) -> str:
    """An attempt, then more awaits in the same task: a leaked cancel would hit these."""
    try:
        answer = await limited(timer, limit, fut)
    except TimedOut:
        answer = "timed out"
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    task = asyncio.current_task()
    assert task is not None
    return f"{answer}, cancelling={task.cancelling()}"


async def test_a_limit_that_passes_while_waiting_is_a_timeout_and_the_task_goes_on() -> None:
    timer = AttemptTimer()
    never: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    assert await attempt_then_go_on(timer, 0.01, never) == "timed out, cancelling=0"
    assert len(timer) == 0


async def test_a_reply_that_completes_as_the_limit_passes_leaks_no_cancellation() -> None:
    """The reply's future is done and the timer fires before the task resumes: the
    task may see a timeout (the reply came at the limit), never a stray CancelledError
    at a later await."""
    loop = asyncio.get_running_loop()
    timer = AttemptTimer()
    fut: asyncio.Future[str] = loop.create_future()
    task = asyncio.create_task(attempt_then_go_on(timer, 0.0, fut))
    await asyncio.sleep(0)  # the task now waits on fut, its limit already due
    fut.set_result("reply")  # the task is woken ...
    timer._fire(loop)  # ... and the timer runs first, in the same loop iteration
    assert await task == "timed out, cancelling=0"
    assert len(timer) == 0


async def test_a_second_timer_run_before_the_task_resumes_cancels_it_once() -> None:
    loop = asyncio.get_running_loop()
    timer = AttemptTimer()
    never: asyncio.Future[str] = loop.create_future()
    task = asyncio.create_task(attempt_then_go_on(timer, 0.0, never))
    await asyncio.sleep(0)
    timer._fire(loop)
    timer._fire(loop)  # a cancel counted twice would outlive the single uncancel
    assert await task == "timed out, cancelling=0"


async def test_a_reply_before_the_limit_is_returned_and_nothing_is_cancelled_later() -> None:
    loop = asyncio.get_running_loop()
    timer = AttemptTimer()
    fut: asyncio.Future[str] = loop.create_future()
    task = asyncio.create_task(attempt_then_go_on(timer, 30.0, fut))
    await asyncio.sleep(0)
    fut.set_result("reply")
    timer._fire(loop)  # a timer run with nothing due cancels nothing
    assert await task == "reply, cancelling=0"


@pytest.mark.parametrize("order", ["timer first", "caller first"])
async def test_a_callers_cancel_propagates_even_when_the_limit_also_passed(order: str) -> None:
    loop = asyncio.get_running_loop()
    timer = AttemptTimer()
    never: asyncio.Future[str] = loop.create_future()
    task = asyncio.create_task(limited(timer, 0.0, never))
    await asyncio.sleep(0)
    if order == "timer first":
        timer._fire(loop)
        task.cancel()
    else:
        task.cancel()
        timer._fire(loop)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled() and len(timer) == 0


async def test_a_shorter_limit_started_later_fires_first_and_alone() -> None:
    loop = asyncio.get_running_loop()
    timer = AttemptTimer()
    long_wait: asyncio.Future[str] = loop.create_future()
    short_wait: asyncio.Future[str] = loop.create_future()
    slow = asyncio.create_task(limited(timer, 30.0, long_wait))
    await asyncio.sleep(0)
    fast = asyncio.create_task(limited(timer, 0.01, short_wait))
    with pytest.raises(TimedOut):
        await fast
    assert not slow.done() and len(timer) == 1  # the long attempt is still limited
    long_wait.set_result("late reply")
    assert await slow == "late reply"
    assert len(timer) == 0


async def test_many_attempts_share_the_timer_and_leave_nothing_behind() -> None:
    loop = asyncio.get_running_loop()
    timer = AttemptTimer()
    futures: list[asyncio.Future[int]] = [loop.create_future() for _ in range(200)]
    tasks = [asyncio.create_task(limited(timer, 0.05 if i % 2 else 30.0, f))
             for i, f in enumerate(futures)]  # fmt: skip
    await asyncio.sleep(0)
    assert len(timer) == 200
    for i, fut in enumerate(futures):
        if i % 2 == 0:
            fut.set_result(i)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [r for r in results if isinstance(r, int)] == list(range(0, 200, 2))
    assert sum(isinstance(r, TimedOut) for r in results) == 100
    assert len(timer) == 0 and not timer._expired


async def test_start_outside_a_task_limits_nothing() -> None:
    loop = asyncio.get_running_loop()
    seen: list[object] = []
    timer = AttemptTimer()
    loop.call_soon(lambda: seen.append(timer.start(1.0)))
    await asyncio.sleep(0)
    assert seen == [None] and len(timer) == 0


# Over loopback, through the transport.


async def test_over_loopback_a_slow_reply_times_out_and_the_session_goes_on() -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        form = await request.post()
        pid = int(str(form["pg_payment_id"]))
        if pid == 1:
            await release.wait()
        return web.Response(body=signed(ok_fields(pid)), content_type="application/xml")

    app = web.Application()
    app.router.add_post("/g2g/cancel", handler)
    async with (
        serve(app) as url,
        fp.AsyncSession(
            CREDS, base_url=url, retry=fp.RetryPolicy.none(attempt_timeout=0.1)
        ) as session,
    ):
        with pytest.raises(fp.ResponseTimeoutError) as info:
            await session.cancel(1, reconcile=False)
        result = await session.cancel(2, reconcile=False)  # no cancellation left over for this task
        release.set()
        timer = session._transport._timer  # type: ignore[attr-defined]
        assert len(timer) == 0
    assert info.value.outcome_unknown and info.value.payment_id == 1
    assert "no reply within 0.1s" in str(info.value)
    assert result.payment_id == 2


async def test_over_loopback_cancelling_the_caller_mid_attempt_is_a_cancellation() -> None:
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.Response(status=503)

    app = web.Application()
    app.router.add_post("/g2g/cancel", handler)
    async with (
        serve(app) as url,
        fp.AsyncSession(
            CREDS, base_url=url, retry=fp.RetryPolicy.none(attempt_timeout=30.0)
        ) as session,
    ):
        call = asyncio.create_task(session.cancel(1, reconcile=False))
        await arrived.wait()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        release.set()
        assert len(session._transport._timer) == 0  # type: ignore[attr-defined]


def test_closing_with_attempts_in_flight_keeps_the_timer() -> None:
    """A transport closing over a borrowed session leaves its attempts running; their
    limits must still fire."""

    async def main() -> tuple[bool, bool]:
        timer = AttemptTimer()
        never: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        attempt = asyncio.create_task(attempt_then_go_on(timer, 0.05, never))
        await asyncio.sleep(0)
        timer.close()
        kept = timer._handle is not None
        # bounded, so a dropped timer fails the test instead of hanging it
        assert await asyncio.wait_for(attempt, 5) == "timed out, cancelling=0"
        timer.close()  # nothing in flight now: the timer is dropped
        return kept, timer._handle is None

    assert asyncio.run(main()) == (True, True)


async def test_a_timer_cancel_swallowed_inside_the_bracket_is_withdrawn_at_stop() -> None:
    """Code in the bracket that turns the timer's CancelledError into another error
    must not leave the task with a pending cancel request."""
    loop = asyncio.get_running_loop()
    timer = AttemptTimer()

    async def swallowing() -> int:
        task = timer.start(0.0)
        assert task is not None
        try:
            try:
                await loop.create_future()
            except asyncio.CancelledError:
                pass  # as a library might, converting it
        finally:
            timer.stop(task)
        await asyncio.sleep(0)  # a leaked cancel would raise here
        return task.cancelling()

    assert await swallowing() == 0


# Over loopback, through the transport.


async def test_over_loopback_a_borrowed_sessions_attempt_keeps_its_limit_after_aclose() -> None:
    """The library session closes while a call is in flight on a borrowed aiohttp session
    (which stays open): the call still ends at its limit, with a timeout."""
    arrived = asyncio.Event()
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()  # no reply until the test is over
        return web.Response(status=503)

    app = web.Application()
    app.router.add_post("/g2g/cancel", handler)
    async with serve(app) as url, aiohttp.ClientSession() as borrowed:
        session = fp.AsyncSession(
            CREDS,
            base_url=url,
            session=borrowed,
            retry=fp.RetryPolicy.none(attempt_timeout=0.3),
        )
        try:
            async with session:
                call = asyncio.create_task(session.cancel(1, reconcile=False))
                await arrived.wait()
            # the library session is closed; the attempt is still waiting
            assert not call.done()
            with pytest.raises(fp.ResponseTimeoutError) as info:
                await asyncio.wait_for(call, 5)
            assert not borrowed.closed
        finally:
            release.set()
    assert info.value.payment_id == 1 and info.value.outcome_unknown
