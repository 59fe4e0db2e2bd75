"""Settling an ambiguous clearing or refund, on a scripted in-memory gateway: never a
second send unless status proves the first did nothing."""

from __future__ import annotations

import collections
from collections.abc import Callable
from decimal import Decimal

import pytest

import freedompay_async as fp
from freedompay_async import GatewayRequest, HttpResponse, MockTransport
from freedompay_async._wire.xml import (
    render_response,
    sign_response_fields,
)

from ..helpers import MERCHANT, SECRET, SIGNER

CREDS = fp.Credentials(MERCHANT, SECRET)
Answer = Callable[[GatewayRequest], HttpResponse]


def status_reply(payment_status: str, *, refunds: list[tuple[int, str, str]] = (),  # type: ignore[assignment]
                 **extra: str) -> Answer:  # fmt: skip
    tree: list[tuple[str, object]] = [
        ("pg_payment_id", "5"), ("pg_status", "ok"), ("pg_payment_status", payment_status),
        *extra.items(),
    ]  # fmt: skip
    if refunds:
        entries = [
            ("pg_refund_payment", [("pg_payment_id", str(rid)), ("pg_payment_status", st),
                                   ("pg_amount", amount)])
            for rid, st, amount in refunds
        ]  # fmt: skip
        tree.append(("pg_refund_payments", entries))
    body = render_response(sign_response_fields("status_v2", SIGNER, tree, salt="s4lt"))  # type: ignore[arg-type]
    return lambda request: HttpResponse(200, body)


def lost(request: GatewayRequest) -> HttpResponse:
    raise fp.ConnectionLostError("dropped after sending", payment_id=request.payment_id)


def gateway(
    sends: list[Answer], statuses: list[Answer]
) -> tuple[MockTransport, collections.Counter[str]]:
    """Answers the n-th send and n-th status with the n-th scripted answer."""
    seen: collections.Counter[str] = collections.Counter()

    def answer(request: GatewayRequest) -> HttpResponse:
        script = statuses if request.operation == "status" else sends
        n = seen[request.operation]
        seen[request.operation] += 1
        return script[min(n, len(script) - 1)](request)

    return MockTransport(answer), seen  # type: ignore[arg-type]


def session(transport: MockTransport) -> fp.AsyncSession:
    return fp.AsyncSession(
        CREDS, base_url="http://gw", transport=transport, retry=fp.RetryPolicy.none(), spacing=None
    )


@pytest.mark.parametrize(
    "after",
    [
        # A new refund listed as pending before the total counts it.
        [(70, "success", "1.00"), (71, "pending", "2.00")],
        # A new refund in any state, even one reported failed: it may still be acted on.
        [(70, "success", "1.00"), (71, "error", "2.00")],
        # No new entry, but one not (yet) successful.
        [(70, "process", "1.00")],
    ],
)
async def test_a_refund_under_way_is_never_sent_twice(after: list[tuple[int, str, str]]) -> None:
    before = status_reply("success", pg_captured="1", pg_refund_amount="1.00",
                          refunds=[(70, "success", "1.00")])  # fmt: skip
    # Unchanged total, but the listing says something happened or is under way.
    now = status_reply("success", pg_captured="1", pg_refund_amount="1.00", refunds=after)
    transport, seen = gateway([lost], [before, now])
    async with session(transport) as s:
        with pytest.raises(fp.ConnectionLostError) as lost_error:
            await s.refund(5, "2.00")
    assert lost_error.value.outcome_unknown
    assert (seen["refund"], seen["status"]) == (1, 2)  # asked before and after; not resent


async def test_a_refund_that_left_no_trace_is_sent_again() -> None:
    before = status_reply("success", pg_captured="1", pg_refund_amount="1.00",
                          refunds=[(70, "success", "1.00")])  # fmt: skip
    refunded = HttpResponse(200, render_response(sign_response_fields("refund", SIGNER, [
        ("pg_payment_id", "5"), ("pg_payment_refund_id", "71"), ("pg_status", "ok"),
        ("pg_refund_status", "success")], salt="s4lt")))  # fmt: skip
    transport, seen = gateway([lost, lambda r: refunded], [before, before])
    async with session(transport) as s:
        result = await s.refund(5, "2.00")
    assert result.refund_id == 71 and not result.confirmed_by_status
    assert seen["refund"] == 2
    # the lost send, the status query after it, and the send that was answered (the
    # status query before the first send is not an attempt of this refund's)
    assert result.attempts == 3


@pytest.mark.parametrize("cleared", ["400.00", None])
async def test_a_capture_of_another_amount_does_not_confirm_the_clearing(
    cleared: str | None,
) -> None:
    extra = {"pg_clearing_amount": cleared} if cleared else {}
    captured = status_reply("success", pg_captured="1", pg_amount="1000.00", **extra)
    transport, seen = gateway([lost], [captured])
    async with session(transport) as s:
        with pytest.raises(fp.ConnectionLostError) as error:
            await s.clear(5, "250.00")
    assert error.value.outcome_unknown
    assert (seen["clearing"], seen["status"]) == (1, 1)  # status asked, nothing resent


async def test_a_capture_of_the_requested_amount_confirms_the_clearing() -> None:
    captured = status_reply("success", pg_captured="1", pg_amount="1000.00",
                            pg_clearing_amount="250.00")  # fmt: skip
    transport, seen = gateway([lost], [captured])
    async with session(transport) as s:
        result = await s.clear(5, "250.00")
    assert result.confirmed_by_status and result.clearing_amount == Decimal("250.00")
    assert seen["clearing"] == 1


async def test_a_total_grown_by_two_new_refunds_confirms_neither() -> None:
    """The total grew by this amount, but through two new entries (another refund
    ran meanwhile): which one is this call's cannot be told, so it stays ambiguous."""
    before = status_reply("success", pg_captured="1", pg_refund_amount="1.00",
                          refunds=[(70, "success", "1.00")])  # fmt: skip
    now = status_reply("success", pg_captured="1", pg_refund_amount="3.00",
                       refunds=[(70, "success", "1.00"), (71, "success", "1.00"),
                                (72, "success", "1.00")])  # fmt: skip
    transport, seen = gateway([lost], [before, now])
    async with session(transport) as s:
        with pytest.raises(fp.ConnectionLostError) as error:
            await s.refund(5, "2.00")
    assert error.value.outcome_unknown
    assert (seen["refund"], seen["status"]) == (1, 2)


async def test_a_resent_clearings_attempts_count_every_request_it_took() -> None:
    held = status_reply("success", pg_captured="0", pg_amount="1000.00")
    cleared = HttpResponse(200, render_response(sign_response_fields("clearing", SIGNER, [
        ("pg_payment_id", "5"), ("pg_amount", "1000.00"), ("pg_clearing_amount", "250.00"),
        ("pg_status", "ok"), ("pg_clearing_status", "1")], salt="s4lt")))  # fmt: skip
    transport, seen = gateway([lost, lambda r: cleared], [held])
    async with session(transport) as s:
        result = await s.clear(5, "250.00")
    assert not result.confirmed_by_status and result.attempts == 3
    assert (seen["clearing"], seen["status"]) == (2, 1)


async def test_a_refund_without_an_amount_is_a_clear_validation_error() -> None:
    transport, seen = gateway([lost], [lost])
    async with session(transport) as s:
        with pytest.raises(fp.ValidationError, match="needs an amount"):
            await s.refund(5)
    assert not seen  # nothing was sent
