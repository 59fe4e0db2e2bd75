"""AsyncSession: signed, verified Gateway API calls over one aiohttp session."""

from __future__ import annotations

import enum
import functools
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import aiohttp

from .._config import (
    Credentials,
    GatewayURL,
    Limits,
)
from .._direct.lane import confirmed
from .._direct.shapes import ReplyShapes
from .._direct.template import CancelTemplate
from .._exceptions import (
    AlreadyCancelledError,
    ConfigurationError,
    FreedomPayError,
    InternalError,
    SessionClosedError,
    ValidationError,
)
from .._layers.chain import (
    Handler,
    Middleware,
)
from .._layers.pacing import Pacing
from .._layers.retry import RetryPolicy
from .._layers.spacing import PaymentSpacing
from .._operations.cancel import (
    CancelRequest,
    CancelResult,
)
from .._operations.definitions import (
    CANCEL,
    CLEARING,
    REFUND,
    STATUS,
    Operation,
    Req,
    Res,
    RetryRule,
)
from .._operations.money import (
    ClearRequest,
    ClearResult,
    RefundRequest,
    RefundResult,
)
from .._operations.receipts import ReceiptPosition
from .._operations.status import (
    StatusRequest,
    StatusResult,
)
from .._operations.values import MAX_PAYMENT_ID
from .._settling.cancel import (
    DEFAULT_RECONCILE_ROUNDS,
    ambiguous,
    settle_cancel,
)
from .._settling.locks import PaymentLocks
from .._settling.money import (
    Settle,
    settle_clear,
    settle_refund,
)
from .._transport.base import Transport
from .._transport.default import AiohttpTransport
from .._wire.fields import FieldValue
from .._wire.messages import GatewayReply, GatewayRequest
from .._wire.multipart import render_multipart
from .._wire.replies import interpret
from .._wire.salts import take_salt
from .._wire.signing import (
    Md5Signer,
    Signer,
    script_name,
)
from .batch import (
    CancelOutcome,
    run_cancel_many,
)
from .pipeline import (
    FastParts,
    build_pipeline,
)

__all__ = ["AsyncSession"]

CANCEL_PATH = CANCEL.path
_DEFAULT_SPACING = PaymentSpacing()


def _plain_id(payment: object) -> int | None:
    """The payment id when ``payment`` can take the request template: a plain int in
    range, or a CancelRequest without receipt positions; else None."""
    if type(payment) is CancelRequest:
        return None if payment.receipt_positions else payment.payment_id
    return CancelTemplate.usable_id(payment)


