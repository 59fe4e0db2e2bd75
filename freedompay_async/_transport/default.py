"""AiohttpTransport: the production transport over one aiohttp ``ClientSession``.

Sends a prepared request, reads a size-capped reply, and maps every aiohttp and OS
failure to a library error through one table (``_ERROR_MAP``), keeping the original as
``__cause__``.

Reply bodies are always read as a stream and stopped at ``Limits.max_reply_bytes``
counted **after decompression**, with or without a ``Content-Length`` (a 1 MB gzip
body that unpacks to 1,000 MiB is refused after the first MiB). No compression is
offered (``Accept-Encoding: identity``: replies are a few hundred bytes); a gateway that
compresses anyway is unpacked by aiohttp in bounded steps as the stream is read.

Each attempt's time limit (``GatewayRequest.timeout``, connect to last body byte) is
kept by the transport's :class:`~freedompay_async._transport._timer.AttemptTimer`, one
loop timer for all requests in flight, instead of aiohttp's per-request timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import aiohttp
from aiohttp import hdrs
from multidict import CIMultiDict

from .._config import Limits
from .._exceptions import (
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    FreedomPayError,
    MalformedReplyError,
    ResponseTimeoutError,
    SessionClosedError,
    excerpt,
)
from .._wire.messages import (
    GatewayRequest,
    HttpResponse,
)
from ._timer import AttemptTimer
from .base import ByteExchange

__all__ = ["AiohttpTransport", "map_error"]

_Describe = Callable[[BaseException, float | None], str]
_IDENTITY = (hdrs.ACCEPT_ENCODING, "identity")  # replies are small: no compression asked


def _lost(exc: BaseException, _timeout: float | None) -> str:
    return f"connection lost: {type(exc).__name__}"


#: aiohttp/OS failure -> (library error, message). The first matching row wins, so a
#: subclass stands before its base. ConnectTimeoutError and ConnectError mean the
#: request was never sent; the others may follow a request the gateway received.
_ERROR_MAP: tuple[tuple[type[BaseException], type[FreedomPayError], _Describe], ...] = (
    (aiohttp.ConnectionTimeoutError, ConnectTimeoutError,
     lambda exc, _: "timed out connecting to the gateway"),
    (TimeoutError, ResponseTimeoutError, lambda exc, timeout: f"no reply within {timeout}s"),
    (aiohttp.ClientConnectorError, ConnectError,
     lambda exc, _: f"cannot connect to the gateway: {getattr(exc, 'strerror', None) or exc}"),
    (aiohttp.ClientPayloadError, MalformedReplyError, lambda exc, _: "reply body truncated"),
    # With raise_for_status off, aiohttp raises this only when it cannot parse the reply's
    # status line or headers (e.g. over Limits.max_line_size / max_field_size / max_headers).
    (aiohttp.ClientResponseError, MalformedReplyError,
     lambda exc, _: "reply headers unreadable or over the Limits header limits"),
    (aiohttp.ServerDisconnectedError, ConnectionLostError, _lost),
    (aiohttp.ClientOSError, ConnectionLostError, _lost),
    (ConnectionError, ConnectionLostError, _lost),
    (aiohttp.InvalidURL, ConfigurationError, lambda exc, _: f"invalid gateway URL: {exc}"),
    (aiohttp.ClientError, ConnectionLostError,
     lambda exc, _: f"HTTP exchange failed: {type(exc).__name__}"),
    (OSError, ConnectionLostError, _lost),
)  # fmt: skip


def map_error(
    exc: BaseException, timeout: float | None, payment_id: int | None
) -> FreedomPayError:
    """The library error for an aiohttp/OS failure of an attempt limited to ``timeout``
    seconds about ``payment_id`` (the first matching row)."""
    target: type[FreedomPayError] = ConnectionLostError
    message = _lost(exc, timeout)  # not reached: OSError, TimeoutError, ClientError have rows
    for source, error_class, describe in _ERROR_MAP:
        if isinstance(exc, source):
            target, message = error_class, describe(exc, timeout)
            break
    if target is ConfigurationError:
        return ConfigurationError(message)
    return target(message, payment_id=payment_id)


class AiohttpTransport:
    """Transport over one aiohttp ``ClientSession``: created and owned, or borrowed.

    A borrowed session is never closed here; its own middlewares, tracing and proxy
    settings apply. An owned session gets a connector with ``limit_per_host`` and
    keep-alive tuned from :class:`Limits`, and a ``sock_connect`` timeout.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        limits: Limits | None = None,
        middlewares: Sequence[aiohttp.ClientMiddlewareType] = (),
    ) -> None:
        self._limits = limits or Limits()
        self._borrowed = session
        self._middlewares = tuple(middlewares)
        self._session: aiohttp.ClientSession | None = session
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._limits.connect_timeout)
        self._timer = AttemptTimer()
        # Request headers per content type, built once: a session's cancels share one
        # boundary. An owned session sends Accept-Encoding as a default header.
        self._headers: dict[str, CIMultiDict[str]] = {}
        self._fixed: tuple[tuple[str, str], ...] = () if session is None else (_IDENTITY,)
        self._closed = False

    def _open(self) -> aiohttp.ClientSession:
        # Created lazily, inside the running loop (aiohttp 3.14 requires one).
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections,
            limit_per_host=self._limits.max_connections,
            keepalive_timeout=self._limits.keepalive_timeout,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            cookie_jar=aiohttp.DummyCookieJar(),
            middlewares=self._middlewares,
            headers=(_IDENTITY,),
            raise_for_status=False,
            auto_decompress=True,
            max_line_size=self._limits.max_line_size,
            max_field_size=self._limits.max_field_size,
            max_headers=self._limits.max_headers,
        )
        self._session = session
        return session

    async def send(self, request: GatewayRequest) -> HttpResponse:
        """POST the request's bytes; map every aiohttp/OS failure to a library error."""
        got = await self._exchange(
            request.url, request.body, request.content_type, request.timeout, request.payment_id
        )
        return got if isinstance(got, HttpResponse) else HttpResponse(200, got)

    def byte_lane(self) -> ByteExchange | None:
        """The exchange behind :meth:`send` from a request's parts, for the session's
        direct cancel path; None when a subclass overrides ``send`` (then every request
        must go through it)."""
        return self._exchange if type(self).send is AiohttpTransport.send else None

    async def _exchange(
        self,
        url: str,
        body: bytes,
        content_type: str,
        limit: float | None,
        payment_id: int | None,
    ) -> bytes | HttpResponse:
        """``send`` from the request's parts (``limit``: its timeout): the body alone
        for a 200 reply, else the whole response (see :meth:`byte_lane`): the direct
        cancel path's common case builds neither a request nor a response value."""
        if self._closed:
            raise SessionClosedError("transport is closed")
        session = self._session or self._open()
        headers = self._headers.get(content_type) or self._headers_for(content_type)
        timer = self._timer
        task = None if limit is None else timer.start(limit)
        try:
            # Awaited, not `async with`: that adds three coroutines per request. The
            # finally below does what its exit does (the body is read whole by then,
            # so the request writer has nothing left to send). The time limit is the
            # AttemptTimer's: aiohttp's own total timeout is off (see _timer.py).
            resp = await session.post(
                url, data=body, headers=headers, timeout=self._timeout, allow_redirects=False
            )
            try:
                status = resp.status
                got = resp.headers
                length = resp.content_length
                if (
                    length is not None
                    and length <= self._limits.max_reply_bytes
                    and got.get(hdrs.CONTENT_ENCODING, "identity") == "identity"
                ):
                    data = await resp.read()  # _read's common case, in line: one await less
                else:
                    data = await self._read(resp, payment_id)
            finally:
                resp.release()
            if status == 200:
                return data
            # Retry-After and Date only matter on a refusal.
            return HttpResponse(status, data, got.get(hdrs.RETRY_AFTER), got.get(hdrs.DATE))
        except asyncio.CancelledError:
            if task is not None and timer.expired(task):
                raise ResponseTimeoutError(
                    f"no reply within {limit}s", payment_id=payment_id
                ) from None
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise map_error(exc, limit, payment_id) from exc
        finally:
            if task is not None:
                timer.stop(task)

    def _headers_for(self, content_type: str) -> CIMultiDict[str]:
        """The request's headers, kept per content type (at most 8: generic requests
        each draw their own boundary, so the cache is cleared when it fills)."""
        if len(self._headers) >= 8:
            self._headers.clear()
        headers = CIMultiDict(((hdrs.CONTENT_TYPE, content_type), *self._fixed))
        self._headers[content_type] = headers
        return headers

    async def _read(self, resp: aiohttp.ClientResponse, pid: int | None) -> bytes:
        """The body, capped after decompression: read whole only when uncompressed and
        its ``Content-Length`` is within the cap, else streamed and counted."""
        cap = self._limits.max_reply_bytes
        length = resp.content_length
        if length is not None and length > cap:
            raise MalformedReplyError(
                f"reply of {length} bytes exceeds the {cap}-byte limit",
                payment_id=pid,
                http_status=resp.status,
            )
        if length is not None and resp.headers.get("Content-Encoding", "identity") == "identity":
            # Not compressed, and the length was checked: the parser stops at it.
            return await resp.read()
        body = bytearray()
        async for chunk in resp.content.iter_chunked(64 * 1024):
            if len(body) + len(chunk) > cap:
                raise MalformedReplyError(
                    f"reply exceeds the {cap}-byte limit",
                    payment_id=pid,
                    http_status=resp.status,
                    body_excerpt=excerpt(bytes(body[:480])),
                )
            body += chunk
        return bytes(body)

    async def aclose(self) -> None:
        """Close the session if this transport created it; a borrowed one is left open."""
        if self._closed:
            return
        self._closed = True
        self._timer.close()
        session, self._session = self._session, None
        if session is not None and session is not self._borrowed:
            await session.close()
