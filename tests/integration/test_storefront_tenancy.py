"""Tenancy over HTTP, as a storefront calls it."""

from __future__ import annotations

import uuid

from cityos.graphql.core.relay import to_global_id
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes, make_tenant

CURRENT_STORE = "{ currentStore { id name handle defaultCurrencyCode tenant { slug } } }"


async def test_current_store_from_the_publishable_key(gql: GraphQLClient, world: TenantWorld) -> None:
    body = await gql(CURRENT_STORE, key=world.key)
    assert "errors" not in body
    store = body["data"]["currentStore"]
    assert store["id"] == to_global_id("Store", world.store_id)
    assert store["handle"] == "store-0"
    assert store["tenant"]["slug"] == world.slug


async def test_current_store_from_the_host_header(gql: GraphQLClient, world: TenantWorld) -> None:
    body = await gql(CURRENT_STORE, headers={"host": world.domain.upper() + ":443"})
    assert body["data"]["currentStore"]["id"] == to_global_id("Store", world.store_id)


async def test_no_key_and_unknown_host_names_no_store(gql: GraphQLClient) -> None:
    body = await gql(CURRENT_STORE, headers={"host": "nowhere.example.com"})
    assert body == {"data": {"currentStore": None}}


async def test_unknown_or_malformed_keys_are_unauthenticated(gql: GraphQLClient) -> None:
    for key in ("pk_" + "a" * 43, "garbage"):
        body = await gql(CURRENT_STORE, key=key)
        assert body["data"] is None
        assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_a_revoked_key_is_unauthenticated(gql: GraphQLClient, owner_engine, world: TenantWorld) -> None:
    from sqlalchemy import update

    from cityos.domain.tenancy.models import PublishableApiKey
    from cityos.domain.tenancy.rules import hash_publishable_key

    async with owner_engine.begin() as connection:
        await connection.execute(update(PublishableApiKey)
                                 .where(PublishableApiKey.token_hash == hash_publishable_key(world.key))
                                 .values(revoked_at=PublishableApiKey.created_at))
    body = await gql(CURRENT_STORE, key=world.key)
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_store_and_tenant_by_id(gql: GraphQLClient, world: TenantWorld) -> None:
    query = """query($s: ID!, $t: ID!) { store(id: $s) { name } tenant(id: $t) { slug stores { totalCount } } }"""
    body = await gql(query, {"s": to_global_id("Store", world.store_id),
                             "t": to_global_id("Tenant", world.tenant_id)}, key=world.key)
    assert "errors" not in body, body
    assert body["data"]["tenant"] == {"slug": world.slug, "stores": {"totalCount": 1}}


async def test_malformed_and_unknown_ids(gql: GraphQLClient, world: TenantWorld) -> None:
    body = await gql('{ store(id: "%@!") { name } }', key=world.key)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    body = await gql('query($id: ID!) { store(id: $id) { name } }',
                     {"id": to_global_id("Tenant", world.tenant_id)}, key=world.key)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    body = await gql('query($id: ID!) { store(id: $id) { name } }',
                     {"id": to_global_id("Store", uuid.uuid4())}, key=world.key)
    assert error_codes(body) == ["NOT_FOUND"]
    body = await gql('query($id: ID!) { node(id: $id) { id } }',
                     {"id": to_global_id("Spaceship", uuid.uuid4())}, key=world.key)
    assert error_codes(body) == ["NOT_FOUND"]


async def test_another_tenants_store_is_not_found(gql: GraphQLClient, world: TenantWorld,
                                                  other_world: TenantWorld) -> None:
    body = await gql('query($id: ID!) { store(id: $id) { name } }',
                     {"id": to_global_id("Store", other_world.store_id)}, key=world.key)
    assert error_codes(body) == ["NOT_FOUND"]
    body = await gql("{ stores { totalCount nodes { id } } }", key=world.key)
    assert body["data"]["stores"] == {"totalCount": 1, "nodes": [{"id": to_global_id("Store", world.store_id)}]}


async def test_node_and_nodes(gql: GraphQLClient, world: TenantWorld) -> None:
    store_id = to_global_id("Store", world.store_id)
    body = await gql("""query($id: ID!, $ids: [ID!]!) {
        node(id: $id) { __typename id ... on Store { handle } }
        nodes(ids: $ids) { id }
    }""", {"id": store_id, "ids": [store_id, to_global_id("Store", uuid.uuid4())]}, key=world.key)
    assert "errors" not in body, body
    assert body["data"]["node"] == {"__typename": "Store", "id": store_id, "handle": "store-0"}
    assert body["data"]["nodes"] == [{"id": store_id}, None]


async def test_connections_page_with_cursors(gql: GraphQLClient, owner_engine, tokens: Tokens) -> None:
    world = await make_tenant(owner_engine, stores=5)
    admin = tokens("tenant_admin", world)
    query = """query($after: String) { stores(first: 2, after: $after) {
        totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { cursor node { handle } } } }"""
    handles: list[str] = []
    after = None
    for _ in range(5):
        body = await gql(query, {"after": after}, token=admin)
        connection = body["data"]["stores"]
        assert connection["totalCount"] == 5
        handles += [edge["node"]["handle"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert sorted(handles) == [f"store-{i}" for i in range(5)]
    assert len(set(handles)) == 5
    body = await gql("{ stores(first: 1000) { totalCount } }", token=admin)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    body = await gql('{ stores(after: "nonsense") { totalCount } }', token=admin)
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_region_with_states(gql: GraphQLClient, owner_engine, world: TenantWorld) -> None:
    from cityos.seed import seed_region

    async with owner_engine.begin() as connection:
        await seed_region(connection, world.tenant_id)
    body = await gql("{ currentStore { tenant { regions { nodes { name currencyCode states { code } } } } } }",
                     key=world.key)
    region = body["data"]["currentStore"]["tenant"]["regions"]["nodes"][0]
    assert region["currencyCode"] == "usd"
    assert {"code": "US-CA"} in region["states"]
    assert len(region["states"]) == 51


async def test_federation_entities_and_sdl(gql: GraphQLClient, world: TenantWorld) -> None:
    body = await gql("""query($r: [_Any!]!) { _service { sdl } _entities(representations: $r) {
        ... on Store { name } } }""", {"r": [{"__typename": "Store", "id": to_global_id("Store", world.store_id)}]},
                     key=world.key)
    assert "errors" not in body, body
    assert '@key(fields: "id")' in body["data"]["_service"]["sdl"]
    assert body["data"]["_entities"] == [{"name": f"Store 0 of {world.slug}"}]


async def test_validation_errors_carry_a_code_and_internal_errors_are_masked(gql: GraphQLClient) -> None:
    body = await gql("{ nonsense }")
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"] or body["errors"][0]["message"]
