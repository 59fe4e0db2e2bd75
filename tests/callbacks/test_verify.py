"""Verifying redirects and result/check callbacks, and the signed reply (no HTTP)."""

from __future__ import annotations

from decimal import Decimal
from types import MappingProxyType
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import freedompay_async as fp
from freedompay_async._wire.fields import FieldValue
from freedompay_async._wire.xml import parse_xml_fields
from freedompay_async.callbacks import (
    CallbackBodyTooLargeError,
    CheckRequest,
    RedirectBack,
    ReplyStatus,
    ResultNotify,
    callback_reply,
    callback_script_name,
    verify_check_request,
    verify_redirect,
    verify_result_notify,
)
from freedompay_async.callbacks._answer import reply_parts

SECRET = "callback-secret-Zq81"
SIGNER = fp.Md5Signer(SECRET)
SUCCESS_URL = "https://shop.example/pay/success"
FAILURE_URL = "https://shop.example/pay/failure"
RESULT_URL = "https://shop.example/pay/result"
CHECK_URL = "https://shop.example/pay/check"

Pairs = list[tuple[str, str]]


def sign(pairs: Pairs, url: str, signer: fp.Signer = SIGNER, salt: str = "s4lt") -> Pairs:
    """What the gateway sends: the fields, pg_salt, then pg_sig over all of them."""
    fields = [*pairs, ("pg_salt", salt)]
    return [*fields, ("pg_sig", signer.sign(fp.script_name(url), fields))]


def redirect_pairs(**extra: str) -> Pairs:
    return [("pg_order_id", "A-1"), ("pg_payment_id", "7001"), *extra.items()]


def result_pairs() -> Pairs:
    return [
        ("pg_order_id", "A-1"),
        ("pg_payment_id", "7001"),
        ("pg_amount", "1500.50"),
        ("pg_currency", "KZT"),
        ("pg_net_amount", "1480.00"),
        ("pg_ps_amount", "1500.50"),
        ("pg_ps_full_amount", "1500.50"),
        ("pg_ps_currency", "KZT"),
        ("pg_description", "Заказ №1"),
        ("pg_result", "1"),
        ("pg_payment_date", "2024-10-07 12:30:05"),
        ("pg_can_reject", "1"),
        ("pg_user_phone", "77001234567"),
        ("pg_user_contact_email", "buyer@example.com"),
        ("pg_testing_mode", "1"),
        ("pg_captured", "0"),
        ("pg_card_id", "c-1"),
        ("pg_card_token", "tok-SENSITIVE"),
        ("pg_card_pan", "4405-62XX-XXXX-1448"),
        ("pg_discount_percent", "0"),
        ("pg_discount_amount", "0"),
        ("pg_payment_method", "bankcard"),
        ("pg_card_exp", "12/29"),
        ("pg_card_owner", "IVAN IVANOV"),
        ("pg_card_brand", "VI"),
        ("cart", "42"),
    ]


def check_pairs() -> Pairs:
    return [
        ("pg_order_id", "A-1"),
        ("pg_payment_id", "7001"),
        ("pg_amount", "100"),
        ("pg_currency", "KZT"),
        ("pg_ps_amount", "100"),
        ("pg_ps_currency", "KZT"),
        ("pg_ps_full_amount", "100"),
        ("lang", "ru"),
    ]


def xml_document(fields: list[tuple[str, FieldValue]], root: str = "request") -> bytes:
    from xml.sax.saxutils import escape

    def render(items: list[tuple[str, FieldValue]]) -> str:
        return "".join(
            f"<{k}>{escape(v) if isinstance(v, str) else render(list(v))}</{k}>" for k, v in items
        )

    return f'<?xml version="1.0" encoding="utf-8"?><{root}>{render(fields)}</{root}>'.encode()


# --- the signed reply ----------------------------------------------------------------


def test_reply_matches_test_vector_v6() -> None:
    body = callback_reply("result", fp.Md5Signer("secret"), "ok", "Order paid", salt="abc123")
    assert body == (
        b'<?xml version="1.0" encoding="utf-8"?><response><pg_status>ok</pg_status>'
        b"<pg_description>Order paid</pg_description><pg_salt>abc123</pg_salt>"
        b"<pg_sig>102a8d68d1a3464b9ff00f93b24f2a21</pg_sig></response>"
    )


def test_reply_takes_the_script_name_from_a_full_url() -> None:
    by_url = callback_reply(
        "https://shop.example/a/result?x=1#f", fp.Md5Signer("secret"), ReplyStatus.OK,
        "Order paid", salt="abc123",
    )  # fmt: skip
    assert b"102a8d68d1a3464b9ff00f93b24f2a21" in by_url


def test_reply_salt_is_fresh_and_random_by_default() -> None:
    salts = set()
    for _ in range(5):
        _root, fields = parse_xml_fields(callback_reply(RESULT_URL, SIGNER, "ok"))
        salts.add(dict(fields)["pg_salt"])
    assert len(salts) == 5
    assert all(isinstance(s, str) and s.isalnum() and len(s) >= 16 for s in salts)


