"""The sandbox's payment lifecycle: ``init_payment.php`` creates a payment and answers
its page, ``get_status2.php`` finds it by order id, and the buyer pays or fails on
the page (over HTTP, or :meth:`Lifecycle.pay` from Python)."""

from __future__ import annotations

import collections
from collections.abc import Callable

from aiohttp import web

from .._operations.values import coerce_payment_id
from .._wire.fields import Fields
from . import _http
from ._buyer import OUTCOMES, Buyer, BuyerVisit, Delivery
from ._checkout import DUPLICATE_ORDER, Checkout, read_init
from ._endpoints import Endpoints, checked_faults, top_level
from ._faults import Fault
from ._ledger import NEW, Payment
from ._merchant import MerchantRules, status2_tree
from ._page import browser_back, page
from ._replies import ReplyBuilder, gateway_date

__all__ = ["PAGE_PATH", "PAYMENT_ID_START", "Lifecycle"]

#: The payment page ``pg_redirect_url`` points at.
PAGE_PATH = "/pay.html"
#: The first payment id init_payment hands out (ids already in the ledger are skipped).
PAYMENT_ID_START = 4_567_001


class Lifecycle(Endpoints):
    """init_payment, status by order id, the payment page and the buyer."""

    clock: Callable[[], float]
    _payments: dict[int, Payment]
    _pages: dict[str, int]  # page token -> payment id
    _orders: dict[str, int]  # order id -> its payment's id
    _next_payment_id: int
    _init_faults: collections.deque[Fault | None]
    _buyer: Buyer
    _merchant: MerchantRules

    def inject_init(self, *faults: Fault | None) -> None:
        """Queue scripted faults for the next valid ``init_payment.php`` requests, in
        order (``None``: answer normally). A payment is created before a fault that
        processes (``RESET_AFTER``, ``LOST_REPLY``, ...), as for the other operations;
        the random :attr:`faults` plan does not apply to init (it has no payment id)."""
        self._init_faults.extend(checked_faults(faults))

    def _new_payment_id(self) -> int:
        while self._next_payment_id in self._payments:
            self._next_payment_id += 1
        pid = self._next_payment_id
        self._next_payment_id += 1
        return pid

    def _create(self, checkout: Checkout, page_url: str) -> Fields:
        """A new payment (state new) for ``checkout``; the init reply."""
        pid = self._new_payment_id()
        payment = Payment(checkout.amount, checkout.currency, gateway_date(), state=NEW)
        payment.order_id, payment.checkout = checkout.order_id, checkout
        self._payments[pid] = payment
        self._pages[checkout.token] = pid
        if checkout.order_id is not None:
            self._orders[checkout.order_id] = pid
        payment.arrived(self.clock(), "init_payment.php")
        return self._merchant.init(pid, checkout, page_url)

    async def _handle_init(self, request: web.Request) -> web.Response:
        script = "init_payment.php"
        fields = await self._signed_fields(script, request)
        if isinstance(fields, web.Response):
            return fields
        checkout = read_init(fields)
        if isinstance(checkout, tuple):
            return _http.xml_response(self._merchant.error(script, checkout))
        if checkout.order_id is not None and checkout.order_id in self._orders:
            return _http.xml_response(self._merchant.error(script, DUPLICATE_ORDER))
        page_url = str(request.url.origin()) + PAGE_PATH
        fault = self._init_faults.popleft() if self._init_faults else None
        if fault is None:
            return _http.xml_response(self._create(checkout, page_url))
        return await self._faulty(
            request, fault, script, lambda: self._create(checkout, page_url),
            lambda: None, ReplyBuilder.forge,
        )  # fmt: skip

    async def _handle_status2(self, request: web.Request) -> web.Response:
        script = "get_status2.php"
        fields = await self._signed_fields(script, request)
        if isinstance(fields, web.Response):
            return fields
        order = (top_level(fields, "pg_order_id") or "").strip()
        pid = self._orders.get(order, 0)
        payment = self._payments.get(pid)
        view = None
        if payment is not None:
            payment.status_requests += 1
            view = payment.shown(self.clock())
        tree = status2_tree(pid, payment, view)
        return _http.xml_response(self._builders[script].sign_tree(tree))

    def _page_payment(self, token: str) -> tuple[int, Payment] | None:
        pid = self._pages.get(token)
        payment = None if pid is None else self._payments.get(pid)
        return None if pid is None or payment is None else (pid, payment)

    async def _handle_page(self, request: web.Request) -> web.Response:
        token = request.query.get("customer", "")
        found = self._page_payment(token)
        if found is None or not isinstance(found[1].checkout, Checkout):
            return web.Response(status=404, text="no such payment page")
        if found[1].state != NEW:
            return web.Response(status=409, text=f"this payment is {found[1].state}")
        return page(found[1].checkout, token)

    async def _handle_page_post(self, request: web.Request) -> web.Response:
        form = await request.post()
        token, outcome = str(form.get("customer", "")), str(form.get("outcome", ""))
        found = self._page_payment(token)
        if found is None or outcome not in OUTCOMES:
            return web.Response(status=404, text="no such payment page")
        pid, payment = found
        try:
            visit = await self._buyer.visit(pid, payment, outcome, follow=False)
        except ValueError:
            return web.Response(status=409, text=f"this payment is {payment.state}")
        checkout = payment.checkout
        assert isinstance(checkout, Checkout)
        url, method, pairs = self._buyer.redirect_pairs(pid, checkout, visit.paid)
        return browser_back(url, method, pairs, visit.paid)

    async def pay(
        self, payment_id: int, outcome: str = "paid", *, lost_answers: int = 0
    ) -> BuyerVisit:
        """Play the buyer on payment ``payment_id``'s page (made by ``init_payment``).

        ``outcome`` ``"paid"`` or ``"failed"``. Runs the check request (if a check URL
        was given; a refusal fails the payment), the payment (held for a two-step
        payment, cleared for a one-step one, or failed), the result notification (if
        a result URL was given) and the browser's redirect back to the success or
        failure URL, each signed with that URL's script name. ``lost_answers`` throws
        away that many of the merchant's answers to the result notification, as if
        they never arrived, so it is delivered again. Returns a :class:`BuyerVisit`;
        ValueError for a payment that is not an open page.
        """
        pid = coerce_payment_id(payment_id)
        payment = self._payments.get(pid)
        if payment is None:
            raise ValueError(f"no payment {pid} in the ledger")
        return await self._buyer.visit(
            pid, payment, outcome, follow=True, lost_answers=lost_answers
        )

    def deliveries(self, payment_id: int) -> tuple[Delivery, ...]:
        """Every check request, result notification (redeliveries included) and
        redirect the sandbox sent about ``payment_id``, in order."""
        return self._buyer.deliveries(coerce_payment_id(payment_id))

    async def wait_deliveries(self) -> None:
        """Wait until no result notification is waiting to be delivered again."""
        await self._buyer.wait()
