"""Watching every HTTP attempt of a run: live counts for the progress line, the first
reason of each error class on stderr, and the fail-fast rule.

:class:`AttemptWatch` is a middleware placed *inside* the retry layer, so it sees each
attempt (not each call) with its error already parsed. A run against a gateway that is
plainly wrong (nothing listening, DNS, TLS, a 404 because the URL is wrong, an HTML
page, replies that never verify, no reply at all) would otherwise retry every id to
its deadline and end in a pile of "unknown": after ``threshold`` consecutive attempts
that failed without a gateway answer, the watch trips, retries stop, and the run stops
sending new ids. A refusal of the credentials (a request signature or merchant the
gateway refuses, or a reply that cannot be verified because the key is wrong) trips it
at once, named as such.

:class:`OperationRetry` is the run's retry layer, outside the watch: each operation
keeps its own retry rule (a status query retries what a cancel would not; a clearing or
refund never re-sends an attempt the gateway may have acted on), and nothing is retried
once the watch has tripped.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable
from typing import TextIO

import attrs

from .._exceptions import (
    AlreadyCancelledError,
    ConnectError,
    ConnectionLostError,
    ConnectTimeoutError,
    DeadlineExceededError,
    FreedomPayError,
    GatewayError,
    InvalidRequestSignatureError,
    MalformedReplyError,
    ReplyError,
    ResponseTimeoutError,
    SignatureVerificationError,
    UnconfirmedReplyError,
)
from .._layers.chain import Handler
from .._layers.retry import RetryMiddleware, RetryPolicy
from .._operations.definitions import OPERATIONS, RetryRule, retry_predicate
from .._wire.messages import GatewayReply, GatewayRequest
from ._console import Console
from ._outcome_record import CREDENTIAL_ERRORS
from ._text import describe

__all__ = [
    "CREDENTIAL_ERRORS",
    "DEFAULT_FAIL_FAST_AFTER",
    "REFUSED",
    "AttemptWatch",
    "OperationRetry",
    "RunStoppedError",
    "credential_refusal",
    "not_a_gateway",
]

#: Consecutive non-gateway attempt failures that stop a run (``--fail-fast-after``).
DEFAULT_FAIL_FAST_AFTER = 20
_TIMEOUTS = (ResponseTimeoutError, ConnectTimeoutError)
#: How a stop on refused credentials begins.
REFUSED = "the gateway refused the credentials"
_CHECK_CREDENTIALS = "check the merchant id and secret key"


class RunStoppedError(DeadlineExceededError):
    """An attempt not sent because the run has stopped (the gateway looked wrong, or
    refused the credentials). Never sent, never retried: what the call's earlier
    attempts may have done is still told by ``earlier_maybe_processed``."""


def credential_refusal(error: FreedomPayError | None) -> int | None:
    """The code of a refusal of the credentials, else None.

    A wrong secret key cannot verify the gateway's signed 1100, so that reply arrives
    as a SignatureVerificationError claiming 1100: stopping on it is the safe side (a
    forger can only make the run stop, never count a payment as done).
    """
    if isinstance(error, GatewayError) and isinstance(error, CREDENTIAL_ERRORS):
        return error.code
    if (
        isinstance(error, SignatureVerificationError)
        and error.claimed_code in InvalidRequestSignatureError.codes
    ):
        return error.claimed_code
    return None


def not_a_gateway(error: FreedomPayError) -> bool:
    """Whether an attempt's error says nothing answered like a Freedom Pay gateway.

    Counted: no connection (refused, DNS, TLS), a connection lost, a timeout, an HTTP
    status that is not a gateway answer (404/405 from a wrong URL, 5xx) or a 200 whose
    body is not the gateway's XML, and a reply whose signature does not verify. Not
    counted: a gateway error code (the gateway is there and answered), a verified
    reply whose claim names no payment (:class:`UnconfirmedReplyError`: the gateway
    answered; only status can bind its claim) and HTTP 429 (a server asking to slow
    down is pacing, not a wrong URL).
    """
    if isinstance(error, GatewayError | UnconfirmedReplyError):
        return False
    if isinstance(error, MalformedReplyError) and error.rate_limited:
        return False
    return isinstance(
        error,
        (ConnectError, ConnectTimeoutError, ResponseTimeoutError, ConnectionLostError, ReplyError),
    )


def _reason(error: FreedomPayError) -> str:
    text = describe(error)
    if credential_refusal(error) is not None:
        text += f" ({REFUSED}: {_CHECK_CREDENTIALS})"
    elif isinstance(error, SignatureVerificationError):
        text += " (wrong --base-url, or a proxy answering in its place?)"
    elif isinstance(error, MalformedReplyError) and error.http_status in (404, 405):
        text += " (--base-url must be the gateway root, without /g2g/cancel)"
    return text[:360]


class AttemptWatch:
    """Middleware: counts attempts, reports each error class once, trips on a dead gateway.

    ``threshold`` consecutive counted failures (see :func:`not_a_gateway`; 0: never)
    trip it: :attr:`tripped` then holds the reason, ``on_trip`` is called once, and
    :meth:`retry_policy`'s policies stop retrying. Any gateway answer resets the count.
    A refusal of the credentials (:func:`credential_refusal`) trips it at once, with
    :attr:`refused` set. Once tripped, no attempt is sent: each is refused with
    :class:`RunStoppedError` (a reconciling status query of an id in flight, say).
    Messages go to ``console`` (a :class:`Console`, or a stream).

    Attempts run concurrently, so one stall (a network hiccup, a busy machine) can
    time out every attempt in flight at once. Such a burst counts once: after the
    first failure of a streak, only attempts *started after it* add to the count. A
    dead gateway keeps failing the new attempts and trips the watch; a hiccup does not.
    """

    def __init__(
        self,
        threshold: int,
        console: Console | TextIO,
        *,
        on_trip: Callable[[str], None] | None = None,
        on_wire: Callable[[], int] | None = None,
    ) -> None:
        self.threshold = threshold
        self._console = console if isinstance(console, Console) else Console(console)
        self._on_trip = on_trip
        self._on_wire = on_wire
        self.refused = False
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
        retry_on = policy.on
        return attrs.evolve(policy, on=lambda exc: self.tripped is None and retry_on(exc))

    async def __call__(self, request: GatewayRequest, call_next: Handler) -> GatewayReply:
        """Count and classify one attempt (refuse it once tripped)."""
        if self.tripped is not None:
            raise RunStoppedError(
                "not sent: the run has stopped sending", payment_id=request.payment_id
            )
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
            self._console.say(f"first {name}: {reason}")
        code = credential_refusal(exc)
        if code is not None:
            self._trip(f"{REFUSED} ({name}, code {code}): {_CHECK_CREDENTIALS}", refused=True)
            return
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
        if self.threshold and self.streak >= self.threshold:
            classes = ", ".join(f"{n} {c}" for n, c in self._streak_classes.most_common())
            first = self._streak_classes.most_common(1)[0][0]
            self._trip(
                f"{self.streak} consecutive attempts against {request_url(self.url)} failed "
                f"without a gateway answer ({classes}); {first}: "
                f"{self.first_reasons.get(first, '?')}"
            )

    def _trip(self, reason: str, *, refused: bool = False) -> None:
        if self.tripped is not None:
            return
        self.tripped = reason
        self.refused = refused
        if self._on_trip is not None:
            self._on_trip(reason)

    def status(self) -> str:
        """Live figures for the progress line ("" before the first attempt).

        With ``on_wire``, "in flight" is the attempts on the wire (never above the
        in-flight cap) and "parked" those under way but waiting before it (for their
        payment's spacing slot, pacing or a connection slot).
        """
        if not self.attempts:
            return ""
        parts = [f"attempts {self.attempts}"]
        if self.retries:
            parts.append(f"retries {self.retries}")
        if self.timeouts:
            parts.append(f"timeouts {self.timeouts}")
        if self._on_wire is None:
            parts.append(f"in flight {self.in_flight}")
            return ", ".join(parts)
        wire = self._on_wire()
        parts.append(f"in flight {wire}")
        if self.in_flight > wire:
            parts.append(f"parked {self.in_flight - wire}")
        return ", ".join(parts)


def request_url(url: str | None) -> str:
    """The URL to name in a message."""
    return url if url is not None else "the gateway"


class OperationRetry:
    """The run's retry layer: ``policy`` with each operation's own retry rule, as the
    session's chains apply it, and no retry at all once ``stopped()`` says so.

    An operation this table does not know gets the money rule (nothing the gateway may
    have acted on is re-sent), the safe side.
    """

    def __init__(self, policy: RetryPolicy, stopped: Callable[[], bool]) -> None:
        def layer(rule: RetryRule) -> RetryMiddleware:
            on = policy.on if rule is RetryRule.CONFIRMING else retry_predicate(rule, policy.on)
            return RetryMiddleware(attrs.evolve(policy, on=lambda exc: not stopped() and on(exc)))

        self._layers = {name: layer(op.retry) for name, op in OPERATIONS.items()}
        self._default = layer(RetryRule.MONEY)

    def __call__(self, request: GatewayRequest, call_next: Handler) -> Awaitable[GatewayReply]:
        """Retry ``request`` by its operation's rule."""
        return self._layers.get(request.operation, self._default)(request, call_next)
