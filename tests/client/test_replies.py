"""Reply verification and classification: what the gateway says, and what is believed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import freedompay_async as fp
from freedompay_async import HttpResponse
from freedompay_async._session.session import AsyncSession
from freedompay_async._wire.replies import (
    interpret,
    retry_after_seconds,
)

from ..helpers import MERCHANT, SECRET, SIGNER, error_fields, ok_fields, signed, xml_reply

REQUEST = fp.GatewayRequest("cancel", "http://gw/g2g/cancel", "cancel", 42, (), b"", "x")
#: A request that only reads (status): a reply naming no payment leaves nothing open.
READING = fp.GatewayRequest(
    "status", "http://gw/g2g/status_v2", "cancel", 42, (), b"", "x", read_only=True
)


def run(
    body: bytes, status: int = 200, request: fp.GatewayRequest = REQUEST, **headers: str
) -> fp.GatewayReply:
    response = HttpResponse(status, body, headers.get("retry_after"), headers.get("date"))
    return interpret(request, response, SIGNER)


def test_a_signed_ok_reply_is_accepted() -> None:
    reply = run(signed(ok_fields(42)))
    assert reply.signed and reply.get("pg_payment_revoke_id") == "43"


def test_a_reply_with_unknown_extra_fields_verifies_and_keeps_them() -> None:
    fields = [*ok_fields(42), ("pg_datetime", "2024-10-07T09:32:21+00:00"), ("pg_new", "x")]
    reply = run(signed(fields))
    result = fp.CancelResult.from_reply(reply, 42)
    assert result.extra == {"pg_datetime": "2024-10-07T09:32:21+00:00", "pg_new": "x"}


def test_a_forged_ok_reply_raises_signature_error() -> None:
    body = xml_reply([*ok_fields(42), ("pg_salt", "x"), ("pg_sig", "0" * 32)])
    with pytest.raises(fp.SignatureVerificationError) as info:
        run(body)
    assert info.value.outcome_unknown


def test_an_unsigned_ok_reply_is_never_a_result() -> None:
    with pytest.raises(fp.SignatureVerificationError):
        run(xml_reply(ok_fields(42)))


def test_a_reply_signed_with_another_key_is_rejected() -> None:
    with pytest.raises(fp.SignatureVerificationError):
        run(signed(ok_fields(42), signer=fp.Md5Signer("someone-else")))


def test_a_reply_signed_for_another_script_is_rejected() -> None:
    with pytest.raises(fp.SignatureVerificationError):
        run(signed(ok_fields(42), script="refund"))


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (1100, fp.InvalidRequestSignatureError),
        (100, fp.InvalidRequestSignatureError),
        (9998, fp.UnknownMerchantError),
        (9997, fp.UnknownMerchantError),
        (101, fp.UnknownMerchantError),
        (11068, fp.PaymentNotFoundError),
        (10033, fp.AlreadyCancelledError),
        (11017, fp.AlreadyCancelledError),
        (9999, fp.TransientGatewayError),
        (10000, fp.TransientGatewayError),
        (11000, fp.TransientGatewayError),
        (11014, fp.TransientGatewayError),
        (9013, fp.GatewayDeclinedError),
        (10012, fp.GatewayDeclinedError),
    ],
)
def test_each_error_code_raises_its_class_with_code_description_and_payment(
    code: int, cls: type[fp.GatewayError]
) -> None:
    # Named payment: the reply is bound to the payment asked about.
    named = [("pg_payment_id", "42"), *error_fields(code, "Некорректная подпись запроса")]
    with pytest.raises(cls) as info:
        run(signed(named))
    err = info.value
    assert type(err) is cls
    assert (err.code, err.description, err.payment_id, err.signed, err.bound) == (
        code,
        "Некорректная подпись запроса",
        42,
        True,
        True,
    )
    assert "Некорректная подпись запроса" in str(err) and str(code) in str(err)
    assert err.retryable is (cls is fp.TransientGatewayError)
    assert not err.outcome_unknown


@pytest.mark.parametrize("code", [1100, 9013, 9999, 11068])
def test_an_error_naming_no_payment_leaves_an_acting_calls_outcome_open(code: int) -> None:
    # Every documented error reply names no payment: captured once, it could be
    # replayed for any other payment, so it proves nothing about this one.
    with pytest.raises(fp.GatewayError) as info:
        run(signed(error_fields(code)))
    assert info.value.signed and not info.value.bound and info.value.outcome_unknown
    with pytest.raises(fp.GatewayError) as reading:
        run(signed(error_fields(code)), request=READING)
    assert not reading.value.bound and not reading.value.outcome_unknown


@pytest.mark.parametrize(
    ("code", "claimed"),
    [(10033, fp.AlreadyCancelledError), (11017, fp.AlreadyCancelledError),
     (10036, fp.AlreadyClearedError), (11018, fp.AlreadyRefundedError)],
)  # fmt: skip
def test_an_already_done_claim_naming_no_payment_is_never_that_claim(
    code: int, claimed: type[fp.GatewayError]
) -> None:
    with pytest.raises(fp.UnconfirmedReplyError) as info:
        run(signed(error_fields(code)))
    err = info.value
    assert not isinstance(err, fp.GatewayError) and err.outcome_unknown
    assert err.claimed_code == code and type(err.claim) is claimed and not err.claim.bound


@pytest.mark.parametrize(
    "nested",
    [
        [("pg_revoked_payments", [("pg_sig", [("pg_payment_id", "1"),
                                              ("pg_payment_status", "success")])])],
        [("pg_refund_payments", [("pg_refund_payment", [("pg_sig", "x")])])],
        [("pg_sig", [("pg_payment_id", "1")])],
    ],
)  # fmt: skip
def test_a_pg_sig_below_the_top_level_makes_the_reply_malformed(nested: list[object]) -> None:
    # The signature skips every pg_sig subtree (as the reference does): appended to a
    # genuine reply it still verifies, so nothing under it may ever be read.
    genuine = [*ok_fields(42), *nested]
    with pytest.raises(fp.MalformedReplyError, match="pg_sig") as info:
        run(signed(genuine))  # type: ignore[arg-type]
    assert info.value.outcome_unknown


def test_two_top_level_signatures_make_the_reply_malformed() -> None:
    body = signed(ok_fields(42)).replace(b"</response>", b"<pg_sig>0</pg_sig></response>")
    with pytest.raises(fp.MalformedReplyError, match="more than one pg_sig"):
        run(body)


def test_unsigned_error_replies_are_accepted_and_marked_unsigned() -> None:
    body = xml_reply(
        [("pg_status", "error"), ("pg_error_code", "9998"), ("pg_error_description", "x")]
    )
    with pytest.raises(fp.UnknownMerchantError) as info:
        run(body)
    assert info.value.signed is False


def test_an_error_reply_with_a_wrong_signature_is_a_signature_error() -> None:
    # A merchant with a wrong key cannot verify the gateway's signed 1100; it still
    # learns the claimed code, but never as a GatewayError class (a forged "already
    # cancelled" must not be caught as one).
    body = xml_reply([*error_fields(1100), ("pg_salt", "x"), ("pg_sig", "f" * 32)])
    with pytest.raises(fp.SignatureVerificationError) as info:
        run(body)
    assert info.value.claimed_code == 1100


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", 502, "HTTP 502"),
        (b"<html><body><h1>oops</h1></body></html>", 200, "<html>"),
        (b"<?xml version='1.0'?><response><pg_status>ok</pg_st", 200, "not XML"),
        (b"\x00\xff garbage", 200, "not XML"),
        (b"", 200, "not XML"),
        (b"<!DOCTYPE r [<!ENTITY x 'y'>]><response>&x;</response>", 200, "not XML"),
    ],
)
def test_unusable_bodies_raise_malformed_reply_with_status_and_excerpt(
    body: bytes, status: int, fragment: str
) -> None:
    with pytest.raises(fp.MalformedReplyError) as info:
        run(body, status)
    err = info.value
    assert err.http_status == status
    assert fragment in str(err)
    assert len(err.body_excerpt) <= 125
    assert err.retryable


def test_a_404_is_malformed_but_final() -> None:
    with pytest.raises(fp.MalformedReplyError) as info:
        run(b"not found", 404)
    assert not info.value.retryable


def test_an_error_reply_without_a_numeric_code_is_malformed() -> None:
    body = signed([("pg_status", "error"), ("pg_error_code", "abc")])
    with pytest.raises(fp.MalformedReplyError):
        run(body)


def test_http_429_carries_retry_after_and_leaves_only_an_acting_call_open() -> None:
    with pytest.raises(fp.MalformedReplyError) as info:
        run(b"slow down", 429, request=READING, retry_after="7")
    assert info.value.retry_after == 7.0 and info.value.rate_limited
    assert not info.value.maybe_processed
    # An unsigned status line cannot prove a cancel, clearing or refund was not done.
    with pytest.raises(fp.MalformedReplyError) as acting:
        run(b"slow down", 429, retry_after="7")
    assert acting.value.maybe_processed and acting.value.retryable


def test_retry_after_http_date_is_measured_against_the_server_date() -> None:
    assert (
        retry_after_seconds("Wed, 21 Oct 2026 07:28:30 GMT", "Wed, 21 Oct 2026 07:28:00 GMT")
        == 30.0
    )
    assert retry_after_seconds("Wed, 21 Oct 2026 07:28:30 GMT", None, now=1792567700.0) == 10.0
    assert retry_after_seconds("soon") is None
    assert (
        retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT", "Wed, 21 Oct 2026 07:28:30 GMT") == 0.0
    )


def test_missing_fields_and_a_reply_for_another_payment_are_malformed() -> None:
    reply = run(signed([("pg_payment_id", "42"), ("pg_status", "ok")]))
    with pytest.raises(fp.MalformedReplyError, match="pg_revoke_status"):
        fp.CancelResult.from_reply(reply, 42)
    other = run(signed(ok_fields(41)))
    with pytest.raises(fp.MalformedReplyError, match="41"):
        fp.CancelResult.from_reply(other, 42)


def test_revoke_status_values_are_parsed_and_unknown_ones_kept() -> None:
    for raw, member in [
        ("success", fp.RevokeStatus.SUCCESS),
        ("pending", fp.RevokeStatus.PENDING),
        ("error", fp.RevokeStatus.ERROR),
        ("queued", fp.RevokeStatus.UNKNOWN),
    ]:
        result = fp.CancelResult.from_reply(run(signed(ok_fields(42, raw))), 42)
        assert result.revoke_status is member and result.revoke_status_raw == raw


def test_cyrillic_descriptions_survive_utf8_signing_and_parsing() -> None:
    description = "Ошибка отмены платежа: отмена уже была произведена ранее"
    with pytest.raises(fp.UnconfirmedReplyError) as info:
        run(signed(error_fields(10033, description)))
    assert info.value.claim.description == description and info.value.claim.signed


@given(st.binary(max_size=300))
def test_any_body_gives_a_reply_or_a_library_error_never_anything_else(body: bytes) -> None:
    try:
        run(body)
    except (fp.MalformedReplyError, fp.SignatureVerificationError, fp.GatewayError) as exc:
        assert exc.payment_id == 42
        assert str(exc)
        if isinstance(exc, fp.GatewayError):
            assert exc.signed is False  # random bytes cannot carry our signature
    else:
        pytest.fail("a random body was accepted as a verified reply")


@given(st.text(max_size=40), st.text(max_size=40))
def test_any_signed_extra_field_values_verify(name_tail: str, value: str) -> None:
    name = "pg_x" + "".join(c for c in name_tail if c.isascii() and c.isalnum())
    clean = "".join(c for c in value if c.isprintable() and c not in "\r;")
    reply = run(signed([*ok_fields(42), (name, clean)]))
    assert reply.signed


@given(st.text(max_size=20), st.text(max_size=20))
def test_a_signed_value_holding_the_separator_is_refused(head: str, tail: str) -> None:
    """The signature joins values with ';': a value holding one could be its neighbours'
    values moved into it, with the pre-image unchanged."""
    keep = "".join(c for c in head + ";" + tail if c.isprintable() and c != "\r")
    with pytest.raises(fp.MalformedReplyError, match="';'"):
        run(signed([*ok_fields(42), ("pg_reference", keep)]))


def test_secret_never_appears_in_repr_or_str_of_public_objects() -> None:
    creds = fp.Credentials(MERCHANT, SECRET)
    session = AsyncSession(creds, base_url="http://127.0.0.1:1")
    objects: list[object] = [creds, session, fp.Md5Signer(SECRET), session.signer, session.retry]
    for obj in objects:
        assert SECRET not in repr(obj) and SECRET not in str(obj)


def test_values_with_surrounding_whitespace_are_signed_as_sent() -> None:
    reply = run(signed([*ok_fields(42), ("pg_note", "  spaced  "), ("pg_blank", " ")]))
    assert reply.get("pg_note") == "  spaced  " and reply.get("pg_blank") == " "


def test_a_pretty_printed_reply_verifies() -> None:
    fields = [*ok_fields(42), ("pg_salt", "s")]
    sig = SIGNER.sign("cancel", fields)
    body = "\n".join(
        ['<?xml version="1.0" encoding="utf-8"?>', "<response>"]
        + [f"    <{k}>{v}</{k}>" for k, v in [*fields, ("pg_sig", sig)]]
        + ["</response>", ""]
    ).encode()
    assert run(body).signed


def test_a_deeply_nested_reply_is_malformed_not_a_recursion_error() -> None:
    body = b"<response>" + b"<a>" * 3000 + b"x" + b"</a>" * 3000 + b"</response>"
    with pytest.raises(fp.MalformedReplyError):
        run(body)


def test_an_error_reply_for_another_payment_is_refused() -> None:
    body = signed([*error_fields(10033), ("pg_payment_id", "41")])
    with pytest.raises(fp.MalformedReplyError, match="another payment"):
        run(body)
