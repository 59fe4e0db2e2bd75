"""The aiohttp transport over real loopback sockets: bytes on the wire, limits, error mapping,
lifecycle."""

from __future__ import annotations

import asyncio
import logging
import socket

import aiohttp
import pytest
from aiohttp import web

import freedompay_async as fp
from freedompay_async._wire.fields import from_form_pairs

from ..helpers import MERCHANT, SECRET, SIGNER, ok_fields, serve, signed, virtual_spacing

CREDS = fp.Credentials(MERCHANT, SECRET)
NO_RETRY = fp.RetryPolicy.none(attempt_timeout=5.0)


def app_with(handler: web.Handler) -> web.Application:
    app = web.Application()
    app.router.add_post("/g2g/cancel", handler)
    return app


async def ok_handler(request: web.Request) -> web.Response:
    form = await request.post()
    pid = int(str(form["pg_payment_id"]))
    return web.Response(body=signed(ok_fields(pid)), content_type="application/xml")


def parse_multipart(raw: bytes, content_type: str) -> list[tuple[str, str]]:
    """An independent reading of a multipart/form-data body (RFC 7578 framing)."""
    boundary = content_type.split("boundary=", 1)[1].encode()
    parts = raw.split(b"--" + boundary)
    assert parts[0] == b"" and parts[-1] == b"--\r\n"
    out = []
    for part in parts[1:-1]:
        head, _, value = part[2:].partition(b"\r\n\r\n")
        assert value.endswith(b"\r\n")
        name = head.decode().split('name="', 1)[1].rstrip('"')
        out.append((name, value[:-2].decode()))
    return out


async def reply_for(raw: bytes, content_type: str) -> web.Response:
    pid = int(dict(parse_multipart(raw, content_type))["pg_payment_id"])
    return web.Response(body=signed(ok_fields(pid)), content_type="application/xml")


async def test_request_is_signed_multipart_with_our_boundary_and_verifies_server_side() -> None:
    seen: list[tuple[str, bytes, list[tuple[str, str]]]] = []

    async def handler(request: web.Request) -> web.Response:
        raw = await request.read()
        content_type = request.headers["Content-Type"]
        seen.append((content_type, raw, parse_multipart(raw, content_type)))
        return await reply_for(raw, content_type)

    positions = [
        fp.ReceiptPosition(2, "Товар", "450.50", tax_type=3, unit_code=796, gtin="4600000000000")
    ]
    async with (
        serve(app_with(handler)) as url,
        fp.AsyncSession(CREDS, base_url=url, retry=NO_RETRY) as s,
    ):
        await s.cancel(fp.CancelRequest(55, positions), reconcile=False)
    content_type, _raw, pairs = seen[0]
    assert content_type.startswith("multipart/form-data; boundary=fp")
    names = [k for k, _ in pairs]
    assert names == [
        "pg_merchant_id",
        "pg_payment_id",
        "pg_receipt_positions[0][count]",
        "pg_receipt_positions[0][name]",
        "pg_receipt_positions[0][price]",
        "pg_receipt_positions[0][tax_type]",
        "pg_receipt_positions[0][UnitCode]",
        "pg_receipt_positions[0][GTIN]",
        "pg_salt",
        "pg_sig",
    ]
    fields = from_form_pairs(pairs)
    assert SIGNER.verify("cancel", fields, dict(pairs)["pg_sig"])
    assert dict(pairs)["pg_receipt_positions[0][name]"] == "Товар"
    salt = dict(pairs)["pg_salt"]
    assert salt.isalnum() and len(salt) >= 16


async def test_salts_are_fresh_per_request() -> None:
    salts: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        form = await request.post()
        salts.append(str(form["pg_salt"]))
        return await ok_handler(request)

    async with (
        serve(app_with(handler)) as url,
        fp.AsyncSession(CREDS, base_url=url, retry=NO_RETRY) as s,
    ):
        for pid in range(1, 21):
            await s.cancel(pid, reconcile=False)
    assert len(set(salts)) == 20


