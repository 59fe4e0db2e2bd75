"""The buyer on the payment page, and what the gateway then sends the merchant.

A visit plays what follows ``init_payment`` on the real gateway, in order:

1. the **check request** to ``pg_check_url`` (when given), before any money moves; an
   answer other than a signed ``ok`` with HTTP 200 refuses the payment;
2. the payment itself: paid (held for a two-step payment, cleared for a one-step one)
   or failed, shown by status at once;
3. the **result notification** to ``pg_result_url`` (``pg_result`` 1 or 0,
   ``pg_captured``, ``pg_can_reject``, the card and the buyer's contacts); a signed
   ``rejected`` is honoured while ``pg_can_reject`` is 1 (the hold released, or a
   one-step payment refunded); while the merchant does not answer HTTP 200 it is
   **delivered again** every ``interval`` seconds, ``attempts`` more times (the real
   gateway: every 30 minutes for 2 hours), with ``pg_can_reject=0`` as documented;
4. the **redirect back** to ``pg_success_url`` or ``pg_failure_url``, with the
   merchant's parameters: sent by the sandbox itself for :meth:`Buyer.visit` from
   Python, handed to the browser by the HTML page.

Each message is signed with the merchant URL's script name and carries the fields the
real ones carry (``_outbound``). Check and result go as the init's
``pg_request_method`` says: a multipart POST, a GET query, or one ``pg_xml`` field.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import aiohttp
import attrs

from .._wire.fields import from_form_pairs
from .._wire.signing import Md5Signer, script_name
from .._wire.xml import XMLReplyError, parse_xml_fields, render_response
from ._checkout import Checkout
from ._ledger import CLEARED, FAILED, HELD, NEW, Payment
from ._outbound import Pairs, check_fields, deliver, redirect_fields, result_fields, sign_pairs
from ._rules import Rules
from ._status import money

__all__ = ["OUTCOMES", "Buyer", "BuyerVisit", "Delivery"]

#: What a buyer can do on the page.
OUTCOMES = ("paid", "failed")
#: The failure a refused check or a rejected result sends the buyer back with.
MERCHANT_REFUSED = (10016, "Платеж отклонен магазином")
_NOT_SENT = (OSError, TimeoutError, aiohttp.ClientError)


@attrs.frozen
class Delivery:
    """One message the sandbox sent to the merchant, and what came back.

    ``kind`` is ``check``, ``result`` or ``redirect``; ``attempt`` counts deliveries of
    the same message (a redelivered result notification is 2, 3, ...); ``status`` is
    the HTTP status (None: no answer at all); ``answer`` the merchant's ``pg_status``
    when its XML answer verified with the URL's script name (None otherwise, and for
    a redirect); ``lost`` is True when the sandbox threw the answer away on purpose
    (``pay(..., lost_answers=n)``), as if it never arrived.
    """

    kind: str
    url: str
    method: str
    status: int | None
    answer: str | None = None
    attempt: int = 1
    lost: bool = False
    body: bytes = attrs.field(default=b"", repr=False)

    @property
    def delivered(self) -> bool:
        """Whether the merchant answered HTTP 200 and the answer was not thrown away."""
        return self.status == 200 and not self.lost


@attrs.frozen
class BuyerVisit:
    """What one buyer's visit to the payment page did.

    ``outcome`` is what the buyer did (``paid`` or ``failed``); ``state`` the ledger
    state after it (``held``, ``cleared``, ``failed``, or ``cancelled`` when the
    merchant rejected the result); ``paid`` whether the payment went through in the
    end. ``check``, ``result`` and ``redirect`` are the first delivery of each message
    (None when its URL was not given; ``redirect`` also None when a browser follows
    it). Redeliveries of the result are in ``SandboxGateway.deliveries(payment_id)``.
    """

    payment_id: int
    outcome: str
    state: str
    paid: bool
    check: Delivery | None = None
    result: Delivery | None = None
    redirect: Delivery | None = None


def merchant_answer(body: bytes, url: str, signer: Md5Signer) -> str | None:
    """The merchant's ``pg_status`` when its XML answer verifies for ``url``, else None."""
    try:
        _root, fields = parse_xml_fields(body)
    except XMLReplyError:
        return None
    values = {key: value for key, value in fields if isinstance(value, str)}
    signature, status = values.get("pg_sig"), values.get("pg_status")
    if signature is None or status is None:
        return None
    return status if signer.verify(script_name(url), fields, signature) else None


async def _send(url: str, pairs: Pairs, method: str) -> tuple[int | None, bytes]:
    """POST (multipart), GET (query) or XML (one ``pg_xml`` field): (status, body)."""
    if method == "XML":
        document = render_response(from_form_pairs(pairs)).replace(b"response>", b"request>")
        pairs, method = [("pg_xml", document.decode("utf-8"))], "POST"
    try:
        return await deliver(url, pairs, method)
    except _NOT_SENT:
        return None, b""


