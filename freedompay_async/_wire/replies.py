"""Turn the HTTP response to a gateway request into a verified reply or a typed error."""

from __future__ import annotations

import email.utils
import math
from typing import NoReturn

from .._config import Limits
from .._exceptions import (
    ALREADY_DONE,
    MalformedReplyError,
    SignatureVerificationError,
    UnconfirmedReplyError,
    excerpt,
    gateway_error_class,
)
from .fields import (
    FieldValue,
)
from .messages import GatewayReply, GatewayRequest, HttpResponse
from .signing import Signer
from .xml import (
    XMLReplyError,
    parse_xml_fields,
)

__all__ = ["UNSIGNED_ERROR_CODES", "interpret", "retry_after_seconds"]


#: A delay-seconds value longer than this many digits (after leading zeros) is taken
#: as "too long to wait" (infinity) instead of being converted: 400 digits would
#: overflow a float and 5,000 exceed Python's int-from-text limit.
_MAX_DELAY_DIGITS = 12
#: No real HTTP-date is longer; longer text is not handed to the date parser at all.
_MAX_DATE_CHARS = 64


def _http_date(text: str) -> float | None:
    """An HTTP-date as Unix time; None for anything unparseable (never raises)."""
    if len(text) > _MAX_DATE_CHARS or not text.isascii():
        return None
    try:
        when = email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError, OSError):
        return None
    return when if math.isfinite(when) else None


