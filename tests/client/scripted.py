"""A scripted in-memory gateway for the settle loop's rules, in virtual time.

Each operation answers from its own script (the n-th request gets the n-th answer, the
last one repeating); answers may depend on the virtual time, so a refund that lands
late or a status that lags can be played without a real wait.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from decimal import Decimal

import freedompay_async as fp
from freedompay_async import GatewayRequest, HttpResponse, MockTransport
from freedompay_async._wire.xml import render_response, sign_response_fields

from ..helpers import MERCHANT, SECRET, SIGNER, FakeClock, error_fields, ok_fields, signed

CREDS = fp.Credentials(MERCHANT, SECRET)
PID = 5
Answer = Callable[[GatewayRequest], HttpResponse]
#: A refund entry of a status reply: (refund id, pg_payment_status, amount as the
#: gateway writes it, negative).
Refund = tuple[int, str, str]


def status_body(
    payment_status: str | None = "success",
    *,
    pid: int = PID,
    refunds: Sequence[Refund] = (),
    refunded: str | None = None,
    revoked: bool = False,
    **extra: str,
) -> bytes:
    """A signed status_v2 reply in the real gateway's shape (refunds negative)."""
    tree: list[tuple[str, object]] = [("pg_payment_id", str(pid)), ("pg_status", "ok")]
    if payment_status is not None:
        tree.append(("pg_payment_status", payment_status))
    tree += [("pg_amount", "1000.00"), *extra.items()]
    if refunds:
        total = refunded if refunded is not None else str(sum(Decimal(a) for *_, a in refunds))
        tree.append(("pg_refund_amount", total))
        entries = [
            ("pg_refund_payment", [("pg_payment_id", str(rid)), ("pg_payment_status", st),
                                   ("pg_amount", amount)])
            for rid, st, amount in refunds
        ]  # fmt: skip
        tree.append(("pg_refund_payments", entries))
    if revoked:
        tree.append(("pg_revoked_payments", [("pg_revoked_payment", [
            ("pg_payment_id", "900"), ("pg_payment_status", "success")])]))  # fmt: skip
    return render_response(sign_response_fields("status_v2", SIGNER, tree))  # type: ignore[arg-type]


def status(payment_status: str | None = "success", **kwargs: object) -> Answer:
    """Each reading signed afresh (a new salt), as the gateway's are."""
    return lambda request: HttpResponse(200, status_body(payment_status, **kwargs))  # type: ignore[arg-type]


def lost(request: GatewayRequest) -> HttpResponse:
    raise fp.ConnectionLostError("dropped after sending", payment_id=request.payment_id)


def timed_out(request: GatewayRequest) -> HttpResponse:
    raise fp.ResponseTimeoutError("no reply in time", payment_id=request.payment_id)


def error(code: int, *, script: str = "cancel", pid: int | None = None) -> Answer:
    """A signed error reply, naming no payment (as the gateway's do) unless ``pid``."""
    fields = error_fields(code)
    if pid is not None:
        fields.insert(0, ("pg_payment_id", str(pid)))
    body = signed(fields, script)
    return lambda request: HttpResponse(200, body)


def cancelled(revoke_status: str = "success") -> Answer:
    def answer(request: GatewayRequest) -> HttpResponse:
        assert request.payment_id is not None
        return HttpResponse(200, signed(ok_fields(request.payment_id, revoke_status)))

    return answer


def cleared(amount: str = "1000.00") -> Answer:
    body = signed([("pg_payment_id", str(PID)), ("pg_amount", "1000.00"),
                   ("pg_clearing_amount", amount), ("pg_status", "ok"),
                   ("pg_status_clearing", "1")], "clearing")  # fmt: skip
    return lambda request: HttpResponse(200, body)


def refunded(refund_id: int = 71) -> Answer:
    body = signed([("pg_payment_id", str(PID)), ("pg_payment_refund_id", str(refund_id)),
                   ("pg_status", "ok"), ("pg_refund_status", "success")], "refund")  # fmt: skip
    return lambda request: HttpResponse(200, body)


def after(clock: FakeClock, seconds: float, late: Answer, early: Answer) -> Answer:
    """``early`` until ``seconds`` of virtual time have passed since the script was made,
    then ``late``: a refund that lands late, a status that lags."""
    start = clock.now
    return lambda request: (late if clock.now - start >= seconds else early)(request)


class Gateway:
    """Answers each operation from its script; counts requests and notes their times."""

    def __init__(self, clock: FakeClock, **scripts: Sequence[Answer]) -> None:
        self.clock = clock
        self.scripts = scripts
        self.seen: collections.Counter[str] = collections.Counter()
        self.times: list[tuple[str, float]] = []
        self.transport = MockTransport(self.answer)

    def answer(self, request: GatewayRequest) -> HttpResponse:
        script = self.scripts[request.operation]
        n = self.seen[request.operation]
        self.seen[request.operation] += 1
        self.times.append((request.operation, self.clock.now))
        return script[min(n, len(script) - 1)](request)

    def session(self, **options: object) -> fp.AsyncSession:
        """A session on this gateway: no retry, no spacing, the settle loop in virtual time."""
        policy = fp.SettlePolicy(clock=self.clock, sleep=self.clock.sleep, **options)  # type: ignore[arg-type]
        return fp.AsyncSession(
            CREDS, base_url="http://gw", transport=self.transport, spacing=None,
            retry=fp.RetryPolicy.none(), settle=policy,
        )  # fmt: skip
