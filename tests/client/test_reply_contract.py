"""Every way ``interpret`` can refuse a reply, with every attribute the caller reads.

Error handling code reads ``payment_id``, ``http_status``, ``body_excerpt``,
``retry_after``, ``code``, ``description``, ``signed`` and ``reply_fields``; the
messages are what an operator sees. Each branch is pinned in full, so a branch that
drops or blanks one of them fails here (the mutation run found many that did not).
"""

from __future__ import annotations

import pytest

import freedompay_async as fp
from freedompay_async import HttpResponse
from freedompay_async._exceptions import excerpt
from freedompay_async._wire.replies import (
    interpret,
    retry_after_seconds,
)

from ..helpers import SIGNER, error_fields, ok_fields, signed, xml_reply

PID = 42
REQUEST = fp.GatewayRequest("cancel", "http://gw/g2g/cancel", "cancel", PID, (), b"", "x")


def _raise(response: HttpResponse) -> fp.FreedomPayError:
    with pytest.raises(fp.FreedomPayError) as info:
        interpret(REQUEST, response, SIGNER)
    return info.value


def test_non_200_status() -> None:
    body = b"<html>Service Unavailable</html>"
    exc = _raise(HttpResponse(503, body, "7", None))
    assert type(exc) is fp.MalformedReplyError
    assert exc.message == "gateway answered HTTP 503"
    assert (exc.payment_id, exc.http_status, exc.retry_after) == (PID, 503, 7.0)
    assert exc.body_excerpt == excerpt(body) == "<html>Service Unavailable</html>"


def test_not_xml() -> None:
    body = b"definitely { not xml"
    exc = _raise(HttpResponse(200, body))
    assert type(exc) is fp.MalformedReplyError
    assert exc.message.startswith("reply is not XML (")
    assert (exc.payment_id, exc.http_status, exc.body_excerpt) == (PID, 200, excerpt(body))
    assert exc.__cause__ is None and exc.__suppress_context__


def test_wrong_root() -> None:
    root = "r" * 60
    body = f"<{root}><pg_status>ok</pg_status></{root}>".encode()
    exc = _raise(HttpResponse(200, body))
    assert type(exc) is fp.MalformedReplyError
    assert exc.message == f"reply root is <{'r' * 40}>, not <response>"
    assert (exc.payment_id, exc.http_status, exc.body_excerpt) == (PID, 200, excerpt(body))


def test_forged_ok() -> None:
    fields = [*ok_fields(PID), ("pg_salt", "s"), ("pg_sig", "0" * 32)]
    exc = _raise(HttpResponse(200, xml_reply(fields)))
    assert type(exc) is fp.SignatureVerificationError
    assert exc.message == "reply signature does not verify"
    assert (exc.payment_id, exc.http_status) == (PID, 200)


def test_unsigned_ok() -> None:
    exc = _raise(HttpResponse(200, xml_reply(ok_fields(PID))))
    assert type(exc) is fp.SignatureVerificationError
    assert exc.message == "reply is not signed"
    assert (exc.payment_id, exc.http_status) == (PID, 200)


def test_signed_reply_with_another_status() -> None:
    fields = [("pg_payment_id", str(PID)), ("pg_status", "maybe")]
    exc = _raise(HttpResponse(200, signed(fields)))
    assert type(exc) is fp.MalformedReplyError
    assert exc.message == "reply has pg_status 'maybe'"
    assert (exc.payment_id, exc.http_status) == (PID, 200)


def test_signed_reply_without_status() -> None:
    exc = _raise(HttpResponse(200, signed([("pg_payment_id", str(PID))])))
    assert type(exc) is fp.MalformedReplyError
    assert exc.message == "reply has pg_status None"


@pytest.mark.parametrize("raw", ["", "  ", "12a", "١٢"])
def test_error_reply_without_a_numeric_code(raw: str) -> None:
    fields = [("pg_status", "error"), ("pg_error_code", raw), ("pg_error_description", "d")]
    body = signed(fields)
    exc = _raise(HttpResponse(200, body))
    assert type(exc) is fp.MalformedReplyError
    assert exc.message == "error reply without a numeric pg_error_code"
    assert (exc.payment_id, exc.http_status, exc.body_excerpt) == (PID, 200, excerpt(body))


def test_error_reply_without_a_code_field() -> None:
    body = signed([("pg_status", "error"), ("pg_error_description", "d")])
    exc = _raise(HttpResponse(200, body))
    assert exc.message == "error reply without a numeric pg_error_code"


def test_error_reply_for_another_payment() -> None:
    body = signed([("pg_payment_id", "43"), *error_fields(11068)])
    exc = _raise(HttpResponse(200, body))
    assert type(exc) is fp.MalformedReplyError
    assert exc.message == "error reply names another payment"
    assert (exc.payment_id, exc.http_status, exc.body_excerpt) == (PID, 200, excerpt(body))


