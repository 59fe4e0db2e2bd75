"""Shared test helpers: signed XML replies and an in-memory transport for middleware tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from xml.sax.saxutils import escape

from aiohttp import web

from freedompay_async import GatewayRequest, Md5Signer
from freedompay_async._fields import Fields
from freedompay_async._replies import HttpResponse

SECRET = "test-secret-key-0123456789"
MERCHANT = 1234
SIGNER = Md5Signer(SECRET)


def xml_reply(fields: Fields) -> bytes:
    """Render fields as the gateway's XML reply (nested values become child elements)."""

    def render(items: Fields) -> str:
        out = []
        for key, value in items:
            inner = escape(value) if isinstance(value, str) else render(value)
            out.append(f"<{key}>{inner}</{key}>")
        return "".join(out)

    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<response>' + render(fields) + "</response>"
    ).encode()


def signed(
    fields: list[tuple[str, str]], script: str = "cancel", signer: Md5Signer = SIGNER
) -> bytes:
    """An XML reply whose pg_sig is valid for ``script``."""
    with_salt = [*fields, ("pg_salt", "s4lt")]
    return xml_reply([*with_salt, ("pg_sig", signer.sign(script, with_salt))])


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


Responder = Callable[[GatewayRequest], Awaitable[HttpResponse]]


class FakeTransport:
    """A Transport that hands each request to ``responder`` and records what was sent."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.sent: list[GatewayRequest] = []
        self.closed = False

    async def send(self, request: GatewayRequest) -> HttpResponse:
        self.sent.append(request)
        return await self.responder(request)

    async def aclose(self) -> None:
        self.closed = True


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
