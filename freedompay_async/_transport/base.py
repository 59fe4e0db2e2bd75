"""The transport seam: the signed request a transport sends, the raw response it returns.

Write your own :class:`Transport` (a proxy, a recorder, another HTTP client) against
these three names alone; :class:`~freedompay_async.MockTransport` is a ready one for
tests.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs

from .._fields import Fields

__all__ = ["GatewayRequest", "HttpResponse", "Transport"]


@attrs.frozen
class GatewayRequest:
    """A signed request ready for the wire; middleware sees and may re-send it as is.

    ``body`` is the multipart rendering made once at signing time: every retry sends the
    same bytes. ``timeout`` is the attempt's time limit in seconds (None: no limit).
    ``deadline`` is the whole call's deadline as an absolute time on the retry policy's
    clock (``time.monotonic`` unless injected; None: no deadline), set by the retry
    layer; layers that make a request wait (the in-flight cap, pacing) raise
    DeadlineExceededError when it passes and cut ``timeout`` to what is left of it, so
    the transport's timeout is always the time left at send time.
    Fields and body are kept out of ``repr`` (they hold the signature).
    """

    operation: str
    url: str
    script: str
    payment_id: int | None
    fields: Fields = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    content_type: str = attrs.field(repr=False)
    timeout: float | None = None
    attempt: int = 1
    deadline: float | None = None


@attrs.frozen
class HttpResponse:
    """What a transport read: the status, the (size-capped) body and the headers used.

    ``retry_after`` and ``date`` are the raw ``Retry-After`` and ``Date`` header values
    (None when absent); the session parses them.
    """

    status: int
    body: bytes = attrs.field(repr=False)
    retry_after: str | None = None
    date: str | None = None


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
