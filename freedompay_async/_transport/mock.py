"""MockTransport: a Transport that answers from a function, for tests of code using the library.

::

    def answer(request: GatewayRequest) -> HttpResponse:
        fields = [("pg_payment_id", str(request.payment_id)), ("pg_status", "ok"), ...]
        return HttpResponse(200, signed_response(request.script, signer, fields))

    async with AsyncSession(credentials, transport=MockTransport(answer)) as fp:
        ...

No socket is opened; everything else (signing, the middleware chain, reply
verification, typed errors) runs as in production.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from .._exceptions import SessionClosedError
from .._wire.messages import (
    GatewayRequest,
    HttpResponse,
)

__all__ = ["MockHandler", "MockTransport"]

#: What answers a request: returns (or resolves to) the HTTP response, or raises a
#: library ``TransportError`` to play a network failure.
MockHandler = Callable[[GatewayRequest], "HttpResponse | Awaitable[HttpResponse]"]


class MockTransport:
    """A :class:`~freedompay_async.Transport` that hands each request to ``handler``.

    ``requests`` lists every request sent, in order (retries included), so a test can
    check what went out; ``closed`` says whether the session closed it.
    """

    def __init__(self, handler: MockHandler) -> None:
        self.handler = handler
        self.requests: list[GatewayRequest] = []
        self.closed = False

    def __repr__(self) -> str:
        return f"<MockTransport requests={len(self.requests)} closed={self.closed}>"

    async def send(self, request: GatewayRequest) -> HttpResponse:
        """Record ``request`` and return what ``handler`` answers."""
        if self.closed:
            raise SessionClosedError("transport is closed")
        self.requests.append(request)
        answer = self.handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

    async def aclose(self) -> None:
        """Mark the transport closed. Idempotent."""
        self.closed = True