def retry_after_seconds(
    value: str | None, date: str | None = None, now: float | None = None
) -> float | None:
    """Parse ``Retry-After`` (delay-seconds or an HTTP-date) into seconds from now.

    An HTTP-date is measured against the response's own ``Date`` header when there is
    one, so a skewed local clock does not distort it; otherwise against ``now`` (Unix
    time). Never raises: unparseable values give None, past dates 0, and a number of
    seconds too long to represent ``math.inf`` (the retry policy caps every wait with
    ``RetryPolicy.max_retry_after``, so such a reply ends the call instead of a sleep).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        digits = text.lstrip("0") or "0"
        return math.inf if len(digits) > _MAX_DELAY_DIGITS else float(int(digits))
    when = _http_date(text)
    if when is None:
        return None
    base = _http_date(date.strip()) if isinstance(date, str) else None
    if base is None:
        if now is None:
            import time

            now = time.time()
        base = now
    delay = when - base
    return max(0.0, delay) if math.isfinite(delay) else None


_DEFAULT_LIMITS = Limits()

#: Error codes the docs show in *unsigned* replies (unknown merchant, payment not
#: found): believed without a signature, as failures only (``signed=False``). Any other
#: error reply without a valid signature is a SignatureVerificationError.
UNSIGNED_ERROR_CODES = frozenset({9998, 9997, 101, 11068, 340})


def _raise_error_reply(
    request: GatewayRequest,
    http: HttpResponse,
    fields: list[tuple[str, FieldValue]],
    *,
    signed: bool,
    has_signature: bool,
) -> NoReturn:
    """Raise what a ``pg_status=error`` reply means (see :func:`interpret`)."""
    payment_id = request.payment_id
    reply = GatewayReply(fields, http.status, signed=signed)
    raw_code = (reply.get("pg_error_code") or "").strip()
    numeric = raw_code.isascii() and raw_code.isdigit() and len(raw_code) <= 9
    code = int(raw_code) if numeric else None
    if not signed and (has_signature or code not in UNSIGNED_ERROR_CODES):
        # Unverifiable: never a class that means success ("already cancelled") or a
        # final answer. The claim is kept for diagnosis only.
        problem = "does not verify" if has_signature else "is missing"
        raise SignatureVerificationError(
            f"error reply (claiming code {code}) whose signature {problem}",
            payment_id=payment_id,
            http_status=http.status,
            claimed_code=code,
        )
    if code is None:
        raise MalformedReplyError(
            "error reply without a numeric pg_error_code",
            payment_id=payment_id,
            http_status=http.status,
            body_excerpt=excerpt(http.body),
        )
    replied_id = (reply.get("pg_payment_id") or "").strip()
    if replied_id and payment_id is not None and replied_id != str(payment_id):
        raise MalformedReplyError(
            "error reply names another payment",
            payment_id=payment_id,
            http_status=http.status,
            body_excerpt=excerpt(http.body),
        )
    description = reply.get("pg_error_description") or ""
    bound = signed and replied_id != "" and payment_id is not None
    error = gateway_error_class(code)(
        code,
        description,
        payment_id=payment_id,
        signed=signed,
        reply_fields=tuple(fields),
        bound=bound,
    )
    if bound or request.read_only:
        raise error
    # About an operation that acts, a reply that names no payment proves nothing about
    # this payment: captured once, it could be replayed for any other. Its outcome is
    # open until status binds it; a claim that the work was already done is not even
    # raised as that claim.
    if isinstance(error, ALREADY_DONE):
        raise UnconfirmedReplyError(error, payment_id=payment_id)
    error.maybe_processed = True
    raise error


def _misplaced_signature(fields: list[tuple[str, FieldValue]]) -> str | None:
    """Why the reply cannot be read as what its signature covers, or None.

    The signature skips every ``pg_sig`` subtree at any depth, so data under a nested
    one would be believed unsigned; and it covers the values joined with ``;``, so a
    value holding a ``;`` could carry its neighbours' values moved into it (fields
    dropped, the pre-image unchanged): where a value ends is then not covered.
    """
    top = 0
    stack: list[tuple[str, list[tuple[str, FieldValue]] | tuple[tuple[str, FieldValue], ...]]] = []
    for key, value in fields:
        if key == "pg_sig":
            top += 1
            if not isinstance(value, str):
                return "its pg_sig holds elements, which no signature covers"
        elif not isinstance(value, str):
            stack.append((key, value))  # type: ignore[arg-type]
        elif ";" in value:
            return _semicolon(key)
    if top > 1:
        return "it carries more than one pg_sig"
    while stack:
        parent, group = stack.pop()
        for key, value in group:
            if key == "pg_sig":
                return f"it carries a pg_sig inside <{parent[:40]}>, which no signature covers"
            if not isinstance(value, str):
                stack.append((key, value))  # type: ignore[arg-type]
            elif ";" in value:
                return _semicolon(key)
    return None


def _semicolon(key: str) -> str:
    return (
        f"its {key[:40]} holds a ';', the signature's separator: which values it covers "
        "cannot be told"
    )


def interpret(
    request: GatewayRequest, http: HttpResponse, signer: Signer, limits: Limits | None = None
) -> GatewayReply:
    """Verify and classify a reply. Returns only verified ``pg_status=ok`` replies.

    - non-200, non-XML, a root other than ``<response>``, XML over the depth or element
      limits of ``limits`` (defaults: :class:`Limits`): MalformedReplyError;
    - a ``pg_sig`` anywhere but once at the top level: MalformedReplyError (the signature
      skips every ``pg_sig`` subtree, so nothing under a nested one is covered);
    - ``pg_status=error`` with a valid ``pg_sig``: the GatewayError subclass for its code
      (``signed=True``; ``bound=True`` when it names the payment). For a request that
      acts (not ``read_only``), an error that is not bound leaves the outcome open
      (``maybe_processed``), and an unbound "already done" claim (10033, 11017, 10036,
      11018) is an UnconfirmedReplyError, never that claim;
    - ``pg_status=error`` without ``pg_sig`` and a code the docs show unsigned (unknown
      merchant 9998/9997/101, payment not found 11068/340): that GatewayError subclass
      with ``signed=False``, believed as a failure only;
    - any other error reply that does not verify (a wrong ``pg_sig``, or no ``pg_sig``
      and another code, e.g. "already cancelled"): SignatureVerificationError with the
      claimed code in ``claimed_code``, so ``except AlreadyCancelledError`` never
      catches a forgery;
    - ``pg_status=ok`` without a valid signature: SignatureVerificationError, so a forged
      "ok" can never become a result (each operation's reader then requires the reply to
      name the payment).

    A non-200 answer to a request that acts is ``maybe_processed``, a 429 included: an
    unsigned status line cannot prove that nothing was done.
    """
    if http.status != 200:
        raise _refused(request, http)
    fields = _document(request, http, limits or _DEFAULT_LIMITS)
    status, signature = _status_and_signature(fields)
    signed = signature is not None and signer.verify(request.script, fields, signature)
    if status == "error":
        _raise_error_reply(
            request, http, fields, signed=signed, has_signature=signature is not None
        )
    if not signed:
        problem = "is not signed" if signature is None else "signature does not verify"
        raise SignatureVerificationError(
            f"reply {problem}", payment_id=request.payment_id, http_status=http.status
        )
    if status != "ok":
        raise MalformedReplyError(
            f"reply has pg_status {status!r}",
            payment_id=request.payment_id,
            http_status=http.status,
        )
    return GatewayReply(fields, http.status, signed=True)


def _refused(request: GatewayRequest, http: HttpResponse) -> MalformedReplyError:
    """The error a non-200 answer stands for."""
    refused = MalformedReplyError(
        f"gateway answered HTTP {http.status}",
        payment_id=request.payment_id,
        http_status=http.status,
        body_excerpt=excerpt(http.body),
        retry_after=retry_after_seconds(http.retry_after, http.date),
    )
    if not request.read_only:
        # An unsigned status line cannot prove that an operation that acts was not
        # acted on (a 429 included): only status can.
        refused.maybe_processed = True
    return refused


def _document(
    request: GatewayRequest, http: HttpResponse, limits: Limits
) -> list[tuple[str, FieldValue]]:
    """The reply's fields: a ``<response>`` document within the limits, its ``pg_sig``
    once at the top level; MalformedReplyError otherwise."""

    def malformed(why: str) -> MalformedReplyError:
        return MalformedReplyError(
            why,
            payment_id=request.payment_id,
            http_status=http.status,
            body_excerpt=excerpt(http.body),
        )

    try:
        root, fields = parse_xml_fields(
            http.body, max_depth=limits.max_xml_depth, max_elements=limits.max_xml_elements
        )
    except XMLReplyError as exc:
        raise malformed(f"reply is not XML ({exc})") from None
    if root != "response":
        raise malformed(f"reply root is <{root[:40]}>, not <response>")
    misplaced = _misplaced_signature(fields)
    if misplaced is not None:
        raise malformed(f"reply refused: {misplaced}")
    return fields


def _status_and_signature(fields: list[tuple[str, FieldValue]]) -> tuple[str | None, str | None]:
    """The first top-level ``pg_status`` and ``pg_sig`` texts."""
    status: str | None = None
    signature: str | None = None
    for key, value in fields:
        if isinstance(value, str):
            if key == "pg_status" and status is None:
                status = value
            elif key == "pg_sig" and signature is None:
                signature = value
    return status, signature
