"""The direct path of the common cancel: one coroutine from the template to the result.

A cancel of a plain payment id, signed by the default md5 signer, in a session with no
middleware of the caller's and no pacing, takes this path whenever nothing would make
its first attempt wait: a connection slot is free, its payment's spacing slot is free
and DEBUG logging of attempts is off. It does what the chain's layers do for such an
attempt (the retry layer's deadline and attempt timeout, the spacing reservation, the
in-flight slot, the send, the reply read by the shape fast path or the general reader),
without a coroutine and a request copy per layer, and builds the
:class:`~freedompay_async.CancelResult` straight from the matched reply.

Whatever the first attempt does not settle (an error, a reply to read in full) goes to
the retry layer's ``resume``, whose attempts run through the whole chain: every retry,
wait and error is decided where it always is. When the path cannot be taken,
:meth:`CancelLane.start` says so before anything is reserved, and the cancel takes the
chain from the start.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any

from .._config import Limits
from .._exceptions import (
    AlreadyCancelledError,
    FreedomPayError,
)
from .._layers.attempt_log import LoggingMiddleware
from .._layers.chain import Handler
from .._layers.inflight import InFlightLimit
from .._layers.retry import RetryMiddleware
from .._layers.spacing import PaymentSpacingMiddleware
from .._operations.cancel import CancelResult
from .._operations.definitions import CANCEL
from .._transport.base import SupportsByteLane, Transport
from .._wire.messages import (
    GatewayReply,
    GatewayRequest,
    HttpResponse,
)
from .._wire.replies import interpret
from .._wire.signing import Signer
from .shapes import ReplyShapes
from .template import (
    CancelTemplate,
    Parts,
)

__all__ = ["CancelLane", "Prepared", "confirmed"]

#: What :meth:`CancelLane.begin` prepares: the signed parts, the first attempt's
#: timeout and the call's deadline.
Prepared = tuple[Parts, float | None, float | None]


def confirmed(exc: AlreadyCancelledError, payment_id: int) -> CancelResult | None:
    """The result an "already cancelled" answer gives after an ambiguous attempt (a
    signed answer only), else None: then the error stands."""
    if exc.earlier_maybe_processed and exc.signed:
        return CancelResult.confirmed_by(exc, payment_id)
    return None


class CancelLane:
    """A session's direct cancel path (see the module docstring).

    Its one entry point is :meth:`begin`. It borrows the session's layers through
    their public, non-waiting methods only (``RetryMiddleware.first_limits`` and
    ``resume``, ``PaymentSpacingMiddleware.try_now``, ``InFlightLimit.try_take`` and
    ``give``) and the transport's byte lane when it declares one
    (:class:`~freedompay_async._transport.base.SupportsByteLane`). ``core`` is the
    chain below the retry layer (spacing, in-flight cap, logging, send): what
    ``retry.resume`` runs its later attempts through. Holds the template and the reply
    shapes, and so the key's bytes: never put it in a repr or a log line.
    """

    __slots__ = (
        "_core",
        "_debug",
        "_exchange",
        "_first_limits",
        "_inflight",
        "_limits",
        "_retry",
        "_shapes",
        "_signer",
        "_spacing",
        "_template",
        "_transport",
    )

    def __init__(
        self,
        *,
        template: CancelTemplate,
        shapes: ReplyShapes,
        transport: Transport,
        signer: Signer,
        limits: Limits,
        retry: RetryMiddleware | None,
        attempt_timeout: float | None,
        spacing: PaymentSpacingMiddleware | None,
        inflight: InFlightLimit,
        log: LoggingMiddleware | None,
        core: Handler,
    ) -> None:
        self._template = template
        self._shapes = shapes
        self._transport = transport
        # The transport's byte exchange when it declares one; any other sends requests.
        lane = transport.byte_lane() if isinstance(transport, SupportsByteLane) else None
        self._exchange = lane
        self._signer = signer
        self._limits = limits
        self._retry = retry
        self._first_limits = (
            (lambda: (attempt_timeout, None)) if retry is None else retry.first_limits
        )
        self._spacing = spacing
        self._inflight = inflight
        self._debug = None if log is None else log.logger.isEnabledFor
        self._core = core

    def __repr__(self) -> str:
        return "<CancelLane>"

    def begin(self, payment_id: int) -> Coroutine[Any, Any, CancelResult] | None:
        """The cancel of ``payment_id`` on this path, when it can go now: its first
        attempt's parts signed, its connection and spacing slots taken; await it for
        the result or the error, as the chain would give. None, with nothing taken,
        when the chain must take the cancel (a wait, or DEBUG logging of attempts)."""
        debug = self._debug
        if debug is not None and debug(logging.DEBUG):
            return None
        # Read before any slot is taken, so an injected clock that raises leaks none.
        timeout, deadline = self._first_limits()
        inflight = self._inflight
        if not inflight.try_take():
            return None
        spacing = self._spacing
        try:
            free = spacing is None or spacing.try_now(payment_id)
            parts = self._template.parts(payment_id)
        except BaseException:
            inflight.give()
            raise
        if not free:
            inflight.give()
            return None
        return self.run((parts, timeout, deadline), payment_id)

    def _request(self, prepared: Prepared, payment_id: int) -> GatewayRequest:
        parts, timeout, deadline = prepared
        return self._template.wrap(parts, payment_id, timeout, deadline)

    async def run(self, prepared: Prepared, payment_id: int) -> CancelResult:
        """Send what :meth:`begin` prepared (its connection slot is given back here)
        and return the cancel's result, or raise its error, as the chain would.

        With a byte lane the common case builds no request or response value: the
        body goes out and the reply's bytes come back; the request value is made only
        when something must read it (the general reader, a retry)."""
        error: FreedomPayError | None = None
        found: CancelResult | GatewayReply | None = None
        try:
            try:
                got = await self._send(prepared, payment_id)
            finally:
                self._inflight.give()
            found = self._read(got, prepared, payment_id)
        except FreedomPayError as exc:
            error = exc  # resumed below, outside this handler: no chained context
        if error is not None:
            found = await self._resume(prepared, payment_id, error)
        if isinstance(found, CancelResult):
            return found
        assert found is not None  # set unless an error was raised
        return CANCEL.result(found, payment_id)

    def _send(self, prepared: Prepared, payment_id: int) -> Any:
        """The first attempt's exchange: bytes through the byte lane, else a request."""
        exchange = self._exchange
        if exchange is not None:
            template = self._template
            timeout = prepared[1]
            return exchange(template.url, prepared[0][3], template.content_type, timeout,
                            payment_id)  # fmt: skip
        return self._transport.send(self._request(prepared, payment_id))

    def _read(
        self, got: bytes | HttpResponse, prepared: Prepared, payment_id: int
    ) -> CancelResult | GatewayReply:
        """The result the learnt shape gives, else the general reader's reply (or its
        error, raised)."""
        template = self._template
        if isinstance(got, HttpResponse):  # a refusal, or another transport's answer
            http: HttpResponse | None = got
            body = got.body if got.status == 200 else None
        else:
            http, body = None, got
        if body is not None:
            found = self._shapes.read_cancel(template.script, body, payment_id)
            if found is not None:
                return found
        if http is None:
            assert body is not None  # no response value only for a 200's bytes
            http = HttpResponse(200, body)
        request = self._request(prepared, payment_id)
        reply = interpret(request, http, self._signer, self._limits)
        self._shapes.learn(template.script, http.body)
        return reply

    async def _resume(
        self, prepared: Prepared, payment_id: int, error: FreedomPayError
    ) -> GatewayReply | CancelResult:
        """What the retry layer makes of a first attempt that failed with ``error``."""
        retry = self._retry
        if retry is None:
            raise error
        try:
            return await retry.resume(self._request(prepared, payment_id), self._core, error)
        except AlreadyCancelledError as exc:
            result = confirmed(exc, payment_id)
            if result is None:
                raise
            return result
