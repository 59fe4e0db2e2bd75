"""aiohttp.web integration: read, verify and answer Freedom Pay redirects and callbacks.

- :func:`read_redirect`, :func:`read_result_notify`, :func:`read_check_request` read a
  ``web.Request`` (GET query, or POST body: multipart, urlencoded or XML) under a body
  size limit and verify it (see :mod:`freedompay_async.callbacks`).
- :func:`result_notify_handler`, :func:`check_request_handler` and
  :func:`redirect_handler` build ready aiohttp handlers around your coroutine; the
  result handler can confirm a paid notification by status first (``confirm=``).

Freedom Pay calls ``result_url`` again **every 30 minutes for 2 hours** whenever it does
not get HTTP 200, so the same notification can arrive several times, and a redelivery
must get **the same answer** as the original. The ready result handler keeps each
answer in an :class:`AnswerStore` (in memory by default; yours on a database for
several processes): a redelivery is answered from it and never reaches your coroutine.

The URL the signature's script name is taken from defaults to the URL the request
arrived at, without its query (the caller controls that query). Behind a proxy that
rewrites the path, pass the URL as registered at Freedom Pay with ``url=``. A query in
``url=`` is used only for a GET (the merchant's own query, which the gateway may leave
out of the signature); a POST never uses any URL query.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from email.message import Message
from typing import TypeVar
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .._exceptions import (
    CallbackBodyTooLargeError,
    ConfigurationError,
    FreedomPayError,
    PaymentNotConfirmedError,
    SignatureVerificationError,
    ValidationError,
)
from .._wire.multipart import parse_multipart
from .._wire.signing import Signer
from ._answer import CallbackAnswer, ReplyStatus, callback_reply, reply_parts
from ._answers import AnswerStore, KeyLocks, MemoryAnswerStore, answer_key
from ._confirm import StatusSource, confirm_result_notify
from ._messages import CheckRequest, RedirectBack, ResultNotify
from ._receive import CallbackFields, callback_script_name
from ._verify import verify_check_request, verify_redirect, verify_result_notify

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "QueryFreeAccessLogger",
    "check_request_handler",
    "read_check_request",
    "read_redirect",
    "read_result_notify",
    "redirect_handler",
    "result_notify_handler",
]

_log = logging.getLogger(__name__)

#: The default limit on an incoming callback body: 64 KiB, far above any real callback.
DEFAULT_MAX_BODY_BYTES = 64 * 1024

_V = TypeVar("_V", ResultNotify, CheckRequest)
_WebHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_Respond = Callable[[_V], Awaitable[tuple[ReplyStatus, str]]]
_XML_TYPES = ("text/xml", "application/xml")


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


def _target_url(request: web.Request, url: str | None) -> str:
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
    target = _target_url(request, url)
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
        _target_url(request, url),
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


def _xml_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="text/xml", charset="utf-8")


def _refusal_status(exc: FreedomPayError) -> int:
    return 413 if isinstance(exc, CallbackBodyTooLargeError) else 400


#: HTTP status for a paid notification the status query did not confirm: 503 when the
#: query failed, 409 when the gateway's status disagrees. Both make it come again.
_UNAVAILABLE = 503
_DISAGREES = 409


def _unconfirmed(
    script: str, signer: Signer, value: ResultNotify | CheckRequest, exc: PaymentNotConfirmedError
) -> web.Response:
    _log.warning("held back a paid result notification: %s", exc)
    reply = callback_reply(
        script, signer, ReplyStatus.ERROR, "Payment not confirmed yet", salt=value.salt
    )
    return _xml_response(reply, _UNAVAILABLE if exc.reason == "status_unavailable" else _DISAGREES)


def _callback_handler(
    kind: str,
    read: Callable[[web.Request, str | None], Awaitable[_V]],
    respond: _Respond[_V],
    signer: Signer,
    url: str | None,
) -> _WebHandler:
    if url is not None:
        callback_script_name(url)  # a trailing-slash URL fails here, at set-up

    async def handler(request: web.Request) -> web.StreamResponse:
        script = callback_script_name(_target_url(request, url))
        try:
            value = await read(request, url)
        except (SignatureVerificationError, ValidationError) as exc:
            _log.warning("refused a %s: %s", kind, exc)
            reply = callback_reply(script, signer, ReplyStatus.ERROR, "Request not accepted")
            return _xml_response(reply, _refusal_status(exc))
        try:
            status, description = await respond(value)
        except PaymentNotConfirmedError as exc:
            return _unconfirmed(script, signer, value, exc)
        # The answer echoes the request's (verified) pg_salt, as the official module does.
        reply = callback_reply(script, signer, status, description, salt=value.salt)
        return _xml_response(reply)

    return handler


def _answering(answer: Callable[[_V], Awaitable[CallbackAnswer]]) -> _Respond[_V]:
    async def respond(value: _V) -> tuple[ReplyStatus, str]:
        return reply_parts(await answer(value))

    return respond


def _remembering(
    on_result: Callable[[ResultNotify], Awaitable[CallbackAnswer]],
    confirm: Callable[[ResultNotify], Awaitable[ResultNotify]] | None,
    store: AnswerStore,
) -> _Respond[ResultNotify]:
    """Confirm (optionally), ask ``on_result`` and store its answer, once per
    notification; a redelivery gets the stored answer (see ``_answers``)."""
    locks = KeyLocks()

    async def respond(notify: ResultNotify) -> tuple[ReplyStatus, str]:
        key = answer_key(notify)
        async with locks.hold(key):  # deliveries arriving together: one at a time
            stored = await store.get(key)
            if stored is not None:
                _log.debug("answered a redelivered result notification from the store")
            else:
                if confirm is not None:
                    notify = await confirm(notify)
                status, description = reply_parts(await on_result(notify))
                stored = await store.put(key, (status.value, description))
        return reply_parts(tuple(stored))  # type: ignore[arg-type]

    return respond


def _confirmer(
    source: StatusSource | None,
) -> Callable[[ResultNotify], Awaitable[ResultNotify]] | None:
    """``confirm=`` as a step of the handler; ConfigurationError for a value without ``status``."""
    if source is None:
        return None
    if not isinstance(source, StatusSource) or not callable(source.status):
        raise ConfigurationError(
            "confirm= must have a status(payment_id) coroutine, e.g. an AsyncSession"
        )

    async def confirm(notify: ResultNotify) -> ResultNotify:
        return await confirm_result_notify(notify, source)

    return confirm


def _answer_store(answers: AnswerStore | None) -> AnswerStore:
    if answers is None:
        return MemoryAnswerStore()
    if not isinstance(answers, AnswerStore):
        raise ConfigurationError("answers= must be an AnswerStore (async get and put)")
    return answers


def result_notify_handler(
    signer: Signer,
    on_result: Callable[[ResultNotify], Awaitable[CallbackAnswer]],
    *,
    url: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    allow_fields: Iterable[str] = (),
    strict: bool = False,
    confirm: StatusSource | None = None,
    answers: AnswerStore | None = None,
) -> _WebHandler:
    """An aiohttp handler for ``result_url``: verify, call ``on_result``, answer signed XML.

    ``on_result`` gets the verified :class:`ResultNotify` and returns ``"ok"``,
    ``"rejected"`` or ``"error"`` (or a :class:`ReplyStatus`), maybe with a description
    as a tuple; the answer is HTTP 200, signed XML echoing the ``pg_salt``.
    ``rejected`` is honoured only when ``can_reject`` is True. ``pg_`` fields this
    version does not know land in ``extra``; ``strict=True`` refuses them unless named
    in ``allow_fields`` (see :func:`~freedompay_async.verify_result_notify`).

    **Confirmation.** With ``confirm=`` an object with the session's ``status``
    coroutine (your :class:`AsyncSession`), a paid notification reaches ``on_result``
    only once a status query confirms it (:func:`confirm_result_notify`), with
    ``confirmed_by_status`` True. Not confirmed: ``on_result`` is not called and the
    answer is a signed ``error`` with HTTP 409 (status disagrees) or 503 (the query
    failed), so the gateway delivers it again later. A failed notification needs no
    confirmation. Recommended before goods are shipped.

    **Redelivery.** Freedom Pay delivers a notification again (every 30 minutes for 2
    hours) until it gets HTTP 200, and a redelivery must get the original's answer. The
    handler keeps each answer of ``on_result`` (by payment id and ``pg_result``) in
    ``answers`` (:class:`AnswerStore`; None: a :class:`MemoryAnswerStore`, this
    process only): a redelivery, or a delivery arriving together with one, is answered
    from it without calling ``on_result`` again. Use a store on your database for
    several processes or restarts. To be delivered again later, let ``on_result``
    raise: nothing is stored and aiohttp answers 500.

    **Refusals.** A notification that fails verification (missing or wrong signature,
    a ``pg_sig`` inside a group, malformed or unusable fields) is answered with a
    signed ``error`` reply and HTTP 400 (413 for a body over ``max_body_bytes``), and
    ``on_result`` is not called. The non-200 status is deliberate: a notification
    refused by a misconfiguration (wrong key or ``url``) comes again after the fix,
    rather than lost. A URL with an empty script name
    (trailing ``/``) raises :class:`~freedompay_async.ConfigurationError`: at once
    when ``url`` is given, else per request (HTTP 500).
    """
    allowed = tuple(allow_fields)

    async def read(request: web.Request, target: str | None) -> ResultNotify:
        return await read_result_notify(
            request,
            signer,
            url=target,
            max_body_bytes=max_body_bytes,
            allow_fields=allowed,
            strict=strict,
        )

    respond = _remembering(on_result, _confirmer(confirm), _answer_store(answers))
    return _callback_handler("result notification", read, respond, signer, url)


def check_request_handler(
    signer: Signer,
    on_check: Callable[[CheckRequest], Awaitable[CallbackAnswer]],
    *,
    url: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    allow_fields: Iterable[str] = (),
    strict: bool = False,
) -> _WebHandler:
    """An aiohttp handler for ``check_url``: verify, call ``on_check``, answer signed XML.

    ``on_check`` returns ``"ok"`` to let the payment proceed or ``"rejected"`` to refuse
    it (optionally with a description shown to the buyer); not answering in time
    counts as a refusal, so keep it fast. Refusals of unverifiable requests, and
    ``allow_fields`` and ``strict``, work as in :func:`result_notify_handler` (signed
    ``error``, HTTP 400 / 413).
    """

    allowed = tuple(allow_fields)

    async def read(request: web.Request, target: str | None) -> CheckRequest:
        return await read_check_request(
            request,
            signer,
            url=target,
            max_body_bytes=max_body_bytes,
            allow_fields=allowed,
            strict=strict,
        )

    return _callback_handler("check request", read, _answering(on_check), signer, url)


async def _default_redirect_error(
    _request: web.Request, exc: FreedomPayError
) -> web.StreamResponse:
    return web.Response(
        status=_refusal_status(exc), text="This payment redirect could not be verified."
    )


def redirect_handler(
    signer: Signer,
    on_redirect: Callable[[web.Request, RedirectBack], Awaitable[web.StreamResponse]],
    *,
    url: str | None = None,
    success: bool | None = None,
    allow_unsigned_failure: bool = False,
    on_error: Callable[[web.Request, FreedomPayError], Awaitable[web.StreamResponse]] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    allow_fields: Iterable[str] = (),
    strict: bool = False,
) -> _WebHandler:
    """An aiohttp handler for ``success_url`` / ``failure_url`` (register it for GET and POST).

    ``on_redirect(request, redirect)`` gets the verified :class:`RedirectBack` and
    returns the page (or a ``web.HTTPFound``) to show the buyer. A redirect is UX only:
    fulfil orders from the result notification, not from here. A redirect that fails
    verification goes to ``on_error(request, error)`` if given, else gets a plain
    HTTP 400 page (413 for an oversized body). Options as for :func:`read_redirect`.
    """
    if url is not None:
        callback_script_name(url)
    refuse = _default_redirect_error if on_error is None else on_error
    allowed = tuple(allow_fields)

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            back = await read_redirect(
                request,
                signer,
                url=url,
                success=success,
                allow_unsigned_failure=allow_unsigned_failure,
                max_body_bytes=max_body_bytes,
                allow_fields=allowed,
                strict=strict,
            )
        except (SignatureVerificationError, ValidationError) as exc:
            _log.warning("refused a redirect: %s", exc)
            return await refuse(request, exc)
        return await on_redirect(request, back)

    return handler


class QueryFreeAccessLogger(AbstractAccessLogger):
    """An aiohttp access logger that never writes a query string.

    aiohttp's default access log records the whole request line, so a GET redirect's
    query (``pg_sig``, ``pg_salt``, payment and order ids, merchant parameters that
    may be personal data) ends up in the log. This one writes remote address, method,
    path without query, status, size and duration. Use it with
    ``web.run_app(app, access_log_class=QueryFreeAccessLogger)`` or
    ``web.AppRunner(app, access_log_class=QueryFreeAccessLogger)``.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Write one line for ``request`` (its path only, never its query)."""
        self.logger.info(
            '%s "%s %s" %s %s %.6f',
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            time,
        )
