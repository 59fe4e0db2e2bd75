"""The transport seam: the signed request a transport sends, the raw response it returns.

The two values are defined with the wire format (``_wire.messages``) and handed on
here, where a transport's author looks for them. Write your own :class:`Transport` (a
proxy, a recorder, another HTTP client) against these three names alone;
:class:`~freedompay_async.MockTransport` is a ready one for tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeAlias, runtime_checkable

from .._wire.messages import GatewayRequest, HttpResponse

__all__ = ["ByteExchange", "GatewayRequest", "HttpResponse", "SupportsByteLane", "Transport"]

#: A transport's exchange from a request's parts: ``(url, body, content_type, timeout,
#: payment_id)`` -> the body alone for a 200 reply, else the whole response. It raises
#: what ``Transport.send`` raises.
ByteExchange: TypeAlias = Callable[
    [str, bytes, str, float | None, int | None], Awaitable["bytes | HttpResponse"]
]


@runtime_checkable
class Transport(Protocol):
    """Sends one prepared request and returns the raw HTTP response.

    Must raise only the library's TransportError subclasses (or MalformedReplyError for
    an unreadable body) and let ``asyncio.CancelledError`` through.
    """

    async def send(self, request: GatewayRequest) -> HttpResponse:
        """Send ``request.body`` to ``request.url`` within ``request.timeout`` seconds."""
        ...

    async def aclose(self) -> None:
        """Release what the transport owns. Idempotent."""
        ...


@runtime_checkable
class SupportsByteLane(Protocol):
    """A transport that can also exchange bytes without request and response values.

    The session's direct cancel path asks once, when the session is built; a transport
    answers None whenever its requests must all go through its ``send`` (for instance a
    subclass that overrides ``send``), and the path then sends requests as usual.
    """

    def byte_lane(self) -> ByteExchange | None:
        """The byte exchange equivalent to ``send``, or None."""
        ...
