"""Shared test helpers: the test merchant, signed XML replies, a virtual clock, a loopback server.

Signed replies are written by the library's one ``<response>`` writer; the in-memory
transport is the library's own :class:`~freedompay_async.MockTransport`.
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import attrs
from aiohttp import web

from freedompay_async import Fields, Md5Signer, PaymentSpacing, SettlePolicy
from freedompay_async._wire.xml import (
    render_response,
    sign_response_fields,
)

SECRET = "test-secret-key-0123456789"
MERCHANT = 1234
SIGNER = Md5Signer(SECRET)


def xml_reply(fields: Fields) -> bytes:
    """Render fields as the gateway's XML reply (nested values become child elements)."""
    return render_response(fields)


def signed(
    fields: list[tuple[str, str]], script: str = "cancel", signer: Md5Signer = SIGNER
) -> bytes:
    """An XML reply whose pg_sig is valid for ``script``, with a fresh salt (as every
    genuine reply has: a session refuses a status reading whose salt it saw before)."""
    return render_response(sign_response_fields(script, signer, fields))


def ok_fields(payment_id: int, status: str = "success") -> list[tuple[str, str]]:
    """The documented success reply of /g2g/cancel, without salt and signature."""
    return [
        ("pg_payment_id", str(payment_id)),
        ("pg_payment_revoke_id", str(payment_id + 1)),
        ("pg_status", "ok"),
        ("pg_revoke_status", status),
    ]


def error_fields(code: int, description: str = "error") -> list[tuple[str, str]]:
    """The documented error reply, without salt and signature."""
    return [
        ("pg_status", "error"),
        ("pg_error_code", str(code)),
        ("pg_error_description", description),
        ("pg_datetime", "2024-10-07T09:32:21+00:00"),
    ]


class FakeClock:
    """A virtual monotonic clock: ``sleep`` returns at once and moves time to its wake-up
    point (never backwards), so concurrent sleepers overlap as real ones do."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        wake = self.now + seconds
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would
        self.now = max(self.now, wake)


#: A policy whose waits are injectable (``clock`` and ``sleep``).
Waits = TypeVar("Waits", PaymentSpacing, SettlePolicy)


def on_clock(policy: Waits, clock: FakeClock) -> Waits:
    """``policy`` waiting on the virtual ``clock``: it reads the time there, and its
    sleeps move that time on at once instead of waiting for real."""
    return attrs.evolve(policy, clock=clock, sleep=clock.sleep)


def virtual_spacing(clock: FakeClock | None = None) -> PaymentSpacing:
    """The default per-payment spacing (1.5 s), waited on ``clock`` (a FakeClock of its
    own unless given) instead of real time: a test whose attempts about one payment are
    spaced costs no real seconds. Give it its own clock where a test asserts the exact
    sleeps of another one (the retry policy's)."""
    return on_clock(PaymentSpacing(), FakeClock() if clock is None else clock)


T = TypeVar("T")


class _InstantSelector(selectors.SelectSelector):
    """A selector that never blocks: where the loop would wait for its next timer, the
    virtual clock jumps to it instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready and timeout is None:
            # Nothing ready, no timer: in virtual time (no real I/O) nothing can ever
            # happen again, so every task left is stuck. Fail instead of spinning.
            raise RuntimeError("virtual time: every task waits and no timer is set")
        if not ready and timeout > 0:
            self.now += timeout
        return ready


def run_in_virtual_time(main: Callable[[Callable[[], float]], Awaitable[T]]) -> T:
    """Run ``main(clock)`` on an event loop whose time is virtual: every timer (every
    ``asyncio.sleep``) fires in order, at its exact virtual moment, with no real wait.
    Unlike FakeClock, concurrent sleepers wake strictly in time order. For tests
    without real sockets."""
    selector = _InstantSelector()
    loop = asyncio.SelectorEventLoop(selector)
    loop.time = lambda: selector.now  # type: ignore[method-assign]
    try:
        return loop.run_until_complete(main(loop.time))
    finally:
        loop.close()


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run an aiohttp app on a free loopback port; yield its base URL."""
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
