"""The compiled read path against the resolvers: the same request to two app instances, one with
CITYOS_COMPILED_READS on (the session server) and one with it off, gives byte-identical responses, for every query
document in graphql/operations/, hand-written nested reads and hypothesis-generated selection sets, for the roles
tenant_admin, store_admin, vendor_admin and guest. And a compiled root field is one SQL statement."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.auth.authz import PDP_LATENCY
from cityos.config import Settings
from cityos.db import engines
from cityos.graphql.core.compiler import route
from cityos.graphql.core.compiler.route import ROOT_FIELDS, WARM_ANSWERS, caches_for
from cityos.graphql.core.relay import to_global_id
from cityos.observability.metrics import GRAPHQL_OPERATIONS
from cityos.operations import metric_name
from cityos.seed import seed_catalog
from tests.conftest import Server, TenantWorld, Tokens, app_client, app_instance, make_tenant
from tests.operations import all_operations

ROLES = ("tenant_admin", "store_admin", "vendor_admin", "guest")
# Vendors and products beyond the seeded catalog, in a second store: drafts, other vendors, a created_at with
# zero microseconds (isoformat drops them), more rows than a first page.
EXTRA = """
insert into vendor (tenant_id, id, store_id, handle, name, status, created_at)
select :t, gen_random_uuid(), :s2, 'extra-' || n, 'Extra ' || n, case when n % 2 = 0 then 'active' else 'pending' end,
       date_trunc('second', now()) - make_interval(mins => n)
from generate_series(1, 7) n;
insert into product (tenant_id, id, store_id, vendor_id, handle, title, status, created_at)
select v.tenant_id, gen_random_uuid(), v.store_id, v.id, v.handle || '-p' || n, 'Thing "' || n || '" \\ é',
       case when n % 3 = 0 then 'draft' else 'published' end, now() - make_interval(secs => n)
from vendor v, generate_series(1, 4) n where v.tenant_id = :t and v.store_id = :s2;
update vendor set created_at = date_trunc('second', created_at) where tenant_id = :t and handle = 'lumen-home';
insert into category (tenant_id, id, store_id, handle, name, rank, parent_id)
select :t, gen_random_uuid(), :s2, 'cat-' || n, (array['apple', 'Zebra', 'Ápple', 'zebra', 'Apple', 'b"\\'])[n],
       n % 2, null
from generate_series(1, 6) n;
insert into category (tenant_id, id, store_id, handle, name, rank, parent_id)
select c.tenant_id, gen_random_uuid(), c.store_id, c.handle || '-' || n, 'Sub ' || (n % 2), 0, c.id
from category c, generate_series(1, 3) n where c.tenant_id = :t and c.store_id = :s2 and c.parent_id is null;
insert into product_category (tenant_id, product_id, category_id)
select p.tenant_id, p.id, c.id from product p join category c on c.tenant_id = p.tenant_id and c.store_id = p.store_id
where p.tenant_id = :t and p.store_id = :s2 and (c.rank = 1 or c.parent_id is not null) and p.title like '%1%';
insert into variant (tenant_id, id, product_id, sku, title, inventory_quantity)
select p.tenant_id, gen_random_uuid(), p.id, p.handle || '-v', 'One', length(p.handle) % 3
from product p where p.tenant_id = :t and p.store_id = :s2;
insert into variant_price (tenant_id, id, variant_id, currency_code, amount)
select v.tenant_id, gen_random_uuid(), v.id, 'usd', 100 * (length(v.sku) % 4)
from variant v join product p on p.id = v.product_id and p.tenant_id = v.tenant_id
where v.tenant_id = :t and p.store_id = :s2 and p.title not like '%4%';
update product set metadata = '{"care": "wash \\"cold\\", line: dry", "tags": ["a, b", "c: d"], "n": -3,
  "nested": {"x": [1, {"y": null, "": true}], "é ü": "\\u00e9\\n\\t"}, "big": 9007199254740993}'::jsonb
where tenant_id = :t and handle = 'linen-throw';
update product set metadata = '{"ratio": 1.50}'::jsonb where tenant_id = :t and handle = 'beeswax-candle';
update variant set options = '{"color": "oat, \\"natural\\"", "size: x": "a\\\\b", "k": {}}'::jsonb
where tenant_id = :t and sku = 'LU-THROW-OAT';
insert into variant_price (tenant_id, id, variant_id, currency_code, amount)
select tenant_id, gen_random_uuid(), id, 'eur', 8100 from variant where tenant_id = :t and sku = 'LU-THROW-OAT';
insert into price_tier (tenant_id, id, variant_id, product_id, currency_code, min_quantity, percent_off, unit_amount)
select v.tenant_id, gen_random_uuid(), v.id, null, c, q, pct, amount
from variant v, (values ('usd', 5, 12.5, null), ('usd', 1, null, 9000), ('eur', 2, 33.33, null))
  as t(c, q, pct, amount) where v.tenant_id = :t and v.sku = 'LU-THROW-OAT';
