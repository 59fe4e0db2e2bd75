"""Turn the HTTP response to a gateway request into a verified reply or a typed error."""

from __future__ import annotations

import email.utils
import math

import attrs

from ._exceptions import (
    MalformedReplyError,
    SignatureVerificationError,
    excerpt,
    gateway_error_class,
)
from ._fields import Fields
from ._signing import Signer
from ._transport.base import GatewayRequest, HttpResponse
from ._xml import XMLReplyError, parse_xml_fields

__all__ = ["GatewayReply", "interpret", "retry_after_seconds"]


@attrs.frozen
class GatewayReply:
    """A verified gateway answer with ``pg_status=ok``, as middleware sees it.

    ``fields`` is the whole reply in document order (unknown fields kept). ``signed``
    is True when its ``pg_sig`` verified. ``attempts`` counts the HTTP attempts made and
    ``earlier_maybe_processed`` says whether an earlier attempt may have been acted on.
    """

    fields: Fields = attrs.field(repr=False)
    http_status: int = 200
    signed: bool = True
    attempts: int = 1
    earlier_maybe_processed: bool = False

    def get(self, name: str) -> str | None:
        """The first top-level scalar field called ``name``, or None."""
        for key, value in self.fields:
            if key == name and isinstance(value, str):
                return value
        return None

    def as_dict(self) -> dict[str, object]:
        """Top-level fields as a dict (pg_sig left out; repeated names keep the first)."""
        out: dict[str, object] = {}
        for key, value in self.fields:
            if key != "pg_sig" and key not in out:
                out[key] = value
        return out


def retry_after_seconds(
    value: str | None, date: str | None = None, now: float | None = None
) -> float | None:
    """Parse ``Retry-After`` (delay-seconds or an HTTP-date) into seconds from now.

    An HTTP-date is measured against the response's own ``Date`` header when there is
    one, so a skewed local clock does not distort it; otherwise against ``now`` (Unix
    time). Unparseable or negative values give None or 0.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    base: float | None = None
    if date is not None:
        try:
            base = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            base = None
    if base is None:
        if now is None:
            import time

            now = time.time()
        base = now
    delay = when - base
    return max(0.0, delay) if math.isfinite(delay) else None


def interpret(request: GatewayRequest, http: HttpResponse, signer: Signer) -> GatewayReply:
    """Verify and classify a reply. Returns only verified ``pg_status=ok`` replies.

    - non-200, non-XML, a root other than ``<response>``: MalformedReplyError;
    - ``pg_status=error``: the GatewayError subclass for its code, ``signed=True`` only
      when its ``pg_sig`` verifies (the docs show unsigned error replies);
    - ``pg_status=ok`` without a valid signature: SignatureVerificationError, so a forged
      "ok" can never become a result.
    """
    payment_id = request.payment_id
    if http.status != 200:
        raise MalformedReplyError(
            f"gateway answered HTTP {http.status}",
            payment_id=payment_id,
            http_status=http.status,
            body_excerpt=excerpt(http.body),
            retry_after=retry_after_seconds(http.retry_after, http.date),
        )
    try:
        root, fields = parse_xml_fields(http.body)
    except XMLReplyError as exc:
        raise MalformedReplyError(
            f"reply is not XML ({exc})",
            payment_id=payment_id,
            http_status=http.status,
            body_excerpt=excerpt(http.body),
        ) from None
    if root != "response":
        raise MalformedReplyError(
            f"reply root is <{root[:40]}>, not <response>",
            payment_id=payment_id,
            http_status=http.status,
            body_excerpt=excerpt(http.body),
        )
    status: str | None = None
    signature: str | None = None
    for key, value in fields:
        if isinstance(value, str):
            if key == "pg_status" and status is None:
                status = value
            elif key == "pg_sig" and signature is None:
                signature = value
    signed = signature is not None and signer.verify(request.script, fields, signature)
    if signature is not None and not signed and status != "error":
        raise SignatureVerificationError(
            "reply signature does not verify", payment_id=payment_id, http_status=http.status
        )
    if status == "error":
        # Error replies are believed with or without a valid signature (the docs show
        # unsigned ones, and a merchant whose key is wrong cannot verify the gateway's
        # signed 1100), but only as failures: they carry signed=False, and nothing
        # unsigned is ever turned into a success.
        reply = GatewayReply(fields, http.status, signed=signed)
        raw_code = (reply.get("pg_error_code") or "").strip()
        if not (raw_code.isascii() and raw_code.isdigit()):
            raise MalformedReplyError(
                "error reply without a numeric pg_error_code",
                payment_id=payment_id,
                http_status=http.status,
                body_excerpt=excerpt(http.body),
            )
        code = int(raw_code)
        replied_id = (reply.get("pg_payment_id") or "").strip()
        if replied_id and payment_id is not None and replied_id != str(payment_id):
            raise MalformedReplyError(
                "error reply names another payment",
                payment_id=payment_id,
                http_status=http.status,
                body_excerpt=excerpt(http.body),
            )
        description = reply.get("pg_error_description") or ""
        raise gateway_error_class(code)(
            code, description, payment_id=payment_id, signed=signed, reply_fields=tuple(fields)
        )
    if not signed:
        raise SignatureVerificationError(
            "reply is not signed", payment_id=payment_id, http_status=http.status
        )
    if status != "ok":
        raise MalformedReplyError(
            f"reply has pg_status {status!r}", payment_id=payment_id, http_status=http.status
        )
    return GatewayReply(fields, http.status, signed=True)
