"""OpenTelemetryMiddleware through a real AsyncSession against a served sandbox, read back
with the SDK's in-memory span exporter and metric reader: one span per attempt, the HTTP
client conventions, the gateway's codes, the metrics, and nothing secret anywhere."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import freedompay_async as fp
from freedompay_async import GatewayReply, GatewayRequest, Handler
from freedompay_async.otel import DURATION_BUCKETS, OpenTelemetryMiddleware
from freedompay_async.sandbox import Fault, SandboxGateway

from ..helpers import SECRET, FakeClock

#: Every attribute a span may carry: the key, the signature, the salt, the body and the
#: fields can only leak through an attribute, and none of these holds them.
SPAN_KEYS = {
    "http.request.method",
    "server.address",
    "server.port",
    "url.full",
    "url.template",
    "http.response.status_code",
    "error.type",
    "freedompay.operation",
    "freedompay.payment_id",
    "freedompay.attempt",
    "freedompay.outcome",
    "freedompay.error_code",
    "freedompay.maybe_processed",
}
METRIC_KEYS = {
    "freedompay.operation",
    "server.address",
    "freedompay.outcome",
    "freedompay.error_code",
}


class Telemetry:
    """An SDK tracer and meter provider with in-memory export, and the middleware on them."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.ticks = itertools.count()  # each reading one virtual second after the last
        self.middleware = OpenTelemetryMiddleware(
            self.tracer_provider, self.meter_provider, clock=lambda: float(next(self.ticks))
        )

    def finished(self) -> list[ReadableSpan]:
        """The library's finished spans (not the test's own), oldest first."""
        spans = [
            span
            for span in self.spans.get_finished_spans()
            if span.instrumentation_scope is not None
            and span.instrumentation_scope.name == "freedompay_async"
        ]
        return sorted(spans, key=lambda span: span.start_time or 0)

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def total(self, name: str, **match: object) -> int:
        """The sum of counter ``freedompay.<name>`` over the points whose attributes
        include ``freedompay.<key>: value`` for each of ``match``."""
        found = 0
        for point in self.points(f"freedompay.{name}"):
            attributes = dict(point.attributes)
            if all(attributes.get(f"freedompay.{k}") == v for k, v in match.items()):
                found += point.value
        return found


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    found = Telemetry()
    yield found
    found.tracer_provider.shutdown()
    found.meter_provider.shutdown()


def session(
    credentials: fp.Credentials, url: str, telemetry: Telemetry, *inner: fp.Middleware
) -> fp.AsyncSession:
    """A session whose retries and spacing waits are virtual, that settles over loopback
    within 2 s (status is real network), traced by ``telemetry``."""
    clock = FakeClock()
    return fp.AsyncSession(
        credentials,
        base_url=url,
        retry=fp.RetryPolicy(attempts=4, clock=clock, sleep=clock.sleep),
        spacing=fp.PaymentSpacing(clock=clock, sleep=clock.sleep),
        settle=fp.SettlePolicy(window=2.0, poll_initial=0.05, poll_max=0.2),
        attempt_middlewares=[telemetry.middleware, *inner],
    )


async def test_one_client_span_per_attempt_with_the_http_conventions(
    served: tuple[SandboxGateway, str], credentials: fp.Credentials, telemetry: Telemetry
) -> None:
    gateway, url = served
    gateway.inject(51, Fault.HTTP_503, Fault.ERROR_9999, None)
    caller = telemetry.tracer_provider.get_tracer("the caller")
    async with session(credentials, url, telemetry) as fp_session:
        with caller.start_as_current_span("settle payment 51") as parent:
            result = await fp_session.cancel(51)
    assert result.attempts == 3
    spans = telemetry.finished()
    assert len(spans) == 3 == gateway.requests_total
    port = int(url.rsplit(":", 1)[1])
    for number, span in enumerate(spans, 1):
        assert span.kind is SpanKind.CLIENT
        assert span.name == "POST /g2g/cancel"
        assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
        assert span.attributes is not None
        assert set(span.attributes) <= SPAN_KEYS
        assert {key: span.attributes.get(key) for key in SPAN_KEYS - {"error.type"}} | {
            "http.response.status_code": None,
            "freedompay.outcome": None,
            "freedompay.error_code": None,
            "freedompay.maybe_processed": None,
        } == {
            "http.request.method": "POST",
            "server.address": "127.0.0.1",
            "server.port": port,
            "url.full": f"{url}/g2g/cancel",
            "url.template": "/g2g/cancel",
            "freedompay.operation": "cancel",
            "freedompay.payment_id": 51,
            "freedompay.attempt": number,
            "http.response.status_code": None,
            "freedompay.outcome": None,
            "freedompay.error_code": None,
            "freedompay.maybe_processed": None,
        }
    first, second, third = (dict(span.attributes or {}) for span in spans)
    assert first["http.response.status_code"] == 503
    assert first["error.type"] == first["freedompay.outcome"] == "MalformedReplyError"
    assert "freedompay.error_code" not in first
    assert second["http.response.status_code"] == 200
    assert second["error.type"] == second["freedompay.outcome"] == "TransientGatewayError"
    assert second["freedompay.error_code"] == 9999
    # A gateway error names no payment: about a cancel, it cannot prove nothing was done.
    assert second["freedompay.maybe_processed"] is True
    assert third["http.response.status_code"] == 200
    assert third["freedompay.outcome"] == "ok"
    assert "error.type" not in third and "freedompay.error_code" not in third
    assert [span.status.status_code for span in spans] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    assert spans[0].status.description == "MalformedReplyError http=503"
    assert spans[1].status.description == "TransientGatewayError code=9999"
    assert all(span.events == () for span in spans)  # no exception event: no message


