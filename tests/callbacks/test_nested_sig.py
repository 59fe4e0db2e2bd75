"""A ``pg_sig`` below the top level: the signature skips it and all it holds, so it is refused.

The reference flattening (``makeFlatParamsArray`` / ``makeFlatParamsXML``, and our
``flatten``) skips every ``pg_sig`` key at any depth with its subtree. Anyone may add
``order_ref[pg_sig]=B-999`` to a captured message and its md5 still verifies; before
this fix the unsigned value landed in ``merchant_params``. Now such a message is a
SignatureVerificationError and nothing of it is read: form, XML body and ``pg_xml``,
result, check and redirect, over loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

import freedompay_async as fp
from freedompay_async._wire.fields import FieldValue, from_form_pairs
from freedompay_async._wire.multipart import render_multipart
from freedompay_async._wire.xml import render_response, sign_response_fields
from freedompay_async.callbacks import (
    CallbackAnswer,
    CheckRequest,
    RedirectBack,
    ResultNotify,
    check_request_handler,
    redirect_handler,
    result_notify_handler,
    verify_check_request,
    verify_redirect,
    verify_result_notify,
)
from freedompay_async.sandbox import SandboxGateway

from ..helpers import MERCHANT, SECRET, SIGNER, serve

Pairs = list[tuple[str, str]]

RESULT: Pairs = [
    ("pg_order_id", "A-1"),
    ("pg_payment_id", "7001"),
    ("pg_amount", "100"),
    ("pg_currency", "KZT"),
    ("pg_result", "1"),
    ("order_ref", "A-1"),
    ("pg_salt", "s4lt"),
]
CHECK: Pairs = [(k, v) for k, v in RESULT if k != "pg_result"]
REDIRECT: Pairs = [("pg_order_id", "A-1"), ("pg_payment_id", "7001"), ("pg_salt", "s4lt")]

#: Unsigned pairs an attacker appends: each lands under a nested pg_sig.
SMUGGLED = [
    pytest.param([("order_ref[pg_sig]", "B-999")], id="param"),
    pytest.param([("x[pg_sig][order]", "B-999"), ("x[pg_sig][paid]", "1")], id="subtree"),
    pytest.param([("items[0][pg_sig]", "1")], id="list-item"),
    pytest.param([("pg_extra[pg_sig]", "1")], id="pg-group"),
]


def genuine(pairs: Pairs, script: str) -> Pairs:
    return [*pairs, ("pg_sig", SIGNER.sign(script, pairs))]


@pytest.mark.parametrize("smuggled", SMUGGLED)
def test_smuggled_pairs_pass_the_md5_but_the_message_is_refused(smuggled: Pairs) -> None:
    for verify, pairs, script in (
        (verify_result_notify, RESULT, "result"),
        (verify_check_request, CHECK, "check"),
        (verify_redirect, REDIRECT, "success"),
    ):
        received = [*genuine(pairs, script), *smuggled]
        tree = from_form_pairs(received)
        assert SIGNER.verify(script, tree, dict(received)["pg_sig"])  # the danger is real
        with pytest.raises(fp.SignatureVerificationError, match="pg_sig inside a group"):
            verify(script, received, SIGNER)  # type: ignore[operator]


def test_a_nested_pg_sig_is_refused_even_where_unsigned_failures_are_accepted() -> None:
    failure = [("pg_order_id", "A-1"), ("pg_error_code", "1000"), ("order_ref[pg_sig]", "1")]
    with pytest.raises(fp.SignatureVerificationError):
        verify_redirect("failure", failure, SIGNER, success=False, allow_unsigned_failure=True)
    # The same message without the nested key is accepted, as an untrusted failure.
    back = verify_redirect(
        "failure", failure[:-1], SIGNER, success=False, allow_unsigned_failure=True
    )
    assert not back.signed and not back.succeeded


def test_a_top_level_pg_sig_that_is_a_group_is_refused() -> None:
    received = [*genuine(RESULT, "result")[:-1], ("pg_sig[0]", SIGNER.sign("result", RESULT))]
    with pytest.raises(fp.SignatureVerificationError, match="group"):
        verify_result_notify("result", received, SIGNER)


def xml_with_nested_sig(pairs: Pairs, script: str) -> bytes:
    fields: list[tuple[str, FieldValue]] = [*pairs[:-1], ("order_ref", [("pg_sig", "B-999")])]
    signed = sign_response_fields(script, SIGNER, fields, salt=pairs[-1][1])
    return render_response(signed)


def test_xml_mode_refuses_a_nested_pg_sig_too() -> None:
    body = xml_with_nested_sig(RESULT, "result")
    with pytest.raises(fp.SignatureVerificationError):
        verify_result_notify("result", body, SIGNER)
    with pytest.raises(fp.SignatureVerificationError):
        verify_result_notify("result", [("pg_xml", body.decode())], SIGNER)
    with pytest.raises(fp.SignatureVerificationError):
        verify_check_request("check", xml_with_nested_sig(CHECK, "check"), SIGNER)


# --- over loopback -------------------------------------------------------------------


class Calls:
    def __init__(self) -> None:
        self.seen: list[object] = []

    async def on_value(self, value: ResultNotify | CheckRequest) -> CallbackAnswer:
        self.seen.append(value)
        return "ok"

    async def on_redirect(self, _request: web.Request, back: RedirectBack) -> web.StreamResponse:
        self.seen.append(back)
        return web.Response(text="thanks")


@pytest.fixture
async def shop() -> AsyncIterator[tuple[Calls, str]]:
    calls = Calls()
    app = web.Application()
    app.router.add_post("/pay/result", result_notify_handler(SIGNER, calls.on_value))
    app.router.add_post("/pay/check", check_request_handler(SIGNER, calls.on_value))
    for path, success in (("/pay/success", True), ("/pay/failure", False)):
        handler = redirect_handler(
            SIGNER, calls.on_redirect, success=success, allow_unsigned_failure=True
        )
        app.router.add_get(path, handler)
        app.router.add_post(path, handler)
    async with serve(app) as base:
        yield calls, base


async def post(url: str, body: bytes, content_type: str) -> int:
    async with (
        aiohttp.ClientSession() as client,
        client.post(url, data=body, headers={"Content-Type": content_type}) as resp,
    ):
        return resp.status


@pytest.mark.parametrize("smuggled", SMUGGLED)
async def test_handlers_refuse_a_captured_callback_with_smuggled_pairs(
    shop: tuple[Calls, str], smuggled: Pairs
) -> None:
    calls, base = shop
    for path, pairs in (("result", RESULT), ("check", CHECK)):
        body, content_type = render_multipart([*genuine(pairs, path), *smuggled])
        assert await post(f"{base}/pay/{path}", body, content_type) == 400
    assert calls.seen == []
    # The same body without the smuggled pairs is taken: the refusal is about them.
    body, content_type = render_multipart(genuine(RESULT, "result"))
    assert await post(f"{base}/pay/result", body, content_type) == 200
    assert len(calls.seen) == 1


async def test_handlers_refuse_xml_callbacks_with_a_nested_pg_sig(shop: tuple[Calls, str]) -> None:
    calls, base = shop
    body = xml_with_nested_sig(RESULT, "result")
    assert await post(f"{base}/pay/result", body, "text/xml") == 400
    form, content_type = render_multipart([("pg_xml", body.decode())])
    assert await post(f"{base}/pay/result", form, content_type) == 400
    assert calls.seen == []


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_redirects_from_the_sandbox_with_a_nested_pg_sig_are_refused(
    shop: tuple[Calls, str], method: str
) -> None:
    calls, base = shop
    gateway = SandboxGateway(MERCHANT, SECRET)
    # Added to a genuine signed redirect in flight ...
    status, _ = await gateway.send_redirect(
        f"{base}/pay/success",
        payment_id=7001,
        order_id="A-1",
        method=method,
        tamper=lambda pairs: [*pairs, ("order_ref[pg_sig]", "B-999")],
    )
    assert status == 400
    # ... or sent by the gateway itself, which signs over the tree as PHP does.
    status, _ = await gateway.send_redirect(
        f"{base}/pay/success",
        payment_id=7001,
        order_id="A-1",
        method=method,
        params={"order_ref[pg_sig]": "B-999"},
    )
    assert status == 400
    # An unsigned failure redirect, accepted on this route, is refused with one as well.
    status, _ = await gateway.send_redirect(
        f"{base}/pay/failure",
        payment_id=7001,
        order_id="A-1",
        method=method,
        success=False,
        signed=False,
        params={"x[pg_sig]": "1"},
    )
    assert status == 400
    assert calls.seen == []
