"""The tenancy admin API, each mutation authorized, validated and typed on failure."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from cityos.graphql.core.relay import to_global_id
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes
from tests.operations import all_operations

OPS = all_operations()


def store_id(world: TenantWorld) -> str:
    return to_global_id("Store", world.store_id)


async def test_every_operation_document_validates() -> None:
    from cityos.graphql.schema import schema
    from graphql import parse, validate

    assert len(OPS) >= 12
    for name, document in OPS.items():
        assert not validate(schema._schema, parse(document)), name


async def test_create_and_update_stores(gql: GraphQLClient, tokens: Tokens, world: TenantWorld) -> None:
    admin = tokens("tenant_admin", world)
    body = await gql(OPS["admin/CreateStore"], {"input": {"handle": "outlet", "name": "  Outlet  Store "}},
                     token=admin)
    assert "errors" not in body, body
    created = body["data"]["createStore"]
    assert created["name"] == "Outlet Store"
    assert created["salesChannels"]["nodes"] == [{"name": "Default Sales Channel", "isDefault": True}]
    duplicate = await gql(OPS["admin/CreateStore"], {"input": {"handle": "outlet", "name": "Again"}}, token=admin)
    assert error_codes(duplicate) == ["CONFLICT"]
    assert duplicate["errors"][0]["extensions"]["field"] == "handle"
    for bad in ({"handle": "Not A Handle", "name": "x"}, {"handle": "ok-handle", "name": "x",
                                                          "defaultCurrencyCode": "zzz"}):
        assert error_codes(await gql(OPS["admin/CreateStore"], {"input": bad}, token=admin)) == ["BAD_USER_INPUT"]
    renamed = await gql(OPS["admin/UpdateStore"], {"id": created["id"], "input": {"name": "Outlet 2"}}, token=admin)
    assert renamed["data"]["updateStore"]["name"] == "Outlet 2"
    clash = await gql(OPS["admin/UpdateStore"], {"id": created["id"], "input": {"handle": "store-0"}}, token=admin)
    assert error_codes(clash) == ["CONFLICT"]
    missing = await gql(OPS["admin/UpdateStore"], {"id": to_global_id("Store", uuid.uuid4()), "input": {}},
                        token=admin)
    assert error_codes(missing) == ["NOT_FOUND"]


async def test_domains(gql: GraphQLClient, tokens: Tokens, world: TenantWorld, other_world: TenantWorld) -> None:
    admin = tokens("store_admin", world, stores=[str(world.store_id)])
    domain = f"www.{world.slug}.example.com"
    body = await gql(OPS["admin/AddStoreDomain"], {"storeId": store_id(world), "domain": domain.upper()},
                     token=admin)
    assert body["data"]["addStoreDomain"]["domain"] == domain
    via_host = await gql(OPS["storefront/CurrentStore"], headers={"host": domain})
    assert via_host["data"]["currentStore"]["id"] == store_id(world)
    taken = await gql(OPS["admin/AddStoreDomain"], {"storeId": store_id(other_world), "domain": domain},
                      token=tokens("tenant_admin", other_world))
    assert error_codes(taken) == ["CONFLICT"]
    bad = await gql(OPS["admin/AddStoreDomain"], {"storeId": store_id(world), "domain": "not a domain"}, token=admin)
    assert error_codes(bad) == ["BAD_USER_INPUT"]
    domain_id = body["data"]["addStoreDomain"]["id"]
    removed = await gql(OPS["admin/RemoveStoreDomain"], {"id": domain_id}, token=admin)
    assert removed["data"]["removeStoreDomain"] == domain_id
    again = await gql(OPS["admin/RemoveStoreDomain"], {"id": domain_id}, token=admin)
    assert error_codes(again) == ["NOT_FOUND"]


async def test_publishable_keys_are_shown_once_and_revocable(gql: GraphQLClient, tokens: Tokens,
                                                             world: TenantWorld, owner_engine) -> None:
    admin = tokens("tenant_admin", world)
    body = await gql(OPS["admin/CreatePublishableKey"], {"storeId": store_id(world), "title": "Mobile app"},
                     token=admin)
    created = body["data"]["createPublishableKey"]
    key = created["key"]
    assert key.startswith("pk_")
    assert key not in created["publishableKey"]["redacted"]
    async with owner_engine.connect() as connection:
        stored = (await connection.execute(text("select count(*) from publishable_api_key where token_hash = :k"),
                                           {"k": key})).scalar_one()
    assert stored == 0  # never stored in clear
    assert (await gql(OPS["storefront/CurrentStore"], key=key))["data"]["currentStore"]["id"] == store_id(world)
    listed = await gql(OPS["admin/Stores"], token=admin)
    keys = listed["data"]["stores"]["nodes"][0]["publishableKeys"]
    assert keys["totalCount"] == 2
    assert key not in str(listed)
    revoked = await gql(OPS["admin/RevokePublishableKey"], {"id": created["publishableKey"]["id"]}, token=admin)
    assert revoked["data"]["revokePublishableKey"]["revokedAt"]
    assert error_codes(await gql(OPS["storefront/CurrentStore"], key=key)) == ["UNAUTHENTICATED"]


async def test_create_tenant_is_for_super_admins_and_audited(gql: GraphQLClient, tokens: Tokens,
                                                             world: TenantWorld, owner_engine) -> None:
    slug = f"new-{uuid.uuid4().hex[:8]}"
    variables = {"input": {"slug": slug, "name": "New Tenant"}}
    assert error_codes(await gql(OPS["admin/CreateTenant"], variables)) == ["UNAUTHENTICATED"]
    assert error_codes(await gql(OPS["admin/CreateTenant"], variables,
                                 token=tokens("tenant_admin", world))) == ["FORBIDDEN"]
    body = await gql(OPS["admin/CreateTenant"], variables, token=tokens("super_admin"))
    assert body["data"]["createTenant"]["slug"] == slug
    duplicate = await gql(OPS["admin/CreateTenant"], variables, token=tokens("super_admin"))
    assert error_codes(duplicate) == ["CONFLICT"]
    async with owner_engine.connect() as connection:
        audited = (await connection.execute(text(
            "select actor, action, details->>'slug' from audit_log where action = 'create_tenant' "
            "and details->>'slug' = :s"), {"s": slug})).all()
    assert len(audited) == 1
    assert audited[0][1:] == ("create_tenant", slug)


async def test_roles_without_the_right_are_refused(gql: GraphQLClient, tokens: Tokens, world: TenantWorld) -> None:
    variables = {"input": {"handle": "nope", "name": "Nope"}}
    assert error_codes(await gql(OPS["admin/CreateStore"], variables, key=world.key)) == ["UNAUTHENTICATED"]
    for role in ("customer", "vendor_admin", "company_admin", "store_admin"):
        body = await gql(OPS["admin/CreateStore"], variables, token=tokens(role, world))
        assert error_codes(body) == ["FORBIDDEN"], role
