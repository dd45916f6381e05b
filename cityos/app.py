"""The Starlette application: every route and middleware in one place."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from cityos.config import Settings
from cityos.graphql.schema import schema
from cityos.http import health
from cityos.http.graphiql import ASSETS_PATH
from cityos.http.graphql import GraphQLEndpoint
from cityos.http.middleware import BodyLimit, RequestIdAndMetrics, SecurityHeaders
from cityos.integrations.fleetbase.webhooks import fleetbase_webhook
from cityos.integrations.payload.webhooks import payload_webhook
from cityos.integrations.stripe.webhooks import stripe_webhook
from cityos.jobs.registry import JOBS, JobContext
from cityos.jobs.scheduler import Scheduler
from cityos.observability import tracing
from cityos.observability.business import BUSINESS
from cityos.services import Services


async def metrics(request: Request) -> Response:
    settings = request.app.state.services.settings
    if not settings.PROMETHEUS_ENABLED:
        return JSONResponse({"error": "metrics are disabled"}, status_code=404)
    if settings.CITYOS_METRICS_TOKEN:
        sent = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(sent, settings.CITYOS_METRICS_TOKEN.encode()):
            return JSONResponse({"error": "send Authorization: Bearer <CITYOS_METRICS_TOKEN>"}, status_code=401,
                                headers={"www-authenticate": "Bearer"})
    await BUSINESS.refresh(request.app.state.services.app_engine, top_tenants=settings.CITYOS_METRICS_TENANTS)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def start_scheduler(services: Services) -> Scheduler:
    """The registry's jobs on their schedules, in this process, with the app's engine and clients."""
    scheduler = Scheduler(JOBS, JobContext(services.app_engine, services.settings, services.stripe, services.http,
                                           services.broker))
    scheduler.start()
    return scheduler


def create_app(settings: Settings, services: Services | None = None, *,
               span_exporter: SpanExporter | None = None) -> Starlette:
    """`services` may be given (tests, benchmarks); otherwise they start with the app and stop with it. Tracing
    (CITYOS_TRACING) exports to the OTLP collector, or to `span_exporter` (tests)."""
    tracing.configure(settings, span_exporter)
    if settings.SENTRY_DSN:
        import sentry_sdk
        from sentry_sdk.integrations.strawberry import StrawberryIntegration

        # Error-level log records with an exception become Sentry events (the logging integration): unexpected
        # GraphQL errors (graphql/schema.py logs each once, with its path), failed jobs and integrations. The
        # Strawberry integration is off: it would report the same GraphQL errors a second time. No personal data.
        sentry_sdk.init(dsn=settings.SENTRY_DSN, environment=settings.CITYOS_ENV.value,
                        disabled_integrations=[StrawberryIntegration()])

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or Services.start(settings)
        tracing.instrument_engine(app.state.services.app_engine)
        if app.state.services.read_engine is not None:
            tracing.instrument_engine(app.state.services.read_engine)
        await app.state.services.warm_up()
        scheduler = start_scheduler(app.state.services) if settings.CITYOS_SCHEDULER else None
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            if scheduler is not None:
                await scheduler.stop()
            if owned:
                await app.state.services.close()
            tracing.shutdown()

    graphql = GraphQLEndpoint(schema)
    origins = sorted({*settings.store_cors_origins, *settings.admin_cors_origins})
    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route(f"{ASSETS_PATH}/{{digest}}/{{name}}", graphql.graphiql.asset),
            Route("/health/live", health.live),
            Route("/health/ready", health.ready),
            Route("/metrics", metrics),
            Route("/api/admin/integrations/stripe/webhook", stripe_webhook, methods=["POST"]),
            Route("/webhooks/fleetbase", fleetbase_webhook, methods=["POST"]),
            Route("/webhooks/payload", payload_webhook, methods=["POST"]),
        ],
        middleware=[
            *tracing.middleware(),
            Middleware(RequestIdAndMetrics),
            Middleware(CORSMiddleware, allow_origins=origins, allow_credentials=True,
                       allow_methods=["GET", "POST", "OPTIONS"],
                       allow_headers=["authorization", "content-type", "x-publishable-api-key", "x-request-id"],
                       expose_headers=["x-request-id"], max_age=600),
            Middleware(BodyLimit, max_bytes=settings.CITYOS_MAX_BODY_BYTES),
            Middleware(SecurityHeaders, production=settings.is_production),
        ],
        lifespan=lifespan,
    )
