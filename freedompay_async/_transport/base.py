"""The transport seam: the signed request a transport sends, the raw response it returns.

The two values are defined with the wire format (``_wire.messages``) and handed on
here, where a transport's author looks for them. Write your own :class:`Transport` (a
proxy, a recorder, another HTTP client) against these three names alone;
:class:`~freedompay_async.MockTransport` is a ready one for tests.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .._wire.messages import GatewayRequest, HttpResponse

__all__ = ["GatewayRequest", "HttpResponse", "Transport"]


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
