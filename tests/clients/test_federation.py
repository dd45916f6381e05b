"""Apollo Federation v2, driven by Apollo's own tools: the exported SDL parses with graphql-js and composes with
a second subgraph (npm `@apollo/composition`, pinned in tests/clients/federation) with no errors and no hints;
`_entities` resolves every `@key` type over HTTP through the same authorized, batched lookup as `node(id:)`."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from cityos.graphql.core.relay import to_global_id
from cityos.graphql.schema import schema
from tests.commerce_flow import Shopper, paid_order, shop
from tests.conftest import GraphQLClient, Server, TenantWorld, Tokens, error_codes
from tests.fakes.stripe import FakeStripe

__all__ = ["shop"]

ROOT = Path(__file__).resolve().parents[2]
FEDERATION = Path(__file__).resolve().parent / "federation"
SCHEMA_FILE = ROOT / "graphql" / "schema.graphql"

ENTITIES = """query($representations: [_Any!]!) {
    _entities(representations: $representations) { __typename ... on Node { id } }
}"""

# GraphQL type → the table its rows live in (tenant excepted: the tenant is its own row).
ENTITY_TABLES = {
    "Tenant": "tenant", "Store": "store", "StoreDomain": "store_domain", "SalesChannel": "sales_channel",
    "PublishableApiKey": "publishable_api_key", "Region": "region", "Product": "product", "Variant": "variant",
    "Category": "category", "Vendor": "vendor", "Cart": "cart", "Order": "orders", "VendorOrder": "vendor_order",
    "Shipment": "shipment", "CommissionRule": "commission_rule", "Payout": "payout",
    "SubscriptionPlan": "subscription_plan", "CustomerSubscription": "customer_subscription",
    "Company": "company", "CompanyUser": "company_user", "PriceList": "price_list", "Quote": "quote",
    "ApprovalRequest": "approval_request", "Invoice": "invoice",
    "Refund": "refund", "Return": "order_return", "Promotion": "promotion",
    "CompanyInvitation": "company_invitation",
}
# A company with a user, a price list, a quote waiting for approval, an invitation and an invoice for the shop's
# order; a promotion of the store.
B2B_ENTITIES = """
with company as (
  insert into company (tenant_id, id, legal_name, currency_code, credit_limit, payment_terms)
  values (:t, gen_random_uuid(), 'Federated Co', 'usd', 1000, 'net30') returning id),
member as (
  insert into company_user (tenant_id, id, company_id, customer_id, email, role)
  select :t, gen_random_uuid(), company.id, 'fed-buyer', 'fed@example.com', 'company_buyer' from company
  returning id),
plist as (
  insert into price_list (tenant_id, id, company_id, name, currency_code)
  select :t, gen_random_uuid(), company.id, 'Federated list', 'usd' from company returning id),
cart as (
  insert into cart (tenant_id, id, store_id, region_id, currency_code, customer_id, company_id)
  select :t, gen_random_uuid(), :s, r.id, 'usd', 'fed-buyer', company.id
  from company, (select id from region where tenant_id = :t limit 1) r returning id),
quote as (
  insert into quote (tenant_id, id, company_id, store_id, cart_id, buyer_id, currency_code, status, version,
                     valid_until)
  select :t, gen_random_uuid(), company.id, :s, cart.id, 'fed-buyer', 'usd', 'pending_approval', 1,
         now() + interval '1 day' from company, cart returning id),
request as (
  insert into approval_request (tenant_id, id, company_id, quote_id, quote_version, buyer_id, amount,
                                currency_code, reasons, levels)
  select :t, gen_random_uuid(), company.id, quote.id, 1, 'fed-buyer', 100, 'usd', '[]', '[]'
  from company, quote returning id),
invitation as (
  insert into company_invitation (tenant_id, id, company_id, email, role, token_hash, expires_at, invited_by)
  select :t, gen_random_uuid(), company.id, 'fed-invitee@example.com', 'company_buyer', md5('fed'),
         now() + interval '7 days', 'fed-admin' from company returning id),
promotion as (
  insert into promotion (tenant_id, id, store_id, name, code, status, action, percent)
  values (:t, gen_random_uuid(), :s, 'Federated promo', 'FEDERATED', 'active', 'order_percent', 10) returning id)
