"""A scripted Merchant API server for tests: canned signed replies per script, requests kept."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import AsyncIterator, Callable

from aiohttp import web

import freedompay_async as fp
from freedompay_async._wire.fields import Fields, from_form_pairs
from freedompay_async._wire.multipart import multipart_boundary, parse_multipart

from ..helpers import MERCHANT, SECRET, FakeClock, on_clock, serve, signed

Reply = Callable[[Fields], bytes]


def reply(fields: list[tuple[str, str]], script: str) -> Reply:
    """A reply that signs ``fields`` with ``script`` whatever was asked."""
    return lambda _asked: signed(fields, script)


class Scripted:
    """Replies queued per script name (the last one repeats); every request kept."""

    def __init__(self) -> None:
        self.replies: dict[str, collections.deque[Reply]] = collections.defaultdict(
            collections.deque
        )
        self.requests: list[tuple[str, dict[str, object]]] = []

    def on(self, script: str, *replies: Reply) -> None:
        self.replies[script].extend(replies)

    def asked(self, script: str) -> list[dict[str, object]]:
        return [fields for name, fields in self.requests if name == script]

    def app(self) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            script = request.path.rsplit("/", 1)[-1]
            boundary = multipart_boundary(request.headers["Content-Type"])
            assert boundary is not None
            fields = from_form_pairs(parse_multipart(await request.read(), boundary))
            self.requests.append((script, dict(fields)))
            queue = self.replies[script]
            answer = queue.popleft() if len(queue) > 1 else queue[0]
            return web.Response(body=answer(fields), content_type="text/xml")

        app = web.Application()
        app.router.add_post("/{script}", handle)
        return app


@contextlib.asynccontextmanager
async def merchant_session(
    scripted: Scripted, **options: object
) -> AsyncIterator[fp.AsyncSession]:
    """A Merchant API session against ``scripted`` (no spacing, a short settle window
    watched in virtual time)."""
    settle = fp.SettlePolicy(window=0.6, poll_initial=0.05, poll_max=0.1)
    settings: dict[str, object] = {
        "api": "merchant",
        "spacing": None,
        "settle": on_clock(settle, FakeClock()),
    }
    settings.update(options)
    async with (
        serve(scripted.app()) as url,
        fp.AsyncSession(
            fp.Credentials(MERCHANT, SECRET), base_url=url, **settings  # type: ignore[arg-type]
        ) as session,
    ):
        yield session


def status3(pid: int, **fields: str) -> Reply:
    """A get_status3 reply about ``pid`` (``payment_status`` etc. as keywords)."""
    base = {
        "pg_status": "ok",
        "pg_payment_id": str(pid),
        "pg_amount": "1000.00",
        "pg_currency": "KZT",
        "pg_payment_status": "success",
        "pg_clearing_amount": "0",
        "pg_captured": "0",
    }
    base.update(fields)
    return reply([(k, v) for k, v in base.items() if v != "-"], "get_status3.php")