async def test_a_final_gateway_error_carries_its_code(
    served: tuple[SandboxGateway, str], credentials: fp.Credentials, telemetry: Telemetry
) -> None:
    _gateway, url = served
    async with session(credentials, url, telemetry) as fp_session:
        with pytest.raises(fp.PaymentNotFoundError):
            await fp_session.status(999_999)
    (refused,) = telemetry.finished()
    assert refused.attributes is not None
    assert refused.attributes["freedompay.error_code"] == 11068
    assert refused.attributes["error.type"] == "PaymentNotFoundError"
    assert refused.attributes["http.response.status_code"] == 200
    assert refused.attributes["freedompay.attempt"] == 1  # final: not retried
    assert refused.attributes["freedompay.operation"] == "status"
    assert refused.status.status_code is StatusCode.ERROR
    assert telemetry.total("outcomes", outcome="PaymentNotFoundError", error_code=11068) == 1


async def test_an_unbound_already_cancelled_is_traced_as_unconfirmed_then_status(
    served: tuple[SandboxGateway, str], credentials: fp.Credentials, telemetry: Telemetry
) -> None:
    _gateway, url = served
    async with session(credentials, url, telemetry) as fp_session:
        await fp_session.cancel(52)
        with pytest.raises(fp.AlreadyCancelledError):
            await fp_session.cancel(52)  # the 10033 names no payment: status confirms it
    ok, claimed, status = telemetry.finished()
    assert ok.attributes is not None and claimed.attributes is not None
    assert status.attributes is not None
    assert ok.attributes["freedompay.outcome"] == "ok"
    # The attempt's own reply is only a claim: traced as what it was on the wire.
    assert claimed.attributes["error.type"] == "UnconfirmedReplyError"
    assert claimed.attributes["freedompay.maybe_processed"] is True
    assert claimed.attributes["http.response.status_code"] == 200
    assert claimed.attributes["freedompay.attempt"] == 1  # not retried: status settles it
    assert claimed.status.status_code is StatusCode.ERROR
    assert status.name == "POST /g2g/status_v2"
    assert status.attributes["freedompay.outcome"] == "ok"
    assert telemetry.total("outcomes", outcome="UnconfirmedReplyError") == 1
    assert telemetry.total("outcomes", outcome="ok", operation="status") == 1


async def test_metrics_count_attempts_retries_outcomes_and_time_each_attempt(
    served: tuple[SandboxGateway, str], credentials: fp.Credentials, telemetry: Telemetry
) -> None:
    gateway, url = served
    gateway.inject(53, Fault.HTTP_503, Fault.HTTP_503, None)
    gateway.inject(54, Fault.ERROR_9999, None)
    async with session(credentials, url, telemetry) as fp_session:
        # One at a time: each attempt reads the ticking clock twice, in turn.
        results = [await fp_session.cancel(pid) for pid in (53, 54, 55)]
        await fp_session.status(53)
    assert [r.attempts for r in results] == [3, 2, 1]
    attempts = gateway.requests_total
    assert attempts == 3 + 2 + 1 + 1
    assert telemetry.total("attempts") == attempts == len(telemetry.finished())
    assert telemetry.total("attempts", operation="status") == 1
    assert telemetry.total("retries") == 3
    assert telemetry.total("retries", operation="status") == 0
    assert telemetry.total("outcomes") == attempts
    assert telemetry.total("outcomes", outcome="ok") == 4
    assert telemetry.total("outcomes", outcome="ok", operation="status") == 1
    assert telemetry.total("outcomes", outcome="MalformedReplyError") == 2
    assert telemetry.total("outcomes", outcome="TransientGatewayError", error_code=9999) == 1
    durations = telemetry.points("freedompay.attempt.duration")
    assert sum(point.count for point in durations) == attempts
    assert sum(point.sum for point in durations) == attempts * 1.0  # one tick per attempt
    assert all(tuple(point.explicit_bounds) == DURATION_BUCKETS for point in durations)
    every_name = ("attempts", "retries", "outcomes", "attempt.duration")
    for name in every_name:
        for point in telemetry.points(f"freedompay.{name}"):
            assert set(point.attributes) <= METRIC_KEYS  # never the payment id
            assert "freedompay.operation" in point.attributes


