"""What the API tells about itself: bounded metric labels and a protected /metrics, persisted queries (APQ and
the allow-list), and the production switches for introspection, suggestions and the federation SDL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from cityos.config import Environment, Settings
from cityos.operations import document_hash
from tests.conftest import TenantWorld, app_client, error_codes
from tests.operations import all_operations

CURRENT_STORE = all_operations()["storefront/CurrentStore"]


async def test_client_chosen_operation_names_do_not_grow_metrics(http: httpx.AsyncClient) -> None:
    for _ in range(50):
        name = f"Random{uuid.uuid4().hex}"
        await http.post("/graphql", json={"query": f"query {name} {{ __typename }}", "operationName": name})
    scraped = (await http.get("/metrics")).text
    assert 'operation_name="Random' not in scraped
    assert 'operation_name="other"' in scraped


@pytest.fixture
async def production(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    locked = settings.model_copy(update={"CITYOS_ENV": Environment.PRODUCTION, "CITYOS_METRICS_TOKEN": "m" * 32,
                                         "CITYOS_ROUTER_SECRET": "r" * 32})
    async with app_client(locked) as client:
        yield client


async def test_production_hides_the_schema_but_serves_the_router(production: httpx.AsyncClient) -> None:
    introspection = (await production.post("/graphql", json={"query": "{ __schema { types { name } } }"})).json()
    assert error_codes(introspection) == ["FORBIDDEN"]
    typo = (await production.post("/graphql", json={"query": "{ currentStor { name } }"})).json()
    assert error_codes(typo) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "Did you mean" not in typo["errors"][0]["message"]
    sdl = {"query": "{ _service { sdl } }"}
    assert error_codes((await production.post("/graphql", json=sdl)).json()) == ["FORBIDDEN"]
    wrong = (await production.post("/graphql", json=sdl, headers={"x-cityos-router-secret": "x" * 32})).json()
    assert error_codes(wrong) == ["FORBIDDEN"]
    router = (await production.post("/graphql", json=sdl, headers={"x-cityos-router-secret": "r" * 32})).json()
    assert "type Query" in router["data"]["_service"]["sdl"]
    assert (await production.get("/metrics")).status_code == 401
    assert (await production.get("/metrics", headers={"authorization": "Bearer " + "m" * 32})).status_code == 200


async def test_development_keeps_introspection_and_suggestions(http: httpx.AsyncClient) -> None:
    typo = (await http.post("/graphql", json={"query": "{ currentStor { name } }"})).json()
    assert "Did you mean" in typo["errors"][0]["message"]
    assert "errors" not in (await http.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})).json()


async def test_automatic_persisted_queries(http: httpx.AsyncClient, world: TenantWorld) -> None:
    query = f"query Apq{uuid.uuid4().hex} {{ currentStore {{ name }} }}"
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": document_hash(query)}}
    headers = {"x-publishable-api-key": world.key}
    miss = (await http.post("/graphql", json={"extensions": persisted}, headers=headers)).json()
    assert error_codes(miss) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert miss["errors"][0]["message"] == "PersistedQueryNotFound"
    registered = (await http.post("/graphql", json={"query": query, "extensions": persisted}, headers=headers)).json()
    assert registered["data"]["currentStore"]["name"]
    hit = (await http.post("/graphql", json={"extensions": persisted}, headers=headers)).json()
    assert hit == registered
    mismatch = {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}
    bad = (await http.post("/graphql", json={"query": query, "extensions": mismatch}, headers=headers)).json()
    assert error_codes(bad) == ["BAD_USER_INPUT"]
    ours = {"persistedQuery": {"version": 1, "sha256Hash": document_hash(CURRENT_STORE)}}
    known = (await http.post("/graphql", json={"extensions": ours}, headers=headers)).json()
    assert known["data"]["currentStore"]["name"]


async def test_allowlist_serves_only_our_operations(settings: Settings, world: TenantWorld) -> None:
    strict = settings.model_copy(update={"CITYOS_PERSISTED_QUERIES": "allowlist"})
    headers = {"x-publishable-api-key": world.key}
    async with app_client(strict) as client:
        by_hash = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": document_hash(CURRENT_STORE)}}}
        assert (await client.post("/graphql", json=by_hash, headers=headers)).json()["data"]["currentStore"]
        by_text = (await client.post("/graphql", json={"query": CURRENT_STORE}, headers=headers)).json()
        assert by_text["data"]["currentStore"]
        other = (await client.post("/graphql", json={"query": "{ currentStore { id } }"}, headers=headers)).json()
        assert error_codes(other) == ["PERSISTED_QUERY_NOT_ALLOWED"]


async def test_security_headers(http: httpx.AsyncClient, production: httpx.AsyncClient) -> None:
    answer = await http.post("/graphql", json={"query": "{ __typename }"})
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert "strict-transport-security" not in answer.headers
    live = await production.get("/health/live")
    assert live.headers["strict-transport-security"].startswith("max-age=")


async def test_production_serves_no_graphiql(production: httpx.AsyncClient, http: httpx.AsyncClient) -> None:
    browser = {"accept": "text/html"}
    assert (await http.get("/graphql", headers=browser)).status_code == 200
    assert (await production.get("/graphql", headers=browser)).status_code == 404