async def test_a_retry_resends_the_same_bytes() -> None:
    bodies: list[bytes] = []

    async def handler(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        if len(bodies) < 3:
            return web.Response(status=503, text="<html>busy</html>", content_type="text/html")
        return await reply_for(bodies[-1], request.headers["Content-Type"])

    retry = fp.RetryPolicy(wait_initial=0.0, wait_max=0.0)
    async with (
        serve(app_with(handler)) as url,
        fp.AsyncSession(CREDS, base_url=url, retry=retry, spacing=virtual_spacing()) as s,
    ):
        result = await s.cancel(9, reconcile=False)
    assert result.attempts == 3 and len(set(bodies)) == 1


async def test_connection_refused_is_a_connect_error_never_sent() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    async with fp.AsyncSession(CREDS, base_url=f"http://127.0.0.1:{port}", retry=NO_RETRY) as s:
        with pytest.raises(fp.ConnectError) as info:
            await s.cancel(1, reconcile=False)
    assert not info.value.outcome_unknown and info.value.payment_id == 1
    assert isinstance(info.value.__cause__, aiohttp.ClientError)


async def test_a_reply_slower_than_the_attempt_timeout_is_an_ambiguous_timeout() -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await release.wait()
        return await ok_handler(request)

    async with serve(app_with(handler)) as url:
        async with fp.AsyncSession(
            CREDS, base_url=url, retry=fp.RetryPolicy.none(attempt_timeout=0.05)
        ) as s:
            with pytest.raises(fp.ResponseTimeoutError) as info:
                await s.cancel(1, reconcile=False)
        release.set()
    assert info.value.outcome_unknown


async def test_a_dropped_connection_is_connection_lost_and_ambiguous() -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        assert request.transport is not None
        request.transport.abort()
        await asyncio.sleep(0.01)
        return web.Response()

    async with (
        serve(app_with(handler)) as url,
        fp.AsyncSession(CREDS, base_url=url, retry=NO_RETRY) as s,
    ):
        with pytest.raises(fp.ConnectionLostError) as info:
            await s.cancel(1, reconcile=False)
    assert info.value.outcome_unknown


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_reply_over_the_size_cap_is_refused(chunked: bool) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        if not chunked:
            return web.Response(body=b"<response>" + b"x" * 5000 + b"</response>")
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(10):
            await resp.write(b"x" * 1000)
        await resp.write_eof()
        return resp

    limits = fp.Limits(max_reply_bytes=2048)
    async with serve(app_with(handler)) as url:
        async with fp.AsyncSession(CREDS, base_url=url, retry=NO_RETRY, limits=limits) as s:
            with pytest.raises(fp.MalformedReplyError, match="limit"):
                await s.cancel(1, reconcile=False)


async def test_a_truncated_body_is_a_malformed_reply() -> None:
    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
            b"Content-Length: 500\r\n\r\n<response>"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with (
        server,
        fp.AsyncSession(CREDS, base_url=f"http://127.0.0.1:{port}", retry=NO_RETRY) as s,
    ):
        with pytest.raises(fp.MalformedReplyError, match="truncated"):
            await s.cancel(1, reconcile=False)


async def test_a_borrowed_client_session_is_used_and_never_closed() -> None:
    async with serve(app_with(ok_handler)) as url, aiohttp.ClientSession() as client:
        async with fp.AsyncSession(CREDS, base_url=url, session=client, retry=NO_RETRY) as s:
            assert (await s.cancel(3, reconcile=False)).payment_id == 3
        assert not client.closed
        async with client.get(url + "/nothing") as resp:  # still usable
            assert resp.status in (404, 405)


async def test_lifecycle_aclose_is_idempotent_and_use_after_close_raises() -> None:
    async with serve(app_with(ok_handler)) as url:
        s = fp.AsyncSession(CREDS, base_url=url, retry=NO_RETRY)
        assert (await s.cancel(1, reconcile=False)).payment_id == 1  # usable without async with
        await s.aclose()
        await s.aclose()
        assert s.closed
        with pytest.raises(fp.SessionClosedError):
            await s.cancel(2, reconcile=False)
        with pytest.raises(fp.SessionClosedError):
            async with s:
                pass
        with pytest.raises(fp.SessionClosedError):
            s.cancel_many([1])


async def test_transport_and_session_together_are_refused() -> None:
    async with aiohttp.ClientSession() as client:
        with pytest.raises(fp.ConfigurationError):
            fp.AsyncSession(CREDS, session=client, transport=fp.AiohttpTransport())


async def test_logs_never_hold_the_secret_or_a_signature(caplog: pytest.LogCaptureFixture) -> None:
    signatures: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        form = await request.post()
        signatures.append(str(form["pg_sig"]))
        if len(signatures) == 1:
            return web.Response(status=502, text="bad gateway")
        return await ok_handler(request)

    caplog.set_level(logging.DEBUG, logger="freedompay_async")
    retry = fp.RetryPolicy(wait_initial=0.0)
    async with (
        serve(app_with(handler)) as url,
        fp.AsyncSession(CREDS, base_url=url, retry=retry, spacing=virtual_spacing()) as s,
    ):
        await s.cancel(77, reconcile=False)
    text = caplog.text
    assert "payment=77" in text and "retrying" in text
    assert SECRET not in text
    assert all(sig not in text for sig in signatures)