class Secrets:
    """An attempt middleware inside the traced one: collects every signature and salt
    sent or received, to search the telemetry for them."""

    def __init__(self) -> None:
        self.found: set[str] = set()

    def keep(self, fields: Any) -> None:
        for name, value in fields:
            if name in ("pg_sig", "pg_salt") and isinstance(value, str):
                self.found.add(value)

    async def __call__(self, request: GatewayRequest, call_next: Handler) -> GatewayReply:
        self.keep(request.fields)
        try:
            reply = await call_next(request)
        except fp.GatewayError as exc:
            self.keep(exc.reply_fields)
            raise
        self.keep(reply.fields)
        return reply


def _telemetry_text(telemetry: Telemetry) -> list[str]:
    """Every string the telemetry holds: span names, attribute values, status texts,
    events and links; metric attribute values."""
    texts: list[str] = []
    for span in telemetry.finished():
        texts.append(span.name)
        texts.extend(str(value) for value in (span.attributes or {}).values())
        texts.append(str(span.status.description))
        texts.extend(str(event.attributes) for event in span.events)
        texts.extend(str(link.attributes) for link in span.links)
    for name in ("attempts", "retries", "outcomes", "attempt.duration"):
        for point in telemetry.points(f"freedompay.{name}"):
            texts.extend(str(value) for value in point.attributes.values())
    return texts


async def test_no_key_signature_salt_or_field_in_any_attribute(
    served: tuple[SandboxGateway, str], credentials: fp.Credentials, telemetry: Telemetry
) -> None:
    gateway, url = served
    gateway.inject(56, Fault.FORGED, Fault.GARBAGE)
    gateway.inject(57, Fault.ERROR_9999, Fault.RESET_AFTER, None)
    secrets = Secrets()
    async with session(credentials, url, telemetry, secrets) as fp_session:
        outcomes = [o async for o in fp_session.cancel_many([56, 57, 58])]
        await fp_session.clear(59, Decimal("10.00"))
        await fp_session.refund(59, Decimal("5.00"))
        with pytest.raises(fp.PaymentNotFoundError):
            await fp_session.status(999_999)
    assert len(outcomes) == 3
    spans = telemetry.finished()
    operations = {(span.attributes or {}).get("freedompay.operation") for span in spans}
    assert operations == {"cancel", "status", "clearing", "refund"}
    assert len(secrets.found) > 10  # signatures and salts of requests and replies
    texts = _telemetry_text(telemetry)
    for text in texts:
        assert SECRET not in text
        assert not any(secret in text for secret in secrets.found)
        assert "pg_" not in text and "<response" not in text  # no field name, no body
    for span in telemetry.finished():
        assert set(span.attributes or {}) <= SPAN_KEYS


async def test_a_cancelled_attempt_ends_its_span_and_the_cancel_propagates(
    served: tuple[SandboxGateway, str], credentials: fp.Credentials, telemetry: Telemetry
) -> None:
    gateway, url = served
    gateway.inject(60, Fault.SLOW)  # answers after 2 s: the attempt is in flight until then
    sent = asyncio.Event()

    async def mark(request: GatewayRequest, call_next: Handler) -> GatewayReply:
        sent.set()
        return await call_next(request)

    async with session(credentials, url, telemetry, mark) as fp_session:
        task = asyncio.create_task(fp_session.cancel(60))
        await sent.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
    (span,) = telemetry.finished()
    assert span.end_time is not None
    assert span.attributes is not None
    assert span.attributes["freedompay.outcome"] == "CancelledError"
    assert span.attributes["error.type"] == "CancelledError"
    assert "http.response.status_code" not in span.attributes
    assert span.status.status_code is StatusCode.ERROR
    assert telemetry.total("attempts") == 1 == telemetry.total("outcomes", outcome="CancelledError")


async def test_the_span_is_current_while_the_attempt_runs(
    served: tuple[SandboxGateway, str], credentials: fp.Credentials, telemetry: Telemetry
) -> None:
    # Instrumentation further in (an aiohttp tracer, a transport of yours) nests under it.
    from opentelemetry import trace

    _gateway, url = served
    inside: list[int] = []

    async def look(request: GatewayRequest, call_next: Handler) -> GatewayReply:
        inside.append(trace.get_current_span().get_span_context().span_id)
        return await call_next(request)

    async with session(credentials, url, telemetry, look) as fp_session:
        await fp_session.cancel(61)
    (span,) = telemetry.finished()
    assert inside == [span.context.span_id]
    assert trace.get_current_span().get_span_context().span_id != span.context.span_id


def test_the_public_names_are_documented() -> None:
    import freedompay_async.otel as otel

    assert otel.__all__ == ["DURATION_BUCKETS", "OpenTelemetryMiddleware"]
    assert otel.__doc__ and otel.OpenTelemetryMiddleware.__doc__
    assert list(DURATION_BUCKETS) == sorted(DURATION_BUCKETS)


def test_providers_must_be_providers() -> None:
    with pytest.raises(fp.ConfigurationError, match="tracer_provider"):
        OpenTelemetryMiddleware(tracer_provider=object())  # type: ignore[arg-type]
    with pytest.raises(fp.ConfigurationError, match="meter_provider"):
        OpenTelemetryMiddleware(meter_provider=object())  # type: ignore[arg-type]
    assert repr(OpenTelemetryMiddleware()) == "<OpenTelemetryMiddleware>"
