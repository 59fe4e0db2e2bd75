"""AsyncSession: signed, verified Gateway API calls over one aiohttp session."""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Sequence
from types import TracebackType
from typing import Self

import aiohttp

from ._batch import CancelOutcome, run_cancel_many
from ._config import Credentials, GatewayURL, Limits
from ._exceptions import (
    AlreadyCancelledError,
    ConfigurationError,
    FreedomPayError,
    SessionClosedError,
)
from ._fastpath import CancelTemplate, take_salt
from ._fastreply import ReplyShapes
from ._fields import FieldValue
from ._middleware import Handler, InFlightLimit, LoggingMiddleware, Middleware, build_chain
from ._models import CancelRequest, CancelResult
from ._multipart import render_multipart
from ._pacing import Pacing, PacingMiddleware
from ._replies import GatewayReply, interpret
from ._retry import RetryMiddleware, RetryPolicy
from ._signing import Md5Signer, Signer, script_name
from ._transport.base import GatewayRequest, Transport
from ._transport.default import AiohttpTransport

__all__ = ["AsyncSession"]

CANCEL_PATH = "/g2g/cancel"


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class AsyncSession:
    """A client for the Freedom Pay Gateway API. Use as ``async with``; share freely.

    >>> async with AsyncSession(Credentials(merchant_id, secret), base_url=GatewayURL.KZ) as fp:
    ...     result = await fp.cancel(payment_id)

    One instance is safe to share across thousands of concurrent tasks. It creates a
    tuned aiohttp ``ClientSession`` on first use, or borrows ``session=`` (never closing
    it). Every request is signed by ``signer`` (md5 ``pg_sig`` with the credentials'
    key by default), rendered once as multipart bytes, and every reply's signature is
    verified before anything in it is believed.

    Between the call and the transport runs a middleware chain: ``middlewares`` (yours,
    outermost first), then retry per ``retry``, then a cap of ``limits.max_connections``
    requests in flight, then ``pacing``, then a DEBUG logging layer (``log_attempts``).
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: GatewayURL | str = GatewayURL.KZ,
        signer: Signer | None = None,
        retry: RetryPolicy | None = None,
        pacing: Pacing | None = None,
        middlewares: Sequence[Middleware] = (),
        limits: Limits | None = None,
        session: aiohttp.ClientSession | None = None,
        transport: Transport | None = None,
        log_attempts: bool = True,
    ) -> None:
        if not isinstance(credentials, Credentials):
            raise ConfigurationError("credentials must be a Credentials value")
        if transport is not None and session is not None:
            raise ConfigurationError("pass either session= or transport=, not both")
        self.credentials = credentials
        self.base_url = GatewayURL.of(base_url)
        self.signer: Signer = signer if signer is not None else Md5Signer(credentials.secret_key)
        self.retry = retry if retry is not None else RetryPolicy()
        self.pacing = pacing
        limits = limits or Limits()
        self._limits = limits
        self._transport: Transport = transport or AiohttpTransport(session, limits=limits)
        self._cancel_url = self.base_url.url(CANCEL_PATH)
        self._cancel_script = script_name(self._cancel_url)
        layers: list[Middleware] = list(middlewares)
        if self.retry.retries or self.retry.deadline is not None:
            layers.append(RetryMiddleware(self.retry))  # it also sets the call's deadline
        layers.append(InFlightLimit(limits.max_connections, clock=self.retry.clock))
        if pacing is not None:
            layers.append(PacingMiddleware(pacing, deadline_clock=self.retry.clock))
        if log_attempts:
            layers.append(LoggingMiddleware())
        self._chain: Handler = build_chain(self._send, layers)
        # Fast paths for the default md5 signer (anything else takes the generic path).
        self._template: CancelTemplate | None = None
        self._shapes: ReplyShapes | None = None
        if type(self.signer) is Md5Signer:  # exactly: a subclass may sign differently
            key = self.signer.secret_key.encode("utf-8")  # Md5Signer checked it encodes
            self._template = CancelTemplate(
                credentials.merchant_id,
                self._cancel_url,
                self._cancel_script,
                key,
                self.retry.attempt_timeout,
            )
            self._shapes = ReplyShapes(key)
        self._state = _State.UNOPENED

    def __repr__(self) -> str:
        return (
            f"<AsyncSession merchant_id={self.credentials.merchant_id} "
            f"base_url={self.base_url.base!r} state={self._state.name.lower()}>"
        )

    async def __aenter__(self) -> Self:
        if self._state is _State.CLOSED:
            raise SessionClosedError("this AsyncSession is closed; create a new one")
        if self._state is _State.OPENED:
            raise SessionClosedError("this AsyncSession is already open")
        self._state = _State.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close what this session created (not a borrowed aiohttp session). Idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        await self._transport.aclose()

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` has been called."""
        return self._state is _State.CLOSED

    def _check_open(self) -> None:
        if self._state is _State.CLOSED:
            raise SessionClosedError("this AsyncSession is closed")
        self._state = _State.OPENED

    async def _send(self, request: GatewayRequest) -> GatewayReply:
        http = await self._transport.send(request)
        shapes = self._shapes
        if shapes is None:
            return interpret(request, http, self.signer, self._limits)
        if http.status == 200:
            fast = shapes.read(request.script, http.body)
            if fast is not None:
                return fast
        reply = interpret(request, http, self.signer, self._limits)
        shapes.learn(request.script, http.body)
        return reply

    def _prepare(
        self,
        operation: str,
        url: str,
        script: str,
        payment_id: int | None,
        fields: list[tuple[str, FieldValue]],
    ) -> GatewayRequest:
        fields.append(("pg_sig", self.signer.sign(script, fields)))
        body, content_type = render_multipart(fields)
        return GatewayRequest(
            operation,
            url,
            script,
            payment_id,
            tuple(fields),
            body,
            content_type,
            timeout=self.retry.attempt_timeout,
        )

    async def cancel(self, payment: CancelRequest | int | str) -> CancelResult:
        """Cancel (void) a held two-step payment through ``/g2g/cancel``.

        Returns a :class:`CancelResult` (check ``revoke_status``: SUCCESS or PENDING).
        When an attempt timed out or lost its connection and a retry is answered
        "already cancelled" (10033/11017, signed), the result has
        ``confirmed_on_retry=True``. Otherwise raises a :class:`FreedomPayError`
        subclass; ``error.outcome_unknown`` says whether the gateway may have acted.
        """
        if self._state is not _State.OPENED:
            self._check_open()
        template = self._template
        pid = None if template is None else template.usable_id(payment)
        if template is not None and pid is not None:
            prepared = template.request(pid)
        else:
            request = CancelRequest.of(payment)
            pid = request.payment_id
            prepared = self._prepare(
                "cancel",
                self._cancel_url,
                self._cancel_script,
                pid,
                request.to_fields(self.credentials.merchant_id, take_salt()),
            )
        try:
            reply = await self._chain(prepared)
        except AlreadyCancelledError as exc:
            if exc.earlier_maybe_processed and exc.signed:
                return CancelResult.confirmed_by(exc, pid)
            raise
        try:
            return CancelResult.from_reply(reply, pid)
        except FreedomPayError as exc:
            exc.attempts = reply.attempts
            exc.earlier_maybe_processed = reply.earlier_maybe_processed
            raise

    def cancel_many(
        self,
        items: Iterable[CancelRequest | int | str] | AsyncIterable[CancelRequest | int | str],
        *,
        concurrency: int = 50,
    ) -> AsyncGenerator[CancelOutcome, None]:
        """Cancel many payments, yielding one :class:`CancelOutcome` per input as each completes.

        ``items`` may be any iterable or async iterable (a generator of millions is
        fine: it is read lazily and memory stays flat). At most ``concurrency`` cancels
        are in flight. One item's failure is an outcome, never an exception; an
        unparseable id is a FAILED outcome. Cancelling the consumer, or closing the
        iterator (``contextlib.aclosing``), stops the workers and releases connections.
        """
        self._check_open()
        return run_cancel_many(self.cancel, items, concurrency=concurrency)