@pytest.mark.parametrize("status", [*ReplyStatus, "ok", "rejected", "error"])
def test_reply_verifies_with_the_callback_script_and_escapes_values(status: ReplyStatus) -> None:
    description = "Отказ: <сумма> & \"лимит\" '1'\r\n — вторая строка"
    body = callback_reply(RESULT_URL, SIGNER, status, description)
    assert b"<\xd0" not in body and b"&lt;" in body and b"&amp;" in body and b"&#13;" in body
    root, fields = parse_xml_fields(body)
    assert root == "response"
    values = dict(fields)
    assert values["pg_status"] == str(status)
    assert values["pg_description"] == description
    assert SIGNER.verify("result", fields, str(values["pg_sig"]))
    assert not SIGNER.verify("check", fields, str(values["pg_sig"]))


def test_reply_refuses_bad_status_bad_characters_and_trailing_slash() -> None:
    with pytest.raises(fp.ValidationError):
        callback_reply(RESULT_URL, SIGNER, "accepted")  # type: ignore[arg-type]
    with pytest.raises(fp.ValidationError):
        callback_reply(RESULT_URL, SIGNER, "ok", "bell\x07")
    with pytest.raises(fp.ValidationError):
        callback_reply(RESULT_URL, SIGNER, "ok", salt="")
    with pytest.raises(fp.ConfigurationError):
        callback_reply("https://shop.example/pay/result/", SIGNER, "ok")


def test_reply_parts_accepts_statuses_and_tuples_only() -> None:
    assert reply_parts("ok") == (ReplyStatus.OK, "")
    assert reply_parts((ReplyStatus.REJECTED, "Нет")) == (ReplyStatus.REJECTED, "Нет")
    for bad in ("yes", ("ok",), ("ok", 3), None):
        with pytest.raises(fp.ValidationError):
            reply_parts(bad)  # type: ignore[arg-type]


@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"])), st.booleans())
def test_property_any_reply_round_trips_and_verifies(description: str, cyrillic: bool) -> None:
    # Our parser (xmltodict) strips surrounding whitespace; the gateway's need not.
    text = ("Ошибка " if cyrillic else "") + description
    assume(text == text.strip())
    _root, fields = parse_xml_fields(callback_reply(RESULT_URL, SIGNER, "rejected", text))
    values = dict(fields)
    assert values["pg_description"] == text
    assert SIGNER.verify("result", fields, str(values["pg_sig"]))


# --- script name ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "script"),
    [
        ("https://shop.example/pay/result", "result"),
        ("https://shop.example/pay/result.php?a=1&b=2", "result.php"),
        ("/pay/check#frag", "check"),
        ("success", "success"),
    ],
)
def test_callback_script_name(url: str, script: str) -> None:
    assert callback_script_name(url) == script


@pytest.mark.parametrize(
    "url", ["https://shop.example/pay/", "https://shop.example/pay/?x=1", "https://shop.example/"]
)
def test_a_trailing_slash_url_is_a_configuration_error(url: str) -> None:
    pairs = sign(redirect_pairs(), url)
    with pytest.raises(fp.ConfigurationError, match=r"ends in '/'"):
        verify_redirect(url, pairs, SIGNER)
    with pytest.raises(fp.ConfigurationError):
        verify_result_notify(url, sign(result_pairs(), url), SIGNER)


def test_the_configuration_error_does_not_echo_the_query() -> None:
    with pytest.raises(fp.ConfigurationError) as info:
        verify_redirect("https://shop.example/pay/?token=hunter2", [], SIGNER)
    assert "hunter2" not in str(info.value)


# --- redirect back -------------------------------------------------------------------


def test_a_signed_success_redirect_verifies() -> None:
    pairs = sign(redirect_pairs(cart="42", lang="ru"), SUCCESS_URL)
    back = verify_redirect(SUCCESS_URL, pairs, SIGNER, success=True)
    assert back == RedirectBack(
        order_id="A-1",
        payment_id=7001,
        succeeded=True,
        signed=True,
        salt="s4lt",
        merchant_params={"cart": "42", "lang": "ru"},
    )
    assert back.error_code is None and back.error_description is None
    assert isinstance(back.merchant_params, MappingProxyType)
    with pytest.raises(TypeError):
        back.merchant_params["cart"] = "1"  # type: ignore[index]


def test_a_mapping_is_accepted_as_input() -> None:
    back = verify_redirect(SUCCESS_URL, dict(sign(redirect_pairs(), SUCCESS_URL)), SIGNER)
    assert back.payment_id == 7001 and back.succeeded


def test_an_uppercase_signature_verifies() -> None:
    pairs = sign(redirect_pairs(), SUCCESS_URL)
    lower = verify_redirect(SUCCESS_URL, pairs, SIGNER)
    pairs[-1] = ("pg_sig", pairs[-1][1].upper())
    upper = verify_redirect(SUCCESS_URL, pairs, SIGNER)
    assert upper == lower and upper.payment_id == 7001 and upper.order_id == "A-1"


def test_a_missing_signature_is_refused() -> None:
    pairs = [p for p in sign(redirect_pairs(), SUCCESS_URL) if p[0] != "pg_sig"]
    with pytest.raises(fp.SignatureVerificationError, match="not signed"):
        verify_redirect(SUCCESS_URL, pairs, SIGNER)


def test_a_wrong_signature_is_refused() -> None:
    pairs = sign(redirect_pairs(), SUCCESS_URL, signer=fp.Md5Signer("another-key"))
    with pytest.raises(fp.SignatureVerificationError, match="does not verify"):
        verify_redirect(SUCCESS_URL, pairs, SIGNER)


