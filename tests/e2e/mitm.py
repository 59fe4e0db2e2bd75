"""A man in the middle for end-to-end tests: an aiohttp proxy in front of a served gateway.

Every request the client posts reaches :class:`Mitm`, which hands it to the rule set
for its operation (the script name: ``cancel``, ``status_v2``, ``clearing``,
``refund``). A rule decides what the client gets back: the gateway's own reply
(``await forward()``), that reply rewritten, or something else without forwarding at
all. With no rule, everything is forwarded as it is. Each exchange is recorded, so a
test can capture a genuine reply and replay it later.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import attrs
from aiohttp import web

from freedompay_async._wire.multipart import multipart_boundary, parse_multipart

from ..helpers import serve

__all__ = ["Exchange", "Mitm", "Reply", "Rule", "append_before_close", "garbage", "passthrough"]


@attrs.frozen
class Reply:
    """What goes back to the client: an HTTP status, a body and its content type."""

    status: int
    body: bytes
    content_type: str = "application/xml; charset=utf-8"


@attrs.frozen
class Exchange:
    """One request the client sent: what the gateway answered (None: not forwarded) and
    what the client got."""

    script: str
    payment_id: int | None
    upstream: Reply | None
    reply: Reply

    @property
    def forwarded(self) -> bool:
        """Whether the request reached the gateway."""
        return self.upstream is not None


Forward = Callable[[], Awaitable[Reply]]
#: ``rule(payment_id, forward)``: the reply the client gets.
Rule = Callable[[int | None, Forward], Awaitable[Reply]]


async def passthrough(_payment_id: int | None, forward: Forward) -> Reply:
    """The gateway's reply, untouched."""
    return await forward()


async def garbage(_payment_id: int | None, _forward: Forward) -> Reply:
    """Drop the request (never forwarded) and answer HTTP 200 with a body that is not XML."""
    return Reply(200, b"\x00 not a reply \xff", "text/plain")


def append_before_close(extra: bytes) -> Rule:
    """A rule that forwards, then inserts ``extra`` just before ``</response>``."""

    async def rule(_payment_id: int | None, forward: Forward) -> Reply:
        reply = await forward()
        head, close, tail = reply.body.rpartition(b"</response>")
        assert close, "the gateway's reply has no </response> to append before"
        return attrs.evolve(reply, body=head + extra + close + tail)

    return rule


def _payment_id(body: bytes, content_type: str) -> int | None:
    pairs = parse_multipart(body, multipart_boundary(content_type), skip_nameless=True)
    text = dict(pairs).get("pg_payment_id", "")
    return int(text) if text.isdigit() else None


class Mitm:
    """The proxy: ``rules`` by script name (settable at any time), ``exchanges`` seen."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.rules: dict[str, Rule] = {}
        self.exchanges: list[Exchange] = []
        #: The proxy's own base URL while it serves (give it to the client).
        self.url = ""
        self._http: aiohttp.ClientSession | None = None

    def replies(self, script: str, payment_id: int) -> list[Reply]:
        """The gateway's own replies to ``script`` requests about ``payment_id``."""
        return [
            e.upstream
            for e in self.exchanges
            if e.script == script and e.payment_id == payment_id and e.upstream is not None
        ]

    def forwarded(self, script: str, payment_id: int) -> int:
        """How many ``script`` requests about ``payment_id`` reached the gateway."""
        return len(self.replies(script, payment_id))

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        script = request.path.rsplit("/", 1)[-1]
        payment_id = _payment_id(body, content_type)
        answered: list[Reply] = []

        async def forward() -> Reply:
            assert self._http is not None
            async with self._http.post(
                self.upstream + request.path, data=body, headers={"Content-Type": content_type}
            ) as upstream:
                got = Reply(upstream.status, await upstream.read(), upstream.content_type)
            answered.append(got)
            return got

        rule = self.rules.get(script, passthrough)
        reply = await rule(payment_id, forward)
        self.exchanges.append(
            Exchange(script, payment_id, answered[-1] if answered else None, reply)
        )
        headers = {"Content-Type": reply.content_type}
        return web.Response(status=reply.status, body=reply.body, headers=headers)

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Serve the proxy on a free loopback port; yield its base URL."""
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        async with aiohttp.ClientSession() as http:
            self._http = http
            try:
                async with serve(app) as url:
                    self.url = url
                    yield url
            finally:
                self._http = None
                self.url = ""
