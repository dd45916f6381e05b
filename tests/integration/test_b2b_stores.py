"""A company restricted to a list of stores, over HTTP: tenant admins set the list, store admins of a listed store
manage the company (and only then list it), and the company's carts, company prices, quotes and checkout work only
in its stores (BAD_USER_INPUT elsewhere). Migration 0021 moves the single store column into the list."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db import migrate
from cityos.db.engines import create_owner_engine
from cityos.domain.tenancy import service as tenancy
from cityos.graphql.core.relay import to_global_id
from tests import infrastructure
from tests.commerce_flow import OPS, Shopper, shop
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes
from tests.integration.test_b2b import make_company, ok, variant

__all__ = ["shop"]


async def test_a_company_buys_only_in_its_stores(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    acme = await make_company(gql, tokens, shop)
    async with owner_engine.begin() as connection:
        other = (await tenancy.create_store(connection, tenant_id=shop.tenant_id, handle="outlet",
                                            name="Outlet")).id
    here, there = to_global_id("Store", shop.store_id), to_global_id("Store", other)
    outlet_admin = tokens("store_admin", shop, stores=[str(other)])
    shop_admin = tokens("store_admin", shop, stores=[str(shop.store_id)])
    # Unrestricted: the tenant's admins manage it, store admins do not.
    listed = await gql(OPS["admin/Companies"], {"first": 50}, token=shop_admin)
    assert listed["data"]["companies"]["totalCount"] == 0
    denied = await gql(OPS["admin/SetCompanyStores"], {"companyId": acme.id, "storeIds": [here]}, token=shop_admin)
    assert error_codes(denied) in (["FORBIDDEN"], ["NOT_FOUND"])

    moved = (await ok(gql, "admin/SetCompanyStores", {"companyId": acme.id, "storeIds": [there]},
                      acme.staff))["setCompanyStores"]
    assert moved["storeIds"] == [there]
    # The outlet's admin now manages it (and lists it); the shop's admin does not, and cannot take it over.
    assert [node["id"] for node in (await ok(gql, "admin/Companies", {"first": 50}, outlet_admin))["companies"][
        "nodes"]] == [acme.id]
    assert (await ok(gql, "admin/Companies", {"first": 50}, shop_admin))["companies"]["totalCount"] == 0
    grab = await gql(OPS["admin/SetCompanyStores"], {"companyId": acme.id, "storeIds": [here]}, token=outlet_admin)
    assert error_codes(grab) == ["FORBIDDEN"]  # the company would no longer be the outlet admin's
    # The buyer cannot shop, quote or check out in the shop (its key names the shop).
    cart = await gql(OPS["storefront/CreateCart"], {"input": {"email": "a@acme.example"}}, token=acme.buyer,
                     key=shop.key)
    assert error_codes(cart) == ["BAD_USER_INPUT"]
    honey = await variant(owner_engine, shop, "CP-HONEY-12")
    quote = await gql(OPS["storefront/RequestQuote"], {"input": {"lines": [{"variantId": honey, "quantity": 2}]}},
                      token=acme.buyer, key=shop.key)
    assert error_codes(quote) == ["BAD_USER_INPUT"]

    foreign = await gql(OPS["admin/SetCompanyStores"], {"companyId": acme.id, "storeIds": [there, here]},
                        token=outlet_admin)
    assert error_codes(foreign) in (["FORBIDDEN"], ["NOT_FOUND"])  # the shop is not the outlet admin's to add
    both = (await ok(gql, "admin/SetCompanyStores", {"companyId": acme.id, "storeIds": [there, here]},
                     acme.staff))["setCompanyStores"]
    assert sorted(both["storeIds"]) == sorted([here, there])
    ready = await Shopper(gql, shop, acme.buyer).ready_cart({"CP-HONEY-12": 2})
    # Restricted again while a cart is open: its checkout and company order are refused.
    await ok(gql, "admin/SetCompanyStores", {"companyId": acme.id, "storeIds": [there]}, acme.staff)
    for name, variables in (("storefront/StartCheckout", {"cartId": ready}),
                            ("storefront/PlaceCompanyOrder", {"cartId": ready, "paymentMethod": "ON_ACCOUNT"})):
        body = await gql(OPS[name], variables, token=acme.buyer, key=shop.key)
        assert error_codes(body) == ["BAD_USER_INPUT"], (name, body)
    everywhere = (await ok(gql, "admin/SetCompanyStores", {"companyId": acme.id, "storeIds": []},
                           acme.staff))["setCompanyStores"]
    assert everywhere["storeIds"] == []
    placed = (await ok(gql, "storefront/PlaceCompanyOrder", {"cartId": ready, "paymentMethod": "ON_ACCOUNT"},
                       acme.buyer, shop.key))["placeCompanyOrder"]
    assert placed["order"]["status"] == "AWAITING_PAYMENT"
    async with owner_engine.connect() as connection:
        rows = (await connection.execute(text("select count(*) from company_store where company_id = :c"),
                                         {"c": acme.local})).scalar_one()
    assert rows == 0


async def test_migration_moves_the_single_store_into_the_list(postgres_admin_url: str) -> None:
    url = await asyncio.to_thread(infrastructure.create_database, postgres_admin_url)
    await asyncio.to_thread(migrate.upgrade, url, "0014")
    engine = create_owner_engine(url)
    tenant, store, restricted, free = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as connection:
        await infrastructure.insert_old_store(connection, tenant, store)
        for company, store_id in ((restricted, store), (free, None)):
            await connection.execute(text(
                "insert into company (tenant_id, id, store_id, legal_name, currency_code) "
                "values (:t, :c, :s, 'Old Co', 'usd')"), {"t": tenant, "c": company, "s": store_id})
    await engine.dispose()
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_owner_engine(url)
    try:
        async with engine.connect() as connection:
            lists = dict((await connection.execute(text("select id, store_ids from company"))).all())
            rows = (await connection.execute(text("select company_id, store_id from company_store"))).all()
    finally:
        await engine.dispose()
    assert lists == {restricted: str(store), free: ""}
    assert [tuple(row) for row in rows] == [(restricted, store)]
    await asyncio.to_thread(migrate.downgrade, url, "0014")
    engine = create_owner_engine(url)
    try:
        async with engine.connect() as connection:
            back = dict((await connection.execute(text("select id, store_id from company"))).all())
    finally:
        await engine.dispose()
    assert back == {restricted: store, free: None}