def test_a_signature_for_another_script_name_is_refused() -> None:
    pairs = sign(redirect_pairs(), SUCCESS_URL)
    with pytest.raises(fp.SignatureVerificationError, match="'failure'"):
        verify_redirect(FAILURE_URL, pairs, SIGNER)
    # The query never takes part in the script name.
    back = verify_redirect(SUCCESS_URL + "?utm=1", pairs, SIGNER)
    assert back == verify_redirect(SUCCESS_URL, pairs, SIGNER) and back.payment_id == 7001


@pytest.mark.parametrize("index", range(3))
def test_a_tampered_field_is_refused(index: int) -> None:
    pairs = sign(redirect_pairs(), SUCCESS_URL)
    name, value = pairs[index]
    pairs[index] = (name, value + "1")
    with pytest.raises(fp.SignatureVerificationError):
        verify_redirect(SUCCESS_URL, pairs, SIGNER)


def test_an_added_field_is_refused() -> None:
    pairs = sign(redirect_pairs(), SUCCESS_URL)
    with pytest.raises(fp.SignatureVerificationError):
        verify_redirect(SUCCESS_URL, [*pairs, ("coupon", "FREE")], SIGNER)


@pytest.mark.parametrize("name", ["pg_order_id", "pg_payment_id", "pg_salt"])
def test_a_duplicated_field_is_refused(name: str) -> None:
    pairs = sign(redirect_pairs(), SUCCESS_URL)
    duplicate = next(p for p in pairs if p[0] == name)
    with pytest.raises(fp.SignatureVerificationError):
        verify_redirect(SUCCESS_URL, [duplicate, *pairs], SIGNER)
    with pytest.raises(fp.SignatureVerificationError):
        verify_redirect(SUCCESS_URL, [*pairs, duplicate], SIGNER)


def test_a_duplicated_signature_is_refused() -> None:
    pairs = sign(redirect_pairs(), SUCCESS_URL)
    with pytest.raises(fp.SignatureVerificationError, match="more than one"):
        verify_redirect(SUCCESS_URL, [*pairs, pairs[-1]], SIGNER)


def test_a_duplicate_signed_by_the_sender_is_a_validation_error() -> None:
    # Both copies are under the signature: still never a half-parsed value.
    pairs = sign([*redirect_pairs(), ("pg_payment_id", "7002")], SUCCESS_URL)
    with pytest.raises(fp.ValidationError, match="more than once"):
        verify_redirect(SUCCESS_URL, pairs, SIGNER)


def test_cyrillic_values_verify() -> None:
    pairs = sign(redirect_pairs(comment="Оплата заказа №5 — спасибо", город="Алматы"), SUCCESS_URL)
    back = verify_redirect(SUCCESS_URL, pairs, SIGNER)
    assert back.merchant_params == {"comment": "Оплата заказа №5 — спасибо", "город": "Алматы"}


def test_merchant_parameters_that_look_like_pg_fields_stay_pg_fields() -> None:
    pairs = sign(redirect_pairs(pg_custom="x", pg_user_id="u1", note="n"), SUCCESS_URL)
    # Open world: unknown pg_ names land in extra, never in merchant_params.
    back = verify_redirect(SUCCESS_URL, pairs, SIGNER)
    assert back.merchant_params == {"note": "n"}
    assert back.extra == {"pg_custom": "x", "pg_user_id": "u1"}
    # Strict mode refuses them unless allowed by name (field names are unsigned).
    with pytest.raises(fp.ValidationError, match="pg_custom"):
        verify_redirect(SUCCESS_URL, pairs, SIGNER, strict=True, allow_fields=["pg_user_id"])
    back = verify_redirect(
        SUCCESS_URL, pairs, SIGNER, strict=True, allow_fields=["pg_custom", "pg_user_id"]
    )
    assert back.extra == {"pg_custom": "x", "pg_user_id": "u1"}
    # ...and they are signed like everything else.
    tampered = [(k, "y" if k == "pg_custom" else v) for k, v in pairs]
    with pytest.raises(fp.SignatureVerificationError):
        verify_redirect(SUCCESS_URL, tampered, SIGNER, allow_fields=["pg_custom", "pg_user_id"])


def test_bracket_merchant_parameters_are_signed_as_a_tree() -> None:
    tree: list[tuple[str, FieldValue]] = [
        ("pg_order_id", "A-1"),
        ("pg_payment_id", "7001"),
        ("items", [("0", [("sku", "X1"), ("qty", "2")]), ("1", [("sku", "Y2"), ("qty", "1")])]),
        ("pg_salt", "s"),
    ]
    signature = SIGNER.sign("success", tree)
    pairs = [
        ("pg_order_id", "A-1"),
        ("pg_payment_id", "7001"),
        ("items[0][sku]", "X1"),
        ("items[0][qty]", "2"),
        ("items[1][sku]", "Y2"),
        ("items[1][qty]", "1"),
        ("pg_salt", "s"),
        ("pg_sig", signature),
    ]
    back = verify_redirect(SUCCESS_URL, pairs, SIGNER)
    assert back.merchant_params["items[1][sku]"] == "Y2"
    assert len(back.merchant_params) == 4


@pytest.mark.parametrize("payment_id", ["12ab", "", " ", "-5", "0", "٣", "1" * 25])
def test_a_bad_payment_id_after_a_valid_signature_is_a_validation_error(payment_id: str) -> None:
    pairs = sign([("pg_order_id", "A-1"), ("pg_payment_id", payment_id)], SUCCESS_URL)
    with pytest.raises(fp.ValidationError) as info:
        verify_redirect(SUCCESS_URL, pairs, SIGNER)
    assert not isinstance(info.value, fp.SignatureVerificationError)