insert into invoice (tenant_id, id, company_id, order_id, buyer_id, amount, currency_code, payment_terms, due_at)
select :t, gen_random_uuid(), company.id, :o, 'fed-buyer', 100, 'usd', 'net30', now() from company
"""


def run_node(*args: str) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node is required (it runs the Cerbos tests' npm packages too)"
    assert (FEDERATION / "node_modules" / "@apollo" / "composition").is_dir(), (
        "npm packages missing: run `make test` or `npm ci` in tests/clients/federation")
    result = subprocess.run([node, "compose.mjs", *args], cwd=FEDERATION, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    return output


def test_the_exported_sdl_parses_and_composes_without_errors_or_hints() -> None:
    composed = run_node(str(SCHEMA_FILE), "reviews.graphql")
    assert composed["buildSchemaError"] is None
    assert composed["errors"] == []
    assert composed["hints"] == []
    supergraph = composed["supergraphSdl"]
    assert 'join__graph(name: "cityos"' in supergraph and 'join__graph(name: "reviews"' in supergraph
    assert "reviews: [String!]! @join__field(graph: REVIEWS)" in supergraph


def test_every_key_type_is_an_entity_the_test_covers() -> None:
    assert schema.entity_types == ENTITY_TABLES.keys()


async def every_entity(owner_engine: Any, world: TenantWorld) -> dict[str, str]:
    """One object of each entity type in the shop's tenant (a shipment, a payout and a commission rule added)."""
    tenant = world.tenant_id
    async with owner_engine.begin() as connection:
        vendor_order = (await connection.execute(text(
            "select id, order_id, store_id, vendor_id from vendor_order where tenant_id = :t limit 1"),
            {"t": tenant})).one()
        await connection.execute(text(
            "insert into shipment (tenant_id, id, vendor_order_id, order_id, store_id, vendor_id) "
            "values (:t, gen_random_uuid(), :vo, :o, :s, :v)"),
            {"t": tenant, "vo": vendor_order.id, "o": vendor_order.order_id, "s": vendor_order.store_id,
             "v": vendor_order.vendor_id})
        await connection.execute(text(
            "insert into payout (tenant_id, id, vendor_id, amount, currency_code, destination) "
            "values (:t, gen_random_uuid(), :v, 1500, 'usd', 'acct_test')"), {"t": tenant, "v": vendor_order.vendor_id})
        await connection.execute(text(
            "insert into commission_rule (tenant_id, id, scope, percentage) "
            "values (:t, gen_random_uuid(), 'tenant', 5)"), {"t": tenant})
        await connection.execute(text(
            "with plan as (insert into subscription_plan (tenant_id, id, store_id, product_id, variant_id, vendor_id, "
            "name, interval) select :t, gen_random_uuid(), p.store_id, p.id, v.id, p.vendor_id, 'Monthly', 'month' "
            "from variant v join product p on p.id = v.product_id and p.tenant_id = v.tenant_id where v.tenant_id = :t "
            "limit 1 returning id, store_id, vendor_id) "
            "insert into customer_subscription (tenant_id, id, store_id, plan_id, vendor_id, customer_id, "
            "currency_code, amount, status, anchor, current_period_start, current_period_end) "
            "select :t, gen_random_uuid(), store_id, id, vendor_id, 'c1', 'usd', 100, 'active', now(), now(), "
            "now() + interval '1 month' from plan"), {"t": tenant})
        await connection.execute(text(B2B_ENTITIES), {"t": tenant, "s": vendor_order.store_id,
                                                      "o": vendor_order.order_id})
        await connection.execute(text(
            "insert into refund (tenant_id, id, order_id, store_id, currency_code, amount, reason, requested_by) "
            "values (:t, gen_random_uuid(), :o, :s, 'usd', 100, 'requested_by_customer', 'admin')"),
            {"t": tenant, "o": vendor_order.order_id, "s": vendor_order.store_id})
        await connection.execute(text(
            "insert into order_return (tenant_id, id, order_id, store_id, reason, requested_by) "
            "values (:t, gen_random_uuid(), :o, :s, 'too big', 'admin')"),
            {"t": tenant, "o": vendor_order.order_id, "s": vendor_order.store_id})
        ids = {}
        for type_name, table in ENTITY_TABLES.items():
            column = "id" if table == "tenant" else "tenant_id"
            ids[type_name] = to_global_id(type_name, (await connection.execute(text(
                f"select id from {table} where {column} = :t order by created_at, id limit 1"),
                {"t": tenant})).scalar_one())
    return ids


async def counted(server: Server, gql: GraphQLClient, representations: list[dict[str, Any]], token: str,
                  ) -> tuple[dict[str, Any], int, int]:
    counter = server.services.pdp_counter
    statements, checks, plans = server.statements.count, counter.check_calls, counter.plan_calls
    body = await gql(ENTITIES, {"representations": representations}, token=token)
    return (body, server.statements.count - statements, counter.check_calls - checks,
            counter.plan_calls - plans)


