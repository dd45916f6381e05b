"""OpenTelemetry tracing, when turned on: one request is one trace with the HTTP server span, the GraphQL operation,
SQL statements, Cerbos PDP calls and outbound HTTP calls (here: the token check's JWKS fetch from Keycloak)."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cityos.app import create_app
from cityos.config import Settings
from cityos.observability import tracing
from cityos.services import Services
from tests.conftest import TenantWorld, Tokens, serve_asgi

STORES = "query AdminStores { stores(first: 5) { nodes { name } } }"


async def test_a_request_is_one_trace_through_http_graphql_sql_pdp_and_outbound_calls(
        settings: Settings, world: TenantWorld, tokens: Tokens) -> None:
    exporter = InMemorySpanExporter()
    traced = settings.model_copy(update={"CITYOS_TRACING": True})
    services = Services.start(traced)
    uvicorn_server, task, port = await serve_asgi(create_app(traced, services, span_exporter=exporter))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            response = await client.post("/graphql", json={"query": STORES},
                                         headers={"authorization": f"Bearer {tokens('tenant_admin', world)}"})
    finally:
        uvicorn_server.should_exit = True
        await task
        await services.close()
    assert response.status_code == 200 and response.json()["data"]["stores"]["nodes"]
    assert tracing.tracer("x") is tracing._NO_OP  # the app's shutdown turned tracing off again
    spans = exporter.get_finished_spans()
    request = [span for span in spans if span.name == "POST /graphql" and span.kind.name == "SERVER"]
    assert len(request) == 1
    trace_id = request[0].context.trace_id
    in_request = [span for span in spans if span.context.trace_id == trace_id]
    names = {span.name for span in in_request}
    [operation] = [span for span in in_request if span.name.startswith("graphql ")]
    assert operation.name == "graphql query other"  # named like the metrics' bounded label
    assert (operation.attributes or {})["graphql.operation.name"] == "AdminStores"
    assert any(name.startswith("cerbos ") for name in names), names
    assert any((span.attributes or {}).get("db.system") == "postgresql" for span in in_request), names
    outbound = [span for span in in_request if span.kind.name == "CLIENT"
                and {"http.request.method", "http.method"} & set(span.attributes or {})]
    assert outbound, names  # the JWKS fetch from Keycloak
