"""The sandbox gateway, exercised over real loopback sockets."""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web

from freedompay_async import (
    AlreadyCancelledError,
    AsyncSession,
    CancelRequest,
    ConnectionLostError,
    Credentials,
    MalformedReplyError,
    Md5Signer,
    OutcomeState,
    PaymentNotFoundError,
    PaymentSpacing,
    ReceiptPosition,
    ResponseTimeoutError,
    RetryPolicy,
    RevokeStatus,
    SettlePolicy,
    SignatureVerificationError,
    TransientGatewayError,
    UnconfirmedReplyError,
    UnknownMerchantError,
    ValidationError,
    script_name,
)
from freedompay_async._wire.fields import from_form_pairs
from freedompay_async._wire.multipart import (
    multipart_boundary,
    parse_multipart,
    render_multipart,
)
from freedompay_async._wire.xml import parse_xml_fields
from freedompay_async.sandbox import (
    Fault,
    FaultPlan,
    LedgerEntry,
    SandboxGateway,
    add_arguments,
    main,
    run_from_args,
)

from ..helpers import MERCHANT, SECRET, FakeClock, on_clock

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


async def _no_sleep(_delay: float) -> None:
    return None


@pytest.fixture
def url(gateway_url: str) -> str:
    """The shared sandbox's URL, under the short name these tests use."""
    return gateway_url


#: Settling on loopback: status is asked every 0.05-0.2 s for at most 2 s, not 60 s.
FAST_SETTLE = SettlePolicy(window=2.0, poll_initial=0.05, poll_max=0.2)
#: Requests about one payment 0.01 s apart: spacing is not these tests' subject.
SPACING = PaymentSpacing(0.01)


def session(
    gw: SandboxGateway,
    base: str,
    retry: RetryPolicy | None = None,
    *,
    credentials: Credentials | None = None,
    settle: SettlePolicy = FAST_SETTLE,
) -> AsyncSession:
    """A session without retries (unless given), settling fast, requests about one payment
    0.01 s apart; spacing and settling wait in virtual time (these sessions only cancel,
    which status shows at once: no status lag to wait for in real time)."""
    clock = FakeClock()
    return AsyncSession(
        credentials or Credentials(gw.merchant_id, gw.secret_key),
        base_url=base,
        retry=retry if retry is not None else RetryPolicy.none(),
        spacing=on_clock(SPACING, clock),
        settle=on_clock(settle, clock),
    )


def cancel_fields(
    payment_id: str, merchant: str = str(MERCHANT), secret: str = SECRET
) -> list[tuple[str, str]]:
    fields = [("pg_merchant_id", merchant), ("pg_payment_id", payment_id), ("pg_salt", "abc123")]
    return [*fields, ("pg_sig", Md5Signer(secret).sign("cancel", fields))]