class Buyer:
    """Plays the buyer and the gateway's messages to the merchant for one sandbox."""

    def __init__(self, secret_key: str, rules: Rules, interval: float, attempts: int) -> None:
        self._secret = secret_key
        self._signer = Md5Signer(secret_key)
        self._rules = rules
        self.interval = interval
        self.attempts = attempts
        self._log: dict[int, list[Delivery]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._visiting: set[int] = set()  # one visit at a time per payment

    def deliveries(self, payment_id: int) -> tuple[Delivery, ...]:
        """Every delivery about ``payment_id`` so far, in order."""
        return tuple(self._log.get(payment_id, ()))

    async def wait(self) -> None:
        """Until no redelivery is pending."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop pending redeliveries (the server is shutting down)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _exchange(
        self, kind: str, url: str, pairs: Pairs, method: str, pid: int, attempt: int = 1
    ) -> Delivery:
        status, body = await _send(url, sign_pairs(self._secret, url, pairs), method)
        answer = None if kind == "redirect" or status is None else merchant_answer(
            body, url, self._signer
        )  # fmt: skip
        delivery = Delivery(kind, url, method, status, answer, attempt, body=body)
        self._log.setdefault(pid, []).append(delivery)
        return delivery

    async def visit(
        self, pid: int, payment: Payment, outcome: str, *, follow: bool, lost_answers: int = 0
    ) -> BuyerVisit:
        """Play one visit (see the module docstring); the payment must be open (new)."""
        checkout = payment.checkout
        if payment.state != NEW or not isinstance(checkout, Checkout) or pid in self._visiting:
            raise ValueError(f"payment {pid} is not an open payment page")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        self._visiting.add(pid)
        try:
            check = await self._check(pid, checkout) if outcome == "paid" else None
            paid = outcome == "paid" and (check is None or _accepted(check))
            self._settle(payment, checkout, paid)
        finally:
            self._visiting.discard(pid)
        refused = outcome == "paid" and not paid
        result = await self._notify(pid, payment, checkout, paid, lost_answers)
        if paid and result is not None and result.delivered and result.answer == "rejected":
            paid, refused = self._reject(payment), True
        redirect = await self._redirect(pid, checkout, paid, refused) if follow else None
        return BuyerVisit(pid, outcome, payment.state, paid, check, result, redirect)

    async def _check(self, pid: int, checkout: Checkout) -> Delivery | None:
        if checkout.check_url is None:
            return None
        pairs = check_fields(
            payment_id=pid, order_id=checkout.order_id or "", amount=money(checkout.amount),
            currency=checkout.currency, params=checkout.merchant_params(),
        )  # fmt: skip
        method = checkout.request_method
        return await self._exchange("check", checkout.check_url, pairs, method, pid)

    def _settle(self, payment: Payment, checkout: Checkout, paid: bool) -> None:
        if not paid:
            payment.state = FAILED
        elif checkout.auto_clearing:
            payment.state, payment.clearing_amount = CLEARED, checkout.amount
        else:
            payment.state = HELD
        now = self._rules.clock()
        payment.publish(now, now)

    def _reject(self, payment: Payment) -> bool:
        """The merchant rejected a paid result it could reject: the money goes back."""
        if payment.state == HELD:
            self._rules.do_cancel(payment)
        else:
            self._rules.do_refund(payment, None)
        return False

    def _result_pairs(
        self, pid: int, payment: Payment, checkout: Checkout, paid: bool, can_reject: bool
    ) -> Pairs:
        return result_fields(
            payment_id=pid, order_id=checkout.order_id or "", amount=money(checkout.amount),
            currency=checkout.currency, result=1 if paid else 0, can_reject=can_reject,
            params=checkout.merchant_params(), captured=payment.state == CLEARED,
            description=checkout.description,
        )  # fmt: skip

    async def _notify(
        self, pid: int, payment: Payment, checkout: Checkout, paid: bool, lost: int
    ) -> Delivery | None:
        url = checkout.result_url
        if url is None:
            return None
        pairs = self._result_pairs(pid, payment, checkout, paid, can_reject=True)
        first = await self._exchange("result", url, pairs, checkout.request_method, pid)
        if lost > 0 and first.status is not None:
            first = self._lose(pid, first)
        if not first.delivered:
            later = self._result_pairs(pid, payment, checkout, paid, can_reject=False)
            left = lost - 1 if first.lost else lost
            self._spawn(self._redeliver(pid, url, later, checkout.request_method, left))
        return first

    def _lose(self, pid: int, delivery: Delivery) -> Delivery:
        lost = attrs.evolve(delivery, lost=True)
        self._log[pid][-1] = lost
        return lost

    async def _redeliver(self, pid: int, url: str, pairs: Pairs, method: str, lost: int) -> None:
        for attempt in range(2, self.attempts + 2):
            await asyncio.sleep(self.interval)
            delivery = await self._exchange("result", url, list(pairs), method, pid, attempt)
            if lost > 0 and delivery.status is not None:
                lost -= 1
                delivery = self._lose(pid, delivery)
            if delivery.delivered:
                return

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def redirect_pairs(
        self, pid: int, checkout: Checkout, paid: bool, refused: bool = False
    ) -> tuple[str, str, Pairs]:
        """Where the buyer goes back, how, and with what (signed): ``(url, method, pairs)``;
        ``url`` empty when the merchant gave none. A failure carries the gateway's
        payment error, or ``MERCHANT_REFUSED`` when the merchant ``refused`` it."""
        url = (checkout.success_url if paid else checkout.failure_url) or ""
        method = checkout.success_method if paid else checkout.failure_method
        code, description = MERCHANT_REFUSED if refused else (None, None)
        pairs = redirect_fields(
            payment_id=pid, order_id=checkout.order_id or "", success=paid,
            params=checkout.merchant_params(), error_code=code, error_description=description,
        )  # fmt: skip
        return url, method, sign_pairs(self._secret, url, pairs) if url else pairs

    async def _redirect(
        self, pid: int, checkout: Checkout, paid: bool, refused: bool
    ) -> Delivery | None:
        url, method, pairs = self.redirect_pairs(pid, checkout, paid, refused)
        if not url:
            return None
        status, body = await _send(url, pairs, method)
        delivery = Delivery("redirect", url, method, status, body=body)
        self._log.setdefault(pid, []).append(delivery)
        return delivery


def _accepted(check: Delivery) -> bool:
    return check.status == 200 and check.answer == "ok"
