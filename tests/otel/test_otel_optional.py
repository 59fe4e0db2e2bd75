"""OpenTelemetry stays optional: nothing imports it unless ``freedompay_async.otel`` is
imported, that module without the API names the extra, and its default providers are the
global ones. Import checks run in a fresh interpreter, where nothing is imported yet."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap

import pytest

import freedompay_async as fp

#: Serves a sandbox in the child process and cancels one payment through a session;
#: ``{setup}`` and ``{options}`` fill in the telemetry, ``{report}`` what is printed.
PROGRAM = """
import asyncio
import sys

import freedompay_async as fp
import freedompay_async.callbacks
import freedompay_async.cli
from freedompay_async.sandbox import SandboxGateway

{setup}

async def main() -> None:
    gateway = SandboxGateway(1, "child-key")
    gateway.add_payments([7])
    async with gateway.serve() as url:
        credentials = fp.Credentials(1, "child-key")
        async with fp.AsyncSession(credentials, base_url=url{options}) as session:
            await session.cancel(7)

asyncio.run(main())
{report}
"""

LOADED = 'print(sorted(m for m in sys.modules if m.partition(".")[0] == "opentelemetry"))'


def run(setup: str = "", options: str = "", report: str = LOADED) -> str:
    code = PROGRAM.format(setup=textwrap.dedent(setup), options=options, report=report)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_session_without_the_middleware_imports_no_opentelemetry() -> None:
    assert run() == "[]"


def test_importing_the_module_is_what_loads_opentelemetry() -> None:
    # The control for the test above: the same program, the module imported.
    loaded = run(setup="import freedompay_async.otel")
    assert "'opentelemetry.trace'" in loaded and "'opentelemetry.metrics'" in loaded


def test_without_the_api_the_module_raises_a_configuration_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "freedompay_async.otel", raising=False)
    with pytest.raises(fp.ConfigurationError, match=r"pip install 'freedompay_async\[otel\]'"):
        importlib.import_module("freedompay_async.otel")


def test_the_default_providers_are_the_global_ones_even_when_set_later() -> None:
    setup = """
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        from freedompay_async.otel import OpenTelemetryMiddleware

        middleware = OpenTelemetryMiddleware()  # before any provider is set
        spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        trace.set_tracer_provider(tracer_provider)
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    """
    report = """
names = [span.name for span in spans.get_finished_spans()]
points = [
    (metric.name, point.value)
    for resource in reader.get_metrics_data().resource_metrics
    for scope in resource.scope_metrics
    for metric in scope.metrics
    if metric.name == "freedompay.attempts"
    for point in metric.data.data_points
]
print(names, points)
"""
    out = run(setup=setup, options=", attempt_middlewares=[middleware]", report=report)
    assert out == "['POST /g2g/cancel'] [('freedompay.attempts', 1)]"