def test_a_non_numeric_error_code_is_kept_as_text() -> None:
    # The docs type pg_error_code as a string: a signed "E42" is a failure, not refused.
    pairs = sign(redirect_pairs(pg_error_code="E42"), FAILURE_URL)
    back = verify_redirect(FAILURE_URL, pairs, SIGNER)
    assert back.error_code == "E42" and not back.succeeded


def test_a_missing_order_id_is_a_validation_error() -> None:
    pairs = sign([("pg_payment_id", "7001")], SUCCESS_URL)
    with pytest.raises(fp.ValidationError, match="pg_order_id"):
        verify_redirect(SUCCESS_URL, pairs, SIGNER)


def test_a_signed_failure_redirect() -> None:
    fields = redirect_pairs(
        pg_error_code="10000", pg_error_description="Ошибка оплаты. Повторите попытку позже."
    )
    back = verify_redirect(FAILURE_URL, sign(fields, FAILURE_URL), SIGNER, success=False)
    assert (back.succeeded, back.signed, back.error_code) == (False, True, "10000")
    assert back.error_description == "Ошибка оплаты. Повторите попытку позже."
    # An error code makes it a failure even when the app did not say which URL it is.
    assert not verify_redirect(FAILURE_URL, sign(fields, FAILURE_URL), SIGNER).succeeded


def test_a_success_redirect_needs_a_payment_id_but_a_frame_failure_does_not() -> None:
    pairs = sign([("pg_order_id", "A-1")], SUCCESS_URL)
    with pytest.raises(fp.ValidationError, match="pg_payment_id"):
        verify_redirect(SUCCESS_URL, pairs, SIGNER)
    frame_failure = [
        ("pg_order_id", "A-1"),
        ("pg_status", "error"),
        ("pg_error_code", "1000"),
        ("pg_error_description", "Internal service error"),
    ]
    back = verify_redirect(FAILURE_URL, sign(frame_failure, FAILURE_URL), SIGNER)
    assert back.payment_id is None and back.status == "error" and not back.succeeded


FRAME_FAILURE_UNSIGNED = [
    ("pg_order_id", "A-1"),
    ("pg_status", "error"),
    ("pg_error_code", "1000"),
    ("pg_error_description", "Internal service error"),
]


def test_an_unsigned_failure_is_refused_without_the_flag() -> None:
    with pytest.raises(fp.SignatureVerificationError, match="not signed"):
        verify_redirect(FAILURE_URL, FRAME_FAILURE_UNSIGNED, SIGNER)
    with pytest.raises(fp.SignatureVerificationError):
        verify_redirect(FAILURE_URL, [("pg_order_id", "A-1")], SIGNER, success=False)


def test_an_unsigned_failure_is_accepted_with_the_flag_and_marked_unsigned() -> None:
    back = verify_redirect(FAILURE_URL, FRAME_FAILURE_UNSIGNED, SIGNER, allow_unsigned_failure=True)
    assert (back.signed, back.succeeded, back.error_code, back.payment_id) == (
        False, False, "1000", None,
    )  # fmt: skip
    plain = verify_redirect(
        FAILURE_URL,
        [("pg_order_id", "A-1"), ("pg_payment_id", "7001")],
        SIGNER,
        success=False,
        allow_unsigned_failure=True,
    )
    assert not plain.signed and not plain.succeeded


def test_an_empty_pg_sig_placeholder_counts_as_unsigned() -> None:
    placeholder = [*FRAME_FAILURE_UNSIGNED, ("pg_sig", "")]
    with pytest.raises(fp.SignatureVerificationError, match="not signed"):
        verify_redirect(FAILURE_URL, placeholder, SIGNER)
    back = verify_redirect(FAILURE_URL, placeholder, SIGNER, allow_unsigned_failure=True)
    assert not back.signed and back.error_code == "1000"


def test_the_flag_never_accepts_an_unsigned_success_or_a_wrong_signature() -> None:
    unsigned_success = [("pg_order_id", "A-1"), ("pg_payment_id", "7001")]
    for success in (None, True):
        with pytest.raises(fp.SignatureVerificationError):
            verify_redirect(
                SUCCESS_URL, unsigned_success, SIGNER, success=success, allow_unsigned_failure=True
            )
    forged = [*FRAME_FAILURE_UNSIGNED, ("pg_sig", "0" * 32)]
    with pytest.raises(fp.SignatureVerificationError):
        verify_redirect(FAILURE_URL, forged, SIGNER, allow_unsigned_failure=True)


def test_get_redirect_signature_over_every_received_field_including_the_merchant_query() -> None:
    # A GET to https://shop.example/pay/success?lang=ru: the received query holds the
    # merchant's own lang=ru first, then the gateway's fields. Pinned behaviour: a
    # signature over everything received verifies, whatever ``url`` is given.
    received = sign([("lang", "ru"), *redirect_pairs()], SUCCESS_URL)
    request_url = SUCCESS_URL + "?" + "&".join(f"{k}={v}" for k, v in received)
    for url in (SUCCESS_URL, SUCCESS_URL + "?lang=ru", request_url):
        back = verify_redirect(url, received, SIGNER)
        assert back.merchant_params == {"lang": "ru"}