def _callables(layers: Sequence[Middleware], name: str) -> tuple[Middleware, ...]:
    """``layers`` as a tuple, each checked to be callable (a middleware)."""
    if isinstance(layers, str | bytes) or not isinstance(layers, Iterable):
        raise ConfigurationError(f"{name} must be a sequence of middlewares (a list)")
    found = tuple(layers)
    if not all(callable(layer) for layer in found):
        raise ConfigurationError(f"{name} must hold middlewares: async (request, call_next)")
    return found


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
    outermost first, once per call), then retry per ``retry`` (with each operation's
    retry rule), then the per-payment ``spacing`` (1.5 s between requests about one
    payment; None: off), then a cap of ``limits.max_connections`` requests in flight,
    then ``pacing``, then a DEBUG logging layer (``log_attempts``), then
    ``attempt_middlewares`` (yours, outermost first, once per HTTP attempt, after every
    wait: they see the exchange itself, e.g. ``freedompay_async.otel``'s tracing). Every
    operation (cancel, status, clear, refund) takes this one path;
    ``reconcile_rounds`` bounds the status queries that settle one ambiguous call.
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
        attempt_middlewares: Sequence[Middleware] = (),
        limits: Limits | None = None,
        session: aiohttp.ClientSession | None = None,
        transport: Transport | None = None,
        log_attempts: bool = True,
        spacing: PaymentSpacing | None = _DEFAULT_SPACING,
        reconcile_rounds: int = DEFAULT_RECONCILE_ROUNDS,
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
        if spacing is not None and not isinstance(spacing, PaymentSpacing):
            raise ConfigurationError("spacing must be a PaymentSpacing value or None")
        self.spacing = spacing
        if isinstance(reconcile_rounds, bool) or not isinstance(reconcile_rounds, int):
            raise ConfigurationError("reconcile_rounds must be an integer >= 1")
        if reconcile_rounds < 1:
            raise ConfigurationError("reconcile_rounds must be an integer >= 1")
        self.reconcile_rounds = reconcile_rounds
        # reconciled clearings and refunds of one payment run one at a time
        self._money_locks = PaymentLocks()
        limits = limits or Limits()
        self._limits = limits
        self._transport: Transport = transport or AiohttpTransport(session, limits=limits)
        self._targets = {
            op.name: (url, script_name(url))
            for op in (CANCEL, STATUS, CLEARING, REFUND)
            for url in (self.base_url.url(op.path),)
        }
        # Fast paths for the default md5 signer (anything else takes the generic path).
        self._template: CancelTemplate | None = None
        self._shapes: ReplyShapes | None = None
        fast = None
        if type(self.signer) is Md5Signer:  # exactly: a subclass may sign differently
            key = self.signer.secret_key.encode("utf-8")  # Md5Signer checked it encodes
            cancel_url, cancel_script = self._targets[CANCEL.name]
            self._template = CancelTemplate(
                credentials.merchant_id, cancel_url, cancel_script, key, self.retry.attempt_timeout
            )
            self._shapes = ReplyShapes(key)
            fast = FastParts(self._template, self._shapes, self._transport, self.signer)
        self._chains, self._lane = build_pipeline(
            self._send,
            retry=self.retry,
            spacing=spacing,
            pacing=pacing,
            limits=limits,
            log_attempts=log_attempts,
            middlewares=middlewares,
            attempt_middlewares=_callables(attempt_middlewares, "attempt_middlewares"),
            fast=fast,
        )
        self._chain: Handler = self._chains[RetryRule.CONFIRMING]
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

    async def _call(self, operation: Operation[Req, Res], request: Req) -> Res:
        """The one send path: fields, signature, chain (retry, spacing, cap, pacing,
        logging), transport, verification, then the operation's result value."""
        self._check_open()
        pid = request.payment_id
        url, script = self._targets[operation.name]
        prepared = self._prepare(
            operation.name,
            url,
            script,
            pid,
            operation.fields(request, self.credentials.merchant_id, take_salt()),
        )
        return operation.result(await self._chains[operation.retry](prepared), pid)

    async def _cancel_once(
        self, payment: CancelRequest | int | str, *, lane_declined: bool = False
    ) -> CancelResult:
        """One cancel on the shared send path; a plain id takes the request template,
        and the direct lane when nothing makes it wait (``lane_declined``: the caller
        has just asked it, and it declined)."""
        template = self._template
        pid = None if template is None else _plain_id(payment)
        if template is None or pid is None:
            request = CancelRequest.of(payment)
            pid = request.payment_id
            try:
                return await self._call(CANCEL, request)
            except AlreadyCancelledError as exc:
                result = confirmed(exc, pid)
                if result is None:
                    raise
                return result
        if self._state is not _State.OPENED:
            self._check_open()
        lane = self._lane
        if lane is not None and not lane_declined:
            first = lane.start(pid)
            if first is not None:
                return await lane.run(first, pid)
        try:
            reply = await self._chains[CANCEL.retry](template.request(pid))
        except AlreadyCancelledError as exc:
            result = confirmed(exc, pid)
            if result is None:
                raise
            return result
        return CANCEL.result(reply, pid)

    async def cancel(
        self, payment: CancelRequest | int | str, *, reconcile: bool = False
    ) -> CancelResult:
        """Cancel (void) a held two-step payment through ``/g2g/cancel``.

        Returns a :class:`CancelResult` (check ``revoke_status``: SUCCESS or PENDING).
        When an attempt timed out or lost its connection and a retry is answered
        "already cancelled" (10033/11017, signed), the result has
        ``confirmed_on_retry=True``. Otherwise raises a :class:`FreedomPayError`
        subclass; ``error.outcome_unknown`` says whether the gateway may have acted.

        With ``reconcile=True`` an ambiguous outcome is settled by asking
        :meth:`status`: revoked gives a result with ``confirmed_by_status=True``, still
        held sends the cancel again, a signed not found raises PaymentNotFoundError;
        captured, refunded or failed raises the last ambiguous error, or
        :class:`NotCancelledError` when the last answer was a verified but ambiguous
        result; what status cannot settle raises the last ambiguous error (or returns
        the last ambiguous result).
        """
        if not reconcile:
            lane = self._lane
            if (
                lane is not None
                and type(payment) is int
                and 0 < payment < MAX_PAYMENT_ID
                and self._state is _State.OPENED
            ):
                direct = lane.start(payment)
                if direct is not None:
                    return await lane.run(direct, payment)
                return await self._cancel_once(payment, lane_declined=True)
            return await self._cancel_once(payment)
        self._check_open()
        request = CancelRequest.of(payment)
        first: CancelResult | FreedomPayError
        try:
            first = await self._cancel_once(request)
        except FreedomPayError as exc:
            if not ambiguous(exc):
                raise
            first = exc
        else:
            if not ambiguous(first):
                return first
        settled = await settle_cancel(
            self._cancel_once, self._status_once, request, first, rounds=self.reconcile_rounds
        )
        if settled.result is not None:
            return settled.result
        if settled.error is not None:
            raise settled.error
        error = InternalError("reconciling found neither a result nor an error")
        error.payment_id = request.payment_id
        raise error

    async def _settled(
        self, settle: Settle[Req, Res], operation: Operation[Req, Res], request: Req
    ) -> Res:
        """A clearing or refund whose ambiguous attempt is settled by status; those of
        one payment run one at a time, so status compares before and after this one."""
        async with self._money_locks.hold(request.payment_id):
            send = functools.partial(self._call, operation)
            return await settle(send, self._status_once, request, rounds=self.reconcile_rounds)

    async def _status_once(self, request: StatusRequest) -> StatusResult:
        return await self._call(STATUS, request)

    async def status(
        self, payment: StatusRequest | int | str, *, order_id: str | int | None = None
    ) -> StatusResult:
        """The status of one payment through ``/g2g/status_v2`` (read-only).

        ``order_id`` (optional) is sent as ``pg_order_id``; absent, it is sent empty
        and signed, as documented. Every failure that is not a final gateway answer is
        retried (asking is always safe). An unknown payment raises
        PaymentNotFoundError (11068, usually unsigned). Card data in the reply is
        dropped, never kept or logged.
        """
        if isinstance(payment, StatusRequest):
            request = payment
        else:
            request = StatusRequest(payment, order_id)
        return await self._call(STATUS, request)

    async def clear(
        self,
        payment: ClearRequest | int | str,
        amount: Decimal | int | str | None = None,
        *,
        reconcile: bool = True,
    ) -> ClearResult:
        """Clear (capture) a held two-step payment through ``/g2g/clearing``.

        ``amount`` None clears all of it; a smaller amount clears part. Clearing moves
        money: an attempt after which the gateway may have acted is never re-sent
        blindly. With ``reconcile`` (default) such an attempt is settled by
        :meth:`status`: captured gives a result with ``confirmed_by_status=True``,
        still held sends it again; otherwise the ambiguous error is raised.
        """
        request = payment if isinstance(payment, ClearRequest) else ClearRequest(payment, amount)
        if not reconcile:
            return await self._call(CLEARING, request)
        return await self._settled(settle_clear, CLEARING, request)

    async def refund(
        self,
        payment: RefundRequest | int | str,
        amount: Decimal | int | str | None = None,
        *,
        currency: str | None = None,
        receipt_positions: Sequence[ReceiptPosition] = (),
        reconcile: bool = True,
    ) -> RefundResult:
        """Refund ``amount`` of a one-step or cleared payment through ``/g2g/refund``.

        Refunds move money: an ambiguous attempt is never re-sent blindly. With
        ``reconcile`` (default) the payment's status is read before sending, and an
        ambiguous attempt is settled by reading it again: a refunded amount grown by
        ``amount`` gives a result with ``confirmed_by_status=True``, an unchanged one
        sends the refund again; anything else raises the ambiguous error.
        """
        if isinstance(payment, RefundRequest):
            request = payment
        elif amount is None:
            raise ValidationError("refund needs an amount (a full refund: the payment's amount)")
        else:
            request = RefundRequest(payment, amount, currency, receipt_positions)
        if not reconcile:
            return await self._call(REFUND, request)
        return await self._settled(settle_refund, REFUND, request)

    def cancel_many(
        self,
        items: Iterable[CancelRequest | int | str] | AsyncIterable[CancelRequest | int | str],
        *,
        concurrency: int = 50,
        reconcile: bool = True,
    ) -> AsyncGenerator[CancelOutcome, None]:
        """Cancel many payments, yielding one :class:`CancelOutcome` per input as each completes.

        ``items`` may be any iterable or async iterable (a generator of millions is
        fine: it is read lazily and memory stays flat). At most ``concurrency`` cancels
        are in flight. One item's failure is an outcome, never an exception; an
        unparseable id is a FAILED outcome. Cancelling the consumer, or closing the
        iterator (``contextlib.aclosing``), stops the workers and releases connections.

        With ``reconcile`` (default) an ambiguous cancel is settled by asking
        :meth:`status` (see :meth:`cancel`); ``outcome.settled_by`` says how each
        outcome was learnt.
        """
        self._check_open()
        settle: Any = None
        if reconcile:
            settle = functools.partial(
                settle_cancel, self._cancel_once, self._status_once, rounds=self.reconcile_rounds
            )
        return run_cancel_many(self._cancel_once, items, concurrency=concurrency, settle=settle)
