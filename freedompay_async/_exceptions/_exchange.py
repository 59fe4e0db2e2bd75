"""Errors of the HTTP exchange and of what came back: transport failures and replies
that are no usable gateway answer (see the tree in :mod:`freedompay_async._exceptions`)."""

from __future__ import annotations

from ._base import FreedomPayError

__all__ = [
    "ConnectError",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "DeadlineExceededError",
    "MalformedReplyError",
    "ReplyError",
    "ResponseTimeoutError",
    "SignatureVerificationError",
    "TransportError",
    "excerpt",
]

_EXCERPT = 120


def excerpt(body: bytes) -> str:
    """A short, printable excerpt of a body for error messages."""
    text = body[: _EXCERPT * 4].decode("utf-8", "replace")
    text = " ".join(text.split())
    return text[:_EXCERPT] + ("..." if len(text) > _EXCERPT else "")


class TransportError(FreedomPayError):
    """The HTTP exchange with the gateway failed before a reply could be read."""

    _retryable = True


class ConnectError(TransportError):
    """No connection could be made; the request was never sent."""


class ConnectTimeoutError(TransportError):
    """Connecting timed out; the request was never sent."""


class ResponseTimeoutError(TransportError):
    """No reply within the attempt's timeout. The request may have been sent and acted on."""

    _acted = True


class ConnectionLostError(TransportError):
    """The connection dropped during the exchange. The gateway may have acted on the request."""

    _acted = True


class DeadlineExceededError(TransportError):
    """The call's deadline passed before an attempt could be sent. Never sent.

    Raised by the in-flight cap and by pacing when the wait for a connection slot or a
    pacing slot would outlast the deadline (``RetryPolicy.deadline``), so queueing
    never makes a call overrun it. Not retried: the deadline is spent. ``attempts``
    counts the attempts actually sent (possibly 0); ``earlier_maybe_processed`` still
    says whether one of those may have been acted on.
    """

    _retryable = False


class ReplyError(FreedomPayError):
    """Something came back, but not a gateway answer that can be trusted and used."""

    _acted = True

    def __init__(
        self,
        message: str,
        *,
        payment_id: int | None = None,
        http_status: int | None = None,
        body_excerpt: str = "",
    ) -> None:
        super().__init__(message, payment_id=payment_id)
        self.http_status = http_status
        self.body_excerpt = body_excerpt

    def __str__(self) -> str:
        text = super().__str__()
        if self.http_status is not None:
            text += f" [HTTP {self.http_status}]"
        if self.body_excerpt:
            text += f": {self.body_excerpt!r}"
        return text


class MalformedReplyError(ReplyError):
    """Non-200 status, an HTML page, a truncated body, not XML, or required fields missing.

    ``retry_after`` is the delay in seconds the server asked for (``Retry-After``), if any.
    Retried by default when the status is 429, 5xx or 200 (an HTML or garbled page is a
    passing condition); other statuses (a 404 from a wrong URL) are final.
    """

    def __init__(
        self,
        message: str,
        *,
        payment_id: int | None = None,
        http_status: int | None = None,
        body_excerpt: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, payment_id=payment_id, http_status=http_status, body_excerpt=body_excerpt
        )
        self.retry_after = retry_after
        self.retryable = http_status is None or http_status in (200, 429) or http_status >= 500
        # A 429 is a refusal before processing; anything else may have followed processing.
        if http_status == 429:
            self.maybe_processed = False

    @property
    def rate_limited(self) -> bool:
        """Whether the server answered HTTP 429 Too Many Requests."""
        return self.http_status == 429


class SignatureVerificationError(ReplyError):
    """A reply or callback whose ``pg_sig`` is missing or does not match. Never trusted.

    ``claimed_code`` is the ``pg_error_code`` an unverifiable *error* reply claims (an
    int; None otherwise). It is what the reply says, not what the gateway said: a forged
    "already cancelled" is raised here, never as :class:`AlreadyCancelledError`. When
    every reply claims 1100, the secret key is probably wrong (the gateway signs its
    1100 with the right one, which this client then cannot verify).
    """

    def __init__(
        self,
        message: str,
        *,
        payment_id: int | None = None,
        http_status: int | None = None,
        body_excerpt: str = "",
        claimed_code: int | None = None,
    ) -> None:
        super().__init__(
            message, payment_id=payment_id, http_status=http_status, body_excerpt=body_excerpt
        )
        self.claimed_code = claimed_code