insert into price_tier (tenant_id, id, variant_id, product_id, currency_code, min_quantity, percent_off, unit_amount)
select p.tenant_id, gen_random_uuid(), null, p.id, 'usd', q, pct, amount
from product p, (values (10, null, 7000), (2, 3.33, null), (1, 0.5, null)) as t(q, pct, amount)
where p.tenant_id = :t and p.handle = 'linen-throw'
"""

NESTED = """query Nested($n: Int) { stores(first: $n) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor
  endCursor } edges { cursor node { id name createdAt vendors(first: 3) { totalCount
  pageInfo { hasNextPage endCursor startCursor __typename } edges { cursor node { id name handle createdAt status
  products(first: 2)
  { totalCount nodes { id title handle description createdAt status images vendor { id name status }
  variants { id sku title inStock weightGrams prices { amount currencyCode } } } } } } } } } } }"""
DOCUMENTS = {
    "nested": (NESTED, {"n": 10}),
    "nested-small-page": (NESTED, {"n": 1}),
    "nested-zero": (NESTED, {"n": 0}),
    "bench-nested": ("query { stores(first: 10) { nodes { id name vendors(first: 5) { nodes { id name "
                     "products(first: 10) { nodes { id title variants { sku prices { amount } } } } } } } } }", {}),
    "current-store": ("query { currentStore { __typename id ... on Store { name } ...S } } "
                      "fragment S on Store { handle vendors { nodes { id } } }", {}),
    "aliases-and-directives": ("query Q($yes: Boolean!, $no: Boolean!) { a: stores(first: 2) { n: nodes { "
                               "x: id y: name @include(if: $yes) z: handle @skip(if: $yes) } } "
                               "b: vendors @include(if: $no) { totalCount } t: __typename }",
                               {"yes": True, "no": False}),
    "products-listing": ("""query P($s: ID, $sort: ProductSort, $f: ProductFilter, $c: String) { products(storeId: $s,
      sort: $sort, filter: $f, currencyCode: $c, first: 4) { totalCount pageInfo { hasNextPage hasPreviousPage
      startCursor endCursor } edges { cursor node { id title handle thumbnail status images vendor { handle }
      categories { id name rank parent { name } children { name } } variants { sku inStock prices { amount
      currencyCode } } } } } }""", {}),
    "categories-tree": ("query C($s: ID) { categories(storeId: $s, rootsOnly: true, first: 5) { totalCount "
                        "pageInfo { hasNextPage endCursor } edges { cursor node { id handle name rank parent { id } "
                        "children { name rank children { id } parent { handle } } } } } }", {}),
    "tenant-stores": ("query { currentStore { tenant { __typename id slug name status createdAt stores(first: 1) { "
                      "totalCount pageInfo { hasNextPage endCursor } nodes { handle tenant { slug } } } } } }", {}),
    "nested-backwards": ("query { stores { nodes { vendors(last: 3) { totalCount pageInfo { hasNextPage "
                         "hasPreviousPage startCursor endCursor } edges { cursor node { handle products(last: 1) { "
                         "totalCount edges { cursor } pageInfo { startCursor endCursor hasPreviousPage } } } } } } } }",
                         {}),
    "guarded-deep": ("query { stores { nodes { handle publishableKeys(first: 1) { totalCount nodes { title redacted "
                     "revokedAt } } vendors { nodes { contactEmail handle stripeAccountId products(first: 3) { nodes { "
                     "title variants { sku inventoryQuantity q: inventoryQuantity } } } } } } } "
                     "products(last: 4) { nodes { vendor { handle } variants { inventoryQuantity } } } }", {}),
    "product-pricing": ("""query H($h: String!) { p: product(handle: $h) { metadata __typename variants { options sku
      usd: tiers(currencyCode: "USD") { __typename minQuantity currencyCode percentOff unitAmount { amount
      currencyCode __typename } } eur: tiers(currencyCode: "eur") { minQuantity percentOff unitAmount { amount } }
      gbp: tiers(currencyCode: "gbp") { minQuantity } u1: unitPrice(currencyCode: "usd") { amount currencyCode }
      u2: unitPrice(currencyCode: "usd", quantity: 2) { amount } u5: unitPrice(currencyCode: "usd", quantity: 5) {
      amount } u10: unitPrice(currencyCode: "usd", quantity: 10000) { amount __typename } e: unitPrice(currencyCode:
      "EUR", quantity: 3) { amount currencyCode } g: unitPrice(currencyCode: "gbp") { amount } } } }""",
                        {"h": "linen-throw"}),
    "products-unit-prices": ("""query { products(first: 10, sort: TITLE) { nodes { handle variants { sku
      unitPrice(currencyCode: "usd") { amount } q12: unitPrice(currencyCode: "usd", quantity: 12) { amount }
      tiers(currencyCode: "usd") { minQuantity percentOff unitAmount { amount } } } } } }""", {}),
    "vendors-root": ("query { vendors(first: 4) { totalCount pageInfo { hasNextPage endCursor } nodes { id handle "
                     "chargesEnabled payoutMinimum products(first: 3) { totalCount nodes { id } } } } }", {}),
}


@pytest.fixture(scope="module")
async def data(owner_engine: AsyncEngine) -> TenantWorld:
    world = await make_tenant(owner_engine, stores=2)
    async with owner_engine.begin() as connection:
        await seed_catalog(connection, world.tenant_id, world.store_id)
        second = (await connection.execute(text(
            "select id from store where tenant_id = :t and id <> :s"), {"t": world.tenant_id,
                                                                        "s": world.store_id})).scalar_one()
        for statement in EXTRA.strip().split(";\n"):
            await connection.execute(text(statement), {"t": world.tenant_id, "s2": second})
    return world


@pytest.fixture(scope="module")
async def resolvers(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings.model_copy(update={"CITYOS_COMPILED_READS": False})) as client:
        yield client


@pytest.fixture(scope="module")
async def compiled(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


def credentials(role: str, world: TenantWorld, tokens: Tokens) -> dict[str, str]:
    if role == "guest":
        return {"x-publishable-api-key": world.key}
    token = tokens(role, world, stores=[str(world.store_id)], vendor="lumen-home")
    return {"authorization": f"Bearer {token}", "x-publishable-api-key": world.key}  # staff at their storefront


def warm_answers() -> float:
    return WARM_ANSWERS._value.get()  # type: ignore[no-any-return]


def compiled_count() -> float:
    return ROOT_FIELDS.labels("compiled")._value.get()  # type: ignore[no-any-return]


def fallback_count() -> float:
    return ROOT_FIELDS.labels("fallback")._value.get()  # type: ignore[no-any-return]


def plan_calls() -> float:
    """PlanResources calls made so far (the histogram's sample count)."""
    for metric in PDP_LATENCY.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels.get("call") == "plan_resources":
                return sample.value
    return 0.0


async def both(compiled: httpx.AsyncClient, resolvers: httpx.AsyncClient, document: str,
               variables: dict[str, Any], headers: dict[str, str]) -> tuple[bool, dict[str, Any]]:
    """Post to both apps; assert identical bytes; return whether the compiled app compiled it, and the body."""
    before = compiled_count()
    fast = await compiled.post("/graphql", json={"query": document, "variables": variables}, headers=headers)
    was_compiled = compiled_count() > before
    slow = await resolvers.post("/graphql", json={"query": document, "variables": variables}, headers=headers)
    assert fast.status_code == slow.status_code
    body = orjson.loads(slow.content)
    fast_errors = orjson.loads(fast.content).get("errors")
    assert fast_errors == body.get("errors"), (document, [error.get("path") for error in fast_errors or ()],
                                               [error.get("path") for error in body.get("errors") or ()])
    assert fast.content == slow.content, (document, fast.text, slow.text)
    return was_compiled, body


def operation_variables(world: TenantWorld, vendor: str) -> dict[str, dict[str, Any]]:
    """Variables for every query document of graphql/operations/ (a test checks none is missing)."""
    store = to_global_id("Store", world.store_id)
    order = to_global_id("Order", uuid.uuid4())
    return {"storefront/StoreById": {"id": store}, "storefront/NodeById": {"id": store},
            "admin/Stores": {"first": 10}, "admin/Vendors": {"first": 10}, "vendor/VendorStores": {},
            "storefront/CurrentStore": {}, "storefront/Products": {"first": 5}, "storefront/Categories": {},
            "admin/Nodes": {"ids": [store, to_global_id("Vendor", uuid.uuid4())]},
            "vendor/VendorProducts": {"storeId": store},
            "admin/CheckoutAttempts": {"first": 5}, "admin/CommissionRules": {"first": 5}, "admin/JobRuns": {},
            "admin/OrderById": {"id": order}, "admin/OutboxMessages": {}, "admin/StoreOrders": {},
            "admin/SubscriptionPlans": {}, "admin/WebhookEvents": {}, "storefront/CustomerSubscriptions": {},
            "storefront/MyOrders": {}, "storefront/OrderByAccessToken": {"id": order, "accessToken": "x"},
            "storefront/ProductByHandle": {"handle": "linen-throw"},
            "storefront/TenantRegions": {"id": to_global_id("Tenant", world.tenant_id)},
            "vendor/LedgerEntries": {"vendorId": vendor}, "vendor/Payouts": {"vendorId": vendor},
            "vendor/VendorAccount": {"id": vendor}, "vendor/VendorOrders": {},
            "admin/Companies": {}, "admin/Invoices": {}, "storefront/ApprovalRequests": {}, "storefront/Quotes": {},
            "storefront/Company": {"id": to_global_id("Company", uuid.uuid4())},
            "storefront/QuoteById": {"id": to_global_id("Quote", uuid.uuid4())},
            "admin/AuditLog": {"first": 5}, "admin/OrderFulfillment": {"id": order}, "admin/Refunds": {},
            "admin/RegionSetup": {"id": to_global_id("Tenant", world.tenant_id)}, "admin/Regions": {},
            "admin/Returns": {}, "admin/SalesChannels": {"storeId": store}, "storefront/Me": {},
            "admin/AdminCustomerSubscriptions": {}, "admin/DunningPolicy": {}, "storefront/MySubscriptions": {},
            "vendor/VendorSubscriptions": {}, "admin/VendorDebts": {"vendorId": vendor}, "vendor/OwnDebts": {},
            "admin/Promotions": {"first": 5},
            "admin/PromotionReport": {"id": to_global_id("Promotion", uuid.uuid4())},
            "admin/PromotionSettings": {"storeId": store}, "vendor/VendorPromotions": {"vendorId": vendor},
            "storefront/CartPromotions": {"id": to_global_id("Cart", uuid.uuid4())},
            "storefront/StorePromotions": {"first": 5}}


# Query documents that fall back, and why (README: "What falls back").
FALLING_BACK = {
    "storefront/TenantRegions": "root field tenant(id:); Tenant.regions (Region.taxRate is a Decimal, states JSON)",
    "vendor/VendorAccount": "Vendor.balances (computed from the ledger) and Vendor.users",
    # orders, carts, checkout attempts, commission rules, the platform's jobs/outbox/webhooks, billing, the
    # ledger and payouts: types without a compiler shape (money totals and lines computed in Python)
    **{name: "types of orders, payments, billing and the platform are not compiled" for name in (
        "admin/CheckoutAttempts", "admin/CommissionRules", "admin/JobRuns", "admin/OrderById",
        "admin/OutboxMessages", "admin/StoreOrders", "admin/SubscriptionPlans", "admin/WebhookEvents",
        "storefront/CustomerSubscriptions", "storefront/MyOrders", "storefront/OrderByAccessToken",
        "vendor/LedgerEntries", "vendor/Payouts", "vendor/VendorOrders", "admin/AdminCustomerSubscriptions",
        "admin/DunningPolicy", "storefront/MySubscriptions", "vendor/VendorSubscriptions")},
    **{name: "B2B types (companies, quotes, approvals, invoices) are not compiled" for name in (
        "admin/Companies", "admin/Invoices", "storefront/ApprovalRequests", "storefront/Company",
        "storefront/QuoteById", "storefront/Quotes")},
    **{name: "refunds, vendor debts, returns, the audit log, regions and customer accounts are not compiled"
       for name in (
        "admin/AuditLog", "admin/OrderFulfillment", "admin/Refunds", "admin/RegionSetup", "admin/Regions",
        "admin/Returns", "storefront/Me", "admin/VendorDebts", "vendor/OwnDebts")},
    **{name: "promotions (JSON conditions, guarded usage and funding, reports and carts computed in Python) are "
             "not compiled" for name in (
        "admin/Promotions", "admin/PromotionReport", "admin/PromotionSettings", "vendor/VendorPromotions",
        "storefront/CartPromotions", "storefront/StorePromotions")},
}


@pytest.mark.parametrize("role", ROLES)
async def test_operation_documents_are_identical_on_both_paths(role: str, data: TenantWorld, tokens: Tokens,
                                                               compiled: httpx.AsyncClient,
                                                               resolvers: httpx.AsyncClient) -> None:
    covered = set()
    vendors = await compiled.post("/graphql", json={"query": "{ vendors { nodes { id handle } } }"},
                                  headers=credentials("tenant_admin", data, tokens))
    vendor = next(node["id"] for node in vendors.json()["data"]["vendors"]["nodes"]
                  if node["handle"] == "lumen-home")
    variables = operation_variables(data, vendor)
    queries = {name for name, document in all_operations().items() if document.lstrip().startswith("query")}
    assert queries == set(variables), queries ^ set(variables)
    for name, document in all_operations().items():
        if name not in queries:
            continue
        was_compiled, _ = await both(compiled, resolvers, document, variables[name],
                                     credentials(role, data, tokens))
        if was_compiled:
            covered.add(name)
    # Every query document compiles but those FALLING_BACK lists (the README's list), for every role.
    expected = queries - set(FALLING_BACK)
    assert covered == expected, (role, covered ^ expected)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(DOCUMENTS))