def test_get_redirect_signed_over_gateway_fields_only_needs_the_configured_url() -> None:
    gateway_part = sign(redirect_pairs(), SUCCESS_URL)
    received = [("lang", "ru"), *gateway_part]
    request_url = SUCCESS_URL + "?" + "&".join(f"{k}={v}" for k, v in received)
    # With the URL the request arrived at, the merchant's query cannot be told apart.
    for url in (SUCCESS_URL, request_url):
        with pytest.raises(fp.SignatureVerificationError):
            verify_redirect(url, received, SIGNER)
    # With the configured URL (query included), its leading pairs are set aside, and the
    # value holds only the signed fields: the merchant's own query is not in it.
    back = verify_redirect(SUCCESS_URL + "?lang=ru", received, SIGNER)
    assert back.signed and back.merchant_params == {}
    assert back.fields == tuple(gateway_part)
    # Only an exact leading match is set aside: anything else stays under the signature.
    for altered in ([("lang", "en"), *gateway_part], [*gateway_part, ("lang", "ru")]):
        with pytest.raises(fp.SignatureVerificationError):
            verify_redirect(SUCCESS_URL + "?lang=ru", altered, SIGNER)


# --- only signed fields reach the value -----------------------------------------------


def test_a_post_with_injected_pairs_repeated_in_the_url_query_is_not_fooled() -> None:
    # The attack: replay a genuine signed body with extra pairs prepended, and repeat
    # those pairs in the URL query (which whoever sends a POST chooses). The injected
    # pairs must never reach the value, whatever ``url`` is passed.
    genuine = sign(redirect_pairs(order_ref="A-1"), SUCCESS_URL)
    injected = [("order_ref", "EVIL"), ("pg_testing_mode", "1")]
    received = [*injected, *genuine]
    back = verify_redirect(SUCCESS_URL + "?" + urlencode(injected), received, SIGNER)
    assert back.signed and back.merchant_params == {"order_ref": "A-1"}
    assert back.extra == {} and back.fields == tuple(genuine)
    # With the URL without its query, as the aiohttp helpers pass it for a POST: refused.
    with pytest.raises(fp.SignatureVerificationError):
        verify_redirect(SUCCESS_URL, received, SIGNER)


def test_a_result_notification_with_injected_pairs_keeps_its_signed_values() -> None:
    genuine = sign(
        [*[p for p in result_pairs() if p[0] != "pg_can_reject"], ("user_id", "42")], RESULT_URL
    )
    injected = [("user_id", "666"), ("pg_can_reject", "1")]
    notify = verify_result_notify(
        RESULT_URL + "?" + urlencode(injected), [*injected, *genuine], SIGNER
    )
    assert notify.can_reject is False
    assert notify.merchant_params == {"cart": "42", "user_id": "42"}
    assert notify.fields == tuple(genuine)
    with pytest.raises(fp.SignatureVerificationError):
        verify_result_notify(RESULT_URL, [*injected, *genuine], SIGNER)


def test_a_check_request_with_injected_pairs_keeps_its_signed_values() -> None:
    genuine = sign(check_pairs(), CHECK_URL)
    injected = [("lang", "en"), ("pg_amount", "1")]
    check = verify_check_request(
        CHECK_URL + "?" + urlencode(injected), [*injected, *genuine], SIGNER
    )
    assert check.amount == Decimal(100) and check.merchant_params == {"lang": "ru"}
    assert check.fields == tuple(genuine)


def test_a_get_to_the_configured_url_cannot_override_a_signed_field() -> None:
    # Configured https://shop.example/pay/success?lang=ru; the gateway signed its own
    # fields, which echo the merchant parameter lang=kk. The leading lang=ru is set
    # aside, and the signed lang=kk is what the value holds (it used to be "ru").
    genuine = sign(redirect_pairs(lang="kk"), SUCCESS_URL)
    back = verify_redirect(SUCCESS_URL + "?lang=ru", [("lang", "ru"), *genuine], SIGNER)
    assert back.signed and back.merchant_params == {"lang": "kk"}
    assert back.fields == tuple(genuine)


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8)


@given(st.lists(st.tuples(_TEXT, _TEXT), max_size=4))
def test_property_injected_leading_pairs_never_reach_the_value(injected: Pairs) -> None:
    assume(all(k != "pg_sig" for k, _ in injected))
    genuine = sign(redirect_pairs(ref="mine"), SUCCESS_URL)
    url = SUCCESS_URL + "?" + urlencode(injected)
    try:
        back = verify_redirect(url, [*injected, *genuine], SIGNER)
    except (fp.SignatureVerificationError, fp.ValidationError):
        # Refusing is fine when something was injected; the genuine redirect alone
        # must verify, or this test would pass with a verifier that refuses everything.
        assert injected
        return
    assert back.fields == tuple(genuine)
    assert back.merchant_params == {"ref": "mine"}


# --- text a signature cannot cover ----------------------------------------------------

LONE = "\udcff"  # what surrogateescape makes of a stray 0xFF byte


def error_chain_texts(exc: BaseException) -> list[str]:
    """str, repr, args and attributes of an error and of every error chained to it."""
    texts: list[str] = []
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        texts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        if isinstance(current, UnicodeError):
            texts.append(repr(getattr(current, "object", "")))
        current = current.__cause__ or current.__context__
    return texts


