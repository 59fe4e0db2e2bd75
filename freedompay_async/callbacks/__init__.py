"""The merchant side: verify what Freedom Pay sends to the merchant, and answer it signed.

Three kinds of incoming message, all signed with the same md5 ``pg_sig`` rule as the
Gateway API, but with the **merchant's** script name: the last path segment of the URL
the message was sent to (``https://shop.example/pay/result?x=1`` -> ``result``):

- the browser redirect back to ``success_url`` / ``failure_url``
  (:func:`verify_redirect` -> :class:`RedirectBack`);
- the server-to-server result notification to ``result_url``
  (:func:`verify_result_notify` -> :class:`ResultNotify`);
- the server-to-server check request to ``check_url``
  (:func:`verify_check_request` -> :class:`CheckRequest`).

The result and check callbacks expect a signed XML answer: :func:`callback_reply`.

What gets signed over: **every field received**, in the order received, ``pg_sig``
excluded, unknown fields and merchant parameters included (the documented rule: extra
parameters "are also involved in the signature calculation"). The returned value is
built from exactly the fields the signature covers, never from any other: a
``pg_sig`` anywhere but the top level (which the reference flattening skips, with
everything under it) makes the message malformed.

The world is open: ``pg_`` fields this version does not list land in ``extra``, so a
genuine notification is never refused for a field the gateway added. ``strict=True``
(on every verify and read function and ready handler) refuses them unless named in
``allow_fields=``. Field names are not covered by the signature, so a signed message
can be rearranged; :func:`confirm_result_notify` (or ``result_notify_handler(...,
confirm=session)``) confirms a paid notification by a status query before you ship.

One exception: a GET callback to a URL that has a query string of its own
(``.../success?lang=ru``). The gateway appends its fields to that query, so the
merchant's own parameters arrive first, and the gateway may sign only the fields it
added. The signature is checked over all received fields first; if that fails and
``url`` has a query (pass the URL **as configured**, ``"https://shop.example/success?lang=ru"``)
and the received fields start with exactly that query, it is checked again without
those leading pairs, and then the value holds only the remaining, signed fields (the
merchant's own query is in ``url`` already). Pass a URL with a query only for a GET
to a configured URL; for a POST, or with the URL a request arrived at, pass it without
its query (the aiohttp helpers do). Simplest: register callback URLs without a query.

Nothing is half-parsed: a verify function returns a complete, verified value or raises
:class:`~freedompay_async.SignatureVerificationError` (missing, duplicated, nested or
wrong ``pg_sig``), :class:`~freedompay_async.ValidationError` (a verified message whose
content is unusable, e.g. a non-numeric payment id) or
:class:`~freedompay_async.ConfigurationError` (a URL that ends in ``/``).

For aiohttp.web, :func:`read_redirect`, :func:`read_result_notify` and
:func:`read_check_request` read a request under a body size limit and verify it, and
:func:`redirect_handler`, :func:`result_notify_handler` and
:func:`check_request_handler` are ready handlers around your coroutine.

The subsystem, one job per module: ``_receive`` (pairs, XML, script name, input
limits), ``_verify`` (the signature policy and ``verify_*``), ``_reader`` (typed field
reading), ``_messages`` (the values), ``_confirm`` (confirmation by status),
``_answer`` (the signed answer), ``_answers`` (the answers kept for redeliveries),
``_web`` (aiohttp.web readers and handlers).
"""

from .._exceptions import CallbackBodyTooLargeError, PaymentNotConfirmedError
from ._answer import CallbackAnswer, ReplyStatus, callback_reply
from ._answers import AnswerStore, MemoryAnswerStore, StoredAnswer, answer_key
from ._confirm import StatusSource, confirm_result_notify
from ._messages import CheckRequest, RedirectBack, ResultNotify, SignedMessage
from ._receive import CallbackFields, callback_script_name
from ._verify import verify_check_request, verify_redirect, verify_result_notify
from ._web import (
    QueryFreeAccessLogger,
    check_request_handler,
    redirect_handler,
    result_notify_handler,
)
from ._web_read import (
    DEFAULT_MAX_BODY_BYTES,
    read_check_request,
    read_redirect,
    read_result_notify,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "AnswerStore",
    "CallbackAnswer",
    "CallbackBodyTooLargeError",
    "CallbackFields",
    "CheckRequest",
    "MemoryAnswerStore",
    "PaymentNotConfirmedError",
    "QueryFreeAccessLogger",
    "RedirectBack",
    "ReplyStatus",
    "ResultNotify",
    "SignedMessage",
    "StatusSource",
    "StoredAnswer",
    "answer_key",
    "callback_reply",
    "callback_script_name",
    "check_request_handler",
    "confirm_result_notify",
    "read_check_request",
    "read_redirect",
    "read_result_notify",
    "redirect_handler",
    "result_notify_handler",
    "verify_check_request",
    "verify_redirect",
    "verify_result_notify",
]