async def test_nested_reads_are_identical_on_both_paths(role: str, name: str, data: TenantWorld, tokens: Tokens,
                                                        compiled: httpx.AsyncClient,
                                                        resolvers: httpx.AsyncClient) -> None:
    document, variables = DOCUMENTS[name]
    was_compiled, body = await both(compiled, resolvers, document, variables, credentials(role, data, tokens))
    assert was_compiled, (name, body)
    assert body.get("data"), body


@pytest.mark.parametrize("role", ROLES)
async def test_what_python_would_write_otherwise_falls_back(role: str, data: TenantWorld, tokens: Tokens,
                                                            compiled: httpx.AsyncClient,
                                                            resolvers: httpx.AsyncClient) -> None:
    """A JSON document holding a float (json.loads makes 1.50 a float that orjson writes 1.5) and a quantity the
    resolver rejects: the root field goes to the resolvers, with the same bytes; the listing beside it compiles."""
    headers = credentials(role, data, tokens)
    document = """query F($h: String!, $q: Int!) { product(handle: $h) { handle metadata variants {
      unitPrice(currencyCode: "usd", quantity: $q) { amount } } } products(first: 1) { nodes { handle } } }"""
    for variables in ({"h": "beeswax-candle", "q": 2}, {"h": "linen-throw", "q": 0},
                      {"h": "linen-throw", "q": 10_001}, {"h": "no-such-product", "q": 1}):
        before = fallback_count()
        was_compiled, body = await both(compiled, resolvers, document, variables, headers)
        assert was_compiled and fallback_count() == before + 1, (variables, body)
    _, body = await both(compiled, resolvers, document, {"h": "beeswax-candle", "q": 2}, headers)
    assert body["data"]["product"]["metadata"] == {"ratio": 1.5}


MIXED = """query Mixed($missing: ID!, $store: ID!, $tenant: ID!) {
  first: stores(first: 2) { totalCount nodes { id name publishableKeys { totalCount } } }
  regions: tenant(id: $tenant) { id slug }
  ...Roots
  gone: node(id: $missing) { id }
  bad: store(id: "not-an-id") { id }
  t: __typename
  last: vendors(first: 2) { nodes { id handle } }
}
fragment Roots on Query { here: store(id: $store) { id handle } again: currentStore { name } }"""


