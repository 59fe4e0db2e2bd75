"""aiohttp.web integration, reading: a redirect or callback read from a ``web.Request``
(GET query, or POST body: multipart, urlencoded or XML) under a body size limit, and
verified (see :mod:`freedompay_async.callbacks`). The ready handlers that answer them
are in :mod:`._web`.

The URL the signature's script name is taken from defaults to the URL the request
arrived at, without its query (the caller controls that query). Behind a proxy that
rewrites the path, pass the URL as registered at Freedom Pay with ``url=``. A query in
``url=`` is used only for a GET (the merchant's own query, which the gateway may leave
out of the signature); a POST never uses any URL query.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from email.message import Message
from typing import TypeVar
from urllib.parse import parse_qsl

from aiohttp import web

from .._exceptions import (
    CallbackBodyTooLargeError,
    ValidationError,
)
from .._wire.multipart import parse_multipart
from .._wire.signing import Signer
from ._messages import CheckRequest, RedirectBack, ResultNotify
from ._receive import CallbackFields
from ._verify import verify_check_request, verify_redirect, verify_result_notify

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "read_check_request",
    "read_redirect",
    "read_result_notify",
]

#: The default limit on an incoming callback body: 64 KiB, far above any real callback.
DEFAULT_MAX_BODY_BYTES = 64 * 1024

_XML_TYPES = ("text/xml", "application/xml")
_V = TypeVar("_V", ResultNotify, CheckRequest)


# --- reading -----------------------------------------------------------------------


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes (after any decompression)."""
    too_large = CallbackBodyTooLargeError(
        f"callback body is larger than the {limit}-byte limit", limit=limit
    )
    length = request.content_length
    if length is not None and length > limit:
        raise too_large
    if request.body_exists and not request.can_read_body:
        body = await request.read()  # already read by someone else: aiohttp's cached copy
    else:
        buffer = bytearray()
        async for chunk in request.content.iter_any():
            buffer += chunk
            if len(buffer) > limit:
                raise too_large
        body = bytes(buffer)
    if len(body) > limit:
        raise too_large
    return body


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"callback {what} is not valid UTF-8") from None


def _urlencoded(text: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise ValidationError("callback form data is not valid UTF-8") from None


async def _received(request: web.Request, max_body_bytes: int) -> CallbackFields:
    """The fields of a GET query or a POST body, in order, duplicates kept; or XML bytes."""
    if request.method in ("GET", "HEAD"):
        _, _, query = request.raw_path.partition("?")
        return _urlencoded(query)
    body = await _read_body(request, max_body_bytes)
    header = request.headers.get("Content-Type")
    if header is None:
        return body if body.lstrip().startswith(b"<") else _urlencoded(_utf8(body, "body"))
    message = Message()
    message["Content-Type"] = header
    content_type = message.get_content_type()
    if content_type == "multipart/form-data":
        return parse_multipart(body, message.get_boundary())
    if content_type == "application/x-www-form-urlencoded":
        return _urlencoded(_utf8(body, "body"))
    if content_type in _XML_TYPES or content_type.endswith("+xml"):
        return body
    raise ValidationError(f"unsupported callback content type {content_type[:60]!r}")


def target_url(request: web.Request, url: str | None) -> str:
    """The URL to verify against: its path gives the script name.

    Only a GET to an explicitly configured ``url`` keeps that URL's query (the
    merchant's own parameters, which the gateway may leave out of the signature). The
    request's own query is the caller's to choose, so it is never used; a POST never
    uses any URL query.
    """
    if url is None:
        return str(request.url.with_query(None).with_fragment(None))
    if request.method in ("GET", "HEAD"):
        return url
    return re.split(r"[?#]", url, maxsplit=1)[0]


async def _read_callback(
    request: web.Request,
    verify: Callable[..., _V],
    signer: Signer,
    url: str | None,
    max_body_bytes: int,
    allow_fields: Iterable[str],
    strict: bool,
) -> _V:
    fields = await _received(request, max_body_bytes)
    target = target_url(request, url)
    return verify(target, fields, signer, allow_fields=allow_fields, strict=strict)


async def read_redirect(
    request: web.Request,
    signer: Signer,
    *,
    url: str | None = None,
    success: bool | None = None,
    allow_unsigned_failure: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    allow_fields: Iterable[str] = (),
    strict: bool = False,
) -> RedirectBack:
    """Read and verify the buyer's redirect back to ``success_url`` / ``failure_url``.

    GET: the whole query string is the field set (the URL's own query included). POST:
    the body only (multipart, urlencoded or XML; no URL query is read), at most
    ``max_body_bytes`` bytes, else :class:`CallbackBodyTooLargeError`. ``url``
    defaults to the request's URL without its query; a query in ``url`` is used only
    for a GET (see :func:`~freedompay_async.verify_redirect` for ``url``, ``success``,
    ``allow_unsigned_failure``, ``allow_fields`` and ``strict``). Consumes the
    request body.
    """
    fields = await _received(request, max_body_bytes)
    return verify_redirect(
        target_url(request, url),
        fields,
        signer,
        success=success,
        allow_unsigned_failure=allow_unsigned_failure,
        allow_fields=allow_fields,
        strict=strict,
    )


async def read_result_notify(
    request: web.Request,
    signer: Signer,
    *,
    url: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    allow_fields: Iterable[str] = (),
    strict: bool = False,
) -> ResultNotify:
    """Read and verify a result notification; answer it with :func:`callback_reply`.

    Freedom Pay redelivers it every 30 minutes for 2 hours until answered with HTTP
    200: handle it idempotently (by ``payment_id``) and repeat the original answer.
    Confirm a paid one with :func:`confirm_result_notify` before shipping. Body,
    ``url``, ``allow_fields`` and ``strict`` rules as for :func:`read_redirect`.
    """
    return await _read_callback(
        request, verify_result_notify, signer, url, max_body_bytes, allow_fields, strict
    )


async def read_check_request(
    request: web.Request,
    signer: Signer,
    *,
    url: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    allow_fields: Iterable[str] = (),
    strict: bool = False,
) -> CheckRequest:
    """Read and verify a check request; answer it with :func:`callback_reply`.

    Body, ``url``, ``allow_fields`` and ``strict`` rules as for :func:`read_redirect`.
    """
    return await _read_callback(
        request, verify_check_request, signer, url, max_body_bytes, allow_fields, strict
    )


# --- ready handlers ----------------------------------------------------------------
