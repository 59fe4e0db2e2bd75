"""``Retry-After`` as an HTTP-date, end to end over loopback: measured against the reply's
own ``Date`` header, never the local clock.

The server's clock is set years away from ours, so a client that ignored the ``Date``
header would compute a delay of zero (a date long past) or of years (one far ahead).
"""

from __future__ import annotations

import email.utils

import pytest
from aiohttp import web

import freedompay_async as fp

from ..helpers import MERCHANT, SECRET, FakeClock, ok_fields, serve, signed, virtual_spacing

CREDS = fp.Credentials(MERCHANT, SECRET)
SERVER_NOW = 978_307_200.0  # 2001-01-01T00:00:00Z: the server's skewed clock


def _gateway(status: int, wait: float) -> tuple[web.Application, list[int]]:
    hits: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        hits.append(1)
        if len(hits) == 1:
            return web.Response(
                status=status,
                text="busy",
                headers={
                    "Date": email.utils.formatdate(SERVER_NOW, usegmt=True),
                    "Retry-After": email.utils.formatdate(SERVER_NOW + wait, usegmt=True),
                },
            )
        return web.Response(body=signed(ok_fields(5)), content_type="text/xml")

    app = web.Application()
    app.router.add_post("/g2g/cancel", handle)
    return app, hits


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_date_is_measured_against_the_reply_date(status: int) -> None:
    app, hits = _gateway(status, wait=7)
    clock = FakeClock()
    policy = fp.RetryPolicy(
        attempts=2, deadline=None, clock=clock, sleep=clock.sleep, random=lambda: 0.0
    )
    spacing = virtual_spacing()  # its own clock: ``clock.sleeps`` holds the retry's only
    async with (
        serve(app) as url,
        fp.AsyncSession(CREDS, base_url=url, retry=policy, spacing=spacing) as s,
    ):
        result = await s.cancel(5, reconcile=False)
    assert len(hits) == 2 and result.attempts == 2
    assert clock.sleeps == [7.0]


async def test_retry_after_date_beyond_the_deadline_gives_up() -> None:
    app, hits = _gateway(429, wait=3600)
    clock = FakeClock()
    policy = fp.RetryPolicy(
        attempts=3, deadline=60, clock=clock, sleep=clock.sleep, random=lambda: 0.0
    )
    async with serve(app) as url, fp.AsyncSession(CREDS, base_url=url, retry=policy) as s:
        with pytest.raises(fp.MalformedReplyError) as info:
            await s.cancel(5, reconcile=False)
    assert info.value.http_status == 429 and info.value.retry_after == 3600.0
    assert len(hits) == 1 and clock.sleeps == []
