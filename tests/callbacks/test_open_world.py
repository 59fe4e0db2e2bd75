"""The open world: genuine messages carry fields this version does not list, and are taken.

Real result notifications carry ``pg_payment_system``, ``pg_need_*_notification``,
``pg_auth_code``, ``pg_reference``... Refusing them answered 400, the gateway gave up
after 2 hours of redelivery, and the paid notification was lost. Unknown ``pg_`` fields
now land in ``extra``; ``strict=True`` restores the closed world. Everything here goes
over loopback: the sandbox (or a hand-signed body) against real aiohttp handlers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web

import freedompay_async as fp
from freedompay_async._wire.multipart import render_multipart
from freedompay_async.callbacks import (
    CallbackAnswer,
    CheckRequest,
    RedirectBack,
    ResultNotify,
    check_request_handler,
    read_result_notify,
    redirect_handler,
    result_notify_handler,
    verify_result_notify,
)
from freedompay_async.sandbox import SandboxGateway

from ..helpers import MERCHANT, SECRET, SIGNER, serve

Pairs = list[tuple[str, str]]

#: The fields real notifications carry that the documented list does not name.
UNLISTED = (
    "pg_payment_system",
    "pg_need_email_notification",
    "pg_need_phone_notification",
    "pg_auth_code",
    "pg_reference",
)

#: A paid notification as the gateway sends it, before pg_salt and pg_sig.
GENUINE_PAID: Pairs = [
    ("pg_order_id", "A-501"),
    ("pg_payment_id", "9001"),
    ("pg_amount", "1500.00"),
    ("pg_currency", "KZT"),
    ("pg_net_amount", "1455.00"),
    ("pg_ps_amount", "1500.00"),
    ("pg_ps_full_amount", "1500.00"),
    ("pg_ps_currency", "KZT"),
    ("pg_description", "Order A-501"),
    ("pg_result", "1"),
    ("pg_payment_date", "2026-11-03 14:22:05"),
    ("pg_can_reject", "1"),
    ("pg_user_phone", "77010000000"),
    ("pg_need_phone_notification", "0"),
    ("pg_user_contact_email", "buyer@example.com"),
    ("pg_need_email_notification", "1"),
    ("pg_testing_mode", "0"),
    ("pg_payment_method", "bankcard"),
    ("pg_captured", "0"),
    ("pg_card_pan", "4405-64XX-XXXX-6150"),
    ("pg_card_brand", "VI"),
    ("pg_auth_code", "123456"),
    ("pg_reference", "512345678901"),
    ("pg_payment_system", "EPAYWEBKZT"),
    ("cart", "42"),
]


def signed(pairs: Pairs, url: str, salt: str = "gw-salt-1") -> Pairs:
    fields = [*pairs, ("pg_salt", salt)]
    return [*fields, ("pg_sig", SIGNER.sign(fp.script_name(url), fields))]


class Shop:
    """Records what reached the application, route by route."""

    def __init__(self) -> None:
        self.results: list[tuple[str, ResultNotify]] = []
        self.checks: list[tuple[str, CheckRequest]] = []
        self.redirects: list[tuple[str, RedirectBack]] = []

    def on_result(self, route: str) -> Callable[[ResultNotify], Awaitable[CallbackAnswer]]:
        async def record(notify: ResultNotify) -> CallbackAnswer:
            self.results.append((route, notify))
            return "ok"

        return record

    async def raw_strict(self, request: web.Request) -> web.StreamResponse:
        try:
            notify = await read_result_notify(request, SIGNER, strict=True)
        except fp.ValidationError as exc:
            return web.json_response({"refused": str(exc)}, status=400)
        return web.json_response({"extra": sorted(notify.extra)})


def shop_app(shop: Shop) -> web.Application:
    app = web.Application()

    async def on_check(check: CheckRequest) -> CallbackAnswer:
        shop.checks.append(("check", check))
        return "ok"

    async def on_redirect(_request: web.Request, back: RedirectBack) -> web.StreamResponse:
        shop.redirects.append(("redirect", back))
        return web.Response(text="thanks")

    allowed = (*UNLISTED, "pg_testing_mode")
    for prefix, strict, allow in (
        ("/pay", False, ()),
        ("/strict", True, ()),
        ("/allowed", True, allowed),
    ):
        result = result_notify_handler(
            SIGNER, shop.on_result(prefix), strict=strict, allow_fields=allow
        )
        app.router.add_post(f"{prefix}/result", result)
        check = check_request_handler(SIGNER, on_check, strict=strict, allow_fields=allow)
        app.router.add_post(f"{prefix}/check", check)
        back = redirect_handler(SIGNER, on_redirect, strict=strict, allow_fields=allow)
        app.router.add_get(f"{prefix}/success", back)
        app.router.add_post(f"{prefix}/success", back)
    app.router.add_post("/raw/result", shop.raw_strict)
    return app


@pytest.fixture
async def shop() -> AsyncIterator[tuple[Shop, str]]:
    merchant = Shop()
    async with serve(shop_app(merchant)) as base:
        yield merchant, base


async def post_pairs(url: str, pairs: Pairs) -> tuple[int, bytes]:
    body, content_type = render_multipart(pairs)
    async with (
        aiohttp.ClientSession() as client,
        client.post(url, data=body, headers={"Content-Type": content_type}) as resp,
    ):
        return resp.status, await resp.read()


async def test_a_genuine_paid_notification_with_unlisted_fields_reaches_the_app(
    shop: tuple[Shop, str],
) -> None:
    merchant, base = shop
    status, body = await post_pairs(f"{base}/pay/result", signed(GENUINE_PAID, "result"))
    assert status == 200, body
    ((route, notify),) = merchant.results
    assert route == "/pay" and notify.succeeded and notify.payment_id == 9001
    assert notify.amount == Decimal("1500.00") and notify.captured is False
    assert dict(notify.extra) == {name: dict(GENUINE_PAID)[name] for name in UNLISTED}
    assert notify.merchant_params == {"cart": "42"}
    # Names only in the repr: the bank's reference is not shown.
    assert "512345678901" not in repr(notify) and "pg_reference" in repr(notify)


async def test_strict_mode_refuses_the_same_notification_unless_its_fields_are_allowed(
    shop: tuple[Shop, str],
) -> None:
    merchant, base = shop
    status, _ = await post_pairs(f"{base}/strict/result", signed(GENUINE_PAID, "result"))
    assert status == 400 and merchant.results == []
    status, body = await post_pairs(f"{base}/raw/result", signed(GENUINE_PAID, "result"))
    assert status == 400 and b"strict mode" in body
    status, _ = await post_pairs(f"{base}/allowed/result", signed(GENUINE_PAID, "result"))
    assert status == 200 and [route for route, _ in merchant.results] == ["/allowed"]


async def test_the_sandbox_sends_what_the_gateway_sends_and_the_app_takes_it(
    shop: tuple[Shop, str],
) -> None:
    merchant, base = shop
    gateway = SandboxGateway(MERCHANT, SECRET)
    status, _ = await gateway.send_result_notify(
        f"{base}/pay/result", payment_id=31, order_id="A-31", amount="500.00"
    )
    assert status == 200
    ((_, notify),) = merchant.results
    assert set(UNLISTED) <= set(notify.extra)
    assert notify.extra["pg_payment_system"] == "EPAYWEBKZT"
    assert notify.captured is False and notify.card_pan == "4405-64XX-XXXX-6150"
    assert notify.card_brand == "VI" and notify.payment_datetime is not None
    status, _ = await gateway.send_check(f"{base}/pay/check", payment_id=31, order_id="A-31")
    assert status == 200
    ((_, check),) = merchant.checks
    assert {"pg_payment_system", "pg_need_email_notification"} <= set(check.extra)
    for method in ("POST", "GET"):
        status, _ = await gateway.send_redirect(
            f"{base}/pay/success", payment_id=31, order_id="A-31", method=method
        )
        assert status == 200
    assert all(back.extra["pg_payment_system"] == "EPAYWEBKZT" for _, back in merchant.redirects)
    assert len(merchant.redirects) == 2


async def test_strict_handlers_refuse_what_the_sandbox_sends_and_allowed_names_pass(
    shop: tuple[Shop, str],
) -> None:
    merchant, base = shop
    gateway = SandboxGateway(MERCHANT, SECRET)
    sends = {
        "result": lambda url: gateway.send_result_notify(url, payment_id=32, order_id="A-32"),
        "check": lambda url: gateway.send_check(url, payment_id=32, order_id="A-32"),
        "success": lambda url: gateway.send_redirect(url, payment_id=32, order_id="A-32"),
    }
    for path, send in sends.items():
        status, _ = await send(f"{base}/strict/{path}")
        assert status == 400, path
    assert merchant.results == [] and merchant.checks == [] and merchant.redirects == []
    for path, send in sends.items():
        status, _ = await send(f"{base}/allowed/{path}")
        assert status == 200, path
    assert len(merchant.results) == len(merchant.checks) == len(merchant.redirects) == 1


def _without(name: str) -> Pairs:
    return [(k, v) for k, v in GENUINE_PAID if k != name]


@pytest.mark.parametrize(
    ("pairs", "error"),
    [
        *[
            pytest.param(_without(name), f"no {name}", id=f"no-{name}")
            for name in ("pg_order_id", "pg_payment_id", "pg_amount", "pg_currency", "pg_result")
        ],
        pytest.param([*GENUINE_PAID, ("pg_amount", "1.00")], "more than once", id="amount-twice"),
        pytest.param([*GENUINE_PAID, ("pg_result", "1")], "more than once", id="result-twice"),
        pytest.param([*_without("pg_result"), ("pg_result", "3")], "pg_result", id="result-3"),
        pytest.param(
            [*_without("pg_can_reject"), ("pg_can_reject", "yes")], "pg_can_reject", id="flag"
        ),
        pytest.param([*_without("pg_currency"), ("pg_currency", "KZTT")], "pg_currency", id="cur"),
        pytest.param(
            [*_without("pg_amount"), ("pg_amount[0]", "1")], "not a plain value", id="amount-group"
        ),
    ],
)
async def test_the_open_world_still_holds_every_documented_field_to_its_shape(
    shop: tuple[Shop, str], pairs: Pairs, error: str
) -> None:
    with pytest.raises(fp.ValidationError, match=error):
        verify_result_notify("result", signed(pairs, "result"), SIGNER)
    merchant, base = shop
    status, _ = await post_pairs(f"{base}/pay/result", signed(pairs, "result"))
    assert status == 400 and merchant.results == []


async def test_a_notification_without_its_salt_or_with_two_signatures_is_refused(
    shop: tuple[Shop, str],
) -> None:
    merchant, base = shop
    no_salt = [*GENUINE_PAID, ("pg_sig", SIGNER.sign("result", GENUINE_PAID))]
    twice = signed(GENUINE_PAID, "result")
    twice.append(twice[-1])
    for pairs in (no_salt, twice):
        status, _ = await post_pairs(f"{base}/pay/result", pairs)
        assert status == 400
    assert merchant.results == []
