"""AsyncSession: signed, verified Gateway or Merchant API calls over one aiohttp session."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Literal, Self, overload

import aiohttp

from .._config import Credentials, GatewayURL, Limits
from .._coordination.base import Coordinator
from .._exceptions import (
    ConfigurationError,
    FreedomPayError,
    SessionClosedError,
    ValidationError,
)
from .._layers.chain import Middleware
from .._layers.pacing import Pacing
from .._layers.retry import RetryPolicy
from .._layers.spacing import PaymentSpacing
from .._operations.cancel import CancelRequest, CancelResult, RevokeStatus
from .._operations.families import Api
from .._operations.money import (
    ClearRequest,
    ClearResult,
    RefundBaseline,
    RefundRequest,
    RefundResult,
    full_refund_request,
)
from .._operations.receipts import ReceiptPosition
from .._operations.status import StatusRequest, StatusResult
from .._settling.guard import LeaseGuard, LocalGuard, MoneyGuard
from .._settling.loop import Settled, settle
from .._settling.memory import RecentRefunds
from .._settling.policy import SettlePolicy
from .._settling.readings import Readings
from .._settling.rules import CANCEL_RULE, ambiguous
from .._transport.base import Transport
from .._transport.default import AiohttpTransport
from .._wire.signing import Md5Signer, Signer
from .batch import run_cancel_many
from .engine import Engine, Layers, State
from .initiation import PaymentCreation
from .money import MoneyPath
from .outcome import CancelOutcome
from .verdicts import of_order, revoke_error

__all__ = ["AsyncSession"]

_DEFAULT_SPACING = PaymentSpacing()
_DEFAULT_SETTLE = SettlePolicy()


def _checked_options(
    credentials: object,
    session: object,
    transport: object,
    spacing: object,
    settle: object,
    coordinator: object,
) -> None:
    if not isinstance(credentials, Credentials):
        raise ConfigurationError("credentials must be a Credentials value")
    if transport is not None and session is not None:
        raise ConfigurationError("pass either session= or transport=, not both")
    if spacing is not None and not isinstance(spacing, PaymentSpacing):
        raise ConfigurationError("spacing must be a PaymentSpacing value or None")
    if not isinstance(settle, SettlePolicy):
        raise ConfigurationError("settle must be a SettlePolicy value")
    if coordinator is not None and not isinstance(coordinator, Coordinator):
        raise ConfigurationError("coordinator must be a Coordinator (e.g. RedisCoordinator)")


class AsyncSession(PaymentCreation):
    """A client for the Freedom Pay Gateway or Merchant API. Use as ``async with``.

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
    operation (cancel, status, clear, refund, init_payment) takes this one path. A call
    whose outcome is left open is settled by asking status, as ``settle``
    (:class:`SettlePolicy`) says.

    ``api`` picks the family the session speaks (:class:`Api`): ``"gateway"`` (the
    default: ``/g2g/cancel``, ``status_v2``, ``clearing``, ``refund``, which need a PCI
    DSS certificate) or ``"merchant"`` (``cancel.php``, ``get_status3.php``,
    ``do_capture.php``, ``revoke.php``). The calls are the same on either. The Merchant
    API's success replies name no payment, so with it a cancel, clearing or refund is
    confirmed by status (``confirmed_by_status``) before it is returned.

    Clearings and refunds of one payment run one at a time, and the spacing holds
    between this session's own requests. For a fleet of workers acting on the same
    payments, pass a shared ``coordinator`` (``RedisCoordinator.from_url(url)``): the
    spacing then holds across the fleet, a payment's clearing or refund is done under a
    lease one worker at a time, and the direct cancel path steps aside. The session
    closes its coordinator when it closes.
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
        settle: SettlePolicy = _DEFAULT_SETTLE,
        api: Api | str = Api.GATEWAY,
        coordinator: Coordinator | None = None,
    ) -> None:
        _checked_options(credentials, session, transport, spacing, settle, coordinator)
        #: The API family this session speaks.
        self.api = Api.of(api)
        self._ops = self.api.operations
        self.credentials = credentials
        self.base_url = GatewayURL.of(base_url)
        self.signer: Signer = signer if signer is not None else Md5Signer(credentials.secret_key)
        self.retry = retry if retry is not None else RetryPolicy()
        self.pacing = pacing
        self.spacing = spacing
        self.settle = settle
        #: The fleet's shared per-payment state; None: this session's own.
        self.coordinator = coordinator
        limits = limits or Limits()
        self._transport: Transport = transport or AiohttpTransport(session, limits=limits)
        layers = Layers(
            self.retry,
            spacing,
            pacing,
            limits,
            log_attempts,
            middlewares,
            attempt_middlewares,
            coordinator=coordinator,
        )
        self._engine = Engine(
            credentials, self.base_url, self.signer, self._transport, layers, self._ops
        )
        self._cancel_once = self._engine.cancel_once  # the one cancel dispatch, bound once
        # clearings and refunds of one payment run one at a time (see MoneyPath)
        guard: MoneyGuard = LocalGuard() if coordinator is None else LeaseGuard(coordinator)
        # a refund's baseline is completed with the refunds status may not show yet
        recent = RecentRefunds(settle.window, settle.clock)
        # the readings that judge cancels and money: a repeated one is a replay
        self._readings = Readings(self._status_once)
        self._money = MoneyPath(self._engine.call, self._readings, guard, recent, self._ops)

    def __repr__(self) -> str:
        return (
            f"<AsyncSession merchant_id={self.credentials.merchant_id} api={self.api.value} "
            f"base_url={self.base_url.base!r} state={self._engine.state.name.lower()}>"
        )

    async def __aenter__(self) -> Self:
        engine = self._engine
        if engine.state is State.CLOSED:
            raise SessionClosedError("this AsyncSession is closed; create a new one")
        if engine.state is State.OPENED:
            raise SessionClosedError("this AsyncSession is already open")
        engine.state = State.OPENED
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
        if self._engine.state is State.CLOSED:
            return
        self._engine.state = State.CLOSED
        try:
            await self._transport.aclose()
        finally:
            if self.coordinator is not None:
                await self.coordinator.aclose()

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` has been called."""
        return self._engine.state is State.CLOSED

    async def cancel(
        self, payment: CancelRequest | int | str, *, reconcile: bool = True
    ) -> CancelResult:
        """Cancel (void) a held two-step payment through ``/g2g/cancel``.

        Returns a :class:`CancelResult` whose ``revoke_status`` is SUCCESS (or PENDING
        when the gateway is still processing it and status could not confirm it yet).
        Raises a :class:`FreedomPayError` subclass otherwise; ``error.outcome_unknown``
        says whether the gateway may have acted. A repeated cancel raises
        :class:`AlreadyCancelledError` once status confirms the payment revoked.

        With ``reconcile`` (default) an outcome the replies leave open (a timeout, a lost
        or garbled reply, a revoke status ``pending`` or unknown, a refusal or an
        "already cancelled" that names no payment, which is every error the gateway
        sends) is settled by asking :meth:`status` (see :class:`SettlePolicy`): revoked
        gives a result with ``confirmed_by_status=True``; still held sends the cancel
        again; captured, refunded or failed raises :class:`NotCancelledError` (or the
        refusal, now bound). What status cannot settle raises the last ambiguous error
        (or returns the last ambiguous result). With ``reconcile=False`` nothing is
        asked, and a claim that names no payment raises :class:`UnconfirmedReplyError`.
        A revoke status ``error`` raises :class:`NotCancelledError`.
        """
        try:
            result = await self._cancel_once(payment)
        except FreedomPayError as exc:
            if not reconcile or not ambiguous(exc):
                raise
            first: CancelResult | FreedomPayError = exc
        else:
            status = result.revoke_status
            if status is RevokeStatus.SUCCESS:
                return result  # the common answer: nothing left open
            if reconcile and ambiguous(result):
                first = result
            elif status is RevokeStatus.ERROR:
                raise revoke_error(result)
            else:
                return result
        request = CancelRequest.of(payment)
        settled = await self._settle_cancel(request, first)
        result = settled.unwrap()
        if result.revoke_status is RevokeStatus.ERROR:
            raise revoke_error(result)
        return result

    async def _settle_cancel(
        self, request: CancelRequest, first: CancelResult | FreedomPayError
    ) -> Settled[CancelResult]:
        return await settle(
            CANCEL_RULE,
            self._cancel_once,
            self._readings,
            request,
            first,
            payment_id=request.payment_id,
            policy=self.settle,
        )

    async def _status_once(self, request: StatusRequest) -> StatusResult:
        return await self._engine.call(self._ops.status, request)

    async def status(
        self, payment: StatusRequest | int | str, *, order_id: str | int | None = None
    ) -> StatusResult:
        """The status of one payment through ``/g2g/status_v2`` or ``get_status3.php``.

        ``order_id`` (optional) is sent as ``pg_order_id``; absent, the Gateway API gets
        it empty and signed, as documented, the Merchant API not at all. Every failure
        that is not a final gateway answer is retried (asking is always safe). An
        unknown payment raises PaymentNotFoundError (11068, usually unsigned; or a reply
        for payment 0). Card data in the reply is dropped, never kept or logged.
        """
        if isinstance(payment, StatusRequest):
            request = payment
        else:
            request = StatusRequest(payment, order_id)
        return of_order(await self._engine.call(self._ops.status, request), request.order_id)

    async def clear(
        self,
        payment: ClearRequest | int | str,
        amount: Decimal | int | str | None = None,
        *,
        reconcile: bool = True,
        resume: bool = False,
    ) -> ClearResult:
        """Clear (capture) a held two-step payment (``/g2g/clearing``, ``do_capture.php``).

        ``amount`` None clears all of it; a smaller amount clears part. Clearing moves
        money, so it happens at most once: an attempt the gateway may have acted on is
        never sent again blindly. With ``reconcile`` (default) such an attempt is
        settled by :meth:`status` over the settle window (:class:`SettlePolicy`):
        captured gives a result with ``confirmed_by_status=True``; a whole window of
        "still held" sends it again; anything else ends with the outcome unknown. A
        clearing of a payment cleared before raises :class:`AlreadyClearedError` once
        status confirms it. ``resume=True`` says an earlier run may already have sent
        this clearing (a journaled intent): nothing is sent before status has been
        watched for a whole window.
        """
        request = payment if isinstance(payment, ClearRequest) else ClearRequest(payment, amount)
        if not reconcile:
            return await self._engine.call(self._ops.clearing, request)
        return await self._money.clear(request, resume, self.settle)

    async def refund_baseline(self, payment: int | str) -> RefundBaseline:
        """What status shows of a payment's refunds now: the baseline a refund is
        settled against (journal it with a refund's intent, see :meth:`refund`). The
        reading is remembered: one replayed later while the refund settles is refused."""
        seen = await self.status(payment)
        self._readings.check(seen)
        return RefundBaseline.of(seen)

    @overload
    async def refund(
        self,
        payment: RefundRequest,
        *,
        reconcile: bool = ...,
        baseline: RefundBaseline | None = ...,
        resume: bool = ...,
    ) -> RefundResult: ...

    @overload
    async def refund(
        self,
        payment: int | str,
        amount: Decimal | int | str,
        *,
        currency: str | None = ...,
        receipt_positions: Sequence[ReceiptPosition] = ...,
        reconcile: bool = ...,
        baseline: RefundBaseline | None = ...,
        resume: bool = ...,
    ) -> RefundResult: ...

    @overload
    async def refund(
        self,
        payment: int | str,
        *,
        full: Literal[True],
        currency: str | None = ...,
        receipt_positions: Sequence[ReceiptPosition] = ...,
        reconcile: bool = ...,
    ) -> RefundResult: ...

    async def refund(
        self,
        payment: RefundRequest | int | str,
        amount: Decimal | int | str | None = None,
        *,
        currency: str | None = None,
        receipt_positions: Sequence[ReceiptPosition] = (),
        reconcile: bool = True,
        baseline: RefundBaseline | None = None,
        resume: bool = False,
        full: bool = False,
    ) -> RefundResult:
        """Refund ``amount`` of a one-step or cleared payment (``/g2g/refund``,
        ``revoke.php``).

        Refunds move money, so each call refunds at most once. With ``reconcile``
        (default) the payment's refunds are read first (``baseline``, unless given), and
        an attempt the gateway may have acted on is settled by :meth:`status` over the
        settle window (:class:`SettlePolicy`): the refunded total grown by ``amount``,
        with at most one new refund entry, gives a result with
        ``confirmed_by_status=True``; a whole window with no trace of it sends it again;
        any trace that is not proof ends with the outcome unknown. The baseline read
        failing raises its error, with nothing sent (``outcome_unknown`` False).
        ``resume=True`` (needs ``baseline``: the one journaled with the intent) says an
        earlier run may already have sent this refund: nothing is sent before status
        has been watched for a whole window.

        ``full=True`` (instead of an amount) refunds all that is left: status is read
        first, and what it shows captured and not yet refunded is sent as the amount,
        explicitly (the Merchant API would refund everything for a missing amount; the
        library never leaves that to an omission). Nothing left raises
        ValidationError, with nothing sent. Status shows a clearing or refund seconds
        late: right after one, the amount is what status still shows.
        """
        if full:
            if isinstance(payment, RefundRequest) or amount is not None or baseline or resume:
                raise ValidationError("full=True takes a payment id alone (no amount, resume)")
            return await self._refund_all(payment, currency, receipt_positions, reconcile)
        if isinstance(payment, RefundRequest):
            request = payment
        elif amount is None:
            raise ValidationError("refund needs an amount, or full=True for all that is left")
        else:
            request = RefundRequest(payment, amount, currency, receipt_positions)
        if not reconcile:
            return await self._engine.call(self._ops.refund, request)
        if resume and baseline is None:
            raise ValidationError("resume=True needs the baseline journaled with the intent")
        return await self._money.refund(request, baseline, resume, self.settle)

    async def _refund_all(
        self,
        payment: int | str,
        currency: str | None,
        receipt_positions: Sequence[ReceiptPosition],
        reconcile: bool,
    ) -> RefundResult:
        """A refund of all that status shows captured and not refunded yet."""
        payment_id = StatusRequest(payment).payment_id
        if reconcile:
            return await self._money.refund_all(
                payment_id, currency, receipt_positions, self.settle
            )
        seen = await self._status_once(StatusRequest(payment_id))
        request = full_refund_request(seen, currency, receipt_positions)
        return await self._engine.call(self._ops.refund, request)

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

        With ``reconcile`` (default) an outcome left open is settled by asking
        :meth:`status` (see :meth:`cancel`); ``outcome.settled_by`` says how each
        outcome was learnt.
        """
        self._engine.ensure_open()
        reconciler = self._settle_cancel if reconcile else None
        return run_cancel_many(self._cancel_once, items, concurrency=concurrency, settle=reconciler)
