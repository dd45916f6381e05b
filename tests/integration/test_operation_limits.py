"""Limits measured in time linear in the document: depth (introspection included), aliases and cost; typed codes
for documents that do not parse or validate."""

from __future__ import annotations

import time

import httpx

from graphql import get_introspection_query
from tests.conftest import GraphQLClient, TenantWorld, error_codes


def nested_fragments(levels: int) -> str:
    """fragment F1 on Query { ...F0 ...F0 } … : a small document whose expansion doubles per level."""
    lines = ["fragment F0 on Query { __typename }"]
    lines += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)]
    return f"query Bomb {{ ...F{levels - 1} }}\n" + "\n".join(lines)


async def test_forty_levels_of_fragment_spreads_are_measured_at_once(http: httpx.AsyncClient) -> None:
    document = nested_fragments(40)
    assert len(document.encode()) < 2000
    started = time.perf_counter()
    response = await http.post("/graphql", json={"query": document})
    elapsed = time.perf_counter() - started
    body = response.json()
    # 2^39 × __typename expands to no depth and no alias: the document is valid and cheap, answered at once.
    assert elapsed < 1.0, elapsed
    assert body.get("data") == {"__typename": "Query"} or error_codes(body), body
    live = await http.get("/health/live")
    assert live.status_code == 200


async def test_exponential_aliases_are_refused_quickly(http: httpx.AsyncClient) -> None:
    lines = ["fragment F0 on Query { a: __typename }"]
    lines += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 40)]
    document = "query Bomb { ...F39 }\n" + "\n".join(lines)
    started = time.perf_counter()
    body = (await http.post("/graphql", json={"query": document})).json()
    assert time.perf_counter() - started < 1.0
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"], body
    assert "aliases" in body["errors"][0]["message"]


async def test_depth_limit_covers_introspection(gql: GraphQLClient) -> None:
    chain = "name"
    for _ in range(35):
        chain = f"ofType {{ {chain} }}"
    body = await gql(f"{{ __type(name: \"Store\") {{ fields {{ type {{ {chain} }} }} }} }}")
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"], body
    assert "depth" in body["errors"][0]["message"]
    ok = await gql('{ __type(name: "Store") { fields { type { ofType { ofType { name } } } } } }')
    assert "errors" not in ok, ok
    standard = await gql(get_introspection_query(descriptions=True, input_value_deprecation=True))
    assert "errors" not in standard and standard["data"]["__schema"]["types"]


async def test_expensive_small_documents_are_refused_before_execution(gql: GraphQLClient, world: TenantWorld,
                                                                      server) -> None:
    document = """query Wide($n: Int) { stores(first: $n) { nodes { vendors(first: $n) { nodes {
        products(first: 100) { nodes { variants { sku } } } } } } } }"""
    before = server.statements.count
    body = await gql(document, {"n": 100}, key=world.key)
    assert error_codes(body) == ["COST_LIMIT_EXCEEDED"], body
    extensions = body["errors"][0]["extensions"]
    assert extensions["cost"] > extensions["budget"]
    assert server.statements.count == before  # nothing ran
    small = await gql(document, {"n": 2}, key=world.key)
    assert "errors" not in small, small


async def test_cost_is_returned_when_asked(http: httpx.AsyncClient, world: TenantWorld) -> None:
    query = "query Listing { products(first: 10) { nodes { id variants { sku } } } }"
    asked = (await http.post("/graphql", json={"query": query, "extensions": {"cost": True}},
                             headers={"x-publishable-api-key": world.key})).json()
    assert asked["extensions"]["cost"] == {"requested": 1 + 10 * (1 + 1), "budget": 25_000}, asked
    plain = (await http.post("/graphql", json={"query": query},
                             headers={"x-publishable-api-key": world.key})).json()
    assert "cost" not in (plain.get("extensions") or {})


async def test_parse_and_validation_errors_carry_codes(gql: GraphQLClient) -> None:
    assert error_codes(await gql("{ currentStore { name ")) == ["GRAPHQL_PARSE_FAILED"]
    assert error_codes(await gql("{ currentStore { nope } }")) == ["GRAPHQL_VALIDATION_FAILED"]