async def post_raw(
    base: str, pairs: list[tuple[str, str]], *, urlencoded: bool = False
) -> tuple[aiohttp.ClientResponse, bytes, dict[str, str]]:
    """POST pairs to /g2g/cancel; return the response, its body and its top-level fields."""
    async with aiohttp.ClientSession() as http:
        if urlencoded:
            request = http.post(
                base + "/g2g/cancel",
                data=urlencode(pairs),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        else:
            body, content_type = render_multipart(pairs)
            request = http.post(
                base + "/g2g/cancel", data=body, headers={"Content-Type": content_type}
            )
        async with request as resp:
            body = await resp.read()
    root, fields = parse_xml_fields(body)
    assert root == "response"
    return resp, body, {k: v for k, v in fields if isinstance(v, str)}


def verifies(fields: dict[str, str], secret: str = SECRET, script: str = "cancel") -> bool:
    pairs = list(fields.items())
    return Md5Signer(secret).verify(script, pairs, fields["pg_sig"])


# -- the documented replies ------------------------------------------------------------------


async def test_cancel_reply_is_documented_signed_xml(gateway: SandboxGateway, url: str) -> None:
    resp, body, fields = await post_raw(url, cancel_fields("7"))
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert list(fields) == [
        "pg_payment_id",
        "pg_payment_revoke_id",
        "pg_status",
        "pg_revoke_status",
        "pg_salt",
        "pg_sig",
    ]
    assert fields["pg_payment_id"] == "7"
    assert fields["pg_status"] == "ok"
    assert fields["pg_revoke_status"] == "success"
    assert fields["pg_salt"].isalnum()
    assert verifies(fields)
    assert not verifies(fields, secret="another-key")
    assert gateway.ledger[7].revoke_id == int(fields["pg_payment_revoke_id"])


async def test_salts_are_fresh_and_revoke_ids_monotonic(url: str) -> None:
    replies = [(await post_raw(url, cancel_fields(str(pid))))[2] for pid in (3, 1, 2)]
    revoke_ids = [int(f["pg_payment_revoke_id"]) for f in replies]
    assert revoke_ids == sorted(revoke_ids)
    assert len(set(revoke_ids)) == 3
    assert len({f["pg_salt"] for f in replies}) == 3


async def test_urlencoded_request_is_accepted(gateway: SandboxGateway, url: str) -> None:
    resp, _, fields = await post_raw(url, cancel_fields("5"), urlencoded=True)
    assert resp.status == 200
    assert fields["pg_status"] == "ok"
    assert gateway.ledger[5].state == "cancelled"


async def test_aiohttp_formdata_multipart_is_accepted(gateway: SandboxGateway, url: str) -> None:
    form = aiohttp.FormData(cancel_fields("8"), default_to_multipart=True)
    async with aiohttp.ClientSession() as http, http.post(url + "/g2g/cancel", data=form) as resp:
        assert resp.headers["Content-Type"] == "application/xml; charset=utf-8"
        _, fields = parse_xml_fields(await resp.read())
    assert dict(fields)["pg_status"] == "ok"
    assert gateway.ledger[8].state == "cancelled"


@pytest.mark.parametrize(
    "body",
    [b"no boundary here", b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\nv'],
    ids=["unframed", "truncated"],
)
async def test_malformed_multipart_is_a_400(gateway: SandboxGateway, url: str, body: bytes) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/g2g/cancel", data=body, headers=headers) as resp:
            assert resp.status == 400
    assert gateway.requests_total == 1


def test_multipart_reader_frames_like_php() -> None:
    body = (
        b"preamble\r\n--XyZ\r\n"
        b'Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: form-data; name="a"\r\n'
        b"\r\nline1\r\nmid--XyZ --Xy\r\n\r\n--XyZ\r\n"
        b'content-disposition: form-data; filename="f.txt"; name=b\r\n\r\nbytes\r\n--XyZ\r\n'
        b'Content-Disposition: form-data; name="q\\"uote"\r\n\r\n\r\n--XyZ\r\n'
        b"\r\nnameless\r\n--XyZ\r\n"
        b'Content-Disposition: form-data; name="u"\r\n\r\n\xd0\x9a\xd0\xb7\r\n--XyZ--\r\nepilogue'
    )
    assert parse_multipart(body, "XyZ", skip_nameless=True) == [
        ("a", "line1\r\nmid--XyZ --Xy\r\n"),
        ("b", "bytes"),
        ('q"uote', ""),
        ("u", "Кз"),
    ]
    with pytest.raises(ValidationError):
        parse_multipart(body[:-20], "XyZ", skip_nameless=True)
    assert parse_multipart(b"--XyZ--\r\n", "XyZ") == []
    assert multipart_boundary('multipart/form-data; charset=utf-8; boundary="a b"') == "a b"
    assert multipart_boundary("application/x-www-form-urlencoded") is None
    assert multipart_boundary("multipart/form-data") is None
    ours, content_type = render_multipart(cancel_fields("9"))
    assert parse_multipart(ours, multipart_boundary(content_type) or "") == cancel_fields("9")


async def test_session_cancel_updates_the_ledger(gateway: SandboxGateway, url: str) -> None:
    async with session(gateway, url) as fp:
        result = await fp.cancel(10)
    assert result.revoke_status is RevokeStatus.SUCCESS
    assert result.signed
    entry = gateway.ledger[10]
    assert entry == LedgerEntry(
        10, "cancelled", result.revoke_id, requests=1, cancellations=1, cancel_requests=1
    )
    assert gateway.ledger[11] == LedgerEntry(11, "held", None, requests=0, cancellations=0)
    assert len(gateway.ledger) == 2000
    assert gateway.requests_total == 1


async def test_receipt_positions_verify(gateway: SandboxGateway, url: str) -> None:
    request = CancelRequest(
        12,
        (
            ReceiptPosition(1, "Чай; зелёный", "900", tax_type=3),
            ReceiptPosition(2, "cup & saucer", "150.50", gtin="4601234567890"),
        ),
    )
    async with session(gateway, url) as fp:
        result = await fp.cancel(request)
    assert result.payment_id == 12
    assert gateway.ledger[12].state == "cancelled"


@pytest.mark.parametrize("merchant", ["999", "", None])
async def test_unknown_merchant_is_unsigned_9998(
    gateway: SandboxGateway, url: str, merchant: str | None
) -> None:
    pairs = cancel_fields("4", merchant=merchant or "")
    if merchant is None:
        pairs = [(k, v) for k, v in pairs if k != "pg_merchant_id"]
    _, _, fields = await post_raw(url, pairs)
    assert fields == {
        "pg_status": "error",
        "pg_error_code": "9998",
        "pg_error_description": "Некорректный идентификатор магазина",
    }
    assert gateway.ledger[4].requests == 0
    assert gateway.requests_total == 1


async def test_unknown_merchant_through_the_session(gateway: SandboxGateway, url: str) -> None:
    async with session(gateway, url, credentials=Credentials(MERCHANT + 1, SECRET)) as fp:
        with pytest.raises(UnknownMerchantError) as info:
            await fp.cancel(4)
    assert info.value.code == 9998
    assert not info.value.signed and not info.value.bound
    # Unsigned, so it cannot prove the cancel was not acted on; status (refused the
    # same way) could not settle it either: the outcome stays open.
    assert info.value.outcome_unknown
    assert gateway.ledger[4].state == "held"
    assert gateway.requests_by_operation["status_v2"] == 1


@pytest.mark.parametrize("how", ["wrong-key", "missing", "tampered"])
async def test_bad_signature_is_signed_1100(gateway: SandboxGateway, url: str, how: str) -> None:
    pairs = cancel_fields("6", secret="not-the-key" if how == "wrong-key" else SECRET)
    if how == "missing":
        pairs = pairs[:-1]
    if how == "tampered":
        pairs = [(k, "7" if k == "pg_payment_id" else v) for k, v in pairs]
    _, _, fields = await post_raw(url, pairs)
    assert fields["pg_status"] == "error"
    assert fields["pg_error_code"] == "1100"
    assert fields["pg_error_description"] == "Некорректная подпись запроса"
    assert ISO_UTC.match(fields["pg_datetime"])
    assert list(fields)[-2:] == ["pg_salt", "pg_sig"]
    assert verifies(fields)
    assert gateway.ledger[6].requests == 0
    assert gateway.ledger[7].requests == 0
    assert gateway.ledger[6].state == "held"


async def test_wrong_client_key_gets_1100(gateway: SandboxGateway, url: str) -> None:
    # The 1100 reply is signed with the gateway's key, which this client does not hold:
    # it is a SignatureVerificationError that keeps the claimed code.
    async with session(
        gateway,
        url,
        credentials=Credentials(MERCHANT, "not-the-key"),
        settle=SettlePolicy(window=0.3, poll_initial=0.05, poll_max=0.1),  # never settles
    ) as fp:
        with pytest.raises(SignatureVerificationError) as info:
            await fp.cancel(6)
    assert info.value.claimed_code == 1100
    # Unverifiable, so the outcome stays open: status was asked (its replies cannot be
    # verified either) and the cancel was never sent again.
    assert info.value.outcome_unknown
    assert any("settling cancel" in note for note in info.value.__notes__)
    assert gateway.requests_by_operation["cancel"] == 1
    assert gateway.requests_by_operation["status_v2"] > 1
    assert gateway.ledger[6] == LedgerEntry(6, "held", None, 0, 0)


async def test_invalid_payment_id_is_a_signed_parameter_error(
    gateway: SandboxGateway, url: str
) -> None:
    for bad in ("abc", "", "-5", "0"):
        _, _, fields = await post_raw(url, cancel_fields(bad))
        assert fields["pg_status"] == "error"
        assert fields["pg_error_code"] == "200"
        assert verifies(fields)
    unsigned = [("pg_merchant_id", str(MERCHANT)), ("pg_salt", "s")]
    pairs = [*unsigned, ("pg_sig", Md5Signer(SECRET).sign("cancel", unsigned))]
    _, _, fields = await post_raw(url, pairs)
    assert fields["pg_error_code"] == "200"
    assert gateway.requests_total == 5


async def test_unknown_payment_is_unsigned_11068(gateway: SandboxGateway, url: str) -> None:
    _, _, fields = await post_raw(url, cancel_fields("99999"))
    assert fields == {
        "pg_status": "error",
        "pg_error_code": "11068",
        "pg_error_description": "Payment not found.",
    }
    async with session(gateway, url) as fp:
        with pytest.raises(PaymentNotFoundError) as info:
            await fp.cancel(99999)
    assert not info.value.signed
    assert 99999 not in gateway.ledger


async def test_second_cancel_is_signed_10033(gateway: SandboxGateway, url: str) -> None:
    async with session(gateway, url) as fp:
        first = await fp.cancel(20)
        with pytest.raises(UnconfirmedReplyError) as raw:
            await fp.cancel(20, reconcile=False)
        with pytest.raises(AlreadyCancelledError) as info:
            await fp.cancel(20)
    # The 10033 names no payment: alone, it is only a claim.
    assert raw.value.claimed_code == 10033 and raw.value.outcome_unknown
    assert info.value.code == 10033
    assert info.value.signed
    assert info.value.description == "Ошибка отмены платежа: отмена уже была произведена ранее"
    # believed once a status reply about payment 20 showed it revoked
    assert info.value.bound and not info.value.outcome_unknown
    # the later requests came after the first's intact answer: the ledger says so
    assert gateway.ledger[20] == LedgerEntry(
        20,
        "cancelled",
        first.revoke_id,
        4,
        1,
        status_requests=1,
        cancel_requests=3,
        cancels_after_told=2,
    )
    assert gateway.stats()["cancels_after_told"] == 2


async def test_auto_hold_creates_unknown_payments() -> None:
    gw = SandboxGateway(auto_hold=True)
    async with gw.serve() as base, session(gw, base) as fp:
        result = await fp.cancel(123456789)
        with pytest.raises(AlreadyCancelledError):
            await fp.cancel(123456789)
    assert result.revoke_status is RevokeStatus.SUCCESS
    # two cancels, and the status query that confirmed the second one's 10033
    assert gw.ledger[123456789].requests == 3
    assert gw.ledger[123456789].status_requests == 1
    assert gw.ledger[123456789].cancellations == 1


async def test_pending_ids_answer_pending_but_cancel() -> None:
    gw = SandboxGateway(pending_ids=[2, 3])
    gw.add_payments([1, 2, 3])
    async with gw.serve() as base, session(gw, base) as fp:
        pending = await fp.cancel(2, reconcile=False)
        settled = await fp.cancel(3)  # pending is settled by status, which shows it revoked
        done = await fp.cancel(1)
    assert pending.revoke_status is RevokeStatus.PENDING
    assert settled.revoke_status is RevokeStatus.SUCCESS and settled.confirmed_by_status
    assert settled.revoke_id == gw.ledger[3].revoke_id
    assert done.revoke_status is RevokeStatus.SUCCESS and not done.confirmed_by_status
    assert gw.ledger[2].state == gw.ledger[3].state == "cancelled"
    assert gw.ledger[3].cancel_requests == 1 and gw.ledger[3].status_requests == 1


async def test_other_routes(gateway: SandboxGateway, url: str) -> None:
    async with session(gateway, url) as fp:
        await fp.cancel(1)
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "/status/healthcheck") as resp:
            health = await resp.json()
        async with http.get(url + "/sandbox/stats") as resp:
            stats = await resp.json()
        async with http.get(url + "/g2g/cancel") as resp:
            assert resp.status == 405
    assert health["status"] == "ok"
    assert stats == {
        "requests_total": 1,
        "payments": 2000,
        "held": 1999,
        "cancelled": 1,
        "cleared": 0,
        "new": 0,
        "failed": 0,
        "cancelled_more_than_once": 0,
        "cleared_more_than_once": 0,
        "cancels_after_told": 0,
        "clearings": 0,
        "refunds": 0,
    }


def test_secret_is_kept_out_of_reprs() -> None:
    gw = SandboxGateway(secret_key="do-not-print-me", faults=FaultPlan(rate=0.5))
    assert "do-not-print-me" not in repr(gw)
    assert "do-not-print-me" not in repr(gw.ledger)
    assert str(gw.merchant_id) in repr(gw)
    assert len(SandboxGateway().secret_key) == 32
    assert SandboxGateway().secret_key != SandboxGateway().secret_key


def test_constructor_and_inject_validate() -> None:
    with pytest.raises(ValueError):
        SandboxGateway(0)
    with pytest.raises(ValueError):
        SandboxGateway(secret_key="")
    with pytest.raises(TypeError):
        SandboxGateway().inject(1, "reset_before")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SandboxGateway().add_payments(["x1"])  # type: ignore[list-item]


def test_ledger_is_read_only() -> None:
    gw = SandboxGateway()
    gw.add_payments([1])
    ledger: Any = gw.ledger
    with pytest.raises(TypeError):
        ledger[1] = LedgerEntry(1, "cancelled", 1, 1, 1)
    assert gw.ledger[1].state == "held"


# -- faults ------------------------------------------------------------------------------------


def _expect_reset(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionLostError) and exc.maybe_processed


def _expect_503(exc: BaseException) -> bool:
    return isinstance(exc, MalformedReplyError) and exc.http_status == 503


def _expect_429(exc: BaseException) -> bool:
    return isinstance(exc, MalformedReplyError) and exc.rate_limited and exc.retry_after == 3


def _expect_9999(exc: BaseException) -> bool:
    return isinstance(exc, TransientGatewayError) and exc.code == 9999 and exc.signed


def _expect_garbage(exc: BaseException) -> bool:
    return isinstance(exc, MalformedReplyError) and exc.http_status == 200


def _expect_timeout(exc: BaseException) -> bool:
    return isinstance(exc, ResponseTimeoutError)


def _expect_forged(exc: BaseException) -> bool:
    return isinstance(exc, SignatureVerificationError)


FAULT_CASES: list[tuple[Fault, Callable[[BaseException], bool], str]] = [
    (Fault.RESET_BEFORE, _expect_reset, "held"),
    (Fault.RESET_AFTER, _expect_reset, "cancelled"),
    (Fault.HTTP_503, _expect_503, "held"),
    (Fault.HTTP_429, _expect_429, "held"),
    (Fault.ERROR_9999, _expect_9999, "held"),
    (Fault.GARBAGE, _expect_garbage, "cancelled"),
    (Fault.SLOW, _expect_timeout, "cancelled"),
    (Fault.FORGED, _expect_forged, "cancelled"),
]


@pytest.mark.parametrize(
    ("fault", "expected", "state"), FAULT_CASES, ids=lambda v: getattr(v, "__name__", str(v))
)
async def test_each_fault_as_the_client_sees_it(
    fault: Fault, expected: Callable[[BaseException], bool], state: str
) -> None:
    # rate 0: the plan only supplies slow_delay and retry_after to the scripted fault.
    gw = SandboxGateway(faults=FaultPlan(rate=0.0, slow_delay=5.0, retry_after=3))
    gw.add_payments([1, 2])
    gw.inject(1, fault)
    # The slow reply waits 5 s; 0.5 s is ample for a busy machine to deliver the request
    # over loopback (a few ms when idle).
    retry = RetryPolicy.none(attempt_timeout=0.5 if fault is Fault.SLOW else 20.0)
    async with gw.serve() as base, session(gw, base, retry) as fp:
        with pytest.raises(Exception) as info:
            await fp.cancel(1, reconcile=False)  # what the reply alone says
        assert expected(info.value), repr(info.value)
        # The connection pool survives: the next call on the same session is answered.
        await fp.cancel(2)
    entry = gw.ledger[1]
    assert entry.state == state
    assert entry.requests == 1
    assert entry.cancellations == (1 if state == "cancelled" else 0)
    assert gw.ledger[2].state == "cancelled"


async def test_forged_reply_for_an_already_cancelled_payment() -> None:
    gw = SandboxGateway()
    gw.add_payments([1])
    gw.inject(1, None, Fault.FORGED, Fault.FORGED)
    async with gw.serve() as base, session(gw, base) as fp:
        first = await fp.cancel(1)
        with pytest.raises(SignatureVerificationError):
            await fp.cancel(1, reconcile=False)
        # The forged "ok" is never believed; status, not the forgery, says it is revoked.
        settled = await fp.cancel(1)
    assert settled.confirmed_by_status and settled.revoke_status is RevokeStatus.SUCCESS
    assert settled.revoke_id == first.revoke_id == gw.ledger[1].revoke_id
    assert gw.ledger[1].cancellations == 1
    assert gw.ledger[1].cancel_requests == 3 and gw.ledger[1].status_requests == 1


async def test_scripted_faults_take_precedence_over_the_plan() -> None:
    gw = SandboxGateway(faults=FaultPlan(rate=1.0, kinds=(Fault.HTTP_503,)))
    gw.add_payments([1])
    gw.inject(1, None, Fault.ERROR_9999)
    async with gw.serve() as base, session(gw, base) as fp:
        # reconcile=False: the plan would fault status queries too; each reply is the subject
        result = await fp.cancel(1, reconcile=False)  # scripted None: answered despite rate=1
        with pytest.raises(TransientGatewayError):
            await fp.cancel(1, reconcile=False)  # scripted 9999, not the plan's 503
        with pytest.raises(MalformedReplyError) as info:
            await fp.cancel(1, reconcile=False)  # script exhausted: the plan's 503
        gw.faults = None  # settable at any time
        with pytest.raises(AlreadyCancelledError):
            await fp.cancel(1)  # answered 10033, confirmed by status
    assert result.revoke_status is RevokeStatus.SUCCESS
    assert info.value.http_status == 503
    assert gw.ledger[1].requests == 5 and gw.ledger[1].status_requests == 1


async def test_a_retry_answered_10033_after_reset_after_is_confirmed_by_status() -> None:
    gw = SandboxGateway()
    gw.add_payments([1, 2])
    gw.inject(1, Fault.RESET_AFTER)
    gw.inject(2, Fault.HTTP_503, Fault.RESET_BEFORE)
    retry = RetryPolicy(attempts=4, sleep=_no_sleep)
    async with gw.serve() as base, session(gw, base, retry) as fp:
        confirmed = await fp.cancel(1)
        third_time = await fp.cancel(2)
    # The retry's 10033 names no payment, so it does not confirm the lost attempt;
    # status does, and no third cancel is sent.
    assert confirmed.confirmed_by_status and not confirmed.confirmed_on_retry
    assert confirmed.attempts == 3
    assert not third_time.confirmed_on_retry and not third_time.confirmed_by_status
    assert third_time.attempts == 3
    # the retry came after a lost answer: asking again was right, not "after told"
    assert gw.ledger[1] == LedgerEntry(
        1, "cancelled", gw.ledger[1].revoke_id, 3, 1, status_requests=1, cancel_requests=2
    )
    assert gw.ledger[2].requests == 3
    assert gw.ledger[2].cancellations == 1


async def test_faults_apply_only_to_requests_that_would_be_processed() -> None:
    gw = SandboxGateway(faults=FaultPlan(rate=1.0, kinds=(Fault.RESET_BEFORE,)))
    gw.add_payments([1])
    async with gw.serve() as base:
        _, _, not_found = await post_raw_for(gw, base, "77")
        _, _, bad_sig = await post_raw_for(gw, base, "1", secret="wrong")
    assert not_found["pg_error_code"] == "11068"
    assert bad_sig["pg_error_code"] == "1100"
    assert gw.ledger[1].requests == 0
    assert gw.requests_total == 2


async def post_raw_for(
    gw: SandboxGateway, base: str, payment_id: str, secret: str | None = None
) -> tuple[aiohttp.ClientResponse, bytes, dict[str, str]]:
    pairs = cancel_fields(payment_id, str(gw.merchant_id), secret or gw.secret_key)
    return await post_raw(base, pairs)


# -- the fault plan ------------------------------------------------------------------------------


def test_fault_plan_is_deterministic_and_order_independent() -> None:
    plan = FaultPlan(rate=0.3, seed=42)
    keys = [(pid, n) for pid in range(1, 201) for n in range(3)]
    forward = {key: plan.choose(*key) for key in keys}
    shuffled = keys[:]
    random.Random(1).shuffle(shuffled)
    again = FaultPlan(rate=0.3, seed=42)
    backward = {key: again.choose(*key) for key in shuffled}
    assert forward == backward
    other_seed = {key: FaultPlan(rate=0.3, seed=43).choose(*key) for key in keys}
    assert other_seed != forward
    chosen = [f for f in forward.values() if f is not None]
    assert 0.2 < len(chosen) / len(keys) < 0.4
    assert set(chosen) == set(FaultPlan.DEFAULT_KINDS)  # the money kinds are opt-in


def test_fault_plan_rate_and_kinds() -> None:
    assert all(FaultPlan(rate=0.0).choose(pid, 0) is None for pid in range(1, 500))
    always = FaultPlan(rate=1.0, kinds=[Fault.GARBAGE, Fault.SLOW])
    assert always.kinds == (Fault.GARBAGE, Fault.SLOW)
    picks = {always.choose(pid, n) for pid in range(1, 100) for n in range(2)}
    assert picks == {Fault.GARBAGE, Fault.SLOW}
    assert FaultPlan(rate=1.0, kinds=()).choose(1, 0) is None
    with pytest.raises(ValueError):
        FaultPlan(rate=1.5)
    with pytest.raises(ValueError):
        FaultPlan(slow_delay=-1)
    with pytest.raises(TypeError):
        FaultPlan(kinds=("slow",))  # type: ignore[arg-type]
    assert Fault.parse("HTTP_503") is Fault.HTTP_503
    with pytest.raises(ValueError):
        Fault.parse("meteor")


async def _observe(gw: SandboxGateway, base: str, order: list[int]) -> dict[tuple[int, int], str]:
    seen: dict[tuple[int, int], str] = {}
    async with session(gw, base) as fp:
        for attempt in range(2):
            for pid in order:
                try:
                    await fp.cancel(pid, reconcile=False)  # the plan's faults, as they come
                    seen[pid, attempt] = "ok"
                except Exception as exc:
                    seen[pid, attempt] = type(exc).__name__
    return seen


async def test_same_plan_same_faults_whatever_the_arrival_order() -> None:
    kinds = tuple(f for f in FaultPlan.DEFAULT_KINDS if f is not Fault.SLOW)
    plan = FaultPlan(rate=0.5, kinds=kinds, seed=9)
    ids = list(range(1, 31))
    runs = []
    for order in (ids, ids[::-1]):
        gw = SandboxGateway(faults=plan)
        gw.add_payments(ids)
        async with gw.serve() as base:
            runs.append((await _observe(gw, base, order), dict(gw.ledger)))
    (seen_a, ledger_a), (seen_b, ledger_b) = runs
    assert seen_a == seen_b
    assert {p: (e.state, e.requests) for p, e in ledger_a.items()} == {
        p: (e.state, e.requests) for p, e in ledger_b.items()
    }
    assert len(set(seen_a.values())) > 2  # the plan really did inject several kinds


async def test_concurrent_batch_with_random_faults_never_cancels_twice() -> None:
    kinds = tuple(f for f in FaultPlan.DEFAULT_KINDS if f is not Fault.SLOW)
    gw = SandboxGateway(faults=FaultPlan(rate=0.3, kinds=kinds, seed=3))
    ids = range(1, 401)
    gw.add_payments(ids)
    retry = RetryPolicy(attempts=6, sleep=_no_sleep)
    async with gw.serve() as base, session(gw, base, retry) as fp:
        outcomes = [o async for o in fp.cancel_many(ids, concurrency=100)]
    assert len(outcomes) == 400
    ledger = gw.ledger
    revoke_ids = [ledger[pid].revoke_id for pid in ids if ledger[pid].state == "cancelled"]
    assert len(revoke_ids) == len(set(revoke_ids))
    assert all(ledger[pid].cancellations <= 1 for pid in ids)
    for outcome in outcomes:
        assert outcome.payment_id is not None
        state = ledger[outcome.payment_id].state
        if outcome.state in (OutcomeState.CANCELLED, OutcomeState.ALREADY_CANCELLED):
            assert state == "cancelled"
        elif outcome.state is OutcomeState.FAILED:
            assert state == "held"
        else:
            assert outcome.state is OutcomeState.UNKNOWN
            assert outcome.error is not None and outcome.error.outcome_unknown
    assert sum(o.state is OutcomeState.CANCELLED for o in outcomes) > 300
    assert gw.requests_total == sum(ledger[pid].requests for pid in ids)
    assert gw.requests_total > 400


# -- callbacks to the merchant -------------------------------------------------------------------


class Merchant:
    """A tiny merchant site that records what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, list[tuple[str, str]], list[tuple[str, str]]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post() if request.method == "POST" else None
        form_pairs = [(k, str(v)) for k, v in form.items()] if form is not None else []
        self.received.append(
            (request.method, request.path, list(request.query.items()), form_pairs)
        )
        return web.Response(text="<response><pg_status>ok</pg_status></response>", status=201)

    def last(self) -> tuple[str, str, list[tuple[str, str]], list[tuple[str, str]]]:
        return self.received[-1]


@pytest.fixture
async def merchant() -> AsyncIterator[tuple[Merchant, str]]:
    site = Merchant()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", site.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    try:
        yield site, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def verify_pairs(pairs: list[tuple[str, str]], script: str, secret: str = SECRET) -> bool:
    fields = from_form_pairs(pairs)
    sig = dict(pairs)["pg_sig"]
    return Md5Signer(secret).verify(script, fields, sig)


async def test_send_redirect_post(merchant: tuple[Merchant, str]) -> None:
    site, base = merchant
    gw = SandboxGateway(MERCHANT, SECRET)
    status, body = await gw.send_redirect(
        base + "/shop/success.php?from=fp",
        payment_id=77,
        order_id="A-1",
        params={"lang": "ru", "note": "Привет & co"},
    )
    assert (status, body) == (201, b"<response><pg_status>ok</pg_status></response>")
    method, path, query, form = site.last()
    assert (method, path, query) == ("POST", "/shop/success.php", [("from", "fp")])
    assert [k for k, _ in form] == [
        "pg_order_id",
        "pg_payment_id",
        "pg_payment_system",
        "pg_testing_mode",
        "lang",
        "note",
        "pg_salt",
        "pg_sig",
    ]
    assert dict(form)["note"] == "Привет & co"
    assert verify_pairs(form, "success.php")
    assert not verify_pairs(form, "success.php", secret="other")


async def test_send_redirect_failure_get_appends_to_the_query(
    merchant: tuple[Merchant, str],
) -> None:
    site, base = merchant
    gw = SandboxGateway(MERCHANT, SECRET)
    await gw.send_redirect(
        base + "/fail?lang=kk",
        payment_id=78,
        order_id="A 2",
        success=False,
        method="get",
        error_description="Карта отклонена",
    )
    method, path, query, form = site.last()
    assert (method, path, form) == ("GET", "/fail", [])
    assert query[0] == ("lang", "kk")
    sent = query[1:]
    assert [k for k, _ in sent] == [
        "pg_order_id",
        "pg_payment_id",
        "pg_payment_system",
        "pg_testing_mode",
        "pg_error_code",
        "pg_error_description",
        "pg_salt",
        "pg_sig",
    ]
    assert dict(sent)["pg_order_id"] == "A 2"
    assert dict(sent)["pg_error_code"] == "10000"
    assert dict(sent)["pg_error_description"] == "Карта отклонена"
    assert verify_pairs(sent, "fail")


async def test_send_redirect_unsigned_and_tampered(merchant: tuple[Merchant, str]) -> None:
    site, base = merchant
    gw = SandboxGateway(MERCHANT, SECRET)
    await gw.send_redirect(base + "/ok", payment_id=1, order_id="o", signed=False)
    assert [k for k, _ in site.last()[3]] == [
        "pg_order_id",
        "pg_payment_id",
        "pg_payment_system",
        "pg_testing_mode",
    ]

    def swap_order(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(k, "other-order" if k == "pg_order_id" else v) for k, v in pairs]

    await gw.send_redirect(
        base + "/ok", payment_id=1, order_id="o", success=False, error_code=9, tamper=swap_order
    )
    form = site.last()[3]
    assert dict(form)["pg_order_id"] == "other-order"
    assert dict(form)["pg_error_code"] == "9"
    assert not verify_pairs(form, "ok")
    with pytest.raises(ValueError):
        await gw.send_redirect(base + "/ok", payment_id=1, order_id="o", method="PUT")
    with pytest.raises(ValueError):
        await gw.send_redirect(base + "/ok", payment_id=1, order_id="o", params={"pg_x": "1"})


async def test_send_result_notify(merchant: tuple[Merchant, str]) -> None:
    site, base = merchant
    gw = SandboxGateway(MERCHANT, SECRET)
    status, _ = await gw.send_result_notify(
        base + "/callbacks/result",
        payment_id=5,
        order_id="ord-5",
        amount="250.50",
        result=0,
        can_reject=False,
        params={"cart": "9"},
    )
    assert status == 201
    method, path, _, form = site.last()
    assert (method, path) == ("POST", "/callbacks/result")
    names = [k for k, _ in form]
    assert names == [
        "pg_order_id",
        "pg_payment_id",
        "pg_amount",
        "pg_currency",
        "pg_net_amount",
        "pg_ps_amount",
        "pg_ps_full_amount",
        "pg_ps_currency",
        "pg_description",
        "pg_result",
        "pg_payment_date",
        "pg_can_reject",
        "pg_testing_mode",
        "pg_payment_method",
        "pg_captured",
        "pg_payment_system",
        "pg_user_phone",
        "pg_need_phone_notification",
        "pg_user_contact_email",
        "pg_need_email_notification",
        "pg_card_pan",
        "pg_card_brand",
        "pg_card_exp",
        "pg_card_owner",
        "cart",
        "pg_salt",
        "pg_sig",
    ]
    values = dict(form)
    assert values["pg_amount"] == "250.50"
    assert values["pg_currency"] == "KZT"
    assert values["pg_result"] == "0"
    assert values["pg_can_reject"] == "0"
    assert values["pg_testing_mode"] == "1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", values["pg_payment_date"])
    assert verify_pairs(form, "result")
    assert script_name(base + "/callbacks/result") == "result"


async def test_send_check(merchant: tuple[Merchant, str]) -> None:
    site, base = merchant
    gw = SandboxGateway(MERCHANT, SECRET)
    await gw.send_check(base + "/check.php", payment_id=6, order_id="o6", currency="USD")
    _, path, _, form = site.last()
    assert path == "/check.php"
    assert [k for k, _ in form] == [
        "pg_order_id",
        "pg_payment_id",
        "pg_amount",
        "pg_currency",
        "pg_ps_amount",
        "pg_ps_currency",
        "pg_ps_full_amount",
        "pg_payment_system",
        "pg_testing_mode",
        "pg_user_phone",
        "pg_need_phone_notification",
        "pg_user_contact_email",
        "pg_need_email_notification",
        "pg_salt",
        "pg_sig",
    ]
    assert dict(form)["pg_currency"] == "USD"
    assert dict(form)["pg_payment_system"] == "EPAYWEBUSD"
    assert verify_pairs(form, "check.php")


# -- the command line ------------------------------------------------------------------------


def test_add_arguments_parses_every_option() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--port=0",
            "--merchant-id=77",
            "--secret-key=k",
            "--payments=100:3",
            "--auto-hold",
            "--fault-rate=0.25",
            "--faults=slow,HTTP_503",
            "--seed=5",
            "--slow-delay=0.5",
        ]
    )
    assert args.payments == range(100, 103)
    assert args.faults == (Fault.SLOW, Fault.HTTP_503)
    assert (args.merchant_id, args.secret_key, args.auto_hold) == (77, "k", True)
    assert (args.fault_rate, args.seed, args.slow_delay) == (0.25, 5, 0.5)
    defaults = parser.parse_args(["--port", "8080"])
    assert defaults.host == "127.0.0.1"
    assert defaults.faults == FaultPlan.DEFAULT_KINDS
    assert defaults.secret_key is None


@pytest.mark.parametrize(
    "argv",
    [[], ["--port", "x"], ["--port=0", "--payments=5"], ["--port=0", "--faults=meteor"]],
)
def test_main_rejects_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


async def test_run_from_args_serves_until_cancelled(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--port=0", "--payments=10:2", "--secret-key=cli-key"])
    task = asyncio.create_task(run_from_args(args))
    out = ""
    async with asyncio.timeout(30):
        while out.count("\n") < 3:
            await asyncio.sleep(0.01)
            out += capsys.readouterr().out
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    assert lines["merchant_id"] == "1000"
    assert lines["secret_key"] == "cli-key"
    gw = SandboxGateway(1000, "cli-key")
    async with session(gw, lines["url"]) as fp:
        result = await fp.cancel(11)
    assert result.payment_id == 11
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _default_sigint() -> None:
    """In the child: SIGINT back to its default, as from a terminal. A test run started
    in the background of a shell ignores SIGINT, and a child would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_python_dash_m_sandbox(stop: signal.Signals) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "freedompay_async.sandbox",
        "--port",
        "0",
        "--payments",
        "500:10",
        "--merchant-id",
        "2024",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_default_sigint,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(60):
            lines = [(await proc.stdout.readline()).decode() for _ in range(3)]
        printed = dict(line.rstrip("\n").split(": ", 1) for line in lines)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", printed["url"])
        assert not printed["url"].endswith(":0")
        assert printed["merchant_id"] == "2024"
        assert re.fullmatch(r"[0-9a-f]{32}", printed["secret_key"])
        client = SandboxGateway(2024, printed["secret_key"])
        async with session(client, printed["url"]) as fp:
            result = await fp.cancel(505)
            with pytest.raises(PaymentNotFoundError):
                await fp.cancel(510)
        assert result.revoke_status is RevokeStatus.SUCCESS
    finally:
        if proc.returncode is None:
            proc.send_signal(stop)
        async with asyncio.timeout(60):
            _, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    assert b"secret" not in stderr


def test_main_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit) as info:
            main(["--port", str(port)])
    assert info.value.code == 1
    captured = capsys.readouterr()
    assert f"cannot serve on 127.0.0.1:{port}" in captured.err
    assert "secret_key" not in captured.out


def test_command_line_sets_every_fault_plan_option() -> None:
    import argparse

    from freedompay_async.sandbox import add_arguments
    from freedompay_async.sandbox._command import gateway_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--port",
            "0",
            "--fault-rate",
            "0.25",
            "--faults",
            "http_429,slow",
            "--seed",
            "9",
            "--slow-delay",
            "0.7",
            "--retry-after",
            "4",
        ]
    )
    plan = gateway_from_args(args).faults
    assert plan == FaultPlan(
        rate=0.25, kinds=(Fault.HTTP_429, Fault.SLOW), seed=9, slow_delay=0.7, retry_after=4
    )
