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

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import attrs

from ._exceptions import DeadlineExceededError, FreedomPayError, GatewayError, ReplyError
from ._replies import GatewayReply
from ._slots import Slots
from ._transport.base import GatewayRequest

__all__ = [
    "Handler",
    "InFlightLimit",
    "LoggingMiddleware",
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


class LoggingMiddleware:
    """Logs one DEBUG line per attempt (operation, payment id, attempt, outcome, elapsed).

    Uses the ``freedompay_async`` logger hierarchy and installs no handler. Logs no
    fields, bodies, signatures or keys.
    """

    def __init__(
        self, logger: logging.Logger = logger, *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._logger = logger
        self._clock = clock

    @property
    def logger(self) -> logging.Logger:
        """The logger attempts go to (at DEBUG)."""
        return self._logger

    def __call__(self, request: GatewayRequest, call_next: Handler) -> Awaitable[GatewayReply]:
        """Time the attempt and log its outcome; with DEBUG off, hand straight through."""
        if not self._logger.isEnabledFor(logging.DEBUG):
            return call_next(request)
        return self._logged(request, call_next)

    async def _logged(self, request: GatewayRequest, call_next: Handler) -> GatewayReply:
        start = self._clock()
        try:
            reply = await call_next(request)
        except FreedomPayError as exc:
            self._logger.debug(
                "%s payment=%s attempt=%d failed: %s (%.1f ms)",
                request.operation,
                request.payment_id,
                request.attempt,
                describe_error(exc),
                (self._clock() - start) * 1000,
            )
            raise
        self._logger.debug(
            "%s payment=%s attempt=%d ok (%.1f ms)",
            request.operation,
            request.payment_id,
            request.attempt,
            (self._clock() - start) * 1000,
        )
        return reply


class InFlightLimit:
    """Holds each attempt until one of ``limit`` slots is free; inner layers run in the slot.

    The session puts it outside pacing and the transport, so a request waiting for a
    connection neither holds a pacing slot (paced requests can never bunch up behind
    a full pool) nor spends its attempt timeout waiting. The wait does count against
    the call's deadline (``request.deadline``, on ``clock``: the session passes its
    retry policy's clock): a request still waiting when it passes gets
    DeadlineExceededError (never sent), and one that gets a slot is sent with its
    timeout cut to the time left.
    """

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._slots = Slots(limit)
        self._clock = clock
        #: Take a slot without waiting (True) or leave it (False); ``give`` returns one.
        #: For the session's direct cancel path, which must never wait here.
        self.try_take = self._slots.try_take
        self.give = self._slots.give

    async def __call__(self, request: GatewayRequest, call_next: Handler) -> GatewayReply:
        """Run the rest of the chain inside a slot."""
        slots = self._slots
        if slots.try_take():
            try:
                return await call_next(request)
            finally:
                slots.give()
        if request.deadline is None:
            await slots.take()
            try:
                return await call_next(request)
            finally:
                slots.give()
        left = request.deadline - self._clock()
        timed_out = False
        try:
            async with asyncio.timeout(max(left, 0.0)):
                await slots.take()
        except TimeoutError:
            timed_out = True
        if timed_out:
            raise DeadlineExceededError(
                "the call's deadline passed while waiting for a connection slot; not sent",
                payment_id=request.payment_id,
            )
        try:
            request = cut_to_deadline(request, self._clock, "a connection slot")
            return await call_next(request)
        finally:
            slots.give()