def assert_clean_error(exc: BaseException) -> None:
    assert isinstance(exc, fp.ValidationError | fp.SignatureVerificationError), exc
    assert exc.__context__ is None and exc.__cause__ is None
    for text in error_chain_texts(exc):
        assert SECRET not in text


VERIFIERS = [
    pytest.param(verify_redirect, SUCCESS_URL, redirect_pairs, id="redirect"),
    pytest.param(verify_result_notify, RESULT_URL, result_pairs, id="result"),
    pytest.param(verify_check_request, CHECK_URL, check_pairs, id="check"),
]


@pytest.mark.parametrize(("verify", "url", "make"), VERIFIERS)
@pytest.mark.parametrize("where", ["value", "name", "mapping", "pg_sig", "pg_xml", "url"])
def test_a_lone_surrogate_is_a_clean_typed_error(
    verify: Any, url: str, make: Any, where: str
) -> None:
    pairs = sign(make(), url)
    fields: Any = pairs
    if where == "value":
        fields = [(k, v + LONE if k == "pg_order_id" else v) for k, v in pairs]
    elif where == "name":
        fields = [(k + LONE if k == "pg_order_id" else k, v) for k, v in pairs]
    elif where == "mapping":
        fields = {k: v + LONE if k == "pg_salt" else v for k, v in pairs}
    elif where == "pg_sig":
        fields = [*pairs[:-1], ("pg_sig", pairs[-1][1] + LONE)]
    elif where == "pg_xml":
        fields = [("pg_xml", xml_document(list(pairs)).decode().replace("A-1", "A" + LONE))]
    else:
        url = url + LONE
    with pytest.raises(fp.FreedomPayError) as info:
        verify(url, fields, SIGNER)
    assert_clean_error(info.value)


def test_a_signer_error_carrying_the_pre_image_is_replaced_by_a_clean_one() -> None:
    class LeakySigner:
        """A signer failing the way an md5 signer does on a lone surrogate."""

        def sign(self, script: str, fields: Any) -> str:
            pre_image = f"{script};A{LONE};{SECRET}"
            raise UnicodeEncodeError("utf-8", pre_image, 0, 1, "surrogates not allowed")

        def verify(self, script: str, fields: Any, signature: str) -> bool:
            return self.sign(script, fields) == signature

    for verify, url, make in ((v.values[0], v.values[1], v.values[2]) for v in VERIFIERS):
        with pytest.raises(fp.ValidationError) as info:
            verify(url, sign(make(), url), LeakySigner())
        assert_clean_error(info.value)


def test_a_reply_with_a_lone_surrogate_is_a_clean_validation_error() -> None:
    for kwargs in ({"description": "no" + LONE}, {"salt": "s" + LONE}):
        with pytest.raises(fp.ValidationError) as info:
            callback_reply(RESULT_URL, SIGNER, "rejected", **kwargs)
        assert_clean_error(info.value)
    with pytest.raises(fp.ValidationError) as info:
        callback_reply(RESULT_URL + LONE, SIGNER, "ok")
    assert_clean_error(info.value)


# --- nesting depth ----------------------------------------------------------------------


def nested_name(levels: int) -> str:
    """A bracket name ``levels`` deep: ``a`` is 1, ``a[x]`` is 2."""
    return "a" + "[x]" * (levels - 1)


def test_bracket_nesting_up_to_32_levels_verifies() -> None:
    pairs = sign([*redirect_pairs(), (nested_name(32), "deep")], SUCCESS_URL)
    back = verify_redirect(SUCCESS_URL, pairs, SIGNER)
    assert back.merchant_params == {nested_name(32): "deep"}


@pytest.mark.parametrize("levels", [33, 1000, 20_000])
@pytest.mark.parametrize(("verify", "url", "make"), VERIFIERS)
def test_bracket_nesting_deeper_than_32_levels_is_a_validation_error(
    verify: Any, url: str, make: Any, levels: int
) -> None:
    fields = [*make(), (nested_name(levels), "deep"), ("pg_salt", "s"), ("pg_sig", "0" * 32)]
    with pytest.raises(fp.ValidationError, match="nested deeper than 32"):
        verify(url, fields, SIGNER)
    with pytest.raises(fp.ValidationError, match="nested deeper than 32"):
        verify(url, fields[::-1], SIGNER)


@pytest.mark.parametrize("levels", [33, 900, 5000])
@pytest.mark.parametrize("form", ["body", "pg_xml"])
def test_xml_nesting_deeper_than_32_levels_is_a_validation_error(levels: int, form: str) -> None:
    # Levels count from the root's children: <request><a>...</a></request> is 1 level.
    deep = "<a>" * levels + "x" + "</a>" * levels
    document = (
        '<?xml version="1.0" encoding="utf-8"?><request><pg_order_id>A-1</pg_order_id>'
        f"{deep}<pg_sig>{'0' * 32}</pg_sig></request>"
    )
    fields: Any = document.encode() if form == "body" else [("pg_xml", document)]
    with pytest.raises(fp.ValidationError, match="nested deeper than 32") as info:
        verify_result_notify(RESULT_URL, fields, SIGNER)
    assert info.value.__context__ is None


def test_xml_nesting_of_31_levels_below_the_root_is_accepted() -> None:
    tree: list[tuple[str, FieldValue]] = [("leaf", "x")]
    for _ in range(30):
        tree = [("a", tree)]
    fields: list[tuple[str, FieldValue]] = [*result_pairs(), *tree, ("pg_salt", "x1")]
    fields.append(("pg_sig", SIGNER.sign("result", fields)))
    notify = verify_result_notify(RESULT_URL, xml_document(fields), SIGNER)
    assert notify.merchant_params == {"cart": "42", "a" + "[a]" * 29 + "[leaf]": "x"}


