"""The catalog over HTTP: storefront browsing with filters, sorts and tier prices; admin and vendor management."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from cityos.graphql.core.relay import to_global_id
from cityos.seed import seed_catalog, seed_region
from tests.conftest import GraphQLClient, Server, TenantWorld, Tokens, error_codes, make_tenant
from tests.operations import all_operations

LISTING = """query($filter: ProductFilter, $sort: ProductSort, $first: Int, $after: String) {
  products(filter: $filter, sort: $sort, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { handle title thumbnail vendor { handle } categories { handle }
            variants { sku inStock prices { amount currencyCode } } }
  }
}"""


@pytest.fixture
async def shop(owner_engine) -> TenantWorld:
    world = await make_tenant(owner_engine)
    async with owner_engine.begin() as connection:
        await seed_region(connection, world.tenant_id)
        await seed_catalog(connection, world.tenant_id, world.store_id)
    return world


async def handles(gql: GraphQLClient, shop: TenantWorld, **variables) -> list[str]:
    body = await gql(LISTING, variables, key=shop.key)
    assert "errors" not in body, body
    return [node["handle"] for node in body["data"]["products"]["nodes"]]


async def test_storefront_browsing(gql: GraphQLClient, shop: TenantWorld) -> None:
    body = await gql(LISTING, {"first": 50}, key=shop.key)
    products = body["data"]["products"]
    assert products["totalCount"] == 6
    tee = next(node for node in products["nodes"] if node["handle"] == "merino-tee")
    assert tee["vendor"] == {"handle": "northwind-outfitters"}
    assert tee["categories"] == [{"handle": "tops"}]
    assert tee["thumbnail"].endswith("/merino-tee/1.jpg")
    assert tee["variants"][0]["prices"] == [{"amount": 4500, "currencyCode": "usd"}]


async def test_filters(gql: GraphQLClient, shop: TenantWorld) -> None:
    categories = await gql("{ categories(rootsOnly: true) { nodes { id handle children { handle } } } }",
                           key=shop.key)
    roots = {node["handle"]: node for node in categories["data"]["categories"]["nodes"]}
    assert roots["apparel"]["children"] == [{"handle": "tops"}]
    apparel = await handles(gql, shop, filter={"categoryId": roots["apparel"]["id"]}, sort="TITLE")
    assert apparel == ["merino-tee", "trail-socks"]  # the tee is in a child category
    assert await handles(gql, shop, filter={"search": "honey"}) == ["wildflower-honey"]
    assert await handles(gql, shop, filter={"priceMin": 2000, "priceMax": 3000}) == ["beeswax-candle"]
    assert set(await handles(gql, shop, filter={"inStock": True})) >= {"merino-tee", "linen-throw"}
    vendor = await gql('{ product(handle: "linen-throw") { vendor { id } } }', key=shop.key)
    by_vendor = await handles(gql, shop, filter={"vendorId": vendor["data"]["product"]["vendor"]["id"]},
                              sort="TITLE")
    assert by_vendor == ["beeswax-candle", "linen-throw"]


async def test_sorts_page_stably(gql: GraphQLClient, shop: TenantWorld) -> None:
    ascending = await handles(gql, shop, sort="PRICE_ASC", first=50)
    assert ascending[0] == "trail-socks" and ascending[-1] == "linen-throw"
    assert await handles(gql, shop, sort="PRICE_DESC", first=50) == list(reversed(ascending))
    seen: list[str] = []
    after = None
    while True:
        body = await gql(LISTING, {"sort": "PRICE_ASC", "first": 4, "after": after}, key=shop.key)
        seen += [node["handle"] for node in body["data"]["products"]["nodes"]]
        if not body["data"]["products"]["pageInfo"]["hasNextPage"]:
            break
        after = body["data"]["products"]["pageInfo"]["endCursor"]
    assert seen == ascending


async def test_tier_prices_and_stock_visibility(gql: GraphQLClient, shop: TenantWorld, tokens: Tokens) -> None:
    query = """{ product(handle: "trail-socks") { variants {
        one: unitPrice(currencyCode: "usd", quantity: 1) { amount }
        ten: unitPrice(currencyCode: "usd", quantity: 10) { amount }
        fifty: unitPrice(currencyCode: "usd", quantity: 50) { amount }
        tiers(currencyCode: "usd") { minQuantity percentOff unitAmount { amount currencyCode } }
        inStock inventoryQuantity } } }"""
    body = await gql(query, key=shop.key)
    variant = body["data"]["product"]["variants"][0]
    assert (variant["one"], variant["ten"], variant["fifty"]) == ({"amount": 1200}, {"amount": 1092},
                                                                  {"amount": 800})
    assert variant["inStock"] is True
    assert [(tier["minQuantity"], tier["unitAmount"]) for tier in variant["tiers"]] == [
        (10, None), (50, {"amount": 800, "currencyCode": "usd"})]
    assert variant["inventoryQuantity"] is None
    assert error_codes(body) == ["FORBIDDEN"]
    admin = await gql(query, key=shop.key, token=tokens("tenant_admin", shop))
    assert admin["data"]["product"]["variants"][0]["inventoryQuantity"] == 500
    bad = await gql('{ product(handle: "trail-socks") { variants { unitPrice(currencyCode: "usd", quantity: 0) '
                    '{ amount } } } }', key=shop.key)
    assert error_codes(bad) == ["BAD_USER_INPUT"]


async def test_drafts_are_hidden_from_shoppers(gql: GraphQLClient, shop: TenantWorld, tokens: Tokens) -> None:
    admin = tokens("tenant_admin", shop)
    product = await gql('{ product(handle: "merino-tee") { id } }', key=shop.key)
    product_id = product["data"]["product"]["id"]
    body = await gql('mutation($id: ID!) { updateProduct(id: $id, input: {status: DRAFT}) { status } }',
                     {"id": product_id}, token=admin)
    assert body["data"]["updateProduct"]["status"] == "DRAFT"
    assert "merino-tee" not in await handles(gql, shop, first=50)
    assert error_codes(await gql('{ product(handle: "merino-tee") { id } }', key=shop.key)) == ["FORBIDDEN"]
    listed = await gql('query($s: ID!) { products(storeId: $s, filter: {status: DRAFT}) { nodes { handle } } }',
                       {"s": to_global_id("Store", shop.store_id)}, token=admin)
    assert listed["data"]["products"]["nodes"] == [{"handle": "merino-tee"}]


OPS = all_operations()
CREATE = OPS["admin/CreateProduct"]
VARIANT = OPS["admin/CreateVariant"]


async def vendor_ids(gql: GraphQLClient, shop: TenantWorld) -> dict[str, str]:
    body = await gql(LISTING.replace("vendor { handle }", "vendor { id handle }"), {"first": 50}, key=shop.key)
    return {node["vendor"]["handle"]: node["vendor"]["id"] for node in body["data"]["products"]["nodes"]}


async def test_admins_and_vendors_manage_products(gql: GraphQLClient, shop: TenantWorld, tokens: Tokens) -> None:
    vendors = await vendor_ids(gql, shop)
    store = to_global_id("Store", shop.store_id)
    own = {"storeId": store, "handle": "wool-cap", "title": "Wool Cap", "vendorId": vendors["northwind-outfitters"]}
    vendor_user = tokens("vendor_user", shop, vendor="northwind-outfitters")
    created = await gql(CREATE, {"input": own}, token=vendor_user)
    assert "errors" not in created, created
    assert created["data"]["createProduct"]["vendor"]["handle"] == "northwind-outfitters"
    foreign = {**own, "handle": "not-mine", "vendorId": vendors["lumen-home"]}
    assert error_codes(await gql(CREATE, {"input": foreign}, token=vendor_user)) == ["FORBIDDEN"]
    product_id = created["data"]["createProduct"]["id"]
    variant = await gql(VARIANT, {"productId": product_id, "input": {
        "sku": "NW-CAP", "title": "One size", "inventoryQuantity": 5,
        "prices": [{"amount": 2500, "currencyCode": "USD"}]}}, token=vendor_user)
    assert variant["data"]["createVariant"]["prices"] == [{"amount": 2500, "currencyCode": "usd"}]
    duplicate = await gql(VARIANT, {"productId": product_id, "input": {"sku": "NW-CAP", "title": "Again"}},
                          token=vendor_user)
    assert error_codes(duplicate) == ["CONFLICT"]
    for bad in ({"sku": "X1", "title": "x", "inventoryQuantity": -1},
                {"sku": "X2", "title": "x", "prices": [{"amount": 100, "currencyCode": "zzz"}]},
                {"sku": "X3", "title": "x", "prices": [{"amount": -5, "currencyCode": "usd"}]}):
        assert error_codes(await gql(VARIANT, {"productId": product_id, "input": bad}, token=vendor_user)) == [
            "BAD_USER_INPUT"]
    other_vendor = tokens("vendor_admin", shop, vendor="lumen-home")
    stolen = await gql('mutation($id: ID!) { updateProduct(id: $id, input: {title: "Mine"}) { title } }',
                       {"id": product_id}, token=other_vendor)
    assert error_codes(stolen) == ["FORBIDDEN"]
    tiers = await gql("""mutation($p: ID!) { setPriceTiers(productId: $p, currencyCode: "usd",
        tiers: [{minQuantity: 3, percentOff: "10"}, {minQuantity: 3, unitAmount: 5}]) { id } }""",
                      {"p": product_id}, token=vendor_user)
    assert error_codes(tiers) == ["BAD_USER_INPUT"]
    tiers = await gql("""mutation($p: ID!) { setPriceTiers(productId: $p, currencyCode: "usd",
        tiers: [{minQuantity: 3, percentOff: "10"}]) { variants { unitPrice(currencyCode: "usd", quantity: 3)
        { amount } } } }""", {"p": product_id}, token=vendor_user)
    assert tiers["data"]["setPriceTiers"]["variants"][0]["unitPrice"] == {"amount": 2250}


async def test_categories_are_managed_by_store_admins(gql: GraphQLClient, shop: TenantWorld,
                                                      tokens: Tokens) -> None:
    mutation = OPS["admin/CreateCategory"]
    variables = {"input": {"storeId": to_global_id("Store", shop.store_id), "handle": "outerwear",
                           "name": "Outerwear"}}
    assert error_codes(await gql(mutation, variables, token=tokens("vendor_admin", shop))) == ["FORBIDDEN"]
    body = await gql(mutation, variables, token=tokens("store_admin", shop, stores=["store-0"]))
    assert body["data"]["createCategory"]["handle"] == "outerwear"
    assert body["data"]["createCategory"]["parent"] is None
    assert error_codes(await gql(mutation, variables, token=tokens("tenant_admin", shop))) == ["CONFLICT"]
    admin = tokens("tenant_admin", shop)
    roots = (await gql(OPS["storefront/Categories"], {"rootsOnly": True}, key=shop.key))["data"]["categories"]
    apparel = next(node for node in roots["nodes"] if node["handle"] == "apparel")
    tops = apparel["children"][0]["id"]
    moved = await gql(OPS["admin/UpdateCategory"], {"id": body["data"]["createCategory"]["id"],
                                                    "input": {"parentId": apparel["id"], "rank": 2}}, token=admin)
    assert moved["data"]["updateCategory"]["parent"]["handle"] == "apparel"
    cycle = await gql(OPS["admin/UpdateCategory"], {"id": apparel["id"], "input": {"parentId": tops}}, token=admin)
    assert error_codes(cycle) == ["BAD_USER_INPUT"]


async def copy_products(connection, world: TenantWorld, copies: int) -> None:
    """More products like the seeded ones: same vendors, categories, channel links, variants, prices, tiers."""
    for index in range(copies):
        await connection.execute(text("""
            with source as (select * from product where tenant_id = :t),
            copied as (
              insert into product (tenant_id, id, store_id, vendor_id, handle, title, description, status, images)
              select tenant_id, gen_random_uuid(), store_id, vendor_id, handle || :suffix, title, description,
                     status, images from source returning id, handle)
            select 1"""), {"t": world.tenant_id, "suffix": f"-{index}"})
        await connection.execute(text("""
            insert into product_category (tenant_id, product_id, category_id)
            select p.tenant_id, p.id, pc.category_id from product p
            join product o on o.tenant_id = p.tenant_id and p.handle = o.handle || :suffix
            join product_category pc on pc.product_id = o.id"""), {"suffix": f"-{index}"})
        await connection.execute(text("""
            insert into product_sales_channel (tenant_id, product_id, sales_channel_id)
            select p.tenant_id, p.id, psc.sales_channel_id from product p
            join product o on o.tenant_id = p.tenant_id and p.handle = o.handle || :suffix
            join product_sales_channel psc on psc.product_id = o.id"""), {"suffix": f"-{index}"})
        await connection.execute(text("""
            insert into variant (tenant_id, id, product_id, sku, title, options, inventory_quantity)
            select p.tenant_id, gen_random_uuid(), p.id, v.sku || :suffix, v.title, v.options, v.inventory_quantity
            from product p join product o on o.tenant_id = p.tenant_id and p.handle = o.handle || :suffix
            join variant v on v.product_id = o.id"""), {"suffix": f"-{index}"})
        await connection.execute(text("""
            insert into variant_price (tenant_id, id, variant_id, currency_code, amount)
            select v.tenant_id, gen_random_uuid(), v.id, vp.currency_code, vp.amount from variant v
            join variant o on o.tenant_id = v.tenant_id and v.sku = o.sku || :suffix
            join variant_price vp on vp.variant_id = o.id"""), {"suffix": f"-{index}"})
        await connection.execute(text("""
            insert into price_tier (tenant_id, id, product_id, currency_code, min_quantity, percent_off, unit_amount)
            select p.tenant_id, gen_random_uuid(), p.id, t.currency_code, t.min_quantity, t.percent_off, t.unit_amount
            from product p join product o on o.tenant_id = p.tenant_id and p.handle = o.handle || :suffix
            join price_tier t on t.product_id = o.id"""), {"suffix": f"-{index}"})


NESTED = """query($first: Int, $filter: ProductFilter) { products(first: $first, filter: $filter, sort: TITLE) {
    totalCount nodes {
    title vendor { name } categories { name parent { name } }
    variants { sku prices { amount } tiers(currencyCode: "usd") { minQuantity }
               unitPrice(currencyCode: "usd", quantity: 12) { amount } } } } }"""


async def test_listing_statements_do_not_grow_with_products(server: Server, gql: GraphQLClient, owner_engine,
                                                            tokens: Tokens) -> None:
    small, large = await make_tenant(owner_engine), await make_tenant(owner_engine)
    async with owner_engine.begin() as connection:
        for world in (small, large):
            await seed_catalog(connection, world.tenant_id, world.store_id)
        await copy_products(connection, large, copies=8)  # 6 + 6 × 8 = 54 products
    counts = []
    # Both pages hold the same shape of data (a category with its parent also on the page, so the parent comes
    # from the loader's cache in both), and every relation costs one statement whatever the number of products.
    for world, variables in ((small, {"first": 2, "filter": {"search": "merino or socks"}}), (large, {"first": 50})):
        await gql(NESTED, variables, key=world.key)  # warm the per-process caches (tenant directory)
        before = server.statements.count
        body = await gql(NESTED, variables, key=world.key)
        assert "errors" not in body, body
        counts.append(server.statements.count - before)
        nodes = body["data"]["products"]["nodes"]
        assert len(nodes) == variables["first"]
        assert all(node["vendor"] and node["categories"] and node["variants"][0]["prices"] for node in nodes)
    assert counts[0] == counts[1], counts
    assert counts[0] <= 14


STORE_TREE = """{ currentStore { vendors(first: 2) { totalCount pageInfo { hasNextPage } nodes { handle
    products(first: 1) { totalCount pageInfo { hasNextPage } nodes { handle status } } } } } }"""


async def test_nested_vendor_and_product_pages_are_filtered_and_cut_in_sql(server: Server, gql: GraphQLClient,
                                                                            shop: TenantWorld, owner_engine,
                                                                            tokens: Tokens) -> None:
    async with owner_engine.begin() as connection:
        await connection.execute(text("update product set status = 'draft' where tenant_id = :t "
                                      "and handle = 'wildflower-honey'"), {"t": shop.tenant_id})
    body = await gql(STORE_TREE, key=shop.key)
    vendors = body["data"]["currentStore"]["vendors"]
    assert vendors["totalCount"] == 3
    assert vendors["pageInfo"]["hasNextPage"] is True
    assert len(vendors["nodes"]) == 2  # seeded together: their order is by id
    for vendor in vendors["nodes"]:
        published = 1 if vendor["handle"] == "cedar-pantry" else 2
        assert vendor["products"]["totalCount"] == published
        assert vendor["products"]["pageInfo"]["hasNextPage"] is (published > 1)
        assert len(vendor["products"]["nodes"]) == 1
    guest_cedar = await gql("""{ currentStore { vendors(first: 3) { nodes { handle products(first: 5) {
        totalCount nodes { handle } } } } } }""", key=shop.key)
    cedar = next(node for node in guest_cedar["data"]["currentStore"]["vendors"]["nodes"]
                 if node["handle"] == "cedar-pantry")
    assert cedar["products"] == {"totalCount": 1, "nodes": [{"handle": "single-origin-coffee"}]}  # the draft is hidden
    admin = await gql("""{ currentStore { vendors(first: 3) { nodes { handle products(first: 5) { totalCount } } }
        } }""", key=shop.key, token=tokens("tenant_admin", shop))
    counts = {node["handle"]: node["products"]["totalCount"]
              for node in admin["data"]["currentStore"]["vendors"]["nodes"]}
    assert counts["cedar-pantry"] == 2
    before = server.statements.count
    await gql(STORE_TREE, key=shop.key)
    assert server.statements.count - before <= 5  # key lookup, set tenant, store, one windowed query per level
