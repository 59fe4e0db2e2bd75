"""The middleware chain between a caller and the transport, and the logging middleware.

A middleware is any callable ``async (request, call_next) -> reply``: it may inspect or
replace the :class:`GatewayRequest`, call ``call_next`` zero or more times, and inspect
the :class:`GatewayReply` or the library error that comes back. Errors arrive already
parsed (gateway codes, HTTP status, whether the gateway may have acted), which aiohttp's
own client middlewares cannot see. The first middleware listed is the outermost.

Rules for writing one: let ``asyncio.CancelledError`` through; raise only
``FreedomPayError`` subclasses; never log ``request.fields`` or ``request.body`` (they
hold the signature) and never anything from a Signer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import attrs

from .._exceptions import (
    DeadlineExceededError,
    FreedomPayError,
    GatewayError,
    ReplyError,
)
from .._wire.messages import GatewayReply, GatewayRequest

__all__ = [
    "Handler",
    "Middleware",
    "build_chain",
    "cut_to_deadline",
    "describe_error",
]

Handler = Callable[[GatewayRequest], Awaitable[GatewayReply]]

logger = logging.getLogger(__name__)


class Middleware(Protocol):
    """One layer of the chain: ``await middleware(request, call_next)``.

    Usually an ``async def __call__``; a plain ``__call__`` that returns an awaitable
    (for instance ``call_next(request)`` itself, to stay out of the way) also fits.
    """

    def __call__(self, request: GatewayRequest, call_next: Handler) -> Awaitable[GatewayReply]:
        """Handle ``request``, usually by awaiting ``call_next(request)``."""
        ...


def build_chain(handler: Handler, middlewares: Sequence[Middleware]) -> Handler:
    """Wrap ``handler`` so that ``middlewares[0]`` runs first (outermost)."""
    for middleware in reversed(middlewares):
        handler = _Bound(middleware, handler)
    return handler


class _Bound:
    """``middleware`` with its ``call_next`` bound: one coroutine per layer, not two."""

    __slots__ = ("call_next", "middleware")

    def __init__(self, middleware: Middleware, call_next: Handler) -> None:
        self.middleware = middleware
        self.call_next = call_next

    def __call__(self, request: GatewayRequest) -> Awaitable[GatewayReply]:
        return self.middleware(request, self.call_next)


def describe_error(exc: FreedomPayError) -> str:
    """A short, secret-free description of an error for log lines."""
    if isinstance(exc, GatewayError):
        return f"{type(exc).__name__} code={exc.code}"
    if isinstance(exc, ReplyError) and exc.http_status is not None:
        return f"{type(exc).__name__} http={exc.http_status}"
    return type(exc).__name__


def cut_to_deadline(
    request: GatewayRequest, clock: Callable[[], float], waited_for: str
) -> GatewayRequest:
    """``request`` with its timeout cut to what is left of its deadline after a wait.

    Raises DeadlineExceededError (the request was never sent) when nothing is left.
    For layers that make a request wait; a request without a deadline is returned as is.
    """
    deadline = request.deadline
    if deadline is None:
        return request
    left = deadline - clock()
    if left <= 0:
        raise DeadlineExceededError(
            f"the call's deadline passed while waiting for {waited_for}; not sent",
            payment_id=request.payment_id,
        )
    if request.timeout is None or left < request.timeout:
        return attrs.evolve(request, timeout=left)
    return request


