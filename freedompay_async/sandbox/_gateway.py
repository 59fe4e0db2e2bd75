"""SandboxGateway: an in-process Freedom Pay gateway on one ledger, with fault injection:
the Gateway API (cancel, status_v2, clearing, refund), the Merchant API (init_payment,
get_status3, get_status2, do_capture, revoke, cancel), the payment page and the buyer."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import math
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
)
from .._wire.signing import script_name
from . import _http
from ._buyer import Buyer
from ._callbacks import CallbackSender
from ._endpoints import Tree, checked_faults, digits, top_level
from ._faults import Fault, FaultPlan
from ._ledger import (
    CANCELLED,
    CLEARED,
    DEFAULT_AMOUNT,
    FAILED,
    HELD,
    NEW,
    LedgerEntry,
    LedgerView,
    Payment,
)
from ._lifecycle import PAGE_PATH, PAYMENT_ID_START, Lifecycle
from ._merchant import MERCHANT_SCRIPTS, MerchantRules
from ._processing import Processing
from ._replies import (
    BAD_PARAMETER,
    NOT_FOUND,
    ReplyBuilder,
    gateway_date,
)
from ._rules import Rules
from ._status import order_of

__all__ = [
    "CANCEL_PATH",
    "CLEARING_PATH",
    "PAGE_PATH",
    "PAYMENT_ID_START",
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
#: What each payment endpoint does, by script name (for the ledger's counts).
_KIND = {
    "cancel": "cancel", "cancel.php": "cancel", "clearing": "clearing",
    "do_capture.php": "clearing", "refund": "refund", "revoke.php": "refund",
}  # fmt: skip
_STATUS_SCRIPTS = frozenset({"status_v2", "get_status3.php"})
#: The first ``pg_payment_revoke_id`` handed out; later ones count up from it.
REVOKE_ID_START = 900_000_000_001
_BACKLOG = 4096
_SHUTDOWN_TIMEOUT = 2.0
#: The status lag unless told otherwise: small, but there, as on the real gateway.
DEFAULT_STATUS_LAG = 1.0


def _status_lag(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"status_lag must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"status_lag must be a finite number >= 0, got {value!r}")
    return float(value)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


def _positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0")
    return float(value)


def _merchant_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError("merchant_id must be a positive integer")
    return value


#: Operations whose intact answer about a cancelled payment tells the client so (a
#: cancel's success or "already cancelled", status "revoked").
_TELLS_CANCELLED = frozenset({"cancel", "status_v2", "cancel.php", "get_status3.php"})


class SandboxGateway(Lifecycle, CallbackSender):
    """A local stand-in for Freedom Pay: the Gateway API (``POST /g2g/cancel``,
    ``/g2g/status_v2``, ``/g2g/clearing``, ``/g2g/refund``), the Merchant API
    (``/init_payment.php``, ``/get_status3.php``, ``/get_status2.php``,
    ``/do_capture.php``, ``/revoke.php``, ``/cancel.php``) and the payment page
    (``/pay.html``), all on one ledger.

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

    The whole lifecycle: ``init_payment.php`` creates a payment (state ``new``) and
    answers the page's URL; a buyer pays or fails there, over HTTP (``/pay.html``) or
    from Python (:meth:`pay`), which runs the check request, the result notification
    and the redirect back to the merchant's URLs, signed. A result notification the
    merchant does not answer with HTTP 200 is delivered again every
    ``redelivery_interval`` seconds, ``redelivery_attempts`` more times (the real
    gateway: every 30 minutes for 2 hours); :meth:`deliveries` lists them.

    ``secret_key`` defaults to a random throwaway key; it never appears in ``repr``.
    With ``auto_hold`` an unknown payment id is created as held on its first request.
    Cancels of ``pending_ids`` answer ``pg_revoke_status=pending`` (the ledger still
    records them cancelled); those ids must also be held to be found.

    ``status_lag`` is how many seconds status_v2 keeps showing a payment as it was
    before a clearing or a refund (0: no lag; settable later); the operations
    themselves see every change at once. ``clock`` is the time source for the lag and
    for :attr:`LedgerEntry.arrivals` (default: the running loop's ``time()``).
    """

    def __init__(
        self,
        merchant_id: int = 1000,
        secret_key: str | None = None,
        *,
        faults: FaultPlan | None = None,
        auto_hold: bool = False,
        pending_ids: Iterable[int] = (),
        status_lag: float = DEFAULT_STATUS_LAG,
        clock: Callable[[], float] | None = None,
        redelivery_interval: float = 1.0,
        redelivery_attempts: int = 4,
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
            script: ReplyBuilder(self.secret_key, script)
            for script in (*map(script_name, _PATHS), *MERCHANT_SCRIPTS)
        }
        self._replies = self._builders["cancel"]
        self.clock: Callable[[], float] = clock if clock is not None else _loop_time
        self._rules = Rules(self._builders, self.pending_ids, self.clock, _status_lag(status_lag))
        self._rules.next_revoke_id = REVOKE_ID_START
        self._operations = {
            "cancel": self._rules.cancel,
            "status_v2": self._rules.status,
            "clearing": self._rules.clearing,
            "refund": self._rules.refund,
        }
        self._merchant = MerchantRules(self._rules, self._builders)
        self._operations.update(self._merchant.operations())
        self._payments: dict[int, Payment] = {}
        self._scripted: dict[int, collections.deque[Fault | None]] = {}
        self._init_faults: collections.deque[Fault | None] = collections.deque()
        self._processing = Processing()
        if isinstance(redelivery_attempts, bool) or not isinstance(redelivery_attempts, int):
            raise TypeError("redelivery_attempts must be an int")
        interval = _positive(redelivery_interval, "redelivery_interval")
        self._buyer = Buyer(self.secret_key, self._rules, interval, max(redelivery_attempts, 0))
        self._pages: dict[str, int] = {}  # page token -> payment id
        self._orders: dict[str, int] = {}  # order id -> its payment's id
        self._next_payment_id = PAYMENT_ID_START

    def __repr__(self) -> str:
        return (
            f"<SandboxGateway merchant_id={self.merchant_id} payments={len(self._payments)} "
            f"requests_total={self.requests_total}>"
        )

    # -- state ---------------------------------------------------------------------------

    @property
    def status_lag(self) -> float:
        """Seconds before status_v2 shows a clearing or a refund (0: at once)."""
        return self._rules.status_lag

    @status_lag.setter
    def status_lag(self, value: float) -> None:
        self._rules.status_lag = _status_lag(value)

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
        created = gateway_date()
        for raw in ids:
            pid = coerce_payment_id(raw)
            if pid not in payments:
                payments[pid] = Payment(value, code, created)

    def inject(self, payment_id: int, *faults: Fault | None) -> None:
        """Queue scripted faults for this payment's next valid requests, in order.

        ``None`` means "answer that request normally". Scripted faults take precedence
        over :attr:`faults`; a request with nothing queued falls back to the plan.
        """
        pid = coerce_payment_id(payment_id)
        self._scripted.setdefault(pid, collections.deque()).extend(checked_faults(faults))

    @property
    def ledger(self) -> Mapping[int, LedgerEntry]:
        """A read-only live view of the ledger; each lookup is a frozen snapshot."""
        return LedgerView(self._payments)

    def stats(self) -> Mapping[str, int]:
        """Totals: requests, payments held, cancelled, cleared, new (created by
        init_payment, not paid) and failed, payments cancelled
        twice or cleared twice (always 0: the rules refuse it), cancel requests sent
        after an intact answer had told the client the payment was cancelled, and the
        money moved: ``clearings`` and ``refunds`` applied, over all payments."""
        states: collections.Counter[str] = collections.Counter()
        cancelled_twice = cleared_twice = after_told = clearings = refunds = 0
        for payment in self._payments.values():
            after_told += payment.cancels_after_told
            clearings += payment.clearings
            refunds += len(payment.refunds)
            states[payment.state] += 1
            cancelled_twice += payment.cancellations > 1
            cleared_twice += payment.clearings > 1
        return MappingProxyType(
            {
                "requests_total": self.requests_total,
                "payments": len(self._payments),
                "held": states[HELD],
                "cancelled": states[CANCELLED],
                "cleared": states[CLEARED],
                "new": states[NEW],
                "failed": states[FAILED],
                "cancelled_more_than_once": cancelled_twice,
                "cleared_more_than_once": cleared_twice,
                "cancels_after_told": after_told,
                "clearings": clearings,
                "refunds": refunds,
            }
        )

    # -- the four endpoints ----------------------------------------------------------------

    def _fault_for(self, pid: int, n: int) -> Fault | None:
        queue = self._scripted.get(pid)
        if queue:
            fault = queue.popleft()
            if not queue:
                del self._scripted[pid]
            return fault
        plan = self.faults
        return None if plan is None else plan.choose(pid, n)

    def _arrive(self, script: str, payment: Payment) -> int:
        """Count a valid request about ``payment``; return its 0-based number."""
        n = payment.requests
        payment.requests = n + 1
        payment.arrived(self.clock(), script)
        kind = _KIND.get(script)
        if kind == "cancel":
            payment.cancel_requests += 1
            payment.cancels_after_told += payment.told_cancelled
        elif kind == "clearing":
            payment.clearing_requests += 1
        elif kind == "refund":
            payment.refund_requests += 1
        return n

    def _find(self, script: str, pid: int, fields: Tree) -> Payment | None:
        payment = self._payments.get(pid)
        order = top_level(fields, "pg_order_id")
        if payment is not None and script in _STATUS_SCRIPTS and order not in (None, ""):
            payment = payment if order == order_of(pid, payment) else None
        if payment is None and self.auto_hold and script not in _STATUS_SCRIPTS:
            payment = self._payments[pid] = Payment(created=gateway_date())
        return payment

    def _told(self, script: str, pid: int, payment: Payment) -> None:
        """Note an answer about ``payment`` that reaches the client intact."""
        if (
            script in _TELLS_CANCELLED
            and payment.state == CANCELLED
            and (script != "cancel" or pid not in self.pending_ids)
        ):
            payment.told_cancelled = True

    def _handler(self, script: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        replies = self._builders[script]

        async def handle(request: web.Request) -> web.Response:
            fields = await self._signed_fields(script, request)
            if isinstance(fields, web.Response):
                return fields
            pid = digits(top_level(fields, "pg_payment_id"))
            if pid is None or pid == 0:
                return _http.xml_response(replies.error(BAD_PARAMETER))
            payment = self._find(script, pid, fields)
            if payment is None:
                return _http.xml_response(replies.error(NOT_FOUND, signed=False))
            fault = self._fault_for(pid, self._arrive(script, payment))
            operation = self._operations[script]
            if fault is None:
                reply = operation(pid, payment, fields)
                self._told(script, pid, payment)
                return _http.xml_response(reply)
            return await self._faulty(
                request,
                fault,
                script,
                lambda: operation(pid, payment, fields),
                lambda: self._told(script, pid, payment),
                lambda reply: self._forged(script, pid, payment, reply),
            )

        return handle

    def _forged(self, script: str, pid: int, payment: Payment, reply: Fields) -> Fields:
        if (
            script == "cancel"
            and payment.revoke_id is not None
            and (top_level(reply, "pg_status") != "ok")
        ):
            # Already cancelled earlier: forge the "ok" the client would love to see.
            reply = self._replies.cancelled(pid, payment.revoke_id, "success")
        return self._replies.forge(reply)

    async def _handle_healthcheck(self, _request: web.Request) -> web.Response:
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return web.json_response({"status": "ok", "time": now})

    async def _handle_stats(self, _request: web.Request) -> web.Response:
        return web.json_response(dict(self.stats()))

    async def _on_shutdown(self, _app: web.Application) -> None:
        await self._buyer.close()
        await self._processing.close()

    def app(self) -> web.Application:
        """A new aiohttp application serving this gateway.

        Routes: ``POST /g2g/cancel``, ``/g2g/status_v2``, ``/g2g/clearing``,
        ``/g2g/refund``; ``GET /status/healthcheck`` (as the real API);
        ``GET /sandbox/stats`` (the :meth:`stats` totals as JSON). On shutdown it
        finishes the operations a ``SLOW_PROCESSING`` fault is still delaying (waiting
        out their delay) and drops the connections a ``LOST_REPLY`` fault holds. A held
        reply ends when the client goes away only if the server cancels handlers of
        lost connections (:meth:`serve` does: ``handler_cancellation=True``); otherwise
        it ends at its bound.
        """
        app = web.Application()
        app.on_shutdown.append(self._on_shutdown)
        for path in _PATHS:
            app.router.add_post(path, self._handler(script_name(path)))
        for script in self._merchant.operations():
            app.router.add_post(f"/{script}", self._handler(script))
        app.router.add_post("/init_payment.php", self._handle_init)
        app.router.add_post("/get_status2.php", self._handle_status2)
        app.router.add_get(PAGE_PATH, self._handle_page)
        app.router.add_post(PAGE_PATH, self._handle_page_post)
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
