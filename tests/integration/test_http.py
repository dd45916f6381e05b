"""HTTP around /graphql: GraphiQL, health, metrics, CORS, body limit, request ids."""

from __future__ import annotations

import re

import httpx
import orjson
import pytest
import websockets

from cityos.config import Settings
from cityos.graphql.core.relay import to_global_id
from tests.conftest import GraphQLClient, TenantWorld
from tests.operations import OPERATIONS_DIR


async def test_get_serves_graphiql(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_liveness_and_readiness(http: httpx.AsyncClient) -> None:
    assert (await http.get("/health/live")).json() == {"status": "ok"}
    ready = await http.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "cerbos": "ok", "redis": "ok"}


async def test_readiness_names_what_failed(settings: Settings) -> None:
    from cityos.app import create_app
    from cityos.embedded.process import free_port
    from cityos.services import Services

    broken = settings.model_copy(update={"CERBOS_URL": f"grpc://127.0.0.1:{free_port()}",
                                         "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    services = Services.start(broken)
    app = create_app(broken, services)
    app.state.services = services
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            response = await client.get("/health/ready")
    finally:
        await services.close()
    assert response.status_code == 503
    assert response.json()["failed"] == ["cerbos", "redis"]
    assert response.json()["checks"]["postgres"] == "ok"


async def test_metrics_count_requests_operations_and_error_codes(http: httpx.AsyncClient, gql: GraphQLClient,
                                                                 world: TenantWorld) -> None:
    await gql((OPERATIONS_DIR / "storefront" / "CurrentStore.graphql").read_text(), key=world.key)
    await gql("query StoreName { currentStore { name } }", key=world.key)  # not one of ours: labelled other
    await gql('query Broken { store(id: "bad") { name } }', key=world.key)
    await gql("query Keys { currentStore { publishableKeys { totalCount } } }", key=world.key)
    # A document the compiler does not cover: its resolvers decide object by object (compiled reads filter by plans).
    await gql((OPERATIONS_DIR / "storefront" / "TenantRegions.graphql").read_text(),
              {"id": to_global_id("Tenant", world.tenant_id)}, key=world.key)
    text = (await http.get("/metrics")).text
    assert 'cityos_graphql_operations_total{operation_name="CurrentStore",operation_type="query"}' in text
    assert 'cityos_graphql_operations_total{operation_name="other",operation_type="query"}' in text
    assert 'operation_name="StoreName"' not in text
    assert 'cityos_graphql_errors_total{code="BAD_USER_INPUT"}' in text
    assert 'cityos_http_requests_total{method="POST",route="/graphql",status="200"}' in text
    assert "cityos_http_request_duration_seconds_bucket" in text
    # A PDP call was timed: check_resources on the resolvers' path, plan_resources on the compiled path (whichever
    # of them this process made first: plans are cached, so the file alone may make no check call).
    assert re.search(r'cityos_pdp_call_duration_seconds_count\{call="(check|plan)_resources"\} [1-9]', text)
    assert 'cityos_authz_decisions_total{action="read",effect="allow",kind="tenant"}' in text
    assert 'cityos_authz_denied_fields_total{field="publishable_keys",kind="store"}' in text


async def test_oversized_bodies_are_refused_with_413(http: httpx.AsyncClient) -> None:
    big = {"query": "{ currentStore { name } }", "padding": "x" * (70 * 1024)}
    response = await http.post("/graphql", json=big)
    assert response.status_code == 413

    async def chunks():  # no content-length: the streamed size is what counts
        for _ in range(70):
            yield b"x" * 1024

    response = await http.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


async def test_cors_allows_configured_origins_only(http: httpx.AsyncClient) -> None:
    preflight = {"access-control-request-method": "POST",
                 "access-control-request-headers": "content-type,x-publishable-api-key"}
    allowed = await http.options("/graphql", headers={"origin": "http://localhost:5173", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    denied = await http.options("/graphql", headers={"origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in denied.headers


async def test_request_ids_are_returned_and_propagated(http: httpx.AsyncClient) -> None:
    response = await http.get("/health/live", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = await http.get("/health/live")
    assert len(generated.headers["x-request-id"]) == 32


async def test_post_executes_and_get_does_not(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", params={"query": "{ currentStore { name } }"},
                              headers={"accept": "application/json"})
    assert response.status_code in {400, 405}


async def test_websocket_speaks_graphql_transport_ws_only(server, tokens, world: TenantWorld) -> None:
    url = server.url.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:
        assert socket.subprotocol == "graphql-transport-ws"
        token = tokens("tenant_admin", world)
        await socket.send(orjson.dumps({"type": "connection_init",
                                        "payload": {"Authorization": f"Bearer {token}"}}).decode())
        assert orjson.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(orjson.dumps({"type": "ping"}).decode())
        assert orjson.loads(await socket.recv())["type"] == "pong"
    async with websockets.connect(url, subprotocols=["graphql-ws"]) as legacy:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await legacy.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4406  # the legacy subscriptions-transport-ws protocol is refused


async def test_slow_headers_are_cut_off(settings) -> None:
    """A client that trickles its headers is disconnected after the header timeout; a normal one is served."""
    import asyncio

    from cityos.app import create_app
    from cityos.http.protocol import with_header_timeout
    from tests.conftest import serve_asgi

    server, task, port = await serve_asgi(create_app(settings), http=with_header_timeout(0.5))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""  # closed by the server
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        assert (await asyncio.wait_for(reader.read(), timeout=5)).startswith(b"HTTP/1.1 200")
        writer.close()
    finally:
        server.should_exit = True
        await task
