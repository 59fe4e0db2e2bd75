"""End to end: the sandbox gateway calls a real aiohttp.web merchant app on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from urllib.parse import quote, urlencode

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

import freedompay_async as fp
from freedompay_async._wire.multipart import render_multipart
from freedompay_async._wire.xml import parse_xml_fields
from freedompay_async.callbacks import (
    DEFAULT_MAX_BODY_BYTES,
    CallbackAnswer,
    CallbackBodyTooLargeError,
    CheckRequest,
    RedirectBack,
    ReplyStatus,
    ResultNotify,
    check_request_handler,
    read_redirect,
    read_result_notify,
    redirect_handler,
    result_notify_handler,
)
from freedompay_async.sandbox import SandboxGateway

from ..helpers import SIGNER

RAW_LIMIT = 1024

Pairs = list[tuple[str, str]]
RESULT_BASE: Pairs = [
    ("pg_order_id", "A-1"),
    ("pg_amount", "1"),
    ("pg_currency", "KZT"),
    ("pg_result", "1"),
]


class Merchant:
    """A merchant app: records what its handlers saw; answers result callbacks idempotently."""

    def __init__(self) -> None:
        self.redirects: list[RedirectBack] = []
        self.results: list[ResultNotify] = []
        self.checks: list[CheckRequest] = []
        self.decisions: dict[int, tuple[ReplyStatus, str]] = {}
        self.fail_next_result = False

    async def on_redirect(self, request: web.Request, back: RedirectBack) -> web.StreamResponse:
        self.redirects.append(back)
        return web.json_response(
            {"order": back.order_id, "ok": back.succeeded, "method": request.method}
        )

    async def on_result(self, notify: ResultNotify) -> CallbackAnswer:
        self.results.append(notify)
        if self.fail_next_result:
            self.fail_next_result = False
            raise RuntimeError("database is down")
        # Idempotent: the first decision for a payment is stored and repeated.
        if notify.payment_id not in self.decisions:
            if notify.amount > Decimal(1000) and notify.can_reject:
                self.decisions[notify.payment_id] = (ReplyStatus.REJECTED, "Сумма превышает лимит")
            else:
                self.decisions[notify.payment_id] = (ReplyStatus.OK, "Order paid")
        return self.decisions[notify.payment_id]

    async def on_check(self, check: CheckRequest) -> CallbackAnswer:
        self.checks.append(check)
        return "ok" if check.order_id.startswith("A") else ("rejected", "Unknown order")

    async def raw(self, request: web.Request) -> web.StreamResponse:
        try:
            back = await read_redirect(
                request, SIGNER, max_body_bytes=RAW_LIMIT, allow_fields=["pg_shop_ref"]
            )
        except fp.FreedomPayError as exc:
            return web.json_response({"error": type(exc).__name__}, status=400)
        return web.json_response(
            {
                "order": back.order_id,
                "payment": back.payment_id,
                "params": dict(back.merchant_params),
                "extra": dict(back.extra),
            }
        )

    async def raw_result(self, request: web.Request) -> web.StreamResponse:
        try:
            notify = await read_result_notify(request, SIGNER)
        except fp.FreedomPayError as exc:
            return web.json_response({"error": type(exc).__name__}, status=400)
        return web.json_response({"payment": notify.payment_id, "amount": str(notify.amount)})


def merchant_app(merchant: Merchant) -> web.Application:
    app = web.Application()

    def both(path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
        app.router.add_get(path, handler)
        app.router.add_post(path, handler)

    both("/pay/success", redirect_handler(SIGNER, merchant.on_redirect, success=True))
    both(
        "/pay/failure",
        redirect_handler(SIGNER, merchant.on_redirect, success=False, allow_unsigned_failure=True),
    )
    both("/strict/failure", redirect_handler(SIGNER, merchant.on_redirect, success=False))
    both(
        "/pay/back",
        redirect_handler(SIGNER, merchant.on_redirect, url="https://shop.example/pay/back?lang=ru"),
    )
    both("/pay/raw", merchant.raw)
    app.router.add_post("/pay/raw-result", merchant.raw_result)
    app.router.add_post("/pay/result", result_notify_handler(SIGNER, merchant.on_result))
    app.router.add_post("/pay/check", check_request_handler(SIGNER, merchant.on_check))
    # Behind a proxy: the public URL is https://shop.example/pay/result.
    app.router.add_post(
        "/internal/v2/result",
        result_notify_handler(SIGNER, merchant.on_result, url="https://shop.example/pay/result"),
    )
    # A route whose registered public URL has another script name than the path it gets.
    app.router.add_post(
        "/internal/cb-7",
        result_notify_handler(SIGNER, merchant.on_result, url="https://shop.example/pay/result"),
    )
    return app


@pytest.fixture
async def merchant() -> AsyncIterator[tuple[Merchant, str]]:
    shop = Merchant()
    async with TestServer(merchant_app(shop)) as server:
        yield shop, str(server.make_url("")).rstrip("/")


def verified_reply(body: bytes, script: str) -> dict[str, str]:
    root, fields = parse_xml_fields(body)
    assert root == "response"
    values = {k: v for k, v in fields if isinstance(v, str)}
    assert SIGNER.verify(script, fields, values["pg_sig"]), "merchant reply must be signed"
    return values


async def post(
    url: str, body: bytes | Callable[[], AsyncIterator[bytes]], content_type: str | None
) -> tuple[int, bytes, str]:
    headers = {} if content_type is None else {"Content-Type": content_type}
    skip = () if content_type is not None else ("Content-Type",)
    data = body if isinstance(body, bytes) else body()
    async with (
        aiohttp.ClientSession(skip_auto_headers=skip) as session,
        session.post(url, data=data, headers=headers) as resp,
    ):
        return resp.status, await resp.read(), resp.headers.get("Content-Type", "")


def signed_pairs(url: str, pairs: Pairs, salt: str = "q1w2e3") -> Pairs:
    fields = [*pairs, ("pg_salt", salt)]
    return [*fields, ("pg_sig", SIGNER.sign(fp.script_name(url), fields))]


# --- redirects -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_signed_success_redirect(
    merchant: tuple[Merchant, str], gateway: SandboxGateway, method: str
) -> None:
    shop, base = merchant
    status, body = await gateway.send_redirect(
        f"{base}/pay/success",
        payment_id=555,
        order_id="A-17",
        params={"lang": "ru", "comment": "Оплата заказа №17"},
        method=method,
    )
    assert status == 200, body
    assert json.loads(body) == {"order": "A-17", "ok": True, "method": method}
    (back,) = shop.redirects
    assert back.signed and back.succeeded and back.payment_id == 555
    assert back.merchant_params == {"lang": "ru", "comment": "Оплата заказа №17"}


async def test_signed_failure_redirect_with_cyrillic_description(
    merchant: tuple[Merchant, str], gateway: SandboxGateway
) -> None:
    shop, base = merchant
    status, _ = await gateway.send_redirect(
        f"{base}/strict/failure", payment_id=556, order_id="A-18", success=False
    )
    assert status == 200
    (back,) = shop.redirects
    assert back.signed and not back.succeeded and back.error_code == "10000"
    assert back.error_description == "Ошибка оплаты. Повторите попытку позже."


async def test_unsigned_failure_is_accepted_only_where_allowed(
    merchant: tuple[Merchant, str], gateway: SandboxGateway
) -> None:
    shop, base = merchant
    for path in ("/strict/failure", "/pay/failure"):
        status, _ = await gateway.send_redirect(
            base + path, payment_id=557, order_id="A-19", success=False, signed=False
        )
        if path == "/strict/failure":
            assert status == 400 and not shop.redirects
    assert status == 200
    (back,) = shop.redirects
    assert not back.signed and not back.succeeded
    # On the failure URL anything unsigned is a failure, never a success ...
    status, _ = await gateway.send_redirect(
        f"{base}/pay/failure", payment_id=558, order_id="A-20", signed=False
    )
    assert status == 200 and not shop.redirects[-1].succeeded
    # ... and the success URL (no flag) refuses it.
    status, _ = await gateway.send_redirect(
        f"{base}/pay/success", payment_id=558, order_id="A-20", signed=False
    )
    assert status == 400 and len(shop.redirects) == 2


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda p: [(k, "999" if k == "pg_payment_id" else v) for k, v in p], id="id"),
        pytest.param(lambda p: [(k, v + "x" if k == "lang" else v) for k, v in p], id="param"),
        pytest.param(lambda p: [*p, ("coupon", "FREE")], id="added"),
        pytest.param(lambda p: [p[0], *p], id="duplicated"),
        pytest.param(lambda p: [*p, p[-1]], id="duplicated-sig"),
        pytest.param(lambda p: [x for x in p if x[0] != "pg_sig"], id="no-sig"),
        pytest.param(lambda p: [*p[:-1], ("pg_sig", "0" * 32)], id="wrong-sig"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_tampered_redirects_are_refused(
    merchant: tuple[Merchant, str],
    gateway: SandboxGateway,
    tamper: Callable[[Pairs], Pairs],
    method: str,
) -> None:
    shop, base = merchant
    status, body = await gateway.send_redirect(
        f"{base}/pay/success",
        payment_id=560,
        order_id="A-21",
        params={"lang": "ru"},
        method=method,
        tamper=tamper,
    )
    assert status == 400 and b"could not be verified" in body
    assert not shop.redirects


async def test_get_redirect_to_a_url_with_its_own_query(
    merchant: tuple[Merchant, str], gateway: SandboxGateway
) -> None:
    # The sandbox, like the gateway, appends its fields to the URL's query and signs only
    # what it added. With the URL taken from the request, the merchant's own lang=ru
    # cannot be told apart and the redirect does not verify (pinned behaviour) ...
    shop, base = merchant
    status, _ = await gateway.send_redirect(
        f"{base}/pay/success?lang=ru", payment_id=561, order_id="A-22", method="GET"
    )
    assert status == 400 and not shop.redirects
    # ... with the configured URL given as url=, its own query is set aside and it does;
    # the value holds the signed fields only, not the unsigned lang=ru.
    status, _ = await gateway.send_redirect(
        f"{base}/pay/back?lang=ru", payment_id=561, order_id="A-22", method="GET"
    )
    assert status == 200
    (back,) = shop.redirects
    assert back.signed and back.payment_id == 561 and back.merchant_params == {}
    # A changed merchant query is not the configured one: refused.
    status, _ = await gateway.send_redirect(
        f"{base}/pay/back?lang=en", payment_id=561, order_id="A-22", method="GET"
    )
    assert status == 400


# --- only signed fields reach the value -----------------------------------------------


async def get(url: str) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(URL(url, encoded=True), allow_redirects=False) as resp,
    ):
        return resp.status, await resp.read()


@pytest.mark.parametrize("wire", ["urlencoded", "multipart"])
async def test_a_post_redirect_with_pairs_injected_into_body_and_query_is_refused(
    merchant: tuple[Merchant, str], wire: str
) -> None:
    # A genuine signed body replayed with extra pairs prepended, the same pairs in the
    # URL query: a POST never uses the URL query, so the signature covers everything.
    shop, base = merchant
    injected = [("order_ref", "EVIL"), ("pg_testing_mode", "1")]
    sent = [("pg_order_id", "A-1"), ("pg_payment_id", "7"), ("order_ref", "A-1")]
    refusals = (("/pay/raw", b"SignatureVerificationError"), ("/pay/back", b"not be verified"))
    for path, refused in refusals:
        genuine = signed_pairs(base + path, sent)
        url = f"{base}{path}?{urlencode(injected)}"
        if wire == "urlencoded":
            body = urlencode([*injected, *genuine]).encode()
            content_type = "application/x-www-form-urlencoded"
        else:
            body, content_type = render_multipart([*injected, *genuine])
        status, reply, _ = await post(url, body, content_type)
        assert status == 400 and refused in reply
        # The genuine message alone, to the same URL, is accepted and unchanged.
        status, reply, _ = await post(url, *render_multipart(genuine))
        assert status == 200, reply
    assert [back.merchant_params for back in shop.redirects] == [{"order_ref": "A-1"}]


async def test_a_post_to_a_url_configured_with_a_query_ignores_that_query(
    merchant: tuple[Merchant, str],
) -> None:
    # /pay/back is configured as .../pay/back?lang=ru: for a POST that query is not set
    # aside, so a body starting with lang=ru that the signature does not cover is refused.
    shop, base = merchant
    genuine = signed_pairs(f"{base}/pay/back", [("pg_order_id", "A-1"), ("pg_payment_id", "8")])
    status, _, _ = await post(f"{base}/pay/back", *render_multipart([("lang", "ru"), *genuine]))
    assert status == 400 and not shop.redirects


@pytest.mark.parametrize("path", ["/pay/raw-result", "/pay/result"])
async def test_a_result_notification_with_injected_pairs_is_refused(
    merchant: tuple[Merchant, str], path: str
) -> None:
    shop, base = merchant
    genuine = signed_pairs(
        base + path,
        [*RESULT_BASE, ("pg_payment_id", "9"), ("user_id", "42")],
    )
    injected = [("user_id", "666"), ("pg_can_reject", "1")]
    url = f"{base}{path}?{urlencode(injected)}"
    status, reply, _ = await post(url, *render_multipart([*injected, *genuine]))
    assert status == 400
    if path == "/pay/result":
        assert verified_reply(reply, "result")["pg_status"] == "error"
    else:
        assert json.loads(reply) == {"error": "SignatureVerificationError"}
    assert not shop.results
    status, reply, _ = await post(url, *render_multipart(genuine))
    assert status == 200
    if path == "/pay/result":
        (notify,) = shop.results
        assert notify.can_reject is False and notify.merchant_params == {"user_id": "42"}


async def test_a_get_redirect_cannot_override_signed_fields(
    merchant: tuple[Merchant, str],
) -> None:
    shop, base = merchant
    # Without url=, the request's query is all fields: nothing is set aside.
    sent = [("pg_order_id", "A-1"), ("pg_payment_id", "3")]
    genuine = signed_pairs(f"{base}/pay/raw", [*sent, ("order_ref", "A-1")])
    query = urlencode([("order_ref", "EVIL"), *genuine], quote_via=quote)
    status, reply = await get(f"{base}/pay/raw?{query}")
    assert (status, json.loads(reply)) == (400, {"error": "SignatureVerificationError"})
    # With url= .../pay/back?lang=ru, only a leading lang=ru is set aside, and the
    # value holds the signed fields: the gateway's echoed lang=kk, not the query's ru.
    genuine = signed_pairs(f"{base}/pay/back", [*sent, ("lang", "kk")])
    status, reply = await get(f"{base}/pay/back?{urlencode([('lang', 'ru'), *genuine])}")
    assert status == 200, reply
    (back,) = shop.redirects
    assert back.signed and back.merchant_params == {"lang": "kk"}


# --- hostile shapes -------------------------------------------------------------------


@pytest.mark.parametrize("levels", [33, 5000])
async def test_deep_nesting_is_a_validation_error(
    merchant: tuple[Merchant, str], levels: int
) -> None:
    _, base = merchant
    url = f"{base}/pay/raw-result"
    name = "a" + "[x]" * (levels - 1)
    form = urlencode([*RESULT_BASE, ("pg_payment_id", "1"), (name, "v"), ("pg_sig", "0" * 32)])
    document = f"<request>{'<a>' * levels}x{'</a>' * levels}<pg_sig>{'0' * 32}</pg_sig></request>"
    for body, content_type in (
        (form.encode(), "application/x-www-form-urlencoded"),
        (document.encode(), "text/xml"),
    ):
        status, reply, _ = await post(url, body, content_type)
        assert (status, json.loads(reply)) == (400, {"error": "ValidationError"})


# --- result notify and check ---------------------------------------------------------


async def test_result_notification_is_answered_with_signed_xml(
    merchant: tuple[Merchant, str], gateway: SandboxGateway
) -> None:
    shop, base = merchant
    status, body = await gateway.send_result_notify(
        f"{base}/pay/result", payment_id=700, order_id="A-30", amount="250.00",
        params={"cart": "Корзина"},
    )  # fmt: skip
    assert status == 200
    reply = verified_reply(body, "result")
    assert (reply["pg_status"], reply["pg_description"]) == ("ok", "Order paid")
    (notify,) = shop.results
    assert notify.payment_id == 700 and notify.amount == Decimal("250.00")
    assert notify.succeeded and notify.can_reject and notify.testing_mode
    assert notify.merchant_params == {"cart": "Корзина"}


async def test_result_reply_content_type(merchant: tuple[Merchant, str]) -> None:
    _, base = merchant
    url = f"{base}/pay/result"
    pairs = signed_pairs(
        url,
        [*RESULT_BASE, ("pg_payment_id", "1")],
    )
    body, content_type = render_multipart(pairs)
    status, reply, reply_type = await post(url, body, content_type)
    assert status == 200 and reply_type == "text/xml; charset=utf-8"
    assert reply.startswith(b'<?xml version="1.0" encoding="utf-8"?><response>')


async def test_a_redelivered_result_gets_the_same_answer(
    merchant: tuple[Merchant, str], gateway: SandboxGateway
) -> None:
    shop, base = merchant
    answers = []
    for _ in range(3):
        status, body = await gateway.send_result_notify(
            f"{base}/pay/result", payment_id=701, order_id="A-31", amount="5000"
        )
        assert status == 200
        reply = verified_reply(body, "result")
        answers.append((reply["pg_status"], reply["pg_description"]))
    assert answers == [("rejected", "Сумма превышает лимит")] * 3
    assert len(shop.results) == 1 and len(shop.decisions) == 1  # the app sees it once


async def test_a_failing_result_handler_answers_500_so_the_gateway_redelivers(
    merchant: tuple[Merchant, str], gateway: SandboxGateway
) -> None:
    shop, base = merchant
    shop.fail_next_result = True
    status, _ = await gateway.send_result_notify(
        f"{base}/pay/result", payment_id=702, order_id="A-32"
    )
    assert status == 500
    status, body = await gateway.send_result_notify(
        f"{base}/pay/result", payment_id=702, order_id="A-32"
    )
    assert status == 200 and verified_reply(body, "result")["pg_status"] == "ok"


async def test_a_result_signed_with_another_key_gets_a_signed_error_and_400(
    merchant: tuple[Merchant, str],
) -> None:
    shop, base = merchant
    impostor = SandboxGateway(merchant_id=1234, secret_key="not-the-merchant-key")
    status, body = await impostor.send_result_notify(
        f"{base}/pay/result", payment_id=703, order_id="A-33"
    )
    assert status == 400
    assert verified_reply(body, "result")["pg_status"] == "error"
    assert not shop.results


async def test_url_override_for_apps_behind_a_proxy(
    merchant: tuple[Merchant, str], gateway: SandboxGateway
) -> None:
    shop, base = merchant
    # Delivered to /internal/v2/result, signed with "result": matches the public URL.
    status, body = await gateway.send_result_notify(
        f"{base}/internal/v2/result", payment_id=704, order_id="A-34"
    )
    assert status == 200 and verified_reply(body, "result")["pg_status"] == "ok"
    # Delivered to /internal/cb-7, signed with "cb-7": the wrong script name.
    status, body = await gateway.send_result_notify(
        f"{base}/internal/cb-7", payment_id=705, order_id="A-35"
    )
    assert status == 400 and verified_reply(body, "result")["pg_status"] == "error"
    assert [n.payment_id for n in shop.results] == [704]


async def test_check_request(merchant: tuple[Merchant, str], gateway: SandboxGateway) -> None:
    shop, base = merchant
    status, body = await gateway.send_check(f"{base}/pay/check", payment_id=800, order_id="A-40")
    assert status == 200 and verified_reply(body, "check")["pg_status"] == "ok"
    status, body = await gateway.send_check(f"{base}/pay/check", payment_id=801, order_id="B-41")
    reply = verified_reply(body, "check")
    assert (reply["pg_status"], reply["pg_description"]) == ("rejected", "Unknown order")
    assert [c.payment_id for c in shop.checks] == [800, 801]


async def test_check_request_with_a_wrong_script_name_is_refused(
    merchant: tuple[Merchant, str], gateway: SandboxGateway
) -> None:
    shop, base = merchant
    status, body = await gateway.send_check(f"{base}/pay/result", payment_id=802, order_id="A-42")
    assert status == 400 and verified_reply(body, "result")["pg_status"] == "error"
    assert not shop.results and not shop.checks


# --- body size limit -----------------------------------------------------------------


async def test_an_oversized_result_body_is_refused_with_413(
    merchant: tuple[Merchant, str], gateway: SandboxGateway
) -> None:
    shop, base = merchant
    status, body = await gateway.send_result_notify(
        f"{base}/pay/result",
        payment_id=900,
        order_id="A-50",
        params={"blob": "x" * DEFAULT_MAX_BODY_BYTES},
    )
    assert status == 413 and verified_reply(body, "result")["pg_status"] == "error"
    assert not shop.results


async def test_the_limit_holds_with_and_without_content_length(
    merchant: tuple[Merchant, str],
) -> None:
    _, base = merchant
    url = f"{base}/pay/raw"
    pairs = signed_pairs(url, [("pg_order_id", "A-1"), ("pg_payment_id", "1")])
    body, content_type = render_multipart([*pairs[:-1], ("pad", "p" * RAW_LIMIT), pairs[-1]])
    status, reply, _ = await post(url, body, content_type)
    assert (status, json.loads(reply)) == (400, {"error": "CallbackBodyTooLargeError"})

    async def chunked() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    status, reply, _ = await post(url, chunked, content_type)
    assert (status, json.loads(reply)) == (400, {"error": "CallbackBodyTooLargeError"})
    assert issubclass(CallbackBodyTooLargeError, fp.ValidationError)

    small, small_type = render_multipart(pairs)
    status, reply, _ = await post(url, small, small_type)
    assert status == 200 and json.loads(reply)["payment"] == 1


# --- wire formats and bad input ------------------------------------------------------


async def test_urlencoded_post_keeps_duplicates_and_decodes_utf8(
    merchant: tuple[Merchant, str],
) -> None:
    _, base = merchant
    url = f"{base}/pay/raw"
    pairs = signed_pairs(
        url, [("pg_order_id", "A-1"), ("pg_payment_id", "2"), ("город", "Шымкент")]
    )
    form = "application/x-www-form-urlencoded"
    status, reply, _ = await post(url, urlencode(pairs).encode(), form)
    assert status == 200 and json.loads(reply)["params"] == {"город": "Шымкент"}
    duplicated = urlencode([pairs[2], *pairs]).encode()
    status, reply, _ = await post(url, duplicated, form)
    assert json.loads(reply) == {"error": "SignatureVerificationError"}
    status, reply, _ = await post(url, b"pg_order_id=%FF", form)
    assert json.loads(reply) == {"error": "ValidationError"}


async def test_multipart_from_aiohttp_formdata_with_cyrillic_and_quoted_names(
    merchant: tuple[Merchant, str],
) -> None:
    _, base = merchant
    url = f"{base}/pay/raw"
    pairs = signed_pairs(
        url, [("pg_order_id", "A-1"), ("pg_payment_id", "3"), ("город", "Алматы"), ('a"b', "q")]
    )
    form = aiohttp.FormData(default_to_multipart=True, quote_fields=False)
    for name, value in pairs:
        form.add_field(name, value)
    async with aiohttp.ClientSession() as session, session.post(url, data=form) as resp:
        assert resp.status == 200
        assert (await resp.json())["params"] == {"город": "Алматы", 'a"b': "q"}


async def test_multipart_rfc5987_names_preamble_and_epilogue(
    merchant: tuple[Merchant, str],
) -> None:
    _, base = merchant
    url = f"{base}/pay/raw"
    pairs = signed_pairs(url, [("pg_order_id", "A-1"), ("pg_payment_id", "4"), ("город", "Тараз")])
    parts = [b"preamble\r\n"]
    for name, value in pairs:
        disposition = (
            f"name*=utf-8''{quote(name)}" if not name.isascii() else f'name="{name}"'
        ).encode()
        parts.append(
            b"--XyZ \r\nContent-Disposition: form-data; " + disposition + b"\r\n\r\n"
            + value.encode() + b"\r\n"
        )  # fmt: skip
    body = b"".join(parts) + b"--XyZ--\r\nepilogue"
    status, reply, _ = await post(url, body, 'multipart/form-data; boundary="XyZ"')
    assert status == 200, reply
    assert json.loads(reply)["params"] == {"город": "Тараз"}


MULTIPART_B = "multipart/form-data; boundary=B"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'--B\r\nContent-Disposition: form-data; name="pg_order_id"\r\n\r\nA-1', MULTIPART_B),
        (b"--B\r\nContent-Disposition: form-data\r\n\r\nA-1\r\n--B--", MULTIPART_B),
        (b"no boundary here", MULTIPART_B),
        (b"x", "multipart/form-data"),
        (b"{}", "application/json"),
        (b"<request><pg_order_id>1</request>", "text/xml"),
    ],
)  # fmt: skip
async def test_malformed_bodies_are_validation_errors(
    merchant: tuple[Merchant, str], body: bytes, content_type: str
) -> None:
    _, base = merchant
    status, reply, _ = await post(f"{base}/pay/raw", body, content_type)
    assert (status, json.loads(reply)) == (400, {"error": "ValidationError"})


async def test_a_non_numeric_payment_id_with_a_valid_signature(
    merchant: tuple[Merchant, str],
) -> None:
    shop, base = merchant
    for path, script in (("/pay/raw", None), ("/pay/success", None), ("/pay/result", "result")):
        url = base + path
        pairs = signed_pairs(
            url,
            [*RESULT_BASE, ("pg_payment_id", "12ab")],
        )
        body, content_type = render_multipart(pairs)
        status, reply, _ = await post(url, body, content_type)
        assert status == 400
        if path == "/pay/raw":
            assert json.loads(reply) == {"error": "ValidationError"}
        if script:
            assert verified_reply(reply, script)["pg_status"] == "error"
    assert not shop.redirects and not shop.results


async def test_merchant_parameters_that_look_like_pg_fields(
    merchant: tuple[Merchant, str],
) -> None:
    _, base = merchant
    url = f"{base}/pay/raw"
    pairs = signed_pairs(
        url, [("pg_order_id", "A-1"), ("pg_payment_id", "5"), ("pg_shop_ref", "r-1"), ("ref", "r")]
    )
    body, content_type = render_multipart(pairs)
    status, reply, _ = await post(url, body, content_type)
    assert status == 200
    assert json.loads(reply)["params"] == {"ref": "r"}
    assert json.loads(reply)["extra"] == {"pg_shop_ref": "r-1"}
    forged = render_multipart([(k, "r-2" if k == "pg_shop_ref" else v) for k, v in pairs])
    status, reply, _ = await post(url, *forged)
    assert json.loads(reply) == {"error": "SignatureVerificationError"}


async def test_xml_mode_result_as_pg_xml_field_and_raw_body(
    merchant: tuple[Merchant, str],
) -> None:
    _, base = merchant
    url = f"{base}/pay/raw-result"
    fields = signed_pairs(
        url,
        [
            ("pg_order_id", "A-1"),
            ("pg_payment_id", "6"),
            ("pg_amount", "12.30"),
            ("pg_currency", "KZT"),
            ("pg_result", "1"),
            ("pg_description", "Заказ"),
        ],
    )
    document = (
        '<?xml version="1.0" encoding="utf-8"?><request>'
        + "".join(f"<{k}>{v}</{k}>" for k, v in fields)
        + "</request>"
    ).encode()
    for body, content_type in (
        render_multipart([("pg_xml", document.decode())]),
        (urlencode([("pg_xml", document.decode())]).encode(), "application/x-www-form-urlencoded"),
        (document, "text/xml; charset=utf-8"),
        (document, "application/xml"),
        (document, None),
    ):
        status, reply, _ = await post(url, body, content_type)
        assert (status, json.loads(reply)) == (200, {"payment": 6, "amount": "12.30"})
    tampered = document.replace(b"12.30", b"1.30")
    status, reply, _ = await post(url, tampered, "text/xml")
    assert json.loads(reply) == {"error": "SignatureVerificationError"}


def test_a_handler_with_a_trailing_slash_url_fails_at_set_up() -> None:
    async def on_result(_notify: ResultNotify) -> CallbackAnswer:
        return "ok"

    async def on_redirect(_request: web.Request, _back: RedirectBack) -> web.StreamResponse:
        return web.Response()

    with pytest.raises(fp.ConfigurationError):
        result_notify_handler(SIGNER, on_result, url="https://shop.example/pay/result/")
    with pytest.raises(fp.ConfigurationError):
        redirect_handler(SIGNER, on_redirect, url="https://shop.example/pay/")
