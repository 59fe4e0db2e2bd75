"""Retry with exponential backoff and full jitter, per-attempt timeouts and a deadline."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from .._exceptions import (
    ConfigurationError,
    DeadlineExceededError,
    FreedomPayError,
)
from .._wire.messages import GatewayReply, GatewayRequest
from .chain import (
    Handler,
    describe_error,
)

__all__ = ["RetryMiddleware", "RetryPolicy", "default_retry_on"]

logger = logging.getLogger(__name__)


def default_retry_on(error: FreedomPayError) -> bool:
    """Retry connection failures, timeouts, lost connections, HTTP 429/5xx, non-XML bodies
    and transient gateway codes (9999, 10000, 11000, 11014). Never signature, merchant,
    not-found, already-cancelled or parameter errors, nor replies that fail verification.
    """
    return error.retryable


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise ConfigurationError(f"{attribute.name} must be positive or None")


@attrs.frozen
class RetryPolicy:
    """How a call is retried. Shaped like stamina: you say on what, how often, how long.

    - ``attempts``: total HTTP attempts, the first included (>= 1).
    - ``attempt_timeout``: seconds one attempt may take (None: no limit).
    - ``deadline``: seconds the whole call may take, backoff **and queueing** included
      (None: no limit). It travels on the request as ``GatewayRequest.deadline``
      (absolute, on ``clock``): waiting for a connection slot or a pacing slot counts
      against it and raises DeadlineExceededError (never sent, not an attempt) when it
      passes, and each attempt's timeout is cut, at send time, to what is left of it.
    - backoff before retry *n*: ``uniform(0, min(wait_max, wait_initial * wait_exp_base**(n-1)))``
      ("full jitter"); a ``Retry-After`` from the server is honoured (seconds or HTTP-date)
      when it fits in the deadline and is at most ``max_retry_after`` seconds (60),
      otherwise the call gives up with that error: no reply can make a call sleep
      longer, with or without a deadline.
    - ``on``: decides from the error whether to retry (``default_retry_on``).
    - ``min_attempt_time``: no retry is started with less than this left of the
      deadline (a nearly-expired attempt could only add an ambiguous timeout).
    - ``clock``, ``sleep`` and ``random`` are injectable so tests run instantly.
    """

    attempts: int = 4
    attempt_timeout: float | None = attrs.field(default=20.0, validator=_positive)
    deadline: float | None = attrs.field(default=90.0, validator=_positive)
    wait_initial: float = 0.5
    wait_max: float = 10.0
    wait_exp_base: float = 2.0
    on: Callable[[FreedomPayError], bool] = default_retry_on
    honour_retry_after: bool = True
    max_retry_after: float = attrs.field(default=60.0, validator=_positive)
    min_attempt_time: float = 0.5
    clock: Callable[[], float] = attrs.field(default=time.monotonic, eq=False, repr=False)
    sleep: Callable[[float], Awaitable[None]] = attrs.field(
        default=asyncio.sleep, eq=False, repr=False
    )
    random: Callable[[], float] = attrs.field(default=random.random, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigurationError("attempts must be >= 1")
        if self.wait_initial < 0 or self.wait_max < 0 or self.wait_exp_base < 1:
            raise ConfigurationError("backoff values must be >= 0 (exp base >= 1)")

    @classmethod
    def none(cls, *, attempt_timeout: float | None = 20.0) -> RetryPolicy:
        """One attempt, no retry; still bounded by ``attempt_timeout``."""
        return cls(attempts=1, attempt_timeout=attempt_timeout, deadline=None)

    @property
    def retries(self) -> bool:
        """Whether this policy ever makes a second attempt."""
        return self.attempts > 1

    def backoff(self, retry: int, error: FreedomPayError) -> float:
        """Seconds to wait before retry number ``retry`` (1-based) after ``error``."""
        growth = self.wait_exp_base ** min(retry - 1, 64)
        cap = min(self.wait_max, self.wait_initial * growth)
        delay = self.random() * cap
        retry_after = getattr(error, "retry_after", None)
        if self.honour_retry_after and isinstance(retry_after, int | float):
            delay = max(delay, float(retry_after))
        return delay


def attempt_request(
    request: GatewayRequest, timeout: float | None, attempt: int, deadline: float | None
) -> GatewayRequest:
    """``attrs.evolve(request, timeout=, attempt=, deadline=)``, built directly for a plain
    GatewayRequest: every call sets its deadline, and evolve's introspection costs more
    than the rest of the retry layer. A test holds the two equal field for field."""
    if type(request) is not GatewayRequest:
        return attrs.evolve(request, timeout=timeout, attempt=attempt, deadline=deadline)
    return GatewayRequest(
        request.operation,
        request.url,
        request.script,
        request.payment_id,
        request.fields,
        request.body,
        request.content_type,
        timeout,
        attempt,
        deadline,
        request.read_only,
    )


class RetryMiddleware:
    """Applies a :class:`RetryPolicy`: per-attempt timeouts, backoff, deadline.

    Each attempt re-sends the same signed bytes (``attrs.evolve`` changes only the
    timeout and attempt number). Errors that escape carry ``attempts`` and
    ``earlier_maybe_processed``; replies carry the same, so callers can tell an
    ambiguous first attempt from a clean answer.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        #: A call's first attempt: its timeout (the attempt timeout cut to the
        #: deadline) and the deadline's distance from the call's start (None: none).
        self._first_timeout = policy.attempt_timeout
        if policy.deadline is not None and (
            self._first_timeout is None or policy.deadline < self._first_timeout
        ):
            self._first_timeout = policy.deadline
        self._deadline_after = policy.deadline

    @property
    def policy(self) -> RetryPolicy:
        """The policy applied (fixed at construction: the first attempt's limits are
        worked out from it once)."""
        return self._policy

    def first_limits(self) -> tuple[float | None, float | None]:
        """``(timeout, deadline)`` of a call's first attempt, starting now: the timeout
        is the attempt timeout cut to the deadline, the deadline absolute on the clock."""
        after = self._deadline_after
        return self._first_timeout, None if after is None else self._policy.clock() + after

    async def __call__(self, request: GatewayRequest, call_next: Handler) -> GatewayReply:
        """Run attempts until one succeeds, the error is final, or the budget is spent."""
        timeout, deadline = self.first_limits()
        if request.attempt != 1 or timeout != request.timeout or deadline != request.deadline:
            request = attempt_request(request, timeout, 1, deadline)
        try:
            return await call_next(request)
        except FreedomPayError as exc:
            error = exc
        # Resumed outside the handler, so later errors do not carry this one as context.
        return await self.resume(request, call_next, error)

    async def resume(
        self, request: GatewayRequest, call_next: Handler, error: FreedomPayError
    ) -> GatewayReply:
        """Carry on after ``request`` (attempt 1, with the call's deadline set) failed
        with ``error``: retry per the policy, or raise the final error.

        ``__call__`` runs the first attempt and then this; the session's direct cancel
        path runs its own first attempt and then this, so both retry alike.
        """
        policy = self._policy
        clock = policy.clock
        deadline = request.deadline
        earlier_maybe_processed = False
        attempt = request.attempt
        exc = error
        while True:
            if isinstance(exc, DeadlineExceededError):
                exc.attempts = attempt - 1  # this attempt was never sent
                exc.earlier_maybe_processed = earlier_maybe_processed
                raise exc
            exc.attempts = attempt
            exc.earlier_maybe_processed = earlier_maybe_processed
            if attempt >= policy.attempts or not policy.on(exc):
                raise exc
            delay = policy.backoff(attempt, exc)
            if delay > policy.max_retry_after:
                raise exc
            if deadline is not None and clock() + delay + policy.min_attempt_time > deadline:
                raise exc
            earlier_maybe_processed = earlier_maybe_processed or exc.maybe_processed
            logger.info(
                "%s payment=%s attempt %d/%d failed (%s); retrying in %.2fs",
                request.operation,
                request.payment_id,
                attempt,
                policy.attempts,
                describe_error(exc),
                delay,
            )
            await policy.sleep(delay)
            attempt += 1
            timeout = policy.attempt_timeout
            if deadline is not None:
                left = deadline - clock()
                timeout = left if timeout is None else min(timeout, left)
            request = attempt_request(request, timeout, attempt, deadline)
            try:
                reply = await call_next(request)
            except FreedomPayError as failed:
                exc = failed
                continue
            return attrs.evolve(
                reply, attempts=attempt, earlier_maybe_processed=earlier_maybe_processed
            )
