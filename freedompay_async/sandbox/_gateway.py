"""SandboxGateway: an in-process Freedom Pay Gateway API (cancel, status_v2, clearing,
refund) on one ledger, with fault injection."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType

from aiohttp import web

from .._operations.values import (
    amount_value,
    coerce_payment_id,
    currency_value,
)
from .._wire.fields import (
    Fields,
    FieldValue,
)
from .._wire.signing import script_name
from . import _http
from ._faults import Fault, FaultPlan
from ._ledger import CANCELLED, CLEARED, DEFAULT_AMOUNT, HELD, LedgerEntry, LedgerView, Payment
from ._outbound import (
    Pairs,
    Tamper,
    check_fields,
    deliver,
    redirect_fields,
    result_fields,
    sign_pairs,
)
from ._replies import (
    BAD_PARAMETER,
    BAD_SIGNATURE,
    NOT_FOUND,
    SYSTEM_ERROR,
    UNKNOWN_MERCHANT,
    ReplyBuilder,
)
from ._rules import Rules

__all__ = [
    "CANCEL_PATH",
    "CLEARING_PATH",
    "REFUND_PATH",
    "REVOKE_ID_START",
    "STATUS_PATH",
    "SandboxGateway",
]

CANCEL_PATH = "/g2g/cancel"
STATUS_PATH = "/g2g/status_v2"
CLEARING_PATH = "/g2g/clearing"
REFUND_PATH = "/g2g/refund"
_PATHS = (CANCEL_PATH, STATUS_PATH, CLEARING_PATH, REFUND_PATH)
#: The first ``pg_payment_revoke_id`` handed out; later ones count up from it.
REVOKE_ID_START = 900_000_000_001
_DEFAULT_PLAN = FaultPlan()
_BACKLOG = 4096
_SHUTDOWN_TIMEOUT = 2.0
_NO_FAULT_BEFORE = frozenset({Fault.RESET_BEFORE, Fault.HTTP_503, Fault.HTTP_429, Fault.ERROR_9999})


def _merchant_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("merchant_id must be a positive integer")
    return value


def _top_level(fields: Iterable[tuple[str, FieldValue]], name: str) -> str | None:
    for key, value in fields:
        if key == name and isinstance(value, str):
            return value
    return None


def _digits(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        return None
    return int(text)


#: Operations whose intact answer about a cancelled payment tells the client so (a
#: cancel's success or "already cancelled", status "revoked").
_TELLS_CANCELLED = frozenset({"cancel", "status_v2"})


class SandboxGateway:
    """A local stand-in for the Freedom Pay Gateway API: ``POST /g2g/cancel``,
    ``/g2g/status_v2``, ``/g2g/clearing`` and ``/g2g/refund``.

    It verifies request signatures, keeps one ledger of payments with real rules (a
    held payment is cancelled once or cleared once, fully or partly; a cleared one is
    refunded in parts up to its cleared amount; a cancelled one cannot be cleared;
    see ``_rules``), answers in the documented XML shapes signed with each endpoint's
    script name (an unknown payment gets the documented unsigned 11068), and injects
    faults into every operation alike: scripted per payment with :meth:`inject`, or
    random but reproducible with a :class:`FaultPlan` in :attr:`faults`. A payment's
    requests of every operation share one count ``n`` for the plan. It can also play
    the gateway's side of the merchant callbacks
    (:meth:`send_redirect`, :meth:`send_result_notify`, :meth:`send_check`).

    ``secret_key`` defaults to a random throwaway key; it never appears in ``repr``.
    With ``auto_hold`` an unknown payment id is created as held on its first request.
    Cancels of ``pending_ids`` answer ``pg_revoke_status=pending`` (the ledger still
    records them cancelled); those ids must also be held to be found.
    """

    def __init__(
        self,
        merchant_id: int = 1000,
        secret_key: str | None = None,
        *,
        faults: FaultPlan | None = None,
        auto_hold: bool = False,
        pending_ids: Iterable[int] = (),
    ) -> None:
        if secret_key is not None and (not isinstance(secret_key, str) or not secret_key):
            raise ValueError("secret_key must be a non-empty string")
        self.merchant_id: int = _merchant_id(merchant_id)
        self.secret_key: str = secret_key if secret_key is not None else secrets.token_hex(16)
        #: The random-fault plan; None for none. Tests may replace it at any time.
        self.faults: FaultPlan | None = faults
        self.auto_hold = bool(auto_hold)
        self.pending_ids: frozenset[int] = frozenset(coerce_payment_id(p) for p in pending_ids)
        #: Every HTTP request seen on the four operations, valid or not.
        self.requests_total = 0
        #: The same, per operation (script name).
        self.requests_by_operation: collections.Counter[str] = collections.Counter()
        self._merchant_text = str(self.merchant_id)
        self._builders = {
            script_name(path): ReplyBuilder(self.secret_key, script_name(path)) for path in _PATHS
        }
        self._replies = self._builders["cancel"]
        self._rules = Rules(self._builders, self.pending_ids)
        self._rules.next_revoke_id = REVOKE_ID_START
        self._operations = {
            "cancel": self._rules.cancel,
            "status_v2": self._rules.status,
            "clearing": self._rules.clearing,
            "refund": self._rules.refund,
        }
        self._payments: dict[int, Payment] = {}
        self._scripted: dict[int, collections.deque[Fault | None]] = {}

    def __repr__(self) -> str:
        return (
            f"<SandboxGateway merchant_id={self.merchant_id} payments={len(self._payments)} "
            f"requests_total={self.requests_total}>"
        )

    # -- state ---------------------------------------------------------------------------

    def add_payments(
        self,
        ids: Iterable[int],
        *,
        amount: Decimal | int | str = DEFAULT_AMOUNT,
        currency: str = "KZT",
    ) -> None:
        """Hold these payments for ``amount`` in ``currency`` each (ids already in the
        ledger are left as they are)."""
        value = amount_value(amount)
        code = currency_value(currency) or "KZT"
        payments = self._payments
        for raw in ids:
            pid = coerce_payment_id(raw)
            if pid not in payments:
                payments[pid] = Payment(value, code)

    def inject(self, payment_id: int, *faults: Fault | None) -> None:
        """Queue scripted faults for this payment's next valid requests, in order.

        ``None`` means "answer that request normally". Scripted faults take precedence
        over :attr:`faults`; a request with nothing queued falls back to the plan.
        """
        pid = coerce_payment_id(payment_id)
        for fault in faults:
            if fault is not None and not isinstance(fault, Fault):
                raise TypeError(f"inject() takes Fault members or None, got {fault!r}")
        self._scripted.setdefault(pid, collections.deque()).extend(faults)

    @property
    def ledger(self) -> Mapping[int, LedgerEntry]:
        """A read-only live view of the ledger; each lookup is a frozen snapshot."""
        return LedgerView(self._payments)

    def stats(self) -> Mapping[str, int]:
        """Totals: requests, payments held, cancelled and cleared, payments cancelled
        or cleared twice (always 0: the rules refuse it), and cancel requests sent
        after an intact answer had told the client the payment was cancelled."""
        held = cancelled = doubled = cleared = after_told = 0
        for payment in self._payments.values():
            after_told += payment.cancels_after_told
            if payment.state == HELD:
                held += 1
            elif payment.state == CLEARED:
                cleared += 1
            else:
                cancelled += 1
            doubled += payment.cancellations > 1 or payment.clearings > 1
        return MappingProxyType(
            {
                "requests_total": self.requests_total,
                "payments": len(self._payments),
                "held": held,
                "cancelled": cancelled,
                "cleared": cleared,
                "cancelled_more_than_once": doubled,
                "cancels_after_told": after_told,
            }
        )

    # -- the cancel endpoint ---------------------------------------------------------------

    def _fault_for(self, pid: int, n: int) -> Fault | None:
        queue = self._scripted.get(pid)
        if queue:
            fault = queue.popleft()
            if not queue:
                del self._scripted[pid]
            return fault
        plan = self.faults
        return None if plan is None else plan.choose(pid, n)

    def _handler(self, script: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        operation = self._operations[script]
        replies = self._builders[script]

        async def handle(request: web.Request) -> web.Response:
            self.requests_total += 1
            self.requests_by_operation[script] += 1
            fields = await _http.read_fields(request)
            if fields is None:
                return web.Response(status=400, text="malformed form body")
            if _digits(_top_level(fields, "pg_merchant_id")) != self.merchant_id:
                return _http.xml_response(replies.error(UNKNOWN_MERCHANT, signed=False))
            signature = _top_level(fields, "pg_sig")
            if signature is None or not replies.verify(fields, signature):
                return _http.xml_response(replies.error(BAD_SIGNATURE))
            pid = _digits(_top_level(fields, "pg_payment_id"))
            if pid is None or pid == 0:
                return _http.xml_response(replies.error(BAD_PARAMETER))
            payment = self._payments.get(pid)
            order = _top_level(fields, "pg_order_id")
            if payment is not None and script == "status_v2" and order not in (None, ""):
                payment = payment if order == f"order-{pid}" else None
            if payment is None:
                if not self.auto_hold or script == "status_v2":
                    return _http.xml_response(replies.error(NOT_FOUND, signed=False))
                payment = self._payments[pid] = Payment()
            n = payment.requests
            payment.requests = n + 1
            fault = self._fault_for(pid, n)
            if fault is None:
                reply = operation(pid, payment, fields)
                if (
                    script in _TELLS_CANCELLED
                    and payment.state == CANCELLED
                    and (script != "cancel" or pid not in self.pending_ids)
                ):
                    payment.told_cancelled = True  # this answer reaches the client intact
                return _http.xml_response(reply)
            return await self._faulty(request, fault, script, pid, payment, fields)

        return handle

    async def _faulty(
        self,
        request: web.Request,
        fault: Fault,
        script: str,
        pid: int,
        payment: Payment,
        fields: list[tuple[str, FieldValue]],
    ) -> web.Response:
        plan = self.faults or _DEFAULT_PLAN
        if fault in _NO_FAULT_BEFORE:
            if fault is Fault.RESET_BEFORE:
                return _http.abort(request)
            if fault is Fault.HTTP_503:
                return _http.http_503()
            if fault is Fault.HTTP_429:
                return _http.http_429(plan.retry_after)
            return _http.xml_response(self._builders[script].error(SYSTEM_ERROR))
        reply: Fields = self._operations[script](pid, payment, fields)
        if fault is Fault.RESET_AFTER:
            return _http.abort(request)
        if fault is Fault.GARBAGE:
            return _http.garbage_response()
        if fault is Fault.FORGED:
            if (
                script == "cancel"
                and payment.revoke_id is not None
                and _top_level(reply, "pg_status") != "ok"
            ):
                # Already cancelled earlier: forge the "ok" the client would love to see.
                reply = self._replies.cancelled(pid, payment.revoke_id, "success")
            return _http.xml_response(self._replies.forge(reply))
        await asyncio.sleep(plan.slow_delay)  # Fault.SLOW
        return _http.xml_response(reply)

    async def _handle_healthcheck(self, _request: web.Request) -> web.Response:
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return web.json_response({"status": "ok", "time": now})

    async def _handle_stats(self, _request: web.Request) -> web.Response:
        return web.json_response(dict(self.stats()))

    def app(self) -> web.Application:
        """A new aiohttp application serving this gateway.

        Routes: ``POST /g2g/cancel``, ``/g2g/status_v2``, ``/g2g/clearing``,
        ``/g2g/refund``; ``GET /status/healthcheck`` (as the real API);
        ``GET /sandbox/stats`` (the :meth:`stats` totals as JSON).
        """
        app = web.Application()
        for path in _PATHS:
            app.router.add_post(path, self._handler(script_name(path)))
        app.router.add_get("/status/healthcheck", self._handle_healthcheck)
        app.router.add_get("/sandbox/stats", self._handle_stats)
        return app

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        """Serve :meth:`app` on ``host:port`` (0: a free port); yields the base URL.

        No access log; a client that disconnects cancels its request handler. On exit
        the server stops and in-flight requests get a short grace period.
        """
        runner = web.AppRunner(
            self.app(),
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, backlog=_BACKLOG)
            await site.start()
            bound_port = runner.addresses[0][1]
            shown = f"[{host}]" if ":" in host else host
            yield f"http://{shown}:{bound_port}"
        finally:
            await runner.cleanup()

    # -- callbacks to the merchant ----------------------------------------------------------

    async def send_redirect(
        self,
        url: str,
        *,
        payment_id: int,
        order_id: str,
        success: bool = True,
        params: Mapping[str, str] | None = None,
        method: str = "POST",
        signed: bool = True,
        error_code: int | None = None,
        error_description: str | None = None,
        tamper: Tamper | None = None,
    ) -> tuple[int, bytes]:
        """Send the buyer's redirect back to ``success_url``/``failure_url`` (reference 4.3).

        Fields: ``pg_order_id``, ``pg_payment_id``, the merchant ``params``, on failure
        ``pg_error_code`` and ``pg_error_description``, then ``pg_salt`` and ``pg_sig``
        (signed with ``script_name(url)``; both left out when ``signed`` is False).
        ``method`` POST sends multipart; GET appends the fields to the URL's query (an
        existing query is kept, and is not signed). ``tamper`` may rewrite the pairs
        after signing. Returns ``(status, body)``.
        """
        pairs = redirect_fields(
            payment_id=coerce_payment_id(payment_id),
            order_id=order_id,
            success=success,
            params=params,
            error_code=error_code,
            error_description=error_description,
        )
        if signed:
            pairs = sign_pairs(self.secret_key, url, pairs)
        if tamper is not None:
            pairs = tamper(list(pairs))
        return await deliver(url, pairs, method)

    async def _send_signed(
        self, url: str, build: Callable[..., Pairs], payment_id: int, **fields: object
    ) -> tuple[int, bytes]:
        """Build a server-to-server callback with ``build``, sign it, POST it as multipart."""
        pairs = build(payment_id=coerce_payment_id(payment_id), **fields)
        return await deliver(url, sign_pairs(self.secret_key, url, pairs))

    async def send_result_notify(
        self,
        url: str,
        *,
        payment_id: int,
        order_id: str,
        amount: str = "100",
        currency: str = "KZT",
        result: int = 1,
        can_reject: bool = True,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """POST the ``result_url`` notification (reference 4.2), signed, as multipart.

        Returns ``(status, body)``; the body is the merchant's XML answer.
        """
        return await self._send_signed(
            url,
            result_fields,
            payment_id,
            order_id=order_id,
            amount=amount,
            currency=currency,
            result=result,
            can_reject=can_reject,
            params=params,
        )

    async def send_check(
        self,
        url: str,
        *,
        payment_id: int,
        order_id: str,
        amount: str = "100",
        currency: str = "KZT",
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """POST the ``check_url`` request (reference 4.1), signed, as multipart.

        Returns ``(status, body)``; the body is the merchant's XML answer.
        """
        return await self._send_signed(
            url,
            check_fields,
            payment_id,
            order_id=order_id,
            amount=amount,
            currency=currency,
            params=params,
        )