@pytest.mark.parametrize("role", ROLES)
async def test_root_fields_fall_back_one_by_one(role: str, data: TenantWorld, tokens: Tokens,
                                                compiled: httpx.AsyncClient, resolvers: httpx.AsyncClient) -> None:
    """Covered and uncovered root fields in one operation: the covered ones compile, the others (an uncovered
    field, a missing object, a malformed id) go through the resolvers; data, key order, errors and their paths
    are the resolvers' byte for byte, and the counter counts each root field once by its path."""
    variables = {"missing": to_global_id("Product", uuid.uuid4()), "store": to_global_id("Store", data.store_id),
                 "tenant": to_global_id("Tenant", data.tenant_id)}
    before = compiled_count(), fallback_count()
    _, body = await both(compiled, resolvers, MIXED, variables, credentials(role, data, tokens))
    counted = compiled_count() - before[0], fallback_count() - before[1]
    assert body.get("data") is not None, body
    assert list(body["data"]) == ["first", "regions", "here", "again", "gone", "bad", "t", "last"], body
    assert {error["path"][0] for error in body["errors"]} >= {"gone", "bad"}, body
    # stores, store(id), currentStore, vendors compile for the staff roles; tenant, the missing node and the
    # malformed id fall back; the guest's `stores`/`vendors` are empty lists, still compiled.
    assert counted == (4, 3), (counted, body)


NODES = """query N($ids: [ID!]!) { nodes(ids: $ids) { __typename id ... on Store { handle tenant { slug } }
  ... on Vendor { handle contactEmail products(first: 1) { totalCount } } ... on Product { title status variants {
  sku inventoryQuantity } } ... on Category { name children { name } } ... on StoreDomain { domain } } }"""


@pytest.mark.parametrize("role", ROLES)
async def test_nodes_by_ids(role: str, data: TenantWorld, tokens: Tokens, compiled: httpx.AsyncClient,
                            resolvers: httpx.AsyncClient) -> None:
    """`nodes(ids)` over every node type, missing ids (null) and duplicates: one statement, the resolvers' bytes;
    an id the caller may not read (the resolvers' FORBIDDEN for the whole field) falls back."""
    admin = credentials("tenant_admin", data, tokens)
    listed = (await compiled.post("/graphql", json={"query": "{ stores { nodes { id domains { nodes { id } } "
                                                              "vendors(first: 2) { nodes { id products(last: 2) { "
                                                              "nodes { id } } } } } } categories { nodes { id } } }"},
                                  headers=admin)).json()["data"]
    store = listed["stores"]["nodes"][0]
    ids = [store["id"], *(node["id"] for node in store["domains"]["nodes"]),
           *(vendor["id"] for vendor in store["vendors"]["nodes"]),
           *(product["id"] for vendor in store["vendors"]["nodes"] for product in vendor["products"]["nodes"]),
           *(category["id"] for category in listed["categories"]["nodes"][:3]),
           to_global_id("Product", uuid.uuid4()), store["id"]]
    was_compiled, body = await both(compiled, resolvers, NODES, {"ids": ids}, credentials(role, data, tokens))
    if role == "tenant_admin":
        assert was_compiled and None in body["data"]["nodes"] and "errors" not in body, body
    was_compiled, body = await both(compiled, resolvers, NODES, {"ids": []}, credentials(role, data, tokens))
    assert was_compiled and body == {"data": {"nodes": []}}


async def test_guarded_fields_are_masked_in_sql(data: TenantWorld, tokens: Tokens, compiled: httpx.AsyncClient,
                                                resolvers: httpx.AsyncClient) -> None:
    """Field permissions in one compiled statement: the tenant admin reads every guarded field, the others get
    null and the resolvers' FORBIDDEN at the same paths (in response order on both paths), other fields intact."""
    document = DOCUMENTS["guarded-deep"][0]
    denied: dict[str, set[str]] = {}
    for role in ROLES:
        was_compiled, body = await both(compiled, resolvers, document, {}, credentials(role, data, tokens))
        assert was_compiled
        paths = [error["path"] for error in body.get("errors") or ()]
        assert all(error["extensions"]["code"] == "FORBIDDEN" for error in body.get("errors") or ())
        denied[role] = {path[-1] for path in paths}
    assert denied["tenant_admin"] == set(), denied
    assert {"publishableKeys", "inventoryQuantity", "q"} <= denied["guest"], denied
    assert "contactEmail" in denied["guest"] | denied["vendor_admin"] | denied["store_admin"], denied


async def test_warm_reads_ask_the_pdp_nothing_and_build_nothing(data: TenantWorld, tokens: Tokens,
                                                                server: Server, compiled: httpx.AsyncClient,
                                                                resolvers: httpx.AsyncClient) -> None:
    """The second identical read: no PlanResources call, the statements come from the cache, same bytes."""
    headers = credentials("store_admin", data, tokens)
    document = DOCUMENTS["bench-nested"][0] + " "  # a text of its own: cold the first time
    first = await compiled.post("/graphql", json={"query": document}, headers=headers)
    caches = caches_for(server.services.app_engine)
    assert caches is not None
    entries = dict(caches.statements.entries)
    calls = plan_calls()
    assert calls > 0
    second = await compiled.post("/graphql", json={"query": document}, headers=headers)
    assert plan_calls() == calls
    assert first.content == second.content and "errors" not in second.json()
    assert caches.statements.entries.keys() == entries.keys()
    assert all(caches.statements.entries[key] is entries[key] for key in entries)
    was_compiled, _ = await both(compiled, resolvers, document, {}, headers)
    assert was_compiled


def cached_for(server: Server, document: str) -> tuple[list[Any], list[Any]]:
    """The plan and statement cache entries of one document text."""
    caches = caches_for(server.services.app_engine)
    assert caches is not None
    plans = [value for key, value in caches.plans.entries.items() if key[0] == document]
    statements = [value for key, value in caches.statements.entries.items() if key[0][0] == document]
    return plans, statements


@pytest.mark.parametrize("role", ["guest", "tenant_admin"])
async def test_variables_are_bind_parameters(role: str, data: TenantWorld, tokens: Tokens, server: Server,
                                             compiled: httpx.AsyncClient, resolvers: httpx.AsyncClient) -> None:
    """Product pages by handle, listings by category and searches: one plan and one statement per shape of the
    variables serve every value, each answered as the resolvers answer it; values a query builder would change
    (outer spaces, `%`) are planned per value; a variable the builders lower-case is no parameter at all."""
    headers = credentials(role, data, tokens)
    found = (await compiled.post("/graphql", headers=headers, json={"query": "{ products(first: 50) { nodes { "
                                 "handle title categories { id } } } }"})).json()["data"]["products"]["nodes"]
    handles = [node["handle"] for node in found]
    assert len(handles) >= 5
    page = ("query P($h: String!) { product(handle: $h) { id handle title vendor { handle } variants { sku } } } # "
            + role)
    for handle in [*handles, "no-such-handle", handles[0].upper()]:
        was_compiled, body = await both(compiled, resolvers, page, {"h": handle}, headers)
        assert was_compiled == (body["data"]["product"] is not None)
    plans, statements = cached_for(server, page)
    assert len(plans) == 1 and plans[0].general and len(statements) == 1
    await both(compiled, resolvers, page, {"h": f" {handles[1]}"}, headers)  # by value: the builder sees a space
    assert len(cached_for(server, page)[0]) == 2

    listing = ("query L($f: ProductFilter, $first: Int, $s: ProductSort) { products(filter: $f, first: $first, "
               "sort: $s) { totalCount nodes { handle } } } # " + role)
    categories = {category["id"] for node in found for category in node["categories"]}
    terms = {node["title"].split()[-1] for node in found}
    for category in categories:  # the sort (an enum) is part of the key: one shape per sort
        for sort in ("NEWEST", "TITLE"):
            assert (await both(compiled, resolvers, listing, {"f": {"categoryId": category}, "first": 3, "s": sort},
                               headers))[0]
    for term in [*terms, "nothing-like-it", "THROW"]:
        assert (await both(compiled, resolvers, listing, {"f": {"search": term}, "first": 3}, headers))[0]
    plans, statements = cached_for(server, listing)
    assert len(plans) == 3 and all(plan.general for plan in plans) and len(statements) == 3
    for odd in ("50% off", "linen_", " throw "):
        assert (await both(compiled, resolvers, listing, {"f": {"search": odd}, "first": 3}, headers))[0]
    assert len(cached_for(server, listing)[0]) == 3 + 3

    priced = "query C($c: String) { products(first: 3, currencyCode: $c, sort: PRICE_ASC) { nodes { handle } } } # "
    for currency in ("usd", "USD", "eur", "EUR"):
        assert (await both(compiled, resolvers, priced + role, {"c": currency}, headers))[0]
    plans, _ = cached_for(server, priced + role)
    assert not any(plan.general for plan in plans) and len(plans) == 1 + 4


