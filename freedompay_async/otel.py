"""OpenTelemetry for fleets: one CLIENT span and a few metrics per HTTP attempt.

Install the ``otel`` extra (``pip install 'freedompay_async[otel]'``: the OpenTelemetry
API) and pass the middleware as a per-attempt layer::

    fp = AsyncSession(credentials, attempt_middlewares=[OpenTelemetryMiddleware()])

It runs inside the retry layer, after the per-payment spacing, the in-flight cap and
pacing, so each span and each latency sample is one real exchange with the gateway
(verification of the reply included); time spent queueing is not in it, and a call
whose deadline passes while queued makes no span (it was never sent).

This is the only module that imports OpenTelemetry; importing it without the API
installed raises :class:`~freedompay_async.ConfigurationError` naming the extra. Spans
and metrics hold no key, signature, salt, request body or field: only what is listed in
:class:`OpenTelemetryMiddleware`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

from ._exceptions import ConfigurationError, FreedomPayError, GatewayError, ReplyError
from ._layers.chain import Handler, describe_error
from ._version import __version__
from ._wire.messages import GatewayReply, GatewayRequest

try:
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.util.types import AttributeValue
except ImportError as exc:
    raise ConfigurationError(
        "freedompay_async.otel needs the OpenTelemetry API, which is not installed: "
        "pip install 'freedompay_async[otel]'"
    ) from exc

__all__ = ["DURATION_BUCKETS", "OpenTelemetryMiddleware"]

#: The instrumentation scope of every span and metric.
SCOPE = "freedompay_async"

#: Bucket boundaries (seconds) advised for the attempt duration histogram: OTel's HTTP
#: client buckets, extended to the default attempt timeout (20 s) and beyond.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    30.0, 60.0,
)  # fmt: skip

_DEFAULT_PORTS = {"https": 443, "http": 80}
#: Targets kept per middleware; a session has one per operation.
_MAX_TARGETS = 64

_Attributes = dict[str, AttributeValue]


class _Target:
    """What every attempt of one operation to one URL carries, worked out once."""

    __slots__ = ("metric", "name", "span")

    def __init__(self, operation: str, url: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
        except ValueError:  # an unusable port: left out rather than raised
            port = None
        netloc = parts.netloc.rpartition("@")[2]  # never the userinfo
        path = parts.path or "/"
        self.name = f"POST {path}"
        self.span: _Attributes = {
            "http.request.method": "POST",
            "server.address": host,
            "url.full": f"{parts.scheme}://{netloc}{path}",  # no query, no fragment
            "url.template": path,
            "freedompay.operation": operation,
        }
        if port is not None:
            self.span["server.port"] = port
        self.metric: _Attributes = {"freedompay.operation": operation, "server.address": host}


def _http_status(error: BaseException) -> int | None:
    """The HTTP status the failed attempt got back, when it got one."""
    if isinstance(error, GatewayError):
        return 200  # a gateway error is only ever read from a 200 reply
    if isinstance(error, ReplyError):
        return error.http_status
    return None


class OpenTelemetryMiddleware:
    """An attempt middleware that traces and measures each HTTP attempt.

    Pass it in ``AsyncSession(..., attempt_middlewares=[...])``. ``tracer_provider`` and
    ``meter_provider`` default to OpenTelemetry's global providers (looked up through
    the API's proxies, so providers set after this is built are used too). ``clock``
    times the attempts for the duration histogram.

    **Spans.** One span per attempt, kind CLIENT, named ``POST <path>`` (``POST
    /g2g/cancel``), current while the attempt runs (so instrumentation further in nests
    under it), with the HTTP client semantic conventions: ``http.request.method``,
    ``server.address``, ``server.port``, ``url.full`` (no query), ``url.template`` (the
    path), ``http.response.status_code`` when a response came back, ``error.type`` on
    failure; and ``freedompay.operation``, ``freedompay.payment_id``,
    ``freedompay.attempt`` (1 for the first), ``freedompay.outcome`` (``ok`` or the
    error's class name, ``CancelledError`` included), ``freedompay.error_code`` (the
    gateway's ``pg_error_code`` on a gateway error) and ``freedompay.maybe_processed``
    (on a library error: whether the gateway may have acted on this attempt). A failed
    attempt has status ERROR with a short, secret-free description; a success leaves
    the status unset. No exception is recorded as an event (messages may quote reply
    bodies); ``asyncio.CancelledError`` ends the span and propagates.

    **Metrics** (attributes ``freedompay.operation`` and ``server.address``, plus
    ``freedompay.outcome`` and ``freedompay.error_code`` where listed; never the
    payment id): ``freedompay.attempts`` (counter, each attempt as it starts),
    ``freedompay.retries`` (counter, the attempts after a call's first),
    ``freedompay.outcomes`` (counter, each attempt as it ends, by outcome and error
    code) and ``freedompay.attempt.duration`` (histogram, seconds, by outcome and error
    code; buckets advised by :data:`DURATION_BUCKETS`).
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if tracer_provider is not None and not isinstance(tracer_provider, trace.TracerProvider):
            raise ConfigurationError("tracer_provider must be an OpenTelemetry TracerProvider")
        if meter_provider is not None and not isinstance(meter_provider, metrics.MeterProvider):
            raise ConfigurationError("meter_provider must be an OpenTelemetry MeterProvider")
        self._clock = clock
        self._tracer = trace.get_tracer(SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider)
        self._attempts = meter.create_counter(
            "freedompay.attempts", unit="{attempt}", description="HTTP attempts started"
        )
        self._retries = meter.create_counter(
            "freedompay.retries",
            unit="{attempt}",
            description="HTTP attempts started after a call's first (retries)",
        )
        self._outcomes = meter.create_counter(
            "freedompay.outcomes",
            unit="{attempt}",
            description="HTTP attempts ended, by outcome (ok or the error class) and error code",
        )
        self._duration = meter.create_histogram(
            "freedompay.attempt.duration",
            unit="s",
            description="Duration of one HTTP attempt, reply verification included",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._targets: dict[tuple[str, str], _Target] = {}

    def __repr__(self) -> str:
        return "<OpenTelemetryMiddleware>"

    def _target(self, request: GatewayRequest) -> _Target:
        key = (request.operation, request.url)
        target = self._targets.get(key)
        if target is None:
            target = _Target(*key)
            if len(self._targets) < _MAX_TARGETS:
                self._targets[key] = target
        return target

    async def __call__(self, request: GatewayRequest, call_next: Handler) -> GatewayReply:
        """Run one attempt inside its span; count, time and describe how it ended."""
        target = self._target(request)
        attempt = request.attempt
        self._attempts.add(1, target.metric)
        if attempt > 1:
            self._retries.add(1, target.metric)
        attributes = dict(target.span)
        attributes["freedompay.attempt"] = attempt
        if request.payment_id is not None:
            attributes["freedompay.payment_id"] = request.payment_id
        start = self._clock()
        with self._tracer.start_as_current_span(
            target.name,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,  # an exception's message may quote the reply
            set_status_on_exception=False,
        ) as span:
            try:
                reply = await call_next(request)
            except BaseException as exc:  # CancelledError too: recorded, then re-raised
                self._failed(span, target, start, exc)
                raise
            span.set_attribute("http.response.status_code", reply.http_status)
            span.set_attribute("freedompay.outcome", "ok")
            self._record(target, start, "ok", None)
            return reply

    def _failed(self, span: trace.Span, target: _Target, start: float, exc: BaseException) -> None:
        outcome = type(exc).__name__
        code = exc.code if isinstance(exc, GatewayError) else None
        status = _http_status(exc)
        if status is not None:
            span.set_attribute("http.response.status_code", status)
        span.set_attribute("error.type", outcome)
        span.set_attribute("freedompay.outcome", outcome)
        if code is not None:
            span.set_attribute("freedompay.error_code", code)
        description = outcome
        if isinstance(exc, FreedomPayError):
            span.set_attribute("freedompay.maybe_processed", exc.maybe_processed)
            description = describe_error(exc)
        span.set_status(Status(StatusCode.ERROR, description))
        self._record(target, start, outcome, code)

    def _record(self, target: _Target, start: float, outcome: str, code: int | None) -> None:
        elapsed = max(self._clock() - start, 0.0)
        attributes = dict(target.metric)
        attributes["freedompay.outcome"] = outcome
        if code is not None:
            attributes["freedompay.error_code"] = code
        self._outcomes.add(1, attributes)
        self._duration.record(elapsed, attributes)
