"""The HTTP boundary: send a prepared request, read a size-capped reply, map aiohttp errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import aiohttp
import attrs

from ._exceptions import (
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    MalformedReplyError,
    ResponseTimeoutError,
    SessionClosedError,
)
from ._models import GatewayRequest
from ._replies import HttpResponse, excerpt

__all__ = ["AiohttpTransport", "Limits", "Transport"]

DEFAULT_MAX_REPLY_BYTES = 1024 * 1024


@attrs.frozen
class Limits:
    """Connection pool and reply limits.

    ``max_connections`` caps requests in flight (and pooled connections to the gateway
    host); the session makes requests beyond it wait *before* pacing and before their
    attempt timer starts.
    ``connect_timeout`` bounds opening a new TCP/TLS connection.
    ``max_reply_bytes`` caps a reply body (1 MiB by default).
    """

    max_connections: int = 100
    connect_timeout: float = 10.0
    keepalive_timeout: float = 30.0
    max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES

    def __attrs_post_init__(self) -> None:
        if self.max_connections < 1:
            raise ConfigurationError("max_connections must be >= 1")
        if self.connect_timeout <= 0 or self.keepalive_timeout < 0:
            raise ConfigurationError("timeouts must be positive")
        if self.max_reply_bytes < 1024:
            raise ConfigurationError("max_reply_bytes must be at least 1024")


@runtime_checkable
class Transport(Protocol):
    """Sends one prepared request and returns the raw HTTP response.

    Must raise only the library's TransportError subclasses (or MalformedReplyError for
    an unreadable body) and let ``asyncio.CancelledError`` through.
    """

    async def send(self, request: GatewayRequest) -> HttpResponse:
        """Send ``request.body`` to ``request.url`` within ``request.timeout`` seconds."""
        ...

    async def aclose(self) -> None:
        """Release what the transport owns. Idempotent."""
        ...


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
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
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
            raise_for_status=False,
            auto_decompress=True,
        )
        self._session = session
        return session

    async def send(self, request: GatewayRequest) -> HttpResponse:
        """POST the request's bytes; map every aiohttp/OS failure to a library error."""
        if self._closed:
            raise SessionClosedError("transport is closed")
        session = self._session or self._open()
        pid = request.payment_id
        try:
            async with session.post(
                request.url,
                data=request.body,
                headers={"Content-Type": request.content_type},
                timeout=self._timeout_for(request.timeout),
                allow_redirects=False,
            ) as resp:
                body = await self._read(resp, pid)
                headers = resp.headers
                return HttpResponse(
                    resp.status, body, headers.get("Retry-After"), headers.get("Date")
                )
        except aiohttp.ConnectionTimeoutError as exc:
            raise ConnectTimeoutError(
                "timed out connecting to the gateway", payment_id=pid
            ) from exc
        except TimeoutError as exc:
            raise ResponseTimeoutError(
                f"no reply within {request.timeout}s", payment_id=pid
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(
                f"cannot connect to the gateway: {exc.strerror or exc}", payment_id=pid
            ) from exc
        except aiohttp.ClientPayloadError as exc:
            raise MalformedReplyError("reply body truncated", payment_id=pid) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, ConnectionError) as exc:
            raise ConnectionLostError(
                f"connection lost: {type(exc).__name__}", payment_id=pid
            ) from exc
        except aiohttp.InvalidURL as exc:
            raise ConfigurationError(f"invalid gateway URL: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise ConnectionLostError(
                f"HTTP exchange failed: {type(exc).__name__}", payment_id=pid
            ) from exc

    def _timeout_for(self, seconds: float | None) -> aiohttp.ClientTimeout:
        """The attempt's limit as aiohttp's ``total`` (connect to last body byte).

        One ClientTimeout per distinct value, kept in a small cache: retries cut to a
        deadline produce arbitrary values, so the cache is cleared when it fills.
        """
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            if len(self._timeouts) >= 64:
                self._timeouts.clear()
            timeout = aiohttp.ClientTimeout(
                total=seconds, sock_connect=self._limits.connect_timeout
            )
            self._timeouts[seconds] = timeout
        return timeout

    async def _read(self, resp: aiohttp.ClientResponse, pid: int | None) -> bytes:
        cap = self._limits.max_reply_bytes
        length = resp.content_length
        if length is not None and length > cap:
            raise MalformedReplyError(
                f"reply of {length} bytes exceeds the {cap}-byte limit",
                payment_id=pid,
                http_status=resp.status,
            )
        if length is not None:
            return await resp.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > cap:
                raise MalformedReplyError(
                    f"reply exceeds the {cap}-byte limit",
                    payment_id=pid,
                    http_status=resp.status,
                    body_excerpt=excerpt(b"".join(chunks)),
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def aclose(self) -> None:
        """Close the session if this transport created it; a borrowed one is left open."""
        if self._closed:
            return
        self._closed = True
        session, self._session = self._session, None
        if session is not None and session is not self._borrowed:
            await session.close()