def test_error_reply_for_this_payment_is_the_gateway_error() -> None:
    fields = [("pg_payment_id", f" {PID} "), *error_fields(11068, "нет такого платежа")]
    exc = _raise(HttpResponse(200, signed(fields)))
    assert type(exc) is fp.PaymentNotFoundError
    assert (exc.code, exc.description, exc.payment_id, exc.signed) == (
        11068,
        "нет такого платежа",
        PID,
        True,
    )
    assert [k for k, _ in exc.reply_fields] == [
        *(k for k, _ in fields),
        "pg_salt",
        "pg_sig",
    ]
    assert exc.fields["pg_error_code"] == "11068"


def test_error_reply_without_description_has_an_empty_one() -> None:
    exc = _raise(HttpResponse(200, signed([("pg_status", "error"), ("pg_error_code", "9999")])))
    assert isinstance(exc, fp.GatewayError)
    assert exc.description == "" and exc.code == 9999 and exc.retryable


def test_first_status_and_first_signature_count() -> None:
    """A second pg_status or pg_sig (appended by a forger) is not the one believed."""
    good = signed(ok_fields(PID)).replace(
        b"</response>", b"<pg_status>error</pg_status><pg_sig>00</pg_sig></response>"
    )
    exc = _raise(HttpResponse(200, good))
    assert type(exc) is fp.MalformedReplyError  # a second signature is refused outright
    assert "more than one pg_sig" in str(exc)
    fields = [*ok_fields(PID), ("pg_status", "error")]
    reply = interpret(REQUEST, HttpResponse(200, signed(fields)), SIGNER)
    assert reply.get("pg_status") == "ok" and reply.signed


def test_verified_reply_carries_status_and_fields() -> None:
    reply = interpret(REQUEST, HttpResponse(200, signed(ok_fields(PID))), SIGNER)
    assert (reply.http_status, reply.signed, reply.attempts) == (200, True, 1)
    assert reply.earlier_maybe_processed is False
    fields = reply.as_dict()
    assert len(fields.pop("pg_salt")) == 16  # the fresh salt the reply was signed with
    assert fields == {
        "pg_payment_id": str(PID),
        "pg_payment_revoke_id": str(PID + 1),
        "pg_status": "ok",
        "pg_revoke_status": "success",
    }
    assert reply.get("pg_sig") is not None and reply.get("missing") is None


def test_as_dict_keeps_the_first_of_repeated_names_and_drops_pg_sig() -> None:
    reply = fp.GatewayReply((("a", "1"), ("pg_sig", "x"), ("a", "2"), ("b", (("c", "3"),))))
    assert reply.as_dict() == {"a": "1", "b": (("c", "3"),)}
    assert reply.get("b") is None  # not a scalar


HTTP_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"  # 1445412480


@pytest.mark.parametrize(
    ("value", "date", "now", "seconds"),
    [
        ("120", None, None, 120.0),
        (" 7 ", None, None, 7.0),
        (HTTP_DATE, "Wed, 21 Oct 2015 07:27:00 GMT", None, 60.0),
        (HTTP_DATE, "not a date", 1445412470.0, 10.0),  # a bad Date: measured from now
        (HTTP_DATE, None, 1445412490.0, 0.0),  # in the past: no wait
        ("soon", None, None, None),
        ("-5", None, None, None),
        (None, HTTP_DATE, None, None),
    ],
)
def test_retry_after_values(
    value: str | None, date: str | None, now: float | None, seconds: float | None
) -> None:
    assert retry_after_seconds(value, date, now) == seconds


def test_retry_after_date_without_date_or_now_uses_the_wall_clock() -> None:
    assert retry_after_seconds(HTTP_DATE) == 0.0  # 2015 is long past
    future = retry_after_seconds("Fri, 01 Jan 2100 00:00:00 GMT")
    assert future is not None and future > 10**9


def test_retry_after_digit_and_date_length_bounds() -> None:
    assert retry_after_seconds("9" * 12) == float("9" * 12)
    assert retry_after_seconds("9" * 13) == float("inf")
    assert retry_after_seconds("000" + "9" * 12) == float("9" * 12)  # zeros do not count
    assert retry_after_seconds("0000") == 0.0
    padded = HTTP_DATE.replace(" ", " " * 36, 1)  # still a date, 64 characters long
    assert len(padded) == 64
    assert retry_after_seconds(padded, now=1445412470.0) == 10.0
    too_long = HTTP_DATE.replace(" ", " " * 37, 1)
    assert retry_after_seconds(too_long, now=1445412470.0) is None
    assert retry_after_seconds(HTTP_DATE, "Ж, 21 Oct 2015 07:27:00 GMT", 1445412470.0) == 10.0
