"""Every failure is a typed code: the database down or stalled, malformed token claims. Waits are bounded."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cityos.app import create_app
from cityos.config import Settings
from cityos.embedded.process import free_port
from cityos.services import Services
from tests.conftest import GraphQLClient, TenantWorld, error_codes, serve_asgi
from tests.fakes.keycloak import FakeKeycloak


@pytest.fixture
async def no_database(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API with its database gone (nothing listens on the port)."""
    dead = settings.model_copy(update={"DATABASE_URL": f"postgresql://cityos@127.0.0.1:{free_port()}/gone",
                                       "CITYOS_DB_TIMEOUT": 1.0})
    services = Services.start(dead)
    uvicorn_server, task, port = await serve_asgi(create_app(dead, services))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client
    uvicorn_server.should_exit = True
    await task
    await services.close()


async def test_requests_get_unavailable_when_the_database_is_down(no_database: httpx.AsyncClient,
                                                                 keycloak: FakeKeycloak) -> None:
    token = keycloak.token(roles=["tenant_admin"], tenant="demo")
    for headers in ({"x-publishable-api-key": "pk_whatever"}, {"host": "shop.example.com"},
                    {"authorization": f"Bearer {token}"}, {}):
        started = time.perf_counter()
        response = await no_database.post("/graphql", json={"query": "{ currentStore { name } }"}, headers=headers)
        body = response.json()
        assert time.perf_counter() - started < 3
        assert error_codes(body) == ["UNAVAILABLE"] or (not headers and body == {"data": {"currentStore": None}}), \
            (headers, body)
        assert "Errno" not in response.text and "Connection refused" not in response.text
    ready = await no_database.get("/health/ready")
    assert ready.status_code == 503


@pytest.mark.parametrize("claims", [{"realm_access": ["tenant_admin"]}, {"realm_access": {"roles": "tenant_admin"}},
                                    {"resource_access": ["x"]}, {"tenant_id": {"id": 1}}, {"exp": "soon"}])
async def test_malformed_claims_are_unauthenticated(claims: dict[str, Any], gql: GraphQLClient,
                                                    keycloak: FakeKeycloak, world: TenantWorld) -> None:
    signed = keycloak.sign({**keycloak.claims(roles=["tenant_admin"], tenant=world.slug), **claims})
    body = await gql("{ stores { totalCount } }", token=signed)
    assert error_codes(body) == ["UNAUTHENTICATED"], body
