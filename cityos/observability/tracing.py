"""OpenTelemetry tracing, off unless CITYOS_TRACING=true. When on, a request is one trace: the HTTP server span
(ASGI middleware), the GraphQL operation (`graphql <type> <name>`, one span per operation: never one per field),
each SQL statement (SQLAlchemy's instrumentation on the app's engines), each Cerbos PDP call (`cerbos <call>`) and
each outbound HTTP call (httpx's instrumentation: Stripe, Keycloak, Fleetbase, Payload, ERPNext). Spans go to the
OTLP/HTTP endpoint of OTEL_EXPORTER_OTLP_ENDPOINT (a collector), batched.

When off, `tracer()` is OpenTelemetry's no-op tracer and nothing is instrumented: no cost on the request path
beyond a no-op context manager per operation and PDP call."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from starlette.middleware import Middleware

from cityos.config import Settings

_provider: TracerProvider | None = None
_NO_OP = trace.NoOpTracer()


def tracer(name: str) -> trace.Tracer:
    return _provider.get_tracer(name) if _provider is not None else _NO_OP


def configure(settings: Settings, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """Start tracing when the settings ask for it (tests pass an in-memory exporter: spans are exported at once)."""
    global _provider
    if not settings.CITYOS_TRACING:
        return None
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    provider = TracerProvider(resource=Resource.create({"service.name": settings.OTEL_SERVICE_NAME,
                                                        "deployment.environment": settings.CITYOS_ENV.value}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
            endpoint=f"{endpoint.rstrip('/')}/v1/traces" if endpoint else None)))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    return provider


def instrument_engine(engine: Any) -> None:
    """SQL spans for one async engine (no-op while tracing is off)."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # Its package pins sqlalchemy < 2.1 while its engine listeners (before/after_cursor_execute) work on our 2.1:
    # the dependency check is skipped on purpose (tests/integration/test_tracing.py proves the SQL spans).
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=_provider,
                                        enable_commenter=False, skip_dep_check=True)


def shutdown() -> None:
    global _provider
    if _provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    SQLAlchemyInstrumentor().uninstrument()
    _provider.shutdown()
    _provider = None


def middleware() -> list[Middleware]:
    """The HTTP server span, outermost (none while tracing is off)."""
    if _provider is None:
        return []
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return [Middleware(OpenTelemetryMiddleware, tracer_provider=_provider,
                       excluded_urls="/health/live,/health/ready,/metrics")]
