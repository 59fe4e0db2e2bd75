"""A transport that counts the attempts on the wire, for a truthful "in flight"."""

from __future__ import annotations

from .._transport.base import GatewayRequest, HttpResponse, Transport

__all__ = ["CountingTransport"]


class CountingTransport:
    """Wraps a :class:`~freedompay_async.Transport`; :attr:`on_wire` is how many
    attempts are between being sent and their reply read.

    It sits under the session's whole chain, so an attempt waiting for its payment's
    spacing slot, for pacing or for a connection slot is not counted: the figure is
    never above the session's in-flight cap (``--concurrency``).
    """

    def __init__(self, inner: Transport) -> None:
        self._inner = inner
        self.on_wire = 0

    async def send(self, request: GatewayRequest) -> HttpResponse:
        """Send through the wrapped transport, counted."""
        self.on_wire += 1
        try:
            return await self._inner.send(request)
        finally:
            self.on_wire -= 1

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()
