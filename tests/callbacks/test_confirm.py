"""Confirmation by status: a paid notification reaches the app only when the gateway agrees.

md5 over values cannot bind names, so a signed notification can be rearranged. With
``confirm=session`` the ready handler asks ``/g2g/status_v2`` first; here a real
``AsyncSession`` asks a served ``SandboxGateway`` (or a small status server of the
test's own, for the states the sandbox never reaches), and the sandbox plays the
gateway's notification against a real merchant app, all over loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from aiohttp import web

import freedompay_async as fp
from freedompay_async._operations.status import PaymentState, StatusResult
from freedompay_async._operations.status_entries import PaymentStatus
from freedompay_async._wire.xml import parse_xml_fields, signed_response
from freedompay_async.callbacks import (
    CallbackAnswer,
    PaymentNotConfirmedError,
    ResultNotify,
    StatusSource,
    confirm_result_notify,
    result_notify_handler,
    verify_result_notify,
)
from freedompay_async.sandbox import SandboxGateway

from ..helpers import MERCHANT, SECRET, SIGNER, FakeClock, serve


def session(url: str, attempts: int = 4) -> fp.AsyncSession:
    """A session whose backoff is virtual and which does not space its requests."""
    retry = fp.RetryPolicy(attempts=attempts, sleep=FakeClock().sleep, attempt_timeout=10.0)
    return fp.AsyncSession(
        fp.Credentials(MERCHANT, SECRET), base_url=url, retry=retry, spacing=None
    )


def signed_paid(
    payment_id: int,
    amount: str = "1000.00",
    *,
    order_id: str | None = None,
    currency: str = "KZT",
) -> list[tuple[str, str]]:
    """A paid notification's fields, signed for ``result`` as the gateway signs them."""
    pairs = [
        ("pg_order_id", f"order-{payment_id}" if order_id is None else order_id),
        ("pg_payment_id", str(payment_id)),
        ("pg_amount", amount),
        ("pg_currency", currency),
        ("pg_result", "1"),
        ("pg_salt", "gw-salt"),
    ]
    return [*pairs, ("pg_sig", SIGNER.sign("result", pairs))]


class App:
    """The merchant's application coroutine: records every notification it is given."""

    def __init__(self) -> None:
        self.seen: list[ResultNotify] = []

    async def on_result(self, notify: ResultNotify) -> CallbackAnswer:
        self.seen.append(notify)
        return "ok", "Order paid"


def merchant(app: App, source: StatusSource) -> web.Application:
    handler = result_notify_handler(SIGNER, app.on_result, confirm=source)
    web_app = web.Application()
    web_app.router.add_post("/pay/result", handler)
    return web_app


@pytest.fixture
async def shop(
    served: tuple[SandboxGateway, str],
) -> AsyncIterator[tuple[SandboxGateway, fp.AsyncSession, App, str]]:
    gateway, url = served
    app = App()
    async with session(url) as fp_session, serve(merchant(app, fp_session)) as base:
        yield gateway, fp_session, app, f"{base}/pay/result"


async def test_a_paid_notification_confirmed_by_status_reaches_the_app(
    shop: tuple[SandboxGateway, fp.AsyncSession, App, str],
) -> None:
    gateway, fp_session, app, result_url = shop
    gateway.status_lag = 0  # the lag is not the subject: status shows the clearing at once
    await fp_session.clear(41)  # captured
    status, body = await gateway.send_result_notify(
        result_url, payment_id=41, order_id="order-41", amount="1000.00", currency="KZT"
    )
    assert status == 200
    _root, fields = parse_xml_fields(body)
    assert dict(fields)["pg_status"] == "ok"
    (notify,) = app.seen
    assert notify.confirmed_by_status and notify.confirmation is not None
    assert notify.confirmation.state is PaymentState.CAPTURED
    assert "confirmation=<captured>" in repr(notify)
    assert gateway.ledger[41].status_requests == 1
    # A held payment (two-step, not cleared yet) was paid too.
    status, _ = await gateway.send_result_notify(
        result_url, payment_id=42, order_id="order-42", amount="1000", currency="kzt"
    )
    assert status == 200 and app.seen[-1].confirmation is not None
    assert app.seen[-1].confirmation.state is PaymentState.HELD
    # Cleared, then refunded in part: some of the money is still the merchant's.
    await fp_session.clear(43)
    await fp_session.refund(43, "400.00")
    status, _ = await gateway.send_result_notify(
        result_url, payment_id=43, order_id="order-43", amount="1000.00"
    )
    assert status == 200 and app.seen[-1].confirmation is not None
    assert app.seen[-1].confirmation.state is PaymentState.PARTIALLY_REFUNDED
    assert len(app.seen) == 3


