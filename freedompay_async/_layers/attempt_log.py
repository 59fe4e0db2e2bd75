"""The logging layer: one DEBUG line per attempt, nothing secret in it."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from .._exceptions import FreedomPayError
from .._wire.messages import GatewayReply, GatewayRequest
from .chain import Handler, describe_error

__all__ = ["LoggingMiddleware"]

logger = logging.getLogger(__name__)


class LoggingMiddleware:
    """Logs one DEBUG line per attempt (operation, payment id, attempt, outcome, elapsed).

    Uses the ``freedompay_async`` logger hierarchy and installs no handler. Logs no
    fields, bodies, signatures or keys.
    """

    def __init__(
        self, logger: logging.Logger = logger, *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._logger = logger
        self._clock = clock

    @property
    def logger(self) -> logging.Logger:
        """The logger attempts go to (at DEBUG)."""
        return self._logger

    def __call__(self, request: GatewayRequest, call_next: Handler) -> Awaitable[GatewayReply]:
        """Time the attempt and log its outcome; with DEBUG off, hand straight through."""
        if not self._logger.isEnabledFor(logging.DEBUG):
            return call_next(request)
        return self._logged(request, call_next)

    async def _logged(self, request: GatewayRequest, call_next: Handler) -> GatewayReply:
        start = self._clock()
        try:
            reply = await call_next(request)
        except FreedomPayError as exc:
            self._logger.debug(
                "%s payment=%s attempt=%d failed: %s (%.1f ms)",
                request.operation,
                request.payment_id,
                request.attempt,
                describe_error(exc),
                (self._clock() - start) * 1000,
            )
            raise
        self._logger.debug(
            "%s payment=%s attempt=%d ok (%.1f ms)",
            request.operation,
            request.payment_id,
            request.attempt,
            (self._clock() - start) * 1000,
        )
        return reply
