"""A signature that differs from the right one only in its last hex character is refused.

A verifier that compared a prefix (the first 8 characters, say) was caught only by
chance; these tests change exactly one character at each end, for replies, for every
callback kind, and for the rotating signer.
"""

from __future__ import annotations

from typing import Any

import pytest

import freedompay_async as fp
from freedompay_async import HttpResponse
from freedompay_async._wire.replies import interpret
from freedompay_async._wire.xml import (
    render_response,
    sign_response_fields,
)
from freedompay_async.callbacks import (
    verify_check_request,
    verify_redirect,
    verify_result_notify,
)

from ..callbacks.test_verify import check_pairs, redirect_pairs, result_pairs
from ..helpers import SECRET, SIGNER, error_fields, ok_fields

REQUEST = fp.GatewayRequest("cancel", "http://gw/g2g/cancel", "cancel", 42, (), b"", "x")


def _flip(signature: str, index: int) -> str:
    """``signature`` with the hex digit at ``index`` replaced by another hex digit."""
    old = signature[index]
    new = "0" if old != "0" else "1"
    chars = list(signature)
    chars[index] = new
    return "".join(chars)


def _with_sig(fields: list[tuple[str, str]], signature: str) -> list[tuple[str, str]]:
    return [(k, signature if k == "pg_sig" else v) for k, v in fields]


def _reply(signature_edit: int | None, fields: list[tuple[str, str]]) -> HttpResponse:
    signed = sign_response_fields("cancel", SIGNER, fields, salt="s4lt")
    sig = dict(signed)["pg_sig"]
    assert isinstance(sig, str) and len(sig) == 32
    if signature_edit is not None:
        signed = _with_sig(signed, _flip(sig, signature_edit))  # type: ignore[arg-type]
    return HttpResponse(200, render_response(signed))


EDITS = [pytest.param(-1, id="last"), pytest.param(0, id="first"), pytest.param(16, id="middle")]


def test_the_untouched_reply_verifies() -> None:
    assert interpret(REQUEST, _reply(None, ok_fields(42)), SIGNER).signed is True


@pytest.mark.parametrize("index", EDITS)
def test_an_ok_reply_with_one_wrong_hex_char_is_refused(index: int) -> None:
    with pytest.raises(fp.SignatureVerificationError):
        interpret(REQUEST, _reply(index, ok_fields(42)), SIGNER)


@pytest.mark.parametrize("index", EDITS)
def test_an_error_reply_with_one_wrong_hex_char_is_refused(index: int) -> None:
    with pytest.raises(fp.SignatureVerificationError) as info:
        interpret(REQUEST, _reply(index, error_fields(10033)), SIGNER)
    assert info.value.claimed_code == 10033  # never believed as "already cancelled"
    named = [("pg_payment_id", "42"), *error_fields(10033)]
    with pytest.raises(fp.AlreadyCancelledError) as good:
        interpret(REQUEST, _reply(None, named), SIGNER)
    assert good.value.signed is True and good.value.bound


@pytest.mark.parametrize("edit", ["truncate", "extend"])
def test_a_signature_one_char_short_or_long_is_refused(edit: str) -> None:
    signed = sign_response_fields("cancel", SIGNER, ok_fields(42), salt="s4lt")
    sig = str(dict(signed)["pg_sig"])
    bad = sig[:-1] if edit == "truncate" else sig + "0"
    body = render_response(_with_sig(signed, bad))  # type: ignore[arg-type]
    with pytest.raises(fp.SignatureVerificationError):
        interpret(REQUEST, HttpResponse(200, body), SIGNER)


def test_the_rotating_signer_refuses_the_last_char_change_for_every_key() -> None:
    old = fp.Md5Signer("the-old-key")
    rotating = fp.RotatingSigner(SIGNER, (old,))
    for signer in (SIGNER, old):
        fields = [("pg_a", "1"), ("pg_salt", "s")]
        sig = signer.sign("cancel", fields)
        assert rotating.verify("cancel", fields, sig)
        assert not rotating.verify("cancel", fields, _flip(sig, -1))


# --- callbacks ----------------------------------------------------------------------

SUCCESS_URL = "https://shop.example/pay/success"
RESULT_URL = "https://shop.example/pay/result"
CHECK_URL = "https://shop.example/pay/check"

VERIFIERS = [
    pytest.param(verify_redirect, SUCCESS_URL, redirect_pairs, id="redirect"),
    pytest.param(verify_result_notify, RESULT_URL, result_pairs, id="result"),
    pytest.param(verify_check_request, CHECK_URL, check_pairs, id="check"),
]


def _callback(url: str, pairs: Any, index: int | None) -> list[tuple[str, str]]:
    fields = [*pairs(), ("pg_salt", "s4lt")]
    sig = fp.Md5Signer(SECRET).sign(fp.script_name(url), fields)
    if index is not None:
        sig = _flip(sig, index)
    return [*fields, ("pg_sig", sig)]


@pytest.mark.parametrize(("verify", "url", "pairs"), VERIFIERS)
def test_the_untouched_callback_verifies(verify: object, url: str, pairs: Any) -> None:
    value = verify(url, _callback(url, pairs, None), SIGNER)  # type: ignore[operator]
    assert value.payment_id == 7001


@pytest.mark.parametrize("index", EDITS)
@pytest.mark.parametrize(("verify", "url", "pairs"), VERIFIERS)
def test_a_callback_with_one_wrong_hex_char_is_refused(
    verify: object, url: str, pairs: Any, index: int
) -> None:
    with pytest.raises(fp.SignatureVerificationError):
        verify(url, _callback(url, pairs, index), SIGNER)  # type: ignore[operator]