async def test_a_payment_cancelled_since_is_not_confirmed(
    shop: tuple[SandboxGateway, fp.AsyncSession, App, str],
) -> None:
    # The notification is genuine, but the hold was released since: shipping now would
    # give the goods away.
    gateway, fp_session, app, result_url = shop
    await fp_session.cancel(44)
    status, _ = await gateway.send_result_notify(
        result_url, payment_id=44, order_id="order-44", amount="1000.00"
    )
    assert status == 409 and app.seen == []
    notify = verify_result_notify("result", signed_paid(44), SIGNER)
    with pytest.raises(PaymentNotConfirmedError) as info:
        await confirm_result_notify(notify, fp_session)
    assert (info.value.reason, info.value.state) == ("not_paid", "revoked")


async def test_a_payment_refunded_in_full_since_is_not_confirmed(
    shop: tuple[SandboxGateway, fp.AsyncSession, App, str],
) -> None:
    gateway, fp_session, app, result_url = shop
    gateway.status_lag = 0
    await fp_session.clear(45)
    await fp_session.refund(45, "1000.00")
    assert (await fp_session.status(45)).state is PaymentState.REFUNDED
    status, _ = await gateway.send_result_notify(
        result_url, payment_id=45, order_id="order-45", amount="1000.00"
    )
    assert status == 409 and app.seen == []


@pytest.mark.parametrize(
    ("payment_id", "order_id", "amount", "currency", "reason"),
    [
        pytest.param(33, "order-33", "999.00", "KZT", "amount_differs", id="amount"),
        pytest.param(34, "order-34", "1000.00", "USD", "currency_differs", id="currency"),
        pytest.param(35, "B-999", "1000.00", "KZT", "order_differs", id="order"),
    ],
)
async def test_a_notification_that_status_contradicts_never_reaches_the_app(
    shop: tuple[SandboxGateway, fp.AsyncSession, App, str],
    payment_id: int,
    order_id: str,
    amount: str,
    currency: str,
    reason: str,
) -> None:
    gateway, fp_session, app, result_url = shop
    status, body = await gateway.send_result_notify(
        result_url, payment_id=payment_id, order_id=order_id, amount=amount, currency=currency
    )
    assert status == 409 and app.seen == []  # non-200: the gateway delivers it again
    _root, fields = parse_xml_fields(body)
    assert dict(fields)["pg_status"] == "error"
    assert SIGNER.verify("result", fields, str(dict(fields)["pg_sig"]))
    assert gateway.ledger[payment_id].status_requests == 1
    # The plain function says why.
    pairs = signed_paid(payment_id, amount, order_id=order_id, currency=currency)
    notify = verify_result_notify("result", pairs, SIGNER)
    with pytest.raises(PaymentNotConfirmedError) as info:
        await confirm_result_notify(notify, fp_session)
    assert info.value.reason == reason and info.value.payment_id == payment_id


async def test_a_payment_status_cannot_find_is_not_confirmed(
    shop: tuple[SandboxGateway, fp.AsyncSession, App, str],
) -> None:
    gateway, _session, app, result_url = shop
    status, _ = await gateway.send_result_notify(
        result_url, payment_id=999_999, order_id="order-999999", amount="1000.00"
    )
    assert status == 503 and app.seen == []


async def test_a_failed_notification_needs_no_status_query(
    shop: tuple[SandboxGateway, fp.AsyncSession, App, str],
) -> None:
    gateway, _session, app, result_url = shop
    status, _ = await gateway.send_result_notify(
        result_url, payment_id=46, order_id="A-46", amount="5.00", result=0
    )
    assert status == 200
    (notify,) = app.seen
    assert not notify.succeeded and not notify.confirmed_by_status
    assert gateway.ledger[46].status_requests == 0


async def test_a_status_query_that_fails_is_no_confirmation() -> None:
    # A gateway that is not there: the query fails to connect, once.
    async with serve(web.Application()) as gone:
        pass
    app = App()
    async with session(gone, attempts=1) as fp_session:
        async with serve(merchant(app, fp_session)) as base:
            status, _ = await SandboxGateway(MERCHANT, SECRET).send_result_notify(
                f"{base}/pay/result", payment_id=47, order_id="order-47", amount="1000.00"
            )
        assert status == 503 and app.seen == []
        notify = verify_result_notify("result", signed_paid(47), SIGNER)
        with pytest.raises(PaymentNotConfirmedError) as info:
            await confirm_result_notify(notify, fp_session)
    assert info.value.reason == "status_unavailable"
    assert isinstance(info.value.__cause__, fp.ConnectError)


# --- states the sandbox never reaches: a status server of the test's own ------------------


def status_server(
    payment_status: str,
    replied_id: int | None = None,
    *,
    cleared: str = "0.00",
    refunded: str = "0.00",
) -> web.Application:
    """A gateway whose status_v2 answers, signed, with ``payment_status`` (and another
    id), ``cleared`` and ``refunded`` (written negative, as the gateway does)."""

    async def status_v2(request: web.Request) -> web.Response:
        form = await request.post()
        pid = str(form["pg_payment_id"]) if replied_id is None else str(replied_id)
        fields = [
            ("pg_payment_id", pid),
            ("pg_order_id", f"order-{pid}"),
            ("pg_currency", "KZT"),
            ("pg_status", "ok"),
            ("pg_payment_status", payment_status),
            ("pg_amount", "1000.00"),
            ("pg_clearing_amount", cleared),
            ("pg_refund_amount", f"-{refunded}" if refunded != "0.00" else refunded),
        ]
        body = signed_response("status_v2", SIGNER, fields)
        return web.Response(body=body, content_type="text/xml")

    app = web.Application()
    app.router.add_post("/g2g/status_v2", status_v2)
    return app