# --- XML mode ------------------------------------------------------------------------


def test_xml_mode_in_a_pg_xml_field_and_as_a_raw_body() -> None:
    fields: list[tuple[str, FieldValue]] = [*result_pairs(), ("pg_salt", "x1")]
    fields.append(("pg_sig", SIGNER.sign("result", fields)))
    document = xml_document(fields)
    from_field = verify_result_notify(RESULT_URL, [("pg_xml", document.decode())], SIGNER)
    from_body = verify_result_notify(RESULT_URL, document, SIGNER)
    assert from_field == from_body
    assert from_body.description == "Заказ №1" and from_body.merchant_params == {"cart": "42"}
    tampered = document.replace(b"1500.50</pg_amount>", b"1.00</pg_amount>")
    with pytest.raises(fp.SignatureVerificationError):
        verify_result_notify(RESULT_URL, tampered, SIGNER)


def test_xml_mode_nested_elements_are_signed_recursively() -> None:
    fields: list[tuple[str, FieldValue]] = [
        *redirect_pairs(),
        ("basket", [("item", [("sku", "A")]), ("item", [("sku", "B")])]),
        ("pg_salt", "n"),
    ]
    fields.append(("pg_sig", SIGNER.sign("success", fields)))
    back = verify_redirect(SUCCESS_URL, xml_document(fields), SIGNER)
    assert back.merchant_params == {"basket[item][sku]": "A"}
    swapped = xml_document(fields).replace(b">A<", b">C<")
    with pytest.raises(fp.SignatureVerificationError):
        verify_redirect(SUCCESS_URL, swapped, SIGNER)


def test_xml_mode_malformed_documents_are_validation_errors() -> None:
    with pytest.raises(fp.ValidationError, match="XML"):
        verify_result_notify(RESULT_URL, b"<request><pg_order_id>1</request>", SIGNER)
    bomb = b'<!DOCTYPE r [<!ENTITY a "aaaa">]><request><x>&a;</x></request>'
    with pytest.raises(fp.ValidationError):
        verify_result_notify(RESULT_URL, bomb, SIGNER)
    with pytest.raises(fp.ValidationError, match="only field"):
        verify_result_notify(RESULT_URL, [("pg_xml", "<request/>"), ("x", "1")], SIGNER)


def test_fields_must_be_string_pairs() -> None:
    with pytest.raises(fp.ValidationError):  # was TypeError: every refusal is a library error
        verify_redirect(SUCCESS_URL, [("pg_order_id", 1)], SIGNER)  # type: ignore[list-item]


# --- result notify and check ---------------------------------------------------------


def test_a_result_notification_is_fully_typed() -> None:
    notify = verify_result_notify(RESULT_URL, sign(result_pairs(), RESULT_URL), SIGNER)
    assert isinstance(notify, ResultNotify)
    assert (notify.order_id, notify.payment_id, notify.currency) == ("A-1", 7001, "KZT")
    assert notify.amount == Decimal("1500.50") and isinstance(notify.amount, Decimal)
    assert notify.net_amount == Decimal("1480.00")
    assert (notify.result, notify.succeeded, notify.can_reject, notify.testing_mode) == (
        1, True, True, True,
    )  # fmt: skip
    assert notify.captured is False
    assert notify.payment_date == "2024-10-07 12:30:05"
    assert notify.payment_datetime is not None and notify.payment_datetime.minute == 30
    assert notify.card_pan == "4405-62XX-XXXX-1448" and notify.card_brand == "VI"
    assert notify.card_token == "tok-SENSITIVE" and notify.card_owner == "IVAN IVANOV"
    assert notify.merchant_params == {"cart": "42"} and notify.extra == {}
    assert notify.salt == "s4lt"


def test_result_notification_repr_hides_personal_and_card_data() -> None:
    notify = verify_result_notify(RESULT_URL, sign(result_pairs(), RESULT_URL), SIGNER)
    text = repr(notify)
    for hidden in ("tok-SENSITIVE", "IVAN", "12/29", "77001234567", "buyer@example.com", "s4lt"):
        assert hidden not in text
    assert "4405-62XX-XXXX-1448" in text and "7001" in text and "cart" in text


def test_a_minimal_result_notification_has_safe_defaults() -> None:
    pairs = [
        ("pg_order_id", "A-2"),
        ("pg_payment_id", "9"),
        ("pg_amount", "10"),
        ("pg_currency", "KZT"),
        ("pg_result", "0"),
        ("pg_payment_date", "not a date"),
        ("pg_new_field", "kept"),
    ]
    signed_pairs = sign(pairs, RESULT_URL)
    with pytest.raises(fp.ValidationError, match="pg_new_field"):
        verify_result_notify(RESULT_URL, signed_pairs, SIGNER, strict=True)
    notify = verify_result_notify(RESULT_URL, signed_pairs, SIGNER)
    assert not notify.succeeded and not notify.can_reject and not notify.testing_mode
    assert notify.payment_datetime is None and notify.card_pan is None
    assert notify.extra == {"pg_new_field": "kept"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("pg_amount", "1,5"),
        ("pg_amount", "1e3"),
        ("pg_amount", "NaN"),
        ("pg_amount", ""),
        ("pg_net_amount", "abc"),
        ("pg_result", "ok"),
        ("pg_can_reject", "2"),
        ("pg_payment_id", "77x"),
        ("pg_currency", ""),
    ],
)
def test_unusable_result_fields_are_validation_errors(name: str, value: str) -> None:
    pairs = [(k, value if k == name else v) for k, v in result_pairs()]
    with pytest.raises(fp.ValidationError, match=name):
        verify_result_notify(RESULT_URL, sign(pairs, RESULT_URL), SIGNER)


