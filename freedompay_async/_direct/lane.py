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
import time

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
from .._transport.base import Transport
from .._transport.default import AiohttpTransport
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

#: What :meth:`CancelLane.start` prepares: the signed parts and the call's deadline.
Prepared = tuple[Parts, float | None]


def confirmed(exc: AlreadyCancelledError, payment_id: int) -> CancelResult | None:
    """The result an "already cancelled" answer gives after an ambiguous attempt (a
    signed answer only), else None: then the error stands."""
    if exc.earlier_maybe_processed and exc.signed:
        return CancelResult.confirmed_by(exc, payment_id)
    return None


class CancelLane:
    """A session's direct cancel path (see the module docstring).

    ``core`` is the chain below the retry layer (spacing, in-flight cap, logging,
    send): what ``retry.resume`` runs its later attempts through. Holds the template
    and the reply shapes, and so the key's bytes: never put it in a repr or a log line.
    """

    __slots__ = (
        "_clock",
        "_core",
        "_deadline_after",
        "_debug",
        "_exchange",
        "_inflight",
        "_limits",
        "_retry",
        "_shapes",
        "_signer",
        "_spacing",
        "_template",
        "_timeout",
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
        # The default transport's body-only exchange; any other transport gets requests.
        # Only the stock transport's send is known to be `_exchange` plus a wrapper: a
        # subclass that overrides send keeps every request going through it.
        self._exchange = (
            transport._exchange
            if isinstance(transport, AiohttpTransport)
            and type(transport).send is AiohttpTransport.send
            else None
        )
        self._signer = signer
        self._limits = limits
        self._retry = retry
        self._timeout = attempt_timeout if retry is None else retry.first_timeout
        self._deadline_after = None if retry is None else retry.deadline_after
        self._clock = time.monotonic if retry is None else retry.policy.clock
        self._spacing = spacing
        self._inflight = inflight
        self._debug = None if log is None else log.logger.isEnabledFor
        self._core = core

    def __repr__(self) -> str:
        return "<CancelLane>"

    def start(self, payment_id: int) -> Prepared | None:
        """The first attempt's signed parts and deadline, its connection and spacing
        slots taken, when it can go now; None (nothing taken) when the chain must take
        the cancel."""
        debug = self._debug
        if debug is not None and debug(logging.DEBUG):
            return None
        # What RetryMiddleware.first_limits gives, from the values it keeps; read
        # before any slot is taken, so an injected clock that raises leaks none.
        after = self._deadline_after
        deadline = None if after is None else self._clock() + after
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
        return parts, deadline

    def _request(self, prepared: Prepared, payment_id: int) -> GatewayRequest:
        parts, deadline = prepared
        return self._template.wrap(parts, payment_id, self._timeout, deadline)

    async def run(self, prepared: Prepared, payment_id: int) -> CancelResult:
        """Send what :meth:`start` prepared (its connection slot is given back here)
        and return the cancel's result, or raise its error, as the chain would.

        With the default transport the common case builds no request or response
        value: the body goes out and the reply's bytes come back; the request value
        is made only when something must read it (the general reader, a retry)."""
        request: GatewayRequest | None = None
        error: FreedomPayError | None = None
        template = self._template
        try:
            try:
                exchange = self._exchange
                if exchange is not None:
                    got: bytes | HttpResponse = await exchange(
                        template.url,
                        prepared[0][3],
                        template.content_type,
                        self._timeout,
                        payment_id,
                    )
                else:
                    request = self._request(prepared, payment_id)
                    got = await self._transport.send(request)
            finally:
                self._inflight.give()
            if isinstance(got, HttpResponse):  # a refusal, or another transport's answer
                http: HttpResponse | None = got
                body = got.body if got.status == 200 else None
            else:
                http, body = None, got
            reply: GatewayReply | None = None
            if body is not None:
                found = self._shapes.read_cancel(template.script, body, payment_id)
                if isinstance(found, CancelResult):
                    return found
                reply = found
            if reply is None:
                if request is None:
                    request = self._request(prepared, payment_id)
                if http is None:
                    assert body is not None  # no response value only for a 200's bytes
                    http = HttpResponse(200, body)
                reply = interpret(request, http, self._signer, self._limits)
                self._shapes.learn(template.script, http.body)
        except FreedomPayError as exc:
            error = exc  # resumed below, outside this handler: no chained context
        if error is not None:
            retry = self._retry
            if retry is None:
                raise error
            if request is None:
                request = self._request(prepared, payment_id)
            try:
                reply = await retry.resume(request, self._core, error)
            except AlreadyCancelledError as exc:
                result = confirmed(exc, payment_id)
                if result is None:
                    raise
                return result
        assert reply is not None  # set unless an error was raised or resumed
        return CANCEL.result(reply, payment_id)
