"""A session's engine: its open state, the one send path and the one cancel dispatch.

:class:`~freedompay_async.AsyncSession` is the public face; every call it makes goes
through an :class:`Engine`: fields, signature, the middleware chain of the operation's
retry rule, the transport, the verified reply, the operation's result value. A plain
cancel is dispatched from one place (:meth:`Engine.cancel_once`) to the direct lane,
the request template through the chain, or the general path.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Iterable, Sequence

import attrs

from .._config import Credentials, GatewayURL, Limits
from .._coordination.base import Coordinator
from .._direct.lane import confirmed
from .._direct.shapes import ReplyShapes
from .._direct.template import CancelTemplate
from .._exceptions import AlreadyCancelledError, ConfigurationError, SessionClosedError
from .._layers.chain import Middleware
from .._layers.pacing import Pacing
from .._layers.retry import RetryPolicy
from .._layers.spacing import PaymentSpacing
from .._operations.cancel import CancelRequest, CancelResult
from .._operations.definitions import CANCEL, Operation, Req, Res, RetryRule
from .._operations.families import OperationSet
from .._operations.values import MAX_PAYMENT_ID
from .._transport.base import Transport
from .._wire.fields import FieldValue
from .._wire.messages import GatewayReply, GatewayRequest
from .._wire.multipart import render_multipart
from .._wire.replies import interpret
from .._wire.salts import take_salt
from .._wire.signing import Md5Signer, Signer, script_name
from .pipeline import FastParts, build_pipeline

__all__ = ["Engine", "Layers", "State"]


class State(enum.Enum):
    """Where a session is in its life."""

    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


@attrs.frozen
class Layers:
    """What the session's chains are built of (see :func:`build_pipeline`)."""

    retry: RetryPolicy
    spacing: PaymentSpacing | None
    pacing: Pacing | None
    limits: Limits
    log_attempts: bool
    middlewares: Sequence[Middleware]
    attempt_middlewares: Sequence[Middleware]
    #: The fleet's shared per-payment state (None: the session's own).
    coordinator: Coordinator | None = None


def _plain_id(payment: object) -> int | None:
    """The payment id when ``payment`` can take the request template: a plain int in
    range, or a CancelRequest without receipt positions; else None."""
    if type(payment) is CancelRequest:
        return None if payment.receipt_positions else payment.payment_id
    return CancelTemplate.usable_id(payment)


def callables(layers: Sequence[Middleware], name: str) -> tuple[Middleware, ...]:
    """``layers`` as a tuple, each checked to be callable (a middleware)."""
    if isinstance(layers, str | bytes) or not isinstance(layers, Iterable):
        raise ConfigurationError(f"{name} must be a sequence of middlewares (a list)")
    found = tuple(layers)
    if not all(callable(layer) for layer in found):
        raise ConfigurationError(f"{name} must hold middlewares: async (request, call_next)")
    return found


def _confirmed_or_raise(exc: AlreadyCancelledError, payment_id: int) -> CancelResult:
    """The result a bound "already cancelled" after an ambiguous attempt gives; else the
    error stands (raised again)."""
    result = confirmed(exc, payment_id)
    if result is None:
        raise exc
    return result