async def test_warm_requests_are_answered_from_the_caches(data: TenantWorld, tokens: Tokens, server: Server,
                                                         compiled: httpx.AsyncClient, resolvers: httpx.AsyncClient,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A request of a shape the compiled path answered whole before skips parsing, validation and extensions: the
    resolvers' bytes, counted and timed as an operation, its cost spent once; a request it cannot answer (a
    missing product, a bad token, a body with extensions) is handed on and answered as before, its caller
    identified and its cost spent once."""
    headers = credentials("guest", data, tokens)
    page = "query Warm($h: String!) { product(handle: $h) { id handle title variants { sku } } } # warm"
    limiter = server.services.rate_limiter
    spent: list[int] = []
    refused: list[str] = []
    spend, failed = limiter.spend, limiter.failed_identification

    async def counting_spend(cost: int, **budgets: Any) -> None:
        spent.append(cost)
        await spend(cost, **budgets)

    async def counting_failures(ip: str) -> None:
        refused.append(ip)
        await failed(ip)

    monkeypatch.setattr(limiter, "spend", counting_spend)
    monkeypatch.setattr(limiter, "failed_identification", counting_failures)
    operations = GRAPHQL_OPERATIONS.labels(metric_name("Warm"), "query")
    warm, counted = warm_answers(), operations._value.get()
    handles = ["linen-throw", *(node["handle"] for node in (await compiled.post("/graphql", headers=headers, json={
        "query": "{ products(first: 4) { nodes { handle } } }"})).json()["data"]["products"]["nodes"])]
    del spent[:]
    assert (await both(compiled, resolvers, page, {"h": handles[0]}, headers))[0]
    assert warm_answers() == warm  # the first of its shape: the full path
    for handle in handles[1:]:
        assert (await both(compiled, resolvers, page, {"h": handle}, headers))[0]
    assert warm_answers() == warm + len(handles) - 1
    assert operations._value.get() == counted + 2 * len(handles)  # each app (one registry) counts its own
    assert len(spent) == len(handles) and len(set(spent)) == 1  # this app's limiter

    del spent[:]
    await both(compiled, resolvers, page, {"h": "no-such-product"}, headers)  # null: the resolvers' answer
    bad = {**headers, "authorization": "Bearer not-a-token"}
    _, body = await both(compiled, resolvers, page, {"h": handles[1]}, bad)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert warm_answers() == warm + len(handles) - 1
    assert len(spent) == 1 and len(refused) == 1  # once each: the product that is not there; the bad token
    with_extensions = await compiled.post("/graphql", headers=headers, json={
        "query": page, "variables": {"h": handles[1]}, "extensions": {"cost": True}})
    assert with_extensions.json()["extensions"]["cost"]["requested"] == spent[0]
    assert warm_answers() == warm + len(handles) - 1


async def test_expired_query_plans_are_refreshed_once_and_without_waiting(
        data: TenantWorld, tokens: Tokens, server: Server, compiled: httpx.AsyncClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Past PLAN_TTL a request uses the cached query plans while one background call refreshes them (an unchanged
    plan keeps the statements built on it); past twice PLAN_TTL requests wait, and many at once make one call per
    plan."""
    headers = credentials("store_admin", data, tokens)
    document = DOCUMENTS["bench-nested"][0] + " # refresh"
    now = [1000.0]
    monkeypatch.setattr(route, "_clock", lambda: now[0])
    first = await compiled.post("/graphql", json={"query": document}, headers=headers)
    needed = plan_calls()
    caches = caches_for(server.services.app_engine)
    assert caches is not None
    statements = dict(caches.statements.entries)

    now[0] += route.PLAN_TTL + 1  # stale: answered at once, refreshed behind
    calls = plan_calls()
    stale = await compiled.post("/graphql", json={"query": document}, headers=headers)
    assert stale.content == first.content
    for _ in range(100):
        if not caches.refreshing:
            break
        await asyncio.sleep(0.01)
    per_request = plan_calls() - calls
    assert per_request > 0 and not caches.refreshing
    assert all(caches.statements.entries[key] is value for key, value in statements.items())
    calls = plan_calls()
    assert (await compiled.post("/graphql", json={"query": document}, headers=headers)).content == first.content
    assert plan_calls() == calls  # fresh again

    now[0] += 2 * route.PLAN_TTL + 1  # expired: waited for, one call per plan for ten requests at once
    answers = await asyncio.gather(*(compiled.post("/graphql", json={"query": document}, headers=headers)
                                     for _ in range(10)))
    assert all(answer.content == first.content for answer in answers)
    assert plan_calls() - calls == per_request
    assert needed > 0


