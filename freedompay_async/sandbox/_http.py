"""aiohttp glue for the sandbox: reading a form, canned responses, dropping a connection."""

from __future__ import annotations

from aiohttp import web

from .._exceptions import ValidationError
from .._wire.fields import (
    Fields,
    FieldValue,
    from_form_pairs,
)
from .._wire.multipart import (
    multipart_boundary,
    parse_multipart,
)
from .._wire.xml import render_response

__all__ = [
    "abort",
    "garbage_response",
    "http_429",
    "http_503",
    "read_fields",
    "xml_response",
]

_HTML_503 = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
    "<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_HTML_429 = (
    "<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n"
    "<body>\r\n<center><h1>429 Too Many Requests</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_GARBAGE = b"\x1f\x8b\x08\x00 upstream sent garbage \xff\xfe<<<>>> pg_status=ok; \x00\r\n"


def _text(value: str | bytes | bytearray | web.FileField) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    data = value.file.read()
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


async def read_fields(request: web.Request) -> list[tuple[str, FieldValue]] | None:
    """The posted form as a field tree, in posted order, or None if unreadable.

    ``multipart/form-data`` goes through the library's multipart reader; anything else
    (``application/x-www-form-urlencoded``) through aiohttp's ``request.post()``.
    """
    boundary = multipart_boundary(request.headers.get("Content-Type", ""))
    if boundary is not None:
        try:
            pairs = parse_multipart(await request.read(), boundary, skip_nameless=True)
        except ValidationError:
            return None
        return from_form_pairs(pairs)
    try:
        form = await request.post()
    except ValueError:
        return None
    return from_form_pairs((name, _text(value)) for name, value in form.items())


def xml_response(fields: Fields, status: int = 200) -> web.Response:
    """An ``application/xml; charset=utf-8`` response rendering ``fields``."""
    return web.Response(
        status=status,
        body=render_response(fields, pretty=True),
        content_type="application/xml",
        charset="utf-8",
    )


def http_503() -> web.Response:
    """A load balancer's 503 page."""
    return web.Response(status=503, text=_HTML_503, content_type="text/html")


def http_429(retry_after: int) -> web.Response:
    """A rate limiter's 429 page with ``Retry-After`` in seconds."""
    return web.Response(
        status=429,
        text=_HTML_429,
        content_type="text/html",
        headers={"Retry-After": str(int(retry_after))},
    )


def garbage_response() -> web.Response:
    """HTTP 200 whose body is not XML (a broken proxy, a truncated upstream)."""
    return web.Response(status=200, body=_GARBAGE, content_type="application/xml")


def abort(request: web.Request) -> web.Response:
    """Drop the connection without a reply; the returned response is never delivered.

    aiohttp then fails to write it and treats that as a premature client disconnect,
    which it only logs at debug level.
    """
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=500)