async def test_entities_resolve_every_key_type_batched_and_authorized(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, owner_engine,
        server: Server, tokens: Tokens) -> None:
    await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1, "CP-HONEY-12": 1})
    ids = await every_entity(owner_engine, shop)
    admin = tokens("tenant_admin", shop)
    representations = [{"__typename": type_name, "id": global_id} for type_name, global_id in ids.items()]

    body = await gql(ENTITIES, {"representations": representations}, token=admin)
    assert "errors" not in body, body
    assert body["data"]["_entities"] == [{"__typename": r["__typename"], "id": r["id"]} for r in representations]
    # The same objects through node(id:) — the lookup _entities shares.
    for representation in representations:
        node = await gql("query($id: ID!) { node(id: $id) { __typename id } }", {"id": representation["id"]},
                         token=admin)
        assert node["data"]["node"] == {"__typename": representation["__typename"], "id": representation["id"]}

    # Batching: 50 products cost what 1 product costs — one SELECT for the batch, no CheckResources.
    async with owner_engine.begin() as connection:
        store_vendor = (await connection.execute(text(
            "select store_id, id from vendor where tenant_id = :t limit 1"), {"t": shop.tenant_id})).one()
        await connection.execute(text(
            "insert into product (tenant_id, id, store_id, vendor_id, handle, title, status) "
            "select :t, gen_random_uuid(), :s, :v, 'fed-' || n, 'Federated ' || n, 'published' "
            "from generate_series(1, 50) n"), {"t": shop.tenant_id, "s": store_vendor.store_id,
                                               "v": store_vendor.id})
        products = (await connection.execute(text(
            "select id from product where tenant_id = :t and handle like 'fed-%' order by handle"),
            {"t": shop.tenant_id})).scalars().all()
    fifty = [{"__typename": "Product", "id": to_global_id("Product", product)} for product in products]
    assert len(fifty) == 50
    await gql(ENTITIES, {"representations": fifty[:1]}, token=admin)  # warm per-process caches
    one_body, statements_for_one, checks_for_one, _ = await counted(server, gql, fifty[:1], admin)
    fifty_body, statements_for_fifty, checks_for_fifty, plans = await counted(server, gql, fifty, admin)
    assert "errors" not in one_body and "errors" not in fifty_body, fifty_body
    assert [entity["id"] for entity in fifty_body["data"]["_entities"]] == [r["id"] for r in fifty]
    assert statements_for_fifty == statements_for_one
    # Decided by the product `read` query plan cached per principal (5 s): at most that one PDP call, no check.
    assert checks_for_fifty == checks_for_one == 0 and plans <= 1
    # set the tenant scope, then the one SELECT … WHERE id = ANY(…) of the batch (commit is not a cursor call)
    assert statements_for_one <= 2, statements_for_one

    # Every type at once: the tenant scope, one SELECT per table, one more for the variant's product (a variant
    # is authorized as its product); the decisions come from the cached query plans: at most one per kind.
    _, statements_for_all, checks_for_all, plans_for_all = await counted(server, gql, representations, admin)
    assert statements_for_all <= 1 + len(ENTITY_TABLES) + 1, statements_for_all
    assert checks_for_all == 0 and plans_for_all <= len(representations)


async def test_bad_representations_are_bad_user_input_each_on_its_own(
        gql: GraphQLClient, shop: TenantWorld, tokens: Tokens) -> None:
    admin = tokens("tenant_admin", shop)
    store = to_global_id("Store", shop.store_id)
    representations: list[Any] = [
        {"__typename": "Store", "id": store},  # fine
        {"__typename": "Spaceship", "id": store},  # unknown type
        {"__typename": "Money", "id": store},  # a type, but not an entity
        {"__typename": "Store"},  # key field missing
        {"__typename": "Store", "id": 42},  # not a string
        {"__typename": "Store", "id": {"nested": store}},
        {"__typename": "Product", "id": store},  # an id of another type
        {"__typename": "Store", "id": "%@!"},  # malformed id
        {"id": store},  # no __typename
        "Store",  # not an object
        {"__typename": "Store", "id": to_global_id("Store", uuid.uuid4())},  # well formed, names nothing
    ]
    body = await gql(ENTITIES, {"representations": representations}, token=admin)
    entities = body["data"]["_entities"]
    assert entities[0] == {"__typename": "Store", "id": store}
    assert entities[1:] == [None] * (len(representations) - 1)
    by_index = {error["path"][1]: error["extensions"]["code"] for error in body["errors"]}
    assert all(error["path"][0] == "_entities" for error in body["errors"])
    assert by_index == {**{index: "BAD_USER_INPUT" for index in range(1, 10)}, 10: "NOT_FOUND"}


async def test_without_credentials_entities_answer_as_node_does(gql: GraphQLClient, shop: TenantWorld,
                                                                other_world: TenantWorld) -> None:
    store = to_global_id("Store", shop.store_id)
    for headers in ({}, {"x-publishable-api-key": other_world.key}):
        entities = await gql(ENTITIES, {"representations": [{"__typename": "Store", "id": store}]},
                             headers=headers)
        node = await gql("query($id: ID!) { node(id: $id) { id } }", {"id": store}, headers=headers)
        assert error_codes(entities) == error_codes(node) != []
        assert not any((entities.get("data") or {}).get("_entities") or [])
        assert store not in json.dumps(entities)


async def test_the_service_sdl_is_served(gql: GraphQLClient, shop: TenantWorld) -> None:
    body = await gql("{ _service { sdl } }", key=shop.key)
    assert '@key(fields: "id")' in body["data"]["_service"]["sdl"]