async def test_cursors_and_pages_follow_the_resolvers(data: TenantWorld, tokens: Tokens,
                                                      compiled: httpx.AsyncClient,
                                                      resolvers: httpx.AsyncClient) -> None:
    """Walking `vendors` page by page with compiled `after` cursors gives the resolvers' pages, cursor for cursor."""
    headers = credentials("tenant_admin", data, tokens)
    document = ("query P($after: String) { vendors(first: 2, after: $after) { totalCount pageInfo { hasNextPage "
                "hasPreviousPage endCursor } edges { cursor node { id createdAt } } } }")
    after = None
    seen = 0
    while True:
        was_compiled, body = await both(compiled, resolvers, document, {"after": after}, headers)
        assert was_compiled
        page = body["data"]["vendors"]
        seen += len(page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == page["totalCount"] == 10
    assert any(edge["node"]["createdAt"].count(".") == 0 for edge in page["edges"]) or seen == 10


async def walk(compiled: httpx.AsyncClient, resolvers: httpx.AsyncClient, document: str, path: str | list[str],
               variables: dict[str, Any], headers: dict[str, str], backwards: bool) -> list[str]:
    """Page a list to its end (start), forwards (backwards) by the compiled cursors; every page identical on both
    paths and compiled. The cursors seen, in list order."""
    cursors: list[str] = []
    cursor = None
    for _ in range(30):
        was_compiled, body = await both(compiled, resolvers, document, {**variables, "cursor": cursor}, headers)
        assert was_compiled, body
        page = body["data"]
        for key in [path] if isinstance(path, str) else path:
            page = page[key]
        edges = [edge["cursor"] for edge in page["edges"]]
        cursors = edges + cursors if backwards else cursors + edges
        info = page["pageInfo"]
        if not (info["hasPreviousPage"] if backwards else info["hasNextPage"]):
            assert len(cursors) == page["totalCount"], (cursors, page)
            return cursors
        cursor = info["startCursor"] if backwards else info["endCursor"]
    raise AssertionError("no end")


PAGED_PRODUCTS = """query P($s: ID, $sort: ProductSort, $f: ProductFilter, $cursor: String, $n: Int) {
  products(storeId: $s, sort: $sort, filter: $f, %s) { totalCount pageInfo { hasNextPage hasPreviousPage
  startCursor endCursor } edges { cursor node { title } } } }"""
FILTERS = [None, {"inStock": True}, {"inStock": False, "status": "DRAFT"}, {"priceMin": 100, "priceMax": 200},
           {"search": "thing"}]


@pytest.mark.parametrize("role", ["tenant_admin", "guest"])
@pytest.mark.parametrize("sort", ["NEWEST", "TITLE", "PRICE_ASC", "PRICE_DESC"])
async def test_product_pages_follow_the_resolvers(role: str, sort: str, data: TenantWorld, tokens: Tokens,
                                                  compiled: httpx.AsyncClient,
                                                  resolvers: httpx.AsyncClient) -> None:
    """Every sort, several filters, the second store (storeId) and the storefront's: walked forwards with
    `first/after` and backwards with `last/before`, the compiled pages and cursors are the resolvers'."""
    headers = credentials(role, data, tokens)
    second = await compiled.post("/graphql", json={"query": "{ stores { nodes { id } } }"},
                                 headers=credentials("tenant_admin", data, tokens))
    stores = [None] + [node["id"] for node in second.json()["data"]["stores"]["nodes"]]
    seen = 0
    for store in stores if role != "guest" else [None]:
        for product_filter in FILTERS:
            variables = {"s": store, "sort": sort, "f": product_filter, "n": 3}
            forwards = await walk(compiled, resolvers, PAGED_PRODUCTS % "first: $n, after: $cursor", "products",
                                  variables, headers, False)
            backwards = await walk(compiled, resolvers, PAGED_PRODUCTS % "last: $n, before: $cursor", "products",
                                   variables, headers, True)
            assert forwards == backwards
            seen += len(forwards)
    assert seen > 10


PAGED_CATEGORIES = """query C($s: ID, $cursor: String, $roots: Boolean) { categories(storeId: $s, rootsOnly: $roots,
  %s) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { name rank
  children { name rank children { name } parent { name } } } } } }"""


@pytest.mark.parametrize("role", ["store_admin", "guest"])
async def test_category_pages_follow_the_resolvers(role: str, data: TenantWorld, tokens: Tokens,
                                                   compiled: httpx.AsyncClient,
                                                   resolvers: httpx.AsyncClient) -> None:
    """Categories by rank and name (names differing in case and accents: Python's order, not the collation's),
    children sorted the same way, walked both ways in both stores."""
    headers = credentials(role, data, tokens)
    listed = await compiled.post("/graphql", json={"query": "{ stores { nodes { id } } }"},
                                 headers=credentials("tenant_admin", data, tokens))
    seen = 0
    for store in [node["id"] for node in listed.json()["data"]["stores"]["nodes"]]:
        for roots in (True, False):
            variables = {"s": store, "roots": roots}
            forwards = await walk(compiled, resolvers, PAGED_CATEGORIES % "first: 4, after: $cursor", "categories",
                                  variables, headers, False)
            backwards = await walk(compiled, resolvers, PAGED_CATEGORIES % "last: 4, before: $cursor",
                                   "categories", variables, headers, True)
            assert forwards == backwards
            seen += len(forwards)
    assert seen > 0


async def test_nested_pages_follow_the_resolvers(data: TenantWorld, tokens: Tokens, compiled: httpx.AsyncClient,
                                                 resolvers: httpx.AsyncClient) -> None:
    """A nested connection walked both ways with after/before cursors, inside a compiled root."""
    headers = credentials("tenant_admin", data, tokens)
    stores = (await compiled.post("/graphql", json={"query": "{ stores { nodes { id } } }"}, headers=headers)
              ).json()["data"]["stores"]["nodes"]
    for store in stores:
        document = ("query S($id: ID!, $cursor: String) { store(id: $id) { vendors(PAGING) { totalCount pageInfo { "
                    "hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { handle } } } } }")
        variables = {"id": store["id"]}
        forwards = await walk(compiled, resolvers, document.replace("PAGING", "first: 2, after: $cursor"),
                              ["store", "vendors"], variables, headers, False)
        backwards = await walk(compiled, resolvers, document.replace("PAGING", "last: 2, before: $cursor"),
                               ["store", "vendors"], variables, headers, True)
        assert forwards == backwards and forwards


# The covered types as the generator sees them: scalar fields (guarded ones included) and relations
# (field, type, connection?).
FIELDS = {
    "Store": ["id", "name", "handle", "defaultCurrencyCode", "createdAt", "__typename"],
    "Vendor": ["id", "name", "handle", "chargesEnabled", "payoutsEnabled", "detailsSubmitted", "payoutMinimum",
               "createdAt", "status", "contactEmail", "stripeAccountId", "__typename"],
    "Product": ["id", "title", "handle", "description", "createdAt", "status", "images", "thumbnail", "__typename"],
    "Variant": ["id", "sku", "title", "inStock", "weightGrams", "inventoryQuantity", "options", "__typename"],
    "Money": ["amount", "currencyCode", "__typename"],
    "Category": ["id", "handle", "name", "rank", "__typename"],
    "Tenant": ["id", "slug", "name", "status", "createdAt", "__typename"],
    "StoreDomain": ["id", "domain", "isPrimary", "createdAt", "__typename"],
    "SalesChannel": ["id", "name", "description", "isDefault", "isDisabled", "createdAt", "__typename"],
    "PublishableApiKey": ["id", "title", "redacted", "createdAt", "revokedAt", "__typename"],
}
RELATIONS = {
    "Store": [("vendors", "Vendor", True), ("domains", "StoreDomain", True), ("salesChannels", "SalesChannel", True),
              ("tenant", "Tenant", False), ("publishableKeys", "PublishableApiKey", True)],
    "Vendor": [("products", "Product", True)],
    "Product": [("variants", "Variant", False), ("vendor", "Vendor", False), ("categories", "Category", False)],
    "Variant": [("prices", "Money", False)], "Money": [],
    "Category": [("parent", "Category", False), ("children", "Category", False)],
    "Tenant": [("stores", "Store", True)], "StoreDomain": [], "SalesChannel": [], "PublishableApiKey": [],
}
MAX_DEPTH = 5


class Document:
    """The fragment definitions a generated operation spreads."""

    def __init__(self) -> None:
        self.fragments: list[str] = []


def directive(draw: Any) -> str:
    return draw(st.sampled_from(["", "", " @include(if: $yes)", " @skip(if: $no)", " @include(if: $no)",
                                 " @skip(if: $yes)"]))


def paging(draw: Any) -> str:
    return draw(st.sampled_from(["", "(first: 0)", "(first: 1)", "(first: 3)", "(last: 1)", "(last: 2)"]))


def connection(draw: Any, type_name: str, depth: int, document: Document) -> str:
    """A connection's selection: some of totalCount, pageInfo, edges (cursor, node) and nodes."""
    parts = []
    for part in draw(st.lists(st.sampled_from(["totalCount", "pageInfo", "edges", "nodes", "__typename"]),
                              min_size=1, max_size=3, unique=True)):
        if part == "pageInfo":
            info = draw(st.lists(st.sampled_from(["hasNextPage", "hasPreviousPage", "startCursor", "endCursor",
                                                  "__typename"]), min_size=1, max_size=4, unique=True))
            parts.append(f"pageInfo {{ {' '.join(info)} }}")
        elif part == "edges":
            parts.append(f"edges {{ cursor node {{ {draw(selection(type_name, depth + 1, document))} }} }}")
        elif part == "nodes":
            parts.append(f"nodes {{ {draw(selection(type_name, depth + 1, document))} }}")
        else:
            parts.append(part)
    return " ".join(parts)


@st.composite
def selection(draw: Any, type_name: str, depth: int, document: Document) -> str:
    """A random selection set of `type_name` (depth ≤ MAX_DEPTH): scalars, relations with paging arguments,
    aliases, @include/@skip on variables, inline fragments and named fragments."""
    parts = []
    for name in draw(st.lists(st.sampled_from(FIELDS[type_name]), min_size=1, max_size=4, unique=True)):
        alias = draw(st.sampled_from(["", f"a_{name}: ", f"{name}: "]))  # distinct per field: a valid document
        parts.append(f"{alias}{name}{directive(draw)}")
    if depth < MAX_DEPTH:
        for name, child, is_connection in RELATIONS[type_name]:
            if draw(st.integers(0, 2)) == 0:
                alias = draw(st.sampled_from(["", f"r_{name}: "]))
                if is_connection:
                    inner = connection(draw, child, depth, document)
                    parts.append(f"{alias}{name}{paging(draw)}{directive(draw)} {{ {inner} }}")
                else:
                    parts.append(f"{alias}{name}{directive(draw)} {{ {draw(selection(child, depth + 1, document))} }}")
    wrap = draw(st.integers(0, 4))
    if wrap == 0:
        return f"... on {type_name}{directive(draw)} {{ {' '.join(parts)} }}"
    if wrap == 1:
        name = f"F{len(document.fragments)}"
        document.fragments.append(f"fragment {name} on {type_name} {{ {' '.join(parts)} }}")
        return f"...{name} __typename"
    if wrap == 2:
        return f"... @include(if: $yes) {{ {' '.join(parts)} }}"
    return " ".join(parts)


ROOTS = [("stores", "Store", True), ("vendors", "Vendor", True), ("products", "Product", True),
         ("categories", "Category", True), ("currentStore", "Store", False), ("store(id: $store)", "Store", False),
         ("node(id: $store)", "Store", False)]
PRODUCT_ARGUMENTS = ["", "sort: TITLE", "sort: PRICE_ASC", "sort: PRICE_DESC", "filter: { inStock: true }",
                     "filter: { search: \"linen\" }", "filter: { priceMax: 3000 }, sort: PRICE_DESC"]


@st.composite
def operation(draw: Any) -> str:
    document = Document()
    roots = []
    for index, (field, type_name, is_connection) in enumerate(draw(st.lists(st.sampled_from(ROOTS), min_size=1,
                                                                            max_size=2, unique=True))):
        alias = f"r{index}: "
        if is_connection:
            arguments = [paging(draw)[1:-1]]
            if field == "products":
                arguments.append(draw(st.sampled_from(PRODUCT_ARGUMENTS)))
            if field == "categories":
                arguments.append(draw(st.sampled_from(["", "rootsOnly: true"])))
            given = ", ".join(argument for argument in arguments if argument)
            head = f"{field}({given})" if given else field
            roots.append(f"{alias}{head} {{ {connection(draw, type_name, 1, document)} }}")
        elif field.startswith("node"):
            roots.append(f"{alias}{field} {{ __typename ... on Store {{ {draw(selection('Store', 1, document))} }} }}")
        else:
            roots.append(f"{alias}{field} {{ {draw(selection(type_name, 1, document))} }}")
    if draw(st.booleans()):
        roots.append("__typename")
    body = "{ " + " ".join(roots) + " } " + " ".join(document.fragments)
    used = [f"${name}: {kind}" for name, kind in (("yes", "Boolean!"), ("no", "Boolean!"), ("store", "ID!"))
            if f"${name}" in body]  # an unused variable is a validation error
    return f"query Random{'(' + ', '.join(used) + ')' if used else ''} {body}"


@pytest.mark.parametrize("role", ROLES)
async def test_random_selections_are_identical_on_both_paths(role: str, data: TenantWorld, tokens: Tokens,
                                                             compiled: httpx.AsyncClient,
                                                             resolvers: httpx.AsyncClient) -> None:
    """Hypothesis-generated operations over every covered type (depth ≤ 5, aliases, fragments, inline fragments,
    @include/@skip on variables, __typename, paging arguments, filters and sorts, guarded fields): the same bytes
    on both paths, and every one compiles."""
    headers = credentials(role, data, tokens)
    documents: list[str] = []

    @hypothesis_settings(max_examples=30, derandomize=True, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
    @given(operation())
    def generate(document: str) -> None:
        documents.append(document)

    generate()
    values = {"yes": True, "no": False, "store": to_global_id("Store", data.store_id)}
    uncompiled = []
    for document in documents:
        variables = {name: value for name, value in values.items() if f"${name}:" in document}
        was_compiled, _ = await both(compiled, resolvers, document, variables, headers)
        if not was_compiled:
            uncompiled.append(document)
    assert len(documents) == 30 and not uncompiled, uncompiled


async def test_a_compiled_root_field_is_one_statement(data: TenantWorld, tokens: Tokens, server: Server,
                                                      compiled: httpx.AsyncClient, owner_engine: AsyncEngine
                                                      ) -> None:
    """Whatever the data size: identification and tenant scope aside, one statement per root field."""
    headers = credentials("tenant_admin", data, tokens)
    captured: list[str] = []

    def capture(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        captured.append(statement)

    for document in (DOCUMENTS["bench-nested"][0], "{ currentStore { id } }"):  # warm: keys, plans, statements
        await compiled.post("/graphql", json={"query": document}, headers=headers)
    event.listen(server.services.app_engine.sync_engine, "before_cursor_execute", capture)
    try:
        counts = []
        for extra in (0, 20):
            if extra:
                async with owner_engine.begin() as connection:
                    await connection.execute(text(
                        "insert into product (tenant_id, id, store_id, vendor_id, handle, title, status) "
                        "select v.tenant_id, gen_random_uuid(), v.store_id, v.id, 'more-' || n || '-' || v.handle, "
                        "'More', 'published' from vendor v, generate_series(1, :n) n where v.tenant_id = :t"),
                        {"n": extra, "t": data.tenant_id})
            for document, roots in ((DOCUMENTS["bench-nested"][0], 1),
                                    ("query { stores(first: 5) { totalCount } currentStore { id vendors { nodes "
                                     "{ products { nodes { variants { prices { amount } } } } } } } }", 2)):
                captured.clear()
                before = compiled_count()
                response = await compiled.post("/graphql", json={"query": document}, headers=headers)
                assert "errors" not in response.json()
                assert compiled_count() - before == roots
                # a compiled statement builds JSON text from inlined '{"key":' pieces (jsontext)
                # (it names its own tenant: engines.scoped_statement), the tenant scope of a transaction aside
                reads = [s for s in captured if "'{\"" in s]
                others = [s for s in captured if "'{\"" not in s and not s.lower().startswith("select set_config")]
                assert len(reads) == roots, captured
                counts.append((len(reads), len(others)))
        assert counts[:2] == counts[2:], counts  # the same statements before and after 20 products per vendor
    finally:
        event.remove(server.services.app_engine.sync_engine, "before_cursor_execute", capture)


async def test_a_pdp_failure_fails_closed_on_both_paths(data: TenantWorld, tokens: Tokens, settings: Settings
                                                        ) -> None:
    """Cerbos unreachable: the compiled path answers UNAVAILABLE like the resolvers, never rows."""
    broken = settings.model_copy(update={"CERBOS_URL": "127.0.0.1:1"})
    headers = credentials("tenant_admin", data, tokens)
    async with app_client(broken) as client:
        body = (await client.post("/graphql", json={"query": DOCUMENTS["bench-nested"][0]}, headers=headers)).json()
    assert body["data"] == {"stores": None}, body
    assert [error["extensions"]["code"] for error in body["errors"]] == ["UNAVAILABLE"]
    async with app_client(broken) as client:
        body = (await client.post("/graphql", json={"query": DOCUMENTS["guarded-deep"][0]}, headers=headers)).json()
    assert body["data"] == {"stores": None, "products": None}, body
    assert {error["extensions"]["code"] for error in body["errors"]} == {"UNAVAILABLE"}
    assert uuid  # keeps the import for ids in failure messages


POINT = """query Point($id: ID!) { node(id: $id) { ... on Product { id title variants { sku prices { amount } } } } }"""


@pytest.mark.parametrize("role", ["guest", "tenant_admin"])
async def test_a_warm_compiled_point_read_is_one_round_trip(role: str, data: TenantWorld, tokens: Tokens,
                                                            settings: Settings, owner_engine: AsyncEngine,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixed costs of a point read (#12). Warm (key and token caches, query plans, compiled statement, prepared
    statement, pooled connection), a `node(id:)` read is one round trip to Postgres: no pre-ping, no BEGIN with
    the tenant scope, no COMMIT, no reset when the connection goes back — the statement names its own tenant
    (engines.scoped_statement) and runs on the value-read pool (engines.ValueReads). Counted as the messages the app
    writes to Postgres' sockets (asyncpg writes each request once and waits for its answer)."""
    async with owner_engine.connect() as connection:
        product = (await connection.execute(text(
            "select id from product where tenant_id = :t and store_id = :s and status = 'published' "
            "order by created_at limit 1"), {"t": data.tenant_id, "s": data.store_id})).scalar_one()
    writes: list[bytes] = []

    def count(driver: Any) -> None:
        transport = driver._transport
        write = transport.write

        def counted(message: bytes) -> None:
            writes.append(bytes(message[:1]))
            write(message)

        transport.write = counted

    monkeypatch.setattr(engines, "PING_AFTER_IDLE", 3600.0)  # no idle ping on the engine's connections either
    # (a token whose claims name stores or a vendor by handle costs a lookup of them per request: not this one)
    headers = {"x-publishable-api-key": data.key} if role == "guest" else {
        "authorization": f"Bearer {tokens(role, data)}", "x-publishable-api-key": data.key}
    body = {"query": POINT, "variables": {"id": to_global_id("Product", product)}}
    async with app_instance(settings) as (client, services):
        reads = engines.value_reads(services.app_engine)
        assert reads is not None
        reads.connected.append(count)
        await reads.close()  # every connection from here on is counted
        await services.app_engine.dispose()
        event.listen(services.app_engine.sync_engine, "connect", lambda raw, _record: count(raw.driver_connection))
        for _ in range(3):
            response = await client.post("/graphql", json=body, headers=headers)
            assert response.json()["data"]["node"]["variants"], response.text
        writes.clear()
        warm = await client.post("/graphql", json=body, headers=headers)
        assert warm.content == response.content
        assert writes == [b"B"], writes  # Bind/Execute/Sync of the prepared statement: one round trip
        monkeypatch.setattr(engines, "PING_AFTER_IDLE", 0.0)  # the value-read pool pings nothing, idle or not
        writes.clear()
        assert (await client.post("/graphql", json=body, headers=headers)).content == response.content
        assert writes == [b"B"], writes


@pytest.mark.parametrize("query", [POINT, "query { regions(first: 1) { nodes { id } } }"],
                         ids=["compiled read", "request transaction"])
async def test_a_pooled_connection_that_died_is_replaced_without_an_error(
        query: str, data: TenantWorld, tokens: Tokens, settings: Settings, owner_engine: AsyncEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No pre-ping on a recently used connection (engines.PING_AFTER_IDLE): one whose server process ended while it
    sat in the pool fails on the request's first statement, and the request retries once on a new connection —
    the one-statement compiled read and the request's transaction alike (`regions` falls back to the resolvers)."""
    async with owner_engine.connect() as connection:
        product = (await connection.execute(text(
            "select id from product where tenant_id = :t and status = 'published' order by created_at limit 1"),
            {"t": data.tenant_id})).scalar_one()
    monkeypatch.setattr(engines, "PING_AFTER_IDLE", 3600.0)
    headers = {"authorization": f"Bearer {tokens('tenant_admin', data)}", "x-publishable-api-key": data.key}
    body = {"query": query, "variables": {"id": to_global_id("Product", product)} if "$id" in query else {}}
    async with app_instance(settings) as (client, services):
        first = await client.post("/graphql", json=body, headers=headers)  # warm: identity caches, plans
        assert "errors" not in first.json(), first.text
        reads = engines.value_reads(services.app_engine)
        assert reads is not None
        await services.app_engine.dispose()
        await reads.close()
        assert (await client.post("/graphql", json=body, headers=headers)).json() == first.json()
        if query == POINT:  # the value-read pool's only connection, the one just used
            pool = await reads.pool()
            assert pool.get_size() == 1
            async with pool.acquire() as driver:
                pid = await driver.fetchval("select pg_backend_pid()")
        else:
            assert services.app_engine.pool.checkedin() == 1  # type: ignore[attr-defined]
            async with services.app_engine.connect() as pooled:  # the pool's only connection, the one just used
                pid = (await pooled.execute(text("select pg_backend_pid()"))).scalar_one()
                await pooled.rollback()
        async with owner_engine.connect() as connection:  # ended, and gone (the wait is Postgres', not a sleep)
            assert (await connection.execute(text("select pg_terminate_backend(:pid, 5000)"),
                                             {"pid": pid})).scalar_one()
        compiled_before = compiled_count()
        again = await client.post("/graphql", json=body, headers=headers)
        assert again.json() == first.json()
        # the compiled read itself was answered (an UNAVAILABLE there would have gone to the resolvers instead)
        assert compiled_count() - compiled_before == (1 if query == POINT else 0)
