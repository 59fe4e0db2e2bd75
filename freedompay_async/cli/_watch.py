"""Watching every HTTP attempt of a run: live counts for the progress line, the first
reason of each error class on stderr, and the fail-fast rule.

:class:`AttemptWatch` is a middleware placed *inside* the retry layer, so it sees each
attempt (not each call) with its error already parsed. A run against a gateway that is
plainly wrong (nothing listening, DNS, TLS, a 404 because the URL is wrong, an HTML
page, replies that never verify, no reply at all) would otherwise retry every id to
its deadline and end in a pile of "unknown": after ``threshold`` consecutive attempts
that failed without a gateway answer, the watch trips, retries stop, and the run stops
sending new ids.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import TextIO

from .._exceptions import (
    AlreadyCancelledError,
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    FreedomPayError,
    GatewayError,
    MalformedReplyError,
    ReplyError,
    ResponseTimeoutError,
    SignatureVerificationError,
)
from .._layers.chain import Handler
from .._layers.retry import RetryPolicy
from .._wire.messages import GatewayReply, GatewayRequest
from ._report import PROG

__all__ = ["DEFAULT_FAIL_FAST_AFTER", "AttemptWatch", "not_a_gateway"]

#: Consecutive non-gateway attempt failures that stop a run (``--fail-fast-after``).
DEFAULT_FAIL_FAST_AFTER = 20
_TIMEOUTS = (ResponseTimeoutError, ConnectTimeoutError)


def not_a_gateway(error: FreedomPayError) -> bool:
    """Whether an attempt's error says nothing answered like a Freedom Pay gateway.

    Counted: no connection (refused, DNS, TLS), a connection lost, a timeout, an HTTP
    status that is not a gateway answer (404/405 from a wrong URL, 5xx) or a 200 whose
    body is not the gateway's XML, and a reply whose signature does not verify. Not
    counted: a gateway error code (the gateway is there and answered) and HTTP 429 (a
    server asking to slow down is pacing, not a wrong URL).
    """
    if isinstance(error, GatewayError):
        return False
    if isinstance(error, MalformedReplyError) and error.rate_limited:
        return False
    return isinstance(
        error,
        (ConnectError, ConnectTimeoutError, ResponseTimeoutError, ConnectionLostError, ReplyError),
    )


def _reason(error: FreedomPayError) -> str:
    text = str(error)
    if isinstance(error, SignatureVerificationError):
        text += " (wrong --base-url, or a proxy answering in its place?)"
    elif isinstance(error, MalformedReplyError) and error.http_status in (404, 405):
        text += " (--base-url must be the gateway root, without /g2g/cancel)"
    return text[:300]


class AttemptWatch:
    """Middleware: counts attempts, reports each error class once, trips on a dead gateway.

    ``threshold`` consecutive counted failures (see :func:`not_a_gateway`; 0: never)
    trip it: :attr:`tripped` then holds the reason, ``on_trip`` is called once, and
    :meth:`retry_policy`'s policies stop retrying. Any gateway answer resets the count.

    Attempts run concurrently, so one stall (a network hiccup, a busy machine) can
    time out every attempt in flight at once. Such a burst counts once: after the
    first failure of a streak, only attempts *started after it* add to the count. A
    dead gateway keeps failing the new attempts and trips the watch; a hiccup does not.
    """

    def __init__(
        self,
        threshold: int,
        err: TextIO,
        *,
        on_trip: Callable[[str], None] | None = None,
    ) -> None:
        self.threshold = threshold
        self._err = err
        self._on_trip = on_trip
        self.attempts = 0
        self.retries = 0
        self.timeouts = 0
        self.in_flight = 0
        self.streak = 0
        self._started = 0  # attempts started so far: each attempt's sequence number
        self._streak_after = 0  # attempts started before the streak began do not count
        self._streak_classes: collections.Counter[str] = collections.Counter()
        self.first_reasons: dict[str, str] = {}
        self.tripped: str | None = None
        self.url: str | None = None

    def retry_policy(self, policy: RetryPolicy) -> RetryPolicy:
        """``policy``, except that nothing is retried once the watch has tripped."""
        import attrs

        retry_on = policy.on
        return attrs.evolve(policy, on=lambda exc: self.tripped is None and retry_on(exc))

    async def __call__(self, request: GatewayRequest, call_next: Handler) -> GatewayReply:
        """Count and classify one attempt."""
        self.attempts += 1
        self.retries += request.attempt > 1
        self.in_flight += 1
        self.url = request.url
        self._started += 1
        sequence = self._started
        try:
            reply = await call_next(request)
        except FreedomPayError as exc:
            self._failed(exc, sequence)
            raise
        finally:
            self.in_flight -= 1
        self.streak = 0
        self._streak_classes.clear()
        return reply

    def _failed(self, exc: FreedomPayError, sequence: int) -> None:
        name = type(exc).__name__
        if isinstance(exc, _TIMEOUTS):
            self.timeouts += 1
        if name not in self.first_reasons and not isinstance(exc, AlreadyCancelledError):
            self.first_reasons[name] = reason = _reason(exc)
            print(f"{PROG}: first {name}: {reason}", file=self._err, flush=True)
        if not not_a_gateway(exc):
            if not (isinstance(exc, MalformedReplyError) and exc.rate_limited):
                self.streak = 0
                self._streak_classes.clear()
            return
        if self.streak == 0:
            self._streak_after = self._started
        elif sequence <= self._streak_after:
            return  # in flight when the streak began: the same stall, counted once
        self.streak += 1
        self._streak_classes[name] += 1
        if self.tripped is None and self.threshold and self.streak >= self.threshold:
            classes = ", ".join(f"{n} {c}" for n, c in self._streak_classes.most_common())
            first = self._streak_classes.most_common(1)[0][0]
            self.tripped = (
                f"{self.streak} consecutive attempts against {request_url(self.url)} failed "
                f"without a gateway answer ({classes}); {first}: "
                f"{self.first_reasons.get(first, '?')}"
            )
            if self._on_trip is not None:
                self._on_trip(self.tripped)

    def status(self) -> str:
        """Live figures for the progress line ("" before the first attempt)."""
        if not self.attempts:
            return ""
        parts = [f"attempts {self.attempts}"]
        if self.retries:
            parts.append(f"retries {self.retries}")
        if self.timeouts:
            parts.append(f"timeouts {self.timeouts}")
        parts.append(f"in flight {self.in_flight}")
        return ", ".join(parts)


def request_url(url: str | None) -> str:
    """The URL to name in a message."""
    return url if url is not None else "the gateway"
