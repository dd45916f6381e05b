"""Every operation in graphql/operations/, run as every role of tenant A against tenant B's objects: nothing of
B comes back and nothing of B changes. Later issues add their operations and variables here."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from cityos.auth.principal import ROLES
from cityos.schema.relay import to_global_id
from tests.conftest import GraphQLClient, TenantWorld, Tokens, make_tenant
from tests.operations import all_operations

OPS = all_operations()


class Target:
    """Tenant B's objects, by global id."""

    def __init__(self, world: TenantWorld, domain_id: uuid.UUID, key_id: uuid.UUID) -> None:
        self.world = world
        self.store = to_global_id("Store", world.store_id)
        self.tenant = to_global_id("Tenant", world.tenant_id)
        self.domain = to_global_id("StoreDomain", domain_id)
        self.key = to_global_id("PublishableApiKey", key_id)

    def secrets(self) -> list[str]:
        """Strings that must never appear in A's responses."""
        w = self.world
        return [self.store, self.tenant, self.domain, self.key, str(w.store_id), str(w.tenant_id), w.slug,
                w.domain, f"Store 0 of {w.slug}"]


# How each operation is aimed at B. Every operation file must be listed (a test checks it).
VARIABLES: dict[str, Callable[[Target], dict[str, Any]]] = {
    "storefront/CurrentStore": lambda b: {},
    "storefront/StoreById": lambda b: {"id": b.store},
    "storefront/NodeById": lambda b: {"id": b.store},
    "storefront/TenantRegions": lambda b: {"id": b.tenant},
    "admin/Stores": lambda b: {"first": 100},
    "admin/Nodes": lambda b: {"ids": [b.store, b.tenant, b.domain, b.key]},
    "admin/CreateTenant": lambda b: {"input": {"slug": f"m-{uuid.uuid4().hex[:10]}", "name": "Matrix"}},
    "admin/CreateStore": lambda b: {"input": {"handle": f"m-{uuid.uuid4().hex[:10]}", "name": "Matrix"}},
    "admin/UpdateStore": lambda b: {"id": b.store, "input": {"name": "Taken over"}},
    "admin/AddStoreDomain": lambda b: {"storeId": b.store, "domain": f"m{uuid.uuid4().hex[:8]}.example.com"},
    "admin/RemoveStoreDomain": lambda b: {"id": b.domain},
    "admin/CreatePublishableKey": lambda b: {"storeId": b.store, "title": "Stolen"},
    "admin/RevokePublishableKey": lambda b: {"id": b.key},
    "vendor/VendorStores": lambda b: {},
}

B_SNAPSHOT = """
select (select json_agg(t order by t.id) from (select * from tenant where id = :t) t)::text,
       (select json_agg(s order by s.id) from (select * from store where tenant_id = :t) s)::text,
       (select json_agg(d order by d.id) from (select * from store_domain where tenant_id = :t) d)::text,
       (select json_agg(k order by k.id) from (select * from publishable_api_key where tenant_id = :t) k)::text,
       (select json_agg(c order by c.id) from (select * from sales_channel where tenant_id = :t) c)::text
"""


def test_every_operation_is_in_the_matrix() -> None:
    assert set(VARIABLES) == set(OPS)


@pytest.fixture(scope="module")
async def tenants(owner_engine) -> tuple[TenantWorld, Target]:
    a = await make_tenant(owner_engine)
    b = await make_tenant(owner_engine)
    async with owner_engine.connect() as connection:
        domain_id = (await connection.execute(text("select id from store_domain where tenant_id = :t"),
                                              {"t": b.tenant_id})).scalar_one()
        key_id = (await connection.execute(text("select id from publishable_api_key where tenant_id = :t"),
                                           {"t": b.tenant_id})).scalar_one()
    return a, Target(b, domain_id, key_id)


async def snapshot(owner_engine, tenant_id: uuid.UUID) -> tuple[Any, ...]:
    async with owner_engine.connect() as connection:
        return tuple((await connection.execute(text(B_SNAPSHOT), {"t": tenant_id})).one())


@pytest.mark.parametrize("role", sorted(ROLES | {"guest"}))
async def test_tenant_a_roles_never_see_or_change_tenant_b(role: str, gql: GraphQLClient, tokens: Tokens,
                                                           tenants: tuple[TenantWorld, Target],
                                                           owner_engine) -> None:
    a, b = tenants
    before = await snapshot(owner_engine, b.world.tenant_id)
    if role == "guest":
        credentials: dict[str, Any] = {"key": a.key}
    else:
        credentials = {"token": tokens(role, a, stores=[str(a.store_id)], vendor="v-a", company="c-a"),
                       "key": a.key if role in {"customer", "company_buyer", "company_admin"} else None}
    for name, document in OPS.items():
        body = await gql(document, VARIABLES[name](b), **credentials)
        dumped = orjson.dumps(body).decode()
        leaked = [secret for secret in b.secrets() if secret in dumped]
        assert not leaked, (role, name, leaked, body)
    assert await snapshot(owner_engine, b.world.tenant_id) == before, role


async def test_the_matrix_is_not_vacuous(gql: GraphQLClient, tokens: Tokens,
                                         tenants: tuple[TenantWorld, Target]) -> None:
    """The same operations aimed at A's own objects do return them, so an empty answer above means isolation."""
    a, _ = tenants
    own = {"id": to_global_id("Store", a.store_id)}
    for credentials in ({"key": a.key}, {"token": tokens("tenant_admin", a)}):
        body = await gql(OPS["storefront/StoreById"], own, **credentials)
        assert body["data"]["store"]["id"] == own["id"], body
    stores = await gql(OPS["admin/Stores"], {"first": 100}, token=tokens("tenant_admin", a))
    assert stores["data"]["stores"]["totalCount"] >= 1  # its own store, plus any the matrix created in A