def test_a_result_notification_signed_for_check_is_refused() -> None:
    with pytest.raises(fp.SignatureVerificationError):
        verify_result_notify(RESULT_URL, sign(result_pairs(), CHECK_URL), SIGNER)


def test_a_check_request() -> None:
    check = verify_check_request(CHECK_URL, sign(check_pairs(), CHECK_URL), SIGNER)
    assert check == CheckRequest(
        order_id="A-1",
        payment_id=7001,
        amount=Decimal(100),
        currency="KZT",
        ps_amount=Decimal(100),
        ps_full_amount=Decimal(100),
        ps_currency="KZT",
        salt="s4lt",
        merchant_params={"lang": "ru"},
    )
    with pytest.raises(fp.SignatureVerificationError):
        verify_check_request(CHECK_URL, sign(check_pairs(), RESULT_URL), SIGNER)


def test_a_rotating_signer_accepts_the_previous_key() -> None:
    rotating = fp.RotatingSigner.md5("new-key", SECRET)
    assert verify_check_request(CHECK_URL, sign(check_pairs(), CHECK_URL), rotating)


# --- secrets stay secret -------------------------------------------------------------


def test_the_secret_and_signatures_never_appear_in_values_or_errors() -> None:
    pairs = sign(result_pairs(), RESULT_URL)
    signature = pairs[-1][1]
    texts = [
        repr(verify_result_notify(RESULT_URL, pairs, SIGNER)),
        repr(verify_redirect(SUCCESS_URL, sign(redirect_pairs(), SUCCESS_URL), SIGNER)),
        repr(verify_check_request(CHECK_URL, sign(check_pairs(), CHECK_URL), SIGNER)),
        repr(SIGNER),
        repr(fp.RotatingSigner.md5(SECRET, "old")),
    ]
    failures: list[tuple[str, Pairs]] = [
        (RESULT_URL, [(k, "1" if k == "pg_amount" else v) for k, v in pairs]),
        (CHECK_URL, pairs),
        (RESULT_URL, pairs[:-1]),
        (RESULT_URL, [*pairs, pairs[-1]]),
        ("https://shop.example/pay/", pairs),
        (RESULT_URL, sign([(k, "x" if k == "pg_amount" else v) for k, v in result_pairs()],
                          RESULT_URL)),
    ]  # fmt: skip
    for url, bad in failures:
        with pytest.raises(fp.FreedomPayError) as info:
            verify_result_notify(url, bad, SIGNER)
        texts += [str(info.value), repr(info.value), repr(info.value.args)]
        texts += [repr(vars(info.value))]
    too_large = CallbackBodyTooLargeError("callback body is too large", limit=10)
    texts += [str(too_large), repr(too_large)]
    for text in texts:
        assert SECRET not in text
        assert signature not in text


# --- properties ----------------------------------------------------------------------

NAMES = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="[]"),
    min_size=1,
    max_size=12,
).filter(lambda n: not n.startswith("pg_"))
VALUES = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
PARAMS = st.dictionaries(NAMES, VALUES, max_size=6)


@given(PARAMS, VALUES, st.integers(1, 10**15), st.sampled_from([SUCCESS_URL, FAILURE_URL]))
def test_property_any_signed_field_set_round_trips(
    params: dict[str, str], order_id: str, payment_id: int, url: str
) -> None:
    assume(order_id.strip())
    pairs = sign(
        [("pg_order_id", order_id), ("pg_payment_id", str(payment_id)), *params.items()], url
    )
    back = verify_redirect(url, pairs, SIGNER)
    assert back.signed and back.payment_id == payment_id and back.order_id == order_id
    assert back.merchant_params == params


@given(PARAMS, st.data())
def test_property_any_single_value_change_breaks_verification(
    params: dict[str, str], data: st.DataObject
) -> None:
    pairs = sign([*redirect_pairs(), *params.items()], SUCCESS_URL)
    index = data.draw(st.integers(0, len(pairs) - 2), label="field")
    name, value = pairs[index]
    new_value = data.draw(VALUES.filter(lambda v: v != value), label="new value")
    pairs[index] = (name, new_value)
    with pytest.raises(fp.SignatureVerificationError):
        verify_redirect(SUCCESS_URL, pairs, SIGNER)


@given(PARAMS, st.data())
def test_property_a_duplicated_field_breaks_verification(
    params: dict[str, str], data: st.DataObject
) -> None:
    pairs = sign([*redirect_pairs(), *params.items()], SUCCESS_URL)
    duplicate = data.draw(st.sampled_from(pairs[:-1]), label="duplicate")
    position = data.draw(st.integers(0, len(pairs)), label="position")
    pairs.insert(position, duplicate)
    with pytest.raises(fp.SignatureVerificationError):
        verify_redirect(SUCCESS_URL, pairs, SIGNER)