@pytest.mark.parametrize(
    ("payment_status", "replied_id", "amounts", "http_status"),
    [
        pytest.param("failed", None, {}, 409, id="failed"),
        pytest.param("error", None, {}, 409, id="error"),
        pytest.param("pending", None, {}, 409, id="pending"),
        pytest.param("new", None, {}, 409, id="new"),
        pytest.param("chargeback", None, {}, 409, id="a-state-not-known"),
        pytest.param("success", 4801, {}, 503, id="another-payment"),
        pytest.param("success", None, {}, 200, id="paid-held"),
        pytest.param("success", None, {"cleared": "1000.00"}, 200, id="paid-captured"),
        pytest.param(
            "success",
            None,
            {"cleared": "1000.00", "refunded": "400.00"},
            200,
            id="paid-partly-refunded",
        ),
        pytest.param("revoked", None, {}, 409, id="paid-then-cancelled"),
        pytest.param("refunded", None, {}, 409, id="paid-then-refunded"),
        pytest.param(
            "success",
            None,
            {"cleared": "1000.00", "refunded": "1000.00"},
            409,
            id="paid-then-refunded-in-full",
        ),
    ],
)
async def test_status_must_show_the_money_with_the_merchant_now(
    payment_status: str, replied_id: int | None, amounts: dict[str, str], http_status: int
) -> None:
    app = App()
    async with (
        serve(status_server(payment_status, replied_id, **amounts)) as gateway_url,
        session(gateway_url) as fp_session,
        serve(merchant(app, fp_session)) as base,
    ):
        status, _ = await SandboxGateway(MERCHANT, SECRET).send_result_notify(
            f"{base}/pay/result", payment_id=48, order_id="order-48", amount="1000.00"
        )
    assert status == http_status
    assert len(app.seen) == (1 if http_status == 200 else 0)


async def test_the_plain_function_names_the_state_that_did_not_confirm() -> None:
    async with (
        serve(status_server("failed")) as gateway_url,
        session(gateway_url) as fp_session,
    ):
        notify = verify_result_notify("result", signed_paid(49), SIGNER)
        with pytest.raises(PaymentNotConfirmedError) as info:
            await confirm_result_notify(notify, fp_session)
    assert info.value.reason == "not_paid" and info.value.state == "failed"
    assert "failed" in str(info.value) and "(payment 49)" in str(info.value)


# --- any StatusSource -------------------------------------------------------------------


class Canned:
    """A status source of the application's own (a cache, another client...)."""

    def __init__(self, result: StatusResult | BaseException) -> None:
        self.result = result
        self.asked: list[int] = []

    async def status(self, payment_id: int, /) -> StatusResult:
        self.asked.append(payment_id)
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


def status_of(payment_id: int, raw: str = "success", amount: str = "1000.00") -> StatusResult:
    return StatusResult(
        payment_id=payment_id,
        order_id=f"order-{payment_id}",
        status="ok",
        payment_status=PaymentStatus.parse(raw),
        payment_status_raw=raw,
        amount=Decimal(amount),
        clearing_amount=None,
        refund_amount=None,
        currency="KZT",
        captured=None,
        payment_date=None,
    )


async def test_a_status_source_that_answers_for_another_payment_does_not_confirm() -> None:
    notify = verify_result_notify("result", signed_paid(50), SIGNER)
    with pytest.raises(PaymentNotConfirmedError) as info:
        await confirm_result_notify(notify, Canned(status_of(51)))
    assert info.value.reason == "other_payment"
    confirmed = await confirm_result_notify(notify, Canned(status_of(50)))
    assert confirmed.confirmed_by_status and not notify.confirmed_by_status
    assert confirmed == notify  # the same notification, with its confirmation


async def test_cancellation_and_foreign_errors_propagate_unchanged() -> None:
    notify = verify_result_notify("result", signed_paid(52), SIGNER)
    with pytest.raises(RuntimeError, match="cache down"):
        await confirm_result_notify(notify, Canned(RuntimeError("cache down")))

    class Hanging:
        async def status(self, payment_id: int, /) -> StatusResult:
            await asyncio.Event().wait()
            raise AssertionError("not reached")

    task = asyncio.ensure_future(confirm_result_notify(notify, Hanging()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_confirm_must_have_a_status_coroutine() -> None:
    async def on_result(_notify: ResultNotify) -> CallbackAnswer:
        return "ok"

    with pytest.raises(fp.ConfigurationError, match="status"):
        result_notify_handler(SIGNER, on_result, confirm=object())  # type: ignore[arg-type]
