"""Rate limits in units of query cost per publishable key, principal and IP (the `limits` library, Redis storage
when REDIS_URL is set, as here); 429 with Retry-After and RATE_LIMITED; guessing keys and hosts is slowed."""

from __future__ import annotations

import httpx

from cityos.config import Settings
from tests.conftest import TenantWorld, app_client, error_codes, make_tenant

LISTING = "{ products(first: 10) { nodes { id variants { sku } } } }"  # costs 21


def limited(settings: Settings, database: int, **limits: str) -> Settings:
    """Limits on, counted in a Redis database of the test's own (the session's server uses database 0)."""
    assert settings.REDIS_URL and settings.REDIS_URL.endswith("/0")
    return settings.model_copy(update={"CITYOS_RATE_LIMITS": True, "CITYOS_RATE_LIMIT_IP": "100000/minute",
                                       "CITYOS_RATE_LIMIT_FAILURES": "3/minute", **limits,
                                       "REDIS_URL": f"{settings.REDIS_URL[:-1]}{database}"})


async def test_cost_is_spent_from_the_key_budget(settings: Settings, world: TenantWorld, owner_engine) -> None:
    other = await make_tenant(owner_engine)
    async with app_client(limited(settings, 1, CITYOS_RATE_LIMIT_KEY="50/minute")) as client:
        async def listing(key: str) -> httpx.Response:
            return await client.post("/graphql", json={"query": LISTING}, headers={"x-publishable-api-key": key})

        assert (await listing(world.key)).status_code == 200
        assert (await listing(world.key)).status_code == 200  # 42 of 50 spent
        refused = await listing(world.key)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert error_codes(refused.json()) == ["RATE_LIMITED"]
        assert refused.json()["errors"][0]["extensions"]["retryAfter"] >= 1
        assert (await listing(other.key)).status_code == 200  # another key has its own budget


async def test_a_tenant_can_have_its_own_budget(settings: Settings, world: TenantWorld) -> None:
    tuned = limited(settings, 2, CITYOS_RATE_LIMIT_KEY="50/minute",
                    CITYOS_TENANT_RATE_LIMITS=f"{world.slug}=1000/minute")
    async with app_client(tuned) as client:
        for _ in range(5):
            response = await client.post("/graphql", json={"query": LISTING},
                                         headers={"x-publishable-api-key": world.key})
            assert response.status_code == 200, response.text


async def test_guessing_keys_and_hosts_is_slowed(settings: Settings, world: TenantWorld) -> None:
    async with app_client(limited(settings, 3, CITYOS_RATE_LIMIT_KEY="50/minute")) as client:
        query = {"query": "{ currentStore { name } }"}
        for guess in range(2):
            response = await client.post("/graphql", json=query, headers={"x-publishable-api-key": f"pk_guess{guess}"})
            assert error_codes(response.json()) == ["UNAUTHENTICATED"]
        unknown_host = await client.post("/graphql", json=query, headers={"host": "guessed-shop.example.com"})
        assert unknown_host.json() == {"data": {"currentStore": None}}  # the third failure of three
        blocked = await client.post("/graphql", json=query, headers={"x-publishable-api-key": world.key})
        assert blocked.status_code == 429 and error_codes(blocked.json()) == ["RATE_LIMITED"]
