"""The values that cross the wire: the signed request, the raw HTTP response, the verified reply.

:class:`GatewayRequest` is what a transport sends, :class:`HttpResponse` what it reads
back, and :class:`GatewayReply` what the reply reader makes of a verified answer. They
sit below the transport, so the transport is a pure adapter over them.
"""

from __future__ import annotations

import attrs

from .fields import Fields

__all__ = ["GatewayReply", "GatewayRequest", "HttpResponse"]


@attrs.frozen
class GatewayRequest:
    """A signed request ready for the wire; middleware sees and may re-send it as is.

    ``body`` is the multipart rendering made once at signing time: every retry sends the
    same bytes. ``timeout`` is the attempt's time limit in seconds (None: no limit).
    ``deadline`` is the whole call's deadline as an absolute time on the retry policy's
    clock (``time.monotonic`` unless injected; None: no deadline), set by the retry
    layer; layers that make a request wait (the in-flight cap, pacing) raise
    DeadlineExceededError when it passes and cut ``timeout`` to what is left of it, so
    the transport's timeout is always the time left at send time.
    ``read_only`` is True for a request that only reads (status): a reply to it that
    names no payment leaves no action open. Requests that act (cancel, clearing,
    refund) keep the default False.
    Fields and body are kept out of ``repr`` (they hold the signature).
    """

    operation: str
    url: str
    script: str
    payment_id: int | None
    fields: Fields = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    content_type: str = attrs.field(repr=False)
    timeout: float | None = None
    attempt: int = 1
    deadline: float | None = None
    read_only: bool = False


@attrs.frozen
class HttpResponse:
    """What a transport read: the status, the (size-capped) body and the headers used.

    ``retry_after`` and ``date`` are the raw ``Retry-After`` and ``Date`` header values
    (None when absent); the session parses them.
    """

    status: int
    body: bytes = attrs.field(repr=False)
    retry_after: str | None = None
    date: str | None = None


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
