"""Per-request identification is cached (publishable key or domain → store, verified tokens) and a revocation
reaches every replica through the broker: two API instances on one Redis, each with its own caches."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from cityos.auth.cache import TtlCache
from cityos.auth.tokens import JwksSource, TokenVerifier, TrustedIssuer
from cityos.config import Settings
from cityos.errors import Unauthenticated
from cityos.graphql.core.relay import to_global_id
from tests.conftest import GraphQLClient, TenantWorld, Tokens, app_instance, error_codes
from tests.fakes.keycloak import FakeKeycloak
from tests.operations import all_operations

OPS = all_operations()
ANNOUNCEMENT_WAIT = 10.0


async def current_store(client: httpx.AsyncClient, **headers: str) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": OPS["storefront/CurrentStore"]}, headers=headers)
    body: dict[str, Any] = response.json()
    return body


async def test_a_revoked_key_stops_working_on_every_instance(settings: Settings, world: TenantWorld,
                                                           tokens: Tokens) -> None:
    async with app_instance(settings) as (first, first_services), \
            app_instance(settings) as (second, second_services):
        admin = tokens("tenant_admin", world)
        created = (await first.post("/graphql", json={"query": OPS["admin/CreatePublishableKey"], "variables": {
            "storeId": to_global_id("Store", world.store_id), "title": "Kiosk"}},
            headers={"authorization": f"Bearer {admin}"})).json()["data"]["createPublishableKey"]
        key = created["key"]
        for client in (first, second, first, second):
            body = await current_store(client, **{"x-publishable-api-key": key})
            assert body["data"]["currentStore"]["id"] == to_global_id("Store", world.store_id)
        # the second request on each instance came from its cache
        assert first_services.stores.keys.hits >= 1 and second_services.stores.keys.hits >= 1
        applied = second_services.stores.announcements_applied

        revoked = (await first.post("/graphql", json={"query": OPS["admin/RevokePublishableKey"], "variables": {
            "id": created["publishableKey"]["id"]}}, headers={"authorization": f"Bearer {admin}"})).json()
        assert revoked["data"]["revokePublishableKey"]["revokedAt"], revoked
        # the instance that revoked it refuses the key at once; the other once the announcement has arrived
        assert error_codes(await current_store(first, **{"x-publishable-api-key": key})) == ["UNAUTHENTICATED"]
        await asyncio.wait_for(second_services.stores.applied(applied + 1), ANNOUNCEMENT_WAIT)
        assert error_codes(await current_store(second, **{"x-publishable-api-key": key})) == ["UNAUTHENTICATED"]
        # the store's other key still works on both
        for client in (first, second):
            body = await current_store(client, **{"x-publishable-api-key": world.key})
            assert body["data"]["currentStore"]["id"] == to_global_id("Store", world.store_id)


async def test_a_removed_domain_stops_working_on_every_instance(settings: Settings, world: TenantWorld,
                                                              tokens: Tokens) -> None:
    async with app_instance(settings) as (first, _), app_instance(settings) as (second, second_services):
        admin = tokens("tenant_admin", world)
        domain = f"shop.{world.slug}.example.com"
        added = (await first.post("/graphql", json={"query": OPS["admin/AddStoreDomain"], "variables": {
            "storeId": to_global_id("Store", world.store_id), "domain": domain}},
            headers={"authorization": f"Bearer {admin}"})).json()["data"]["addStoreDomain"]
        for client in (first, second, second):
            body = await current_store(client, host=domain)
            assert body["data"]["currentStore"]["id"] == to_global_id("Store", world.store_id)
        assert second_services.stores.domains.hits >= 1
        applied = second_services.stores.announcements_applied
        removed = (await first.post("/graphql", json={"query": OPS["admin/RemoveStoreDomain"], "variables": {
            "id": added["id"]}}, headers={"authorization": f"Bearer {admin}"})).json()
        assert removed["data"]["removeStoreDomain"] == added["id"]
        assert (await current_store(first, host=domain))["data"]["currentStore"] is None
        await asyncio.wait_for(second_services.stores.applied(applied + 1), ANNOUNCEMENT_WAIT)
        assert (await current_store(second, host=domain))["data"]["currentStore"] is None


async def test_a_failed_revocation_announces_nothing(gql: GraphQLClient, world: TenantWorld, tokens: Tokens,
                                                     other_world: TenantWorld, server: Any) -> None:
    """A revocation that does not commit (another tenant's key: NOT_FOUND) leaves the cache as it was."""
    assert (await gql(OPS["storefront/CurrentStore"], key=world.key))["data"]["currentStore"]
    cached = len(server.services.stores.keys)
    listed = await gql(OPS["admin/Stores"], token=tokens("tenant_admin", world))
    key_id = listed["data"]["stores"]["nodes"][0]["publishableKeys"]["nodes"][0]["id"]
    refused = await gql(OPS["admin/RevokePublishableKey"], {"id": key_id}, token=tokens("tenant_admin", other_world))
    assert error_codes(refused) in (["NOT_FOUND"], ["FORBIDDEN"])
    assert len(server.services.stores.keys) == cached
    assert (await gql(OPS["storefront/CurrentStore"], key=world.key))["data"]["currentStore"]


class WallClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_a_verified_token_is_cached_until_its_expiry_at_most(keycloak: FakeKeycloak) -> None:
    async with httpx.AsyncClient() as client:
        claims = keycloak.claims(roles=["customer"], tenant="acme")
        clock = WallClock(claims["iat"])
        verifier = TokenVerifier([TrustedIssuer(keycloak.issuer, JwksSource(keycloak.issuer, client),
                                                frozenset({"medusa-admin"}), "medusa-backend")],
                                 TtlCache(ttl=3600, max_entries=100), wall_clock=clock)
        token = keycloak.sign(claims)
        first = await verifier.verify(token)
        assert await verifier.verify(token) == first
        assert verifier.cache.hits == 1
        assert len(verifier.cache) == 1
        clock.now = claims["exp"]  # at the token's exp the cached identity is dropped and the token verified again
        await verifier.verify(token)  # (still valid by the real clock, but not kept: its time is up)
        assert len(verifier.cache) == 0
        tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        for _ in range(2):  # failures are never cached
            with pytest.raises(Unauthenticated):
                await verifier.verify(tampered)
        assert len(verifier.cache) == 0


async def test_concurrent_misses_share_one_lookup(database_url: str, world: TenantWorld) -> None:
    from sqlalchemy import event

    from cityos.auth.identity import StoreDirectory
    from cityos.db.engines import create_app_engine

    engine = create_app_engine(database_url, pool_size=2, max_overflow=0, timeout=5)
    lookups: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: lookups.append(statement) if "publishable" in statement else None)
    try:
        directory = StoreDirectory(engine, ttl=60, max_entries=10)
        found = await asyncio.gather(*(directory.find(world.key, "") for _ in range(50)))
        assert {store.store_id for store in found if store} == {world.store_id}
        assert len(lookups) == 1  # 50 requests arriving together on a cold cache: one lookup, one connection
    finally:
        await engine.dispose()