class Engine:
    """One session's send path (see the module docstring). Holds the signer, and with
    the default md5 signer the key's bytes (template, reply shapes): never put it in a
    repr or a log line."""

    def __init__(
        self,
        credentials: Credentials,
        base_url: GatewayURL,
        signer: Signer,
        transport: Transport,
        layers: Layers,
        operations: OperationSet,
    ) -> None:
        self.state = State.UNOPENED
        self.transport = transport
        self.operations = operations
        self._merchant_id = credentials.merchant_id
        self._signer = signer
        self._limits = layers.limits
        self._attempt_timeout = layers.retry.attempt_timeout
        self._targets = {
            op.name: (url, script_name(url))
            for op in operations.all()
            for url in (base_url.url(op.path),)
        }
        fast = self._fast_parts()
        self.chains, self._lane = build_pipeline(
            self.send,
            retry=layers.retry,
            spacing=layers.spacing,
            pacing=layers.pacing,
            limits=layers.limits,
            log_attempts=layers.log_attempts,
            middlewares=layers.middlewares,
            attempt_middlewares=callables(layers.attempt_middlewares, "attempt_middlewares"),
            fast=fast,
            coordinator=layers.coordinator,
        )

    def __repr__(self) -> str:
        return f"<Engine state={self.state.name.lower()}>"

    def _fast_parts(self) -> FastParts | None:
        """The request template and reply shapes of the default md5 signer and the
        Gateway API's cancel (anything else, a subclass included, takes the general
        path)."""
        self._template: CancelTemplate | None = None
        self._shapes: ReplyShapes | None = None
        signer = self._signer
        if type(signer) is not Md5Signer or self.operations.cancel is not CANCEL:
            return None
        key = signer.secret_key.encode("utf-8")  # Md5Signer checked it encodes
        url, script = self._targets[CANCEL.name]
        timeout = self._attempt_timeout
        self._template = CancelTemplate(self._merchant_id, url, script, key, timeout)
        self._shapes = ReplyShapes(key)
        return FastParts(self._template, self._shapes, self.transport, signer)

    def ensure_open(self) -> None:
        """Refuse a closed session; a session used without ``async with`` opens here."""
        if self.state is State.CLOSED:
            raise SessionClosedError("this AsyncSession is closed")
        self.state = State.OPENED

    async def send(self, request: GatewayRequest) -> GatewayReply:
        """The chain's innermost handler: the transport, then the verified reply."""
        http = await self.transport.send(request)
        shapes = self._shapes
        if shapes is None:
            return interpret(request, http, self._signer, self._limits)
        if http.status == 200:
            fast = shapes.read(request.script, http.body)
            if fast is not None:
                return fast
        reply = interpret(request, http, self._signer, self._limits)
        shapes.learn(request.script, http.body)
        return reply

    def _prepare(
        self,
        operation: Operation[Req, Res],
        payment_id: int | None,
        fields: list[tuple[str, FieldValue]],
    ) -> GatewayRequest:
        url, script = self._targets[operation.name]
        fields.append(("pg_sig", self._signer.sign(script, fields)))
        body, content_type = render_multipart(fields)
        return GatewayRequest(
            operation.name,
            url,
            script,
            payment_id,
            tuple(fields),
            body,
            content_type,
            timeout=self._attempt_timeout,
            read_only=operation.retry is RetryRule.READ_ONLY,
        )

    async def call(self, operation: Operation[Req, Res], request: Req) -> Res:
        """The one send path: fields, signature, chain (retry, spacing, cap, pacing,
        logging), transport, verification, then the operation's result value."""
        self.ensure_open()
        pid = request.payment_id
        fields = operation.fields(request, self._merchant_id, take_salt())
        prepared = self._prepare(operation, pid, fields)
        return operation.result(await self.chains[operation.retry](prepared), pid)

    def cancel_once(self, payment: CancelRequest | int | str) -> Awaitable[CancelResult]:
        """One cancel, by the one dispatch: the direct lane when it can take it (a plain
        id, nothing to wait for), else the request template through the chain, else the
        general path. A signed "already cancelled" that names the payment, after an
        attempt that may have been acted on, confirms that attempt.

        Not a coroutine itself: it hands back the chosen path's, so the common cancel
        costs no extra coroutine."""
        template = self._template
        if template is None:
            return self._cancel_general(payment)
        if type(payment) is int and 0 < payment < MAX_PAYMENT_ID:
            pid = payment
        else:
            plain = _plain_id(payment)
            if plain is None:
                return self._cancel_general(payment)
            pid = plain
        if self.state is not State.OPENED:
            self.ensure_open()
        lane = self._lane
        if lane is not None:
            direct = lane.begin(pid)
            if direct is not None:
                return direct
        return self._cancel_template(template, pid)

    async def _cancel_template(self, template: CancelTemplate, pid: int) -> CancelResult:
        """A plain cancel from the request template, through the chain."""
        try:
            return CANCEL.result(await self.chains[CANCEL.retry](template.request(pid)), pid)
        except AlreadyCancelledError as exc:
            return _confirmed_or_raise(exc, pid)

    async def _cancel_general(self, payment: CancelRequest | int | str) -> CancelResult:
        """A cancel through the general send path (another signer, receipt positions)."""
        request = CancelRequest.of(payment)
        try:
            return await self.call(self.operations.cancel, request)
        except AlreadyCancelledError as exc:
            return _confirmed_or_raise(exc, request.payment_id)
