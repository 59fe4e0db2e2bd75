"""What the merchant side trusts (issue #10, items 6 and 8), over loopback where it matters.

The md5 covers the values in the sorted order of their names, not the names: a captured
message with fields renamed so that order holds keeps its signature. These tests show
the forgeries really verify, and what refuses the values built from them: required
fields and their shapes, strict mode, the signed script name. Confirmation by status
(the gateway's own word) is tested in ``test_confirm``.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web

import freedompay_async as fp
from freedompay_async._wire.multipart import render_multipart
from freedompay_async._wire.xml import parse_xml_fields
from freedompay_async.callbacks import (
    CallbackAnswer,
    CheckRequest,
    QueryFreeAccessLogger,
    ResultNotify,
    check_request_handler,
    redirect_handler,
    result_notify_handler,
    verify_check_request,
    verify_redirect,
    verify_result_notify,
)

from ..client.test_secret_hygiene import CANARY, leaks

SIGNER = fp.Md5Signer("trust-secret-4451")
RESULT_URL = "https://shop.example/pay/result"
CHECK_URL = "https://shop.example/pay/check"
SUCCESS_URL = "https://shop.example/pay/back"

Pairs = list[tuple[str, str]]


def sign(pairs: Pairs, url: str) -> Pairs:
    return [*pairs, ("pg_sig", SIGNER.sign(fp.script_name(url), pairs))]


def rename(pairs: Pairs, renames: dict[str, str]) -> Pairs:
    return [(renames.get(name, name), value) for name, value in pairs]


def verifies(pairs: Pairs, url: str) -> bool:
    signature = dict(pairs)["pg_sig"]
    return SIGNER.verify(fp.script_name(url), pairs, signature)


FAILED_PAYMENT = sign(
    [
        ("pg_amount", "1500"),
        ("pg_currency", "KZT"),
        ("pg_order_id", "A-1"),
        ("pg_payment_id", "7001"),
        ("pg_result", "0"),
        ("pg_salt", "s4lt-from-gateway"),
        ("pg_testing_mode", "1"),
    ],
    RESULT_URL,
)


# --- 6. renamed-field forgeries ------------------------------------------------------


def test_a_failed_payment_renamed_into_a_success_verifies_but_is_refused() -> None:
    # Values in sorted-name order stay [..., "0", salt, "1"]; the names now say paid.
    forged = rename(
        FAILED_PAYMENT, {"pg_result": "pg_r0", "pg_salt": "pg_r1", "pg_testing_mode": "pg_result"}
    )
    assert verifies(forged, RESULT_URL)  # the md5 does not see names
    assert verify_result_notify(RESULT_URL, FAILED_PAYMENT, SIGNER).result == 0
    # Open world: the renamed fields would be extra, but the salt left its name.
    with pytest.raises(fp.ValidationError, match="no pg_salt"):
        verify_result_notify(RESULT_URL, forged, SIGNER)
    with pytest.raises(fp.ValidationError, match="unknown field 'pg_r"):
        verify_result_notify(RESULT_URL, forged, SIGNER, strict=True)


def test_an_unknown_field_is_kept_and_in_strict_mode_accepted_only_by_name() -> None:
    pairs = sign([*FAILED_PAYMENT[:-1], ("pg_reserved", "x")], RESULT_URL)
    assert verify_result_notify(RESULT_URL, pairs, SIGNER).extra == {"pg_reserved": "x"}
    with pytest.raises(fp.ValidationError, match="pg_reserved"):
        verify_result_notify(RESULT_URL, pairs, SIGNER, strict=True)
    notify = verify_result_notify(
        RESULT_URL, pairs, SIGNER, strict=True, allow_fields=["pg_reserved"]
    )
    assert notify.extra == {"pg_reserved": "x"}
    for strict in (False, True):
        with pytest.raises(fp.ValidationError, match="pg_ field names"):
            verify_result_notify(RESULT_URL, pairs, SIGNER, strict=strict, allow_fields=["x"])


def test_a_notification_without_its_salt_is_refused() -> None:
    pairs = sign([(k, v) for k, v in FAILED_PAYMENT[:-1] if k != "pg_salt"], RESULT_URL)
    with pytest.raises(fp.ValidationError, match="pg_salt"):
        verify_result_notify(RESULT_URL, pairs, SIGNER)


@pytest.mark.parametrize(
    ("name", "value"),
    [("pg_result", "7"), ("pg_currency", "s4lt-from-gateway"), ("pg_ps_currency", "12")],
)
def test_known_fields_holding_the_wrong_shape_are_refused(name: str, value: str) -> None:
    pairs = [(k, v) for k, v in FAILED_PAYMENT[:-1] if k != name]
    pairs = sign(sorted([*pairs, (name, value)]), RESULT_URL)
    with pytest.raises(fp.ValidationError, match=name):
        verify_result_notify(RESULT_URL, pairs, SIGNER)


FAILURE_REDIRECT = sign(
    [
        ("pg_error_code", "1000"),
        ("pg_error_description", "declined"),
        ("pg_order_id", "A-1"),
        ("pg_payment_id", "7001"),
        ("pg_salt", "s"),
    ],
    SUCCESS_URL,
)


def test_a_failure_redirect_with_its_error_code_renamed_away() -> None:
    forged = rename(FAILURE_REDIRECT, {"pg_error_code": "pg_e", "pg_error_description": "pg_err"})
    assert verifies(forged, SUCCESS_URL)
    assert not verify_redirect(SUCCESS_URL, FAILURE_REDIRECT, SIGNER).succeeded
    # Strict mode refuses the renamed names ...
    with pytest.raises(fp.ValidationError, match="unknown field 'pg_e'"):
        verify_redirect(SUCCESS_URL, forged, SIGNER, strict=True)
    # ... the open world cannot tell them from new fields, so it rests on the script
    # name, which is signed: a failure redirect signed for the failure URL never
    # verifies at a success URL with another last segment, and the failure URL's
    # handler (success=False) never reads a success.
    failure_url = "https://shop.example/pay/failed"
    at_failure = rename(sign(FAILURE_REDIRECT[:-1], failure_url), {"pg_error_code": "pg_e"})
    with pytest.raises(fp.SignatureVerificationError):
        verify_redirect(SUCCESS_URL, at_failure, SIGNER, success=True)
    assert not verify_redirect(failure_url, at_failure, SIGNER, success=False).succeeded


def test_a_failure_redirect_that_kept_its_description_is_no_success() -> None:
    forged = rename(FAILURE_REDIRECT, {"pg_error_code": "code"})  # into a merchant parameter
    assert verifies(forged, SUCCESS_URL)
    back = verify_redirect(SUCCESS_URL, forged, SIGNER)
    assert not back.succeeded and back.error_description == "declined"


def test_a_check_request_keeps_unknown_fields_and_strict_mode_refuses_them() -> None:
    base = [
        ("pg_amount", "10"),
        ("pg_currency", "KZT"),
        ("pg_order_id", "A-1"),
        ("pg_payment_id", "5"),
        ("pg_salt", "s"),
    ]
    check = verify_check_request(
        CHECK_URL, sign([*base, ("pg_testing_mode", "1")], CHECK_URL), SIGNER
    )
    assert check.extra == {"pg_testing_mode": "1"}
    with_zzz = sign([*base, ("pg_testing_mode", "1"), ("pg_zzz", "1")], CHECK_URL)
    check = verify_check_request(CHECK_URL, with_zzz, SIGNER)
    assert check.extra == {"pg_testing_mode": "1", "pg_zzz": "1"}
    # Strict: the result notification's documented fields pass, other names do not.
    with pytest.raises(fp.ValidationError, match="pg_zzz"):
        verify_check_request(CHECK_URL, with_zzz, SIGNER, strict=True)


def test_a_refused_callback_leaves_no_key_in_any_frame() -> None:
    signer = fp.Md5Signer(CANARY)
    genuine = [(k, v) for k, v in FAILED_PAYMENT if k != "pg_sig"]
    genuine.append(("pg_sig", signer.sign("result", genuine)))
    forged = rename(genuine, {"pg_result": "pg_r0"})
    tampered = [(k, "1" if k == "pg_result" else v) for k, v in genuine]
    for fields in (forged, tampered, [*genuine[:-1], ("pg_x", "\udc80"), genuine[-1]]):
        with pytest.raises(fp.FreedomPayError) as info:
            verify_result_notify(RESULT_URL, fields, signer)
        assert leaks(info.value) == []
    with pytest.raises(fp.ValidationError):
        fp.callback_reply(RESULT_URL, signer, "ok", 5)  # type: ignore[arg-type]


# --- 8. error codes are text; answers echo the salt; no queries in the access log --


def test_a_signed_text_error_code_is_a_failure_not_a_refusal() -> None:
    pairs = sign(
        [("pg_error_code", "E1000"), ("pg_order_id", "A-1"), ("pg_salt", "s")], SUCCESS_URL
    )
    back = verify_redirect(SUCCESS_URL, pairs, SIGNER)
    assert back.error_code == "E1000" and not back.succeeded and back.signed


async def _ok(_value: ResultNotify | CheckRequest) -> CallbackAnswer:
    return "ok"


@pytest.mark.parametrize("path", ["/pay/result", "/pay/check"])
async def test_ready_handlers_echo_the_request_salt(path: str) -> None:
    app = web.Application()
    app.router.add_post("/pay/result", result_notify_handler(SIGNER, _ok))
    app.router.add_post("/pay/check", check_request_handler(SIGNER, _ok))
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
        pairs = [(k, v) for k, v in FAILED_PAYMENT[:-1] if k not in ("pg_result",)]
        if path == "/pay/result":
            pairs = FAILED_PAYMENT[:-1]
        body, content_type = render_multipart(sign(pairs, url))
        async with (
            aiohttp.ClientSession() as client,
            client.post(url, data=body, headers={"Content-Type": content_type}) as resp,
        ):
            assert resp.status == 200
            reply = await resp.read()
    finally:
        await runner.cleanup()
    _root, fields = parse_xml_fields(reply)
    answer = dict(fields)
    assert answer["pg_status"] == "ok" and answer["pg_salt"] == "s4lt-from-gateway"
    script = path.rsplit("/", 1)[1]
    assert SIGNER.verify(script, fields, str(answer["pg_sig"]))


async def test_the_query_free_access_logger_keeps_redirect_queries_out_of_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def page(_request: web.Request, _back: object) -> web.StreamResponse:
        return web.Response(text="thanks")

    app = web.Application()
    app.router.add_get("/pay/back", redirect_handler(SIGNER, page))
    runner = web.AppRunner(app, handle_signals=False, access_log_class=QueryFreeAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    try:
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/pay/back"
        pairs = sign([("pg_order_id", "A-1"), ("pg_payment_id", "7001"), ("pg_salt", "s")], base)
        async with (
            aiohttp.ClientSession() as client,
            client.get(f"{base}?{urlencode(pairs)}") as resp,
        ):
            assert resp.status == 200
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any('"GET /pay/back" 200' in line for line in lines)
    assert not any("pg_sig" in line or "7001" in line for line in lines)
