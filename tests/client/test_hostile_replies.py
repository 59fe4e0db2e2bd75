"""Hostile gateways over loopback: bombs, absurd headers, costly XML, forged error replies.

Each test names the finding of the review it answers (issue #10, items 1, 2, 4, 5, 7
and the header limits of 8); each one failed on the code before the fix.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest
from aiohttp import web

import freedompay_async as fp
from freedompay_async import HttpResponse, MockTransport
from freedompay_async._wire.replies import retry_after_seconds

from ..helpers import (
    MERCHANT,
    SECRET,
    FakeClock,
    error_fields,
    ok_fields,
    serve,
    signed,
    virtual_spacing,
    xml_reply,
)

CREDS = fp.Credentials(MERCHANT, SECRET)
NO_RETRY = fp.RetryPolicy.none(attempt_timeout=30.0)


def app_answering(handler: web.Handler) -> web.Application:
    app = web.Application()
    app.router.add_post("/g2g/cancel", handler)
    return app


async def cancel_against(
    handler: web.Handler, payment: int = 7, **options: object
) -> fp.CancelResult:
    options.setdefault("retry", NO_RETRY)
    options.setdefault("spacing", virtual_spacing())  # a retry's spacing costs no real time
    async with (
        serve(app_answering(handler)) as url,
        fp.AsyncSession(CREDS, base_url=url, **options) as session,  # type: ignore[arg-type]
    ):
        return await session.cancel(payment, reconcile=False)


# --- 1. decompression bombs ----------------------------------------------------------

#: 64 MiB of zeros: about 64 KiB on the wire, 64 times the default 1 MiB reply cap.
BOMB_SIZE = 64 * 1024 * 1024


def _bomb(encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(bytes(BOMB_SIZE), compresslevel=9)
    return zlib.compress(bytes(BOMB_SIZE), 9)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_bomb_with_content_length_is_capped_after_decompression(
    encoding: str,
) -> None:
    body = _bomb(encoding)
    assert len(body) < 1024 * 1024  # the wire size passes the byte cap; the unpacked does not

    async def bomb(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(
            body=body,
            headers={"Content-Encoding": encoding, "Content-Type": "application/xml"},
        )

    with pytest.raises(fp.MalformedReplyError) as info:
        await cancel_against(bomb)
    assert "exceeds the 1048576-byte limit" in str(info.value)


async def test_no_compression_is_offered_but_a_compressed_reply_still_reads() -> None:
    seen: list[str | None] = []

    async def gzipped(request: web.Request) -> web.Response:
        form = await request.post()
        seen.append(request.headers.get("Accept-Encoding"))
        reply = signed(ok_fields(int(str(form["pg_payment_id"]))))
        return web.Response(
            body=gzip.compress(reply),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/xml"},
        )

    result = await cancel_against(gzipped, 11)
    assert result.payment_id == 11 and result.revoke_status is fp.RevokeStatus.SUCCESS
    assert seen == ["identity"]


# --- 2. Retry-After --------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "9" * 400,  # overflowed float(): a bare OverflowError
        "9" * 5000,  # over int()'s digit limit: a bare ValueError
        "999999",  # eleven days of sleep with deadline=None
        "Fri, 31 Dec 9999 23:59:59 GMT",  # a far-future date
    ],
)
async def test_an_absurd_retry_after_ends_the_call_instead_of_sleeping(value: str) -> None:
    clock = FakeClock()
    calls: list[int] = []

    async def busy(request: web.Request) -> web.Response:
        await request.read()
        calls.append(1)
        return web.Response(status=429, text="slow down", headers={"Retry-After": value})

    policy = fp.RetryPolicy(attempts=4, deadline=None, clock=clock, sleep=clock.sleep)
    with pytest.raises(fp.MalformedReplyError) as info:
        await cancel_against(busy, retry=policy)
    assert info.value.rate_limited and info.value.attempts == 1
    # An unsigned 429 cannot prove a cancel was not acted on: only status can.
    assert info.value.outcome_unknown
    assert clock.sleeps == [] and calls == [1]


async def test_a_reasonable_retry_after_is_still_honoured() -> None:
    clock = FakeClock()
    answers = [web.Response(status=429, headers={"Retry-After": "30"})]

    async def once_busy(request: web.Request) -> web.Response:
        form = await request.post()
        if answers:
            return answers.pop()
        return web.Response(body=signed(ok_fields(int(str(form["pg_payment_id"])))))

    policy = fp.RetryPolicy(attempts=2, deadline=None, clock=clock, sleep=clock.sleep)
    result = await cancel_against(once_busy, retry=policy)
    assert result.attempts == 2 and clock.sleeps[0] >= 30.0


@pytest.mark.parametrize(
    "value",
    [
        "9" * 400,
        "0" * 5000 + "5",
        "-1",
        "1e9",
        "\u0661\u0662",  # Arabic-Indic digits: str.isdigit() but not delay-seconds
        "Mon, 99 Foo 99999999999999999999 99:99:99 GMT",
        "x" * 10_000,
        "",
        "Thu, 01 Jan 1970 00:00:00 GMT",
    ],
)
def test_retry_after_parsing_never_raises(value: str) -> None:
    delay = retry_after_seconds(value, "Mon, 01 Jan 2024 00:00:00 GMT")
    assert delay is None or delay >= 0
    assert retry_after_seconds("0" * 5000 + "5") == 5.0


# --- 4. the deadline covers queueing -------------------------------------------------


async def test_pacing_past_the_deadline_refuses_at_once_and_spends_no_attempt(
    served: tuple[fp.sandbox.SandboxGateway, str],
) -> None:
    gateway, url = served
    clock = FakeClock()
    policy = fp.RetryPolicy(attempts=4, deadline=2.0, clock=clock, sleep=clock.sleep)
    pacing = fp.Pacing(10.0, clock=clock, sleep=clock.sleep)
    async with fp.AsyncSession(CREDS, base_url=url, retry=policy, pacing=pacing) as session:
        first = await session.cancel(1, reconcile=False)
        with pytest.raises(fp.DeadlineExceededError) as info:
            await session.cancel(2, reconcile=False)
    assert first.revoke_status is fp.RevokeStatus.SUCCESS
    assert info.value.attempts == 0 and not info.value.outcome_unknown
    assert not info.value.retryable
    assert clock.now == 1000.0  # nothing slept: the slot was out of reach
    assert gateway.ledger[2].state == "held" and gateway.requests_total == 1


async def test_a_single_attempt_policy_still_honours_its_deadline() -> None:
    clock = FakeClock()

    async def respond(request: fp.GatewayRequest) -> HttpResponse:
        assert request.payment_id is not None
        return HttpResponse(200, signed(ok_fields(request.payment_id)))

    policy = fp.RetryPolicy(attempts=1, deadline=2.0, clock=clock, sleep=clock.sleep)
    async with fp.AsyncSession(
        CREDS,
        base_url="http://gw",
        transport=MockTransport(respond),
        retry=policy,
        pacing=fp.Pacing(10.0, clock=clock, sleep=clock.sleep),
    ) as session:
        await session.cancel(1, reconcile=False)
        with pytest.raises(fp.DeadlineExceededError):
            await session.cancel(2, reconcile=False)


async def test_a_paced_attempt_is_sent_with_its_timeout_cut_to_the_deadline() -> None:
    clock = FakeClock()
    timeouts: list[float | None] = []

    async def respond(request: fp.GatewayRequest) -> HttpResponse:
        timeouts.append(request.timeout)
        assert request.payment_id is not None
        return HttpResponse(200, signed(ok_fields(request.payment_id)))

    policy = fp.RetryPolicy(attempts=4, deadline=5.0, clock=clock, sleep=clock.sleep)
    async with fp.AsyncSession(
        CREDS,
        base_url="http://gw",
        transport=MockTransport(respond),
        retry=policy,
        pacing=fp.Pacing(3.0, clock=clock, sleep=clock.sleep),
    ) as session:
        await asyncio.gather(session.cancel(1, reconcile=False), session.cancel(2, reconcile=False))
    assert timeouts[0] == 5.0
    assert timeouts[1] == pytest.approx(2.0)  # 3 s of the 5 s went to waiting for pacing


async def test_waiting_for_a_connection_slot_past_the_deadline_is_never_sent() -> None:
    gate = asyncio.Event()
    sent: list[int | None] = []

    async def respond(request: fp.GatewayRequest) -> HttpResponse:
        sent.append(request.payment_id)
        await gate.wait()  # the first call holds the only connection slot
        assert request.payment_id is not None
        return HttpResponse(200, signed(ok_fields(request.payment_id)))

    policy = fp.RetryPolicy(attempts=4, deadline=0.2, attempt_timeout=None)
    async with fp.AsyncSession(
        CREDS,
        base_url="http://gw",
        transport=MockTransport(respond),
        retry=policy,
        limits=fp.Limits(max_connections=1),
    ) as session:
        holder = asyncio.create_task(session.cancel(1, reconcile=False))
        while not sent:
            await asyncio.sleep(0)
        waiter = asyncio.create_task(session.cancel(2, reconcile=False))
        await asyncio.wait({waiter}, timeout=10.0)  # a bound for a failing test only
        gate.set()
        await holder
        with pytest.raises(fp.DeadlineExceededError) as info:
            await waiter
    assert sent == [1]
    assert info.value.attempts == 0 and not info.value.outcome_unknown


# --- 5. costly XML under the size cap ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        # Unterminated on purpose: a parser that builds the whole tree before checking
        # reports the missing end tags; one that counts while parsing stops first.
        (b"<response>" + b"<a>" * 100_000, "more than 10000 elements"),
        (b"<response>" + b"<a>" * 15_000, "nested deeper than 32 levels"),
        (b"<response>" + b"<a/>" * 130_000, "more than 10000 elements"),
        (b"<response>" + b"<a>x</a>" * 9_000 + b"<b><c/></b>" * 600, "more than 10000"),
    ],
)
async def test_costly_xml_is_stopped_while_parsing(body: bytes, fragment: str) -> None:
    assert len(body) < 1024 * 1024

    async def costly(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/xml")

    with pytest.raises(fp.MalformedReplyError) as info:
        await cancel_against(costly)
    assert fragment in str(info.value)


async def test_xml_limits_are_settable_through_limits() -> None:
    async def nested(request: web.Request) -> web.Response:
        form = await request.post()
        pid = str(form["pg_payment_id"])
        fields = [*ok_fields(int(pid)), ("pg_extra", [("a", [("b", "c")])])]
        return web.Response(body=signed(fields), content_type="application/xml")

    assert (await cancel_against(nested)).extra["pg_extra"] == [("a", [("b", "c")])]
    with pytest.raises(fp.MalformedReplyError, match="nested deeper than 3"):
        await cancel_against(nested, limits=fp.Limits(max_xml_depth=3))
    with pytest.raises(fp.MalformedReplyError, match="more than 8 elements"):
        await cancel_against(nested, limits=fp.Limits(max_xml_elements=8))


# --- 7. unverifiable error replies -----------------------------------------------------


def _forged(fields: list[tuple[str, str]]) -> bytes:
    return xml_reply([*fields, ("pg_salt", "abc"), ("pg_sig", "0" * 32)])


@pytest.mark.parametrize(
    "body",
    [
        _forged(error_fields(10033)),  # a wrong pg_sig
        xml_reply(error_fields(10033)),  # no pg_sig at all
        _forged(error_fields(11068)),  # even a documented unsigned code, once signed wrongly
    ],
)
async def test_an_unverifiable_error_reply_is_a_signature_error_with_the_claimed_code(
    body: bytes,
) -> None:
    async def forger(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/xml")

    with pytest.raises(fp.FreedomPayError) as info:
        await cancel_against(forger)
    error = info.value
    assert isinstance(error, fp.SignatureVerificationError)
    assert not isinstance(error, fp.GatewayError)
    assert error.claimed_code in (10033, 11068) and error.outcome_unknown


async def test_the_documented_unsigned_not_found_is_still_a_typed_failure() -> None:
    async def not_found(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=xml_reply(error_fields(11068)), content_type="application/xml")

    with pytest.raises(fp.PaymentNotFoundError) as info:
        await cancel_against(not_found)
    assert info.value.signed is False


# --- 8. aiohttp's header limits ------------------------------------------------------


async def test_header_limits_are_settable_through_limits() -> None:
    async def big_header(request: web.Request) -> web.Response:
        form = await request.post()
        reply = signed(ok_fields(int(str(form["pg_payment_id"]))))
        return web.Response(body=reply, headers={"X-Trace": "t" * 12_000})

    with pytest.raises(fp.MalformedReplyError, match="header limits") as info:
        await cancel_against(big_header)
    assert info.value.outcome_unknown  # something came back: the gateway may have acted
    roomy = fp.Limits(max_field_size=16_384, max_line_size=16_384)
    assert (await cancel_against(big_header, 3, limits=roomy)).payment_id == 3


# --- a signed reply with ids too long to be ids ---------------------------------------


@pytest.mark.parametrize("field", ["pg_payment_id", "pg_payment_revoke_id"])
async def test_a_signed_id_of_thousands_of_digits_is_a_malformed_reply(field: str) -> None:
    """int() of over 4,300 digits raises a bare ValueError; the reader refuses first,
    on the general path (first reply) and on the learned-shape path (second) alike."""
    huge = "9" * 5000
    bodies = [
        signed(ok_fields(7)),
        signed([(k, huge if k == field else v) for k, v in ok_fields(7)]),
    ]

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=bodies.pop(0), content_type="application/xml")

    async with (
        serve(app_answering(answer)) as url,
        fp.AsyncSession(CREDS, base_url=url, retry=NO_RETRY, spacing=virtual_spacing()) as session,
    ):
        first = await session.cancel(7, reconcile=False)
        with pytest.raises(fp.FreedomPayError) as info:
            await session.cancel(7, reconcile=False)
    assert first.revoke_id == 8
    assert isinstance(info.value, fp.MalformedReplyError | fp.SignatureVerificationError)
    assert info.value.outcome_unknown
