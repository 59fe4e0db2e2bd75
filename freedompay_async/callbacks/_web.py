"""aiohttp.web integration: answer Freedom Pay redirects and callbacks.

- Reading and verifying a ``web.Request`` is :mod:`._web_read`'s job
  (:func:`~._web_read.read_redirect`, ``read_result_notify``, ``read_check_request``).
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
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

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
from .._wire.signing import Signer
from ._answer import CallbackAnswer, ReplyStatus, callback_reply, reply_parts
from ._answers import AnswerStore, KeyLocks, MemoryAnswerStore, answer_key
from ._confirm import StatusSource, confirm_result_notify
from ._messages import CheckRequest, RedirectBack, ResultNotify
from ._receive import callback_script_name
from ._web_read import (
    DEFAULT_MAX_BODY_BYTES,
    read_check_request,
    read_redirect,
    read_result_notify,
    target_url,
)

__all__ = [
    "QueryFreeAccessLogger",
    "check_request_handler",
    "redirect_handler",
    "result_notify_handler",
]

_log = logging.getLogger(__name__)

_V = TypeVar("_V", ResultNotify, CheckRequest)
_WebHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_Respond = Callable[[_V], Awaitable[tuple[ReplyStatus, str]]]


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
        script = callback_script_name(target_url(request, url))
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
