"""Payload CMS both ways against the fake (tests/fakes/payload.py) through our real client: the push keyed by our
ids (idempotent, paged, resumable after Payload goes down in the middle of a page), the pull of content by the
ownership rule, the signed webhook through the inbox (replays, refusals), and Product.content over GraphQL."""

from __future__ import annotations

import json
import logging
import time
import uuid

import httpx
import pytest
from sqlalchemy import text

from cityos.db.engines import create_app_engine
from cityos.jobs.payload import sync_from_payload, sync_to_payload
from cityos.jobs.registry import JOBS, JobContext
from tests.conftest import GraphQLClient, TenantWorld, make_tenant
from tests.fakes.payload import FakePayload

COLLECTIONS = ("stores", "vendors", "categories", "products")


@pytest.fixture
async def app_engine(database_url: str):
    engine = create_app_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()


@pytest.fixture
async def catalog(owner_engine) -> TenantWorld:
    from cityos.seed import seed_catalog, seed_region

    world = await make_tenant(owner_engine)
    async with owner_engine.begin() as connection:
        await seed_region(connection, world.tenant_id)
        await seed_catalog(connection, world.tenant_id, world.store_id)
    return world


async def rows(owner_engine, sql: str, **params) -> list:
    async with owner_engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).all())


async def ours(owner_engine, world: TenantWorld) -> dict[str, set[str]]:
    """Our ids per Payload collection, for one tenant."""
    tables = {"stores": "store", "vendors": "vendor", "categories": "category", "products": "product"}
    return {slug: {str(row[0]) for row in await rows(owner_engine, f"select id from {table} where tenant_id = :t",
                                                     t=world.tenant_id)} for slug, table in tables.items()}


def theirs(fake: FakePayload, world: TenantWorld) -> dict[str, list[str]]:
    return {slug: [doc["cityosId"] for doc in fake.documents(slug) if doc["tenant"] == str(world.tenant_id)]
            for slug in COLLECTIONS}


def posts(fake: FakePayload) -> int:
    return sum(1 for method, _ in fake.requests if method == "POST")


async def push(app_engine, settings, world: TenantWorld, page: int = 3) -> str:
    async with httpx.AsyncClient() as client:
        return await sync_to_payload(app_engine, settings, client, page=page, tenant_ids=[world.tenant_id])


async def pull(app_engine, settings, world: TenantWorld, page: int = 2) -> str:
    async with httpx.AsyncClient() as client:
        return await sync_from_payload(app_engine, settings, client, page=page, tenant_ids=[world.tenant_id])


async def test_push_upserts_every_object_once_keyed_by_our_ids(catalog: TenantWorld, fake_payload: FakePayload,
                                                                owner_engine, app_engine, settings) -> None:
    expected = await ours(owner_engine, catalog)
    before = posts(fake_payload)
    outcome = await push(app_engine, settings, catalog)
    total = sum(len(ids) for ids in expected.values())
    assert outcome.startswith(f"{total} sent")
    pushed = theirs(fake_payload, catalog)
    assert {slug: set(ids) for slug, ids in pushed.items()} == expected
    assert all(len(ids) == len(set(ids)) for ids in pushed.values())  # one document per object
    assert posts(fake_payload) - before == total
    product_id = next(iter(expected["products"]))
    product = fake_payload.by_cityos_id("products", product_id)
    title, handle, vendor = (await rows(owner_engine, "select title, handle, vendor_id from product where id = :p",
                                        p=uuid.UUID(product_id)))[0]
    assert product is not None
    assert (product["title"], product["handle"], product["status"], product["vendor"]) == (
        title, handle, "published", str(vendor))
    assert "richDescription" not in product and "seo" not in product  # content is Payload's: never sent

    # Nothing changed: nothing is sent again. A change of ours is sent as an update, not a second document.
    assert (await push(app_engine, settings, catalog)).startswith("0 sent")
    async with owner_engine.begin() as connection:
        await connection.execute(text("update product set title = 'Renamed', updated_at = now() where id = :p"),
                                 {"p": uuid.UUID(product_id)})
    assert (await push(app_engine, settings, catalog)).startswith("1 sent")
    assert posts(fake_payload) - before == total
    assert fake_payload.by_cityos_id("products", product_id)["title"] == "Renamed"

    # We lost what we knew (the cursor and the Payload ids, as after a crash before recording them): the look-up
    # by cityosId finds every document again, nothing is created twice.
    async with owner_engine.begin() as connection:
        await connection.execute(text("delete from sync_cursor where tenant_id = :t"), {"t": catalog.tenant_id})
        await connection.execute(text("update content set payload_id = null where tenant_id = :t"),
                                 {"t": catalog.tenant_id})
    assert (await push(app_engine, settings, catalog)).startswith(f"{total} sent")
    assert posts(fake_payload) - before == total
    assert {slug: sorted(ids) for slug, ids in theirs(fake_payload, catalog).items()} == {
        slug: sorted(ids) for slug, ids in expected.items()}


async def test_payload_down_in_the_middle_of_a_page_then_the_next_run_resumes(
        catalog: TenantWorld, fake_payload: FakePayload, owner_engine, app_engine, settings) -> None:
    expected = await ours(owner_engine, catalog)
    total = sum(len(ids) for ids in expected.values())
    before = posts(fake_payload)
    fake_payload.writes_until_down = 5  # pages of 3: the sixth write, the 3rd of page 2, finds Payload down
    try:
        with pytest.raises(RuntimeError, match="Payload 500"):
            await push(app_engine, settings, catalog)
    finally:
        fake_payload.writes_until_down = None
    pushed = sum(len(ids) for ids in theirs(fake_payload, catalog).values())
    assert pushed == 5
    failures = await rows(owner_engine, "select stream, failures, last_error from sync_cursor "
                                        "where tenant_id = :t and last_error is not null", t=catalog.tenant_id)
    assert len(failures) == 1 and failures[0][1] == 1 and failures[0][2].startswith("Payload 500")

    outcome = await push(app_engine, settings, catalog)
    assert outcome.startswith(f"{total - 5} sent")  # resumed after the last object sent, nothing resent
    pushed_now = theirs(fake_payload, catalog)
    assert {slug: sorted(ids) for slug, ids in pushed_now.items()} == {
        slug: sorted(ids) for slug, ids in expected.items()}
    assert posts(fake_payload) - before == total  # each object created exactly once
    assert await rows(owner_engine, "select count(*) from sync_cursor where tenant_id = :t and "
                                    "(last_error is not null or failures > 0)", t=catalog.tenant_id) == [(0,)]


PRODUCT_CONTENT = """query ($handle: String!) { product(handle: $handle) { title content {
  richDescription descriptionHtml images { url alt } seo { title description imageUrl } updatedAt } } }"""


async def test_pull_applies_content_and_keeps_our_commerce_fields(
        catalog: TenantWorld, fake_payload: FakePayload, owner_engine, app_engine, settings, gql: GraphQLClient,
        caplog: pytest.LogCaptureFixture) -> None:
    await push(app_engine, settings, catalog)
    handle, title, product_id = (await rows(owner_engine, "select handle, title, id from product where tenant_id = :t "
                                                          "order by handle limit 1", t=catalog.tenant_id))[0]
    assert (await gql(PRODUCT_CONTENT, {"handle": handle}, key=catalog.key))["data"]["product"]["content"] is None
    document = fake_payload.by_cityos_id("products", product_id)
    rich = {"root": {"type": "root", "children": [{"type": "paragraph", "text": "Hand-poured in small batches."}]}}
    fake_payload.edit("products", document["id"], richDescription=rich, descriptionHtml="<p>Hand-poured</p>",
                      images=[{"image": {"url": "https://cdn.payload.test/candle.jpg", "alt": "A candle"}}],
                      seo={"title": "Best candle", "description": "Soy wax", "imageUrl": "https://cdn.payload.test/og.jpg"},
                      title="Edited in Payload", status="archived")  # commerce fields: ours win
    with caplog.at_level(logging.WARNING):
        outcome = await pull(app_engine, settings, catalog)
    assert ", 0 refused" in outcome and "failed" not in outcome
    assert "commerce field(s) title, status changed in Payload are ignored" in caplog.text
    product = (await gql(PRODUCT_CONTENT, {"handle": handle}, key=catalog.key))["data"]["product"]
    assert product["title"] == title
    assert product["content"]["richDescription"] == rich
    assert product["content"]["descriptionHtml"] == "<p>Hand-poured</p>"
    assert product["content"]["images"] == [{"url": "https://cdn.payload.test/candle.jpg", "alt": "A candle"}]
    assert product["content"]["seo"] == {"title": "Best candle", "description": "Soy wax",
                                         "imageUrl": "https://cdn.payload.test/og.jpg"}
    assert await rows(owner_engine, "select title, status from product where id = :p", p=product_id) == [
        (title, "published")]
    # Ours were written back to Payload, its content kept.
    document = fake_payload.by_cityos_id("products", product_id)
    assert (document["title"], document["status"]) == (title, "published")
    assert document["seo"]["title"] == "Best candle"

    # The next pull starts at the cursor: only the document we wrote back (a newer version) is applied again;
    # the ones at the cursor's instant are seen and ignored.
    again = await pull(app_engine, settings, catalog)
    assert again.startswith("0 sent, 1 applied, 0 refused"), again


async def test_pull_failure_is_recorded_and_the_next_run_resumes(
        catalog: TenantWorld, fake_payload: FakePayload, owner_engine, app_engine, settings) -> None:
    await push(app_engine, settings, catalog)
    products = [doc for doc in fake_payload.documents("products") if doc["tenant"] == str(catalog.tenant_id)]
    for index, document in enumerate(products):
        fake_payload.edit("products", document["id"], seo={"title": f"SEO {index}"})
    await pull(app_engine, settings, catalog)
    async with owner_engine.begin() as connection:  # forget the products' pull cursor: a long first run
        await connection.execute(text("delete from sync_cursor where tenant_id = :t and stream = "
                                      "'payload.pull.product'"), {"t": catalog.tenant_id})
        await connection.execute(text("delete from content where tenant_id = :t and kind = 'product'"),
                                 {"t": catalog.tenant_id})
    for index, document in enumerate(products):
        fake_payload.edit("products", document["id"], seo={"title": f"SEO v2 {index}"})
    fake_payload.writes_until_down = 0
    try:
        with pytest.raises(RuntimeError, match="Payload 500"):
            await pull(app_engine, settings, catalog)
    finally:
        fake_payload.writes_until_down = None
    assert (await rows(owner_engine, "select failures from sync_cursor where tenant_id = :t and stream = "
                                     "'payload.pull.product'", t=catalog.tenant_id)) == [(1,)]
    await pull(app_engine, settings, catalog)
    titles = await rows(owner_engine, "select content -> 'seo' ->> 'title' from content where tenant_id = :t and "
                                      "kind = 'product' order by 1", t=catalog.tenant_id)
    assert sorted(title for (title,) in titles) == sorted(f"SEO v2 {index}" for index in range(len(products)))


async def test_webhook_applies_signed_changes_once_and_refuses_the_rest(
        catalog: TenantWorld, fake_payload: FakePayload, owner_engine, app_engine, settings, http: httpx.AsyncClient,
        caplog: pytest.LogCaptureFixture) -> None:
    other = await make_tenant(owner_engine)
    await push(app_engine, settings, catalog)
    product_id = (await rows(owner_engine, "select id from product where tenant_id = :t order by handle limit 1",
                             t=catalog.tenant_id))[0][0]
    document = fake_payload.edit("products", fake_payload.by_cityos_id("products", product_id)["id"],
                                 seo={"title": "Live edit"})
    body, headers = fake_payload.change_event("products", document)

    unsigned = await http.post("/webhooks/payload", content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 400
    _, wrong = fake_payload.change_event("products", document, secret="not-the-secret")
    assert (await http.post("/webhooks/payload", content=body, headers=wrong)).status_code == 400
    _, stale = fake_payload.change_event("products", document, timestamp=int(time.time()) - 3600)
    assert (await http.post("/webhooks/payload", content=body, headers=stale)).status_code == 400
    assert await rows(owner_engine, "select count(*) from content where object_id = :p and "
                                    "payload_updated_at is not null", p=product_id) == [(0,)]

    first = await http.post("/webhooks/payload", content=body, headers=headers)
    assert first.status_code == 200 and first.json()["outcome"].startswith("content of product")
    assert await rows(owner_engine, "select content -> 'seo' ->> 'title' from content where object_id = :p",
                      p=product_id) == [("Live edit",)]
    replay = await http.post("/webhooks/payload", content=body, headers=headers)
    assert replay.status_code == 200 and replay.json()["duplicate"] is True

    # Another tenant's Payload document naming this tenant's product: refused, logged, nothing applied.
    intruder = {**document, "tenant": str(other.tenant_id), "seo": {"title": "Hijacked"},
                "updatedAt": "2099-01-01T00:00:00.000Z"}
    body, headers = fake_payload.change_event("products", intruder)
    with caplog.at_level(logging.WARNING):
        refused = await http.post("/webhooks/payload", content=body, headers=headers)
    assert refused.status_code == 200 and refused.json()["outcome"].startswith("refused: FORBIDDEN")
    assert f"is not an object of tenant {other.tenant_id}" in caplog.text
    assert await rows(owner_engine, "select content -> 'seo' ->> 'title' from content where object_id = :p",
                      p=product_id) == [("Live edit",)]
    assert await rows(owner_engine, "select status, tenant_id from webhook_inbox where provider = 'payload' and "
                                    "event_id = :e", e=json.loads(body)["id"]) == [
        ("refused", other.tenant_id)]

    # An older version arriving late is ignored; a delete removes the content.
    older = {**document, "seo": {"title": "Older"}, "updatedAt": "2000-01-01T00:00:00.000Z"}
    body, headers = fake_payload.change_event("products", older)
    assert (await http.post("/webhooks/payload", content=body, headers=headers)).json()["outcome"].startswith(
        "ignored")
    body, headers = fake_payload.change_event("products", document, operation="delete")
    assert (await http.post("/webhooks/payload", content=body, headers=headers)).json()["outcome"].endswith("removed")
    assert await rows(owner_engine, "select count(*) from content where object_id = :p", p=product_id) == [(0,)]


async def test_the_registry_runs_both_payload_jobs(catalog: TenantWorld, fake_payload: FakePayload, owner_engine,
                                                   app_engine, settings) -> None:
    assert (JOBS["sync-to-payload"].schedule, JOBS["sync-from-payload"].schedule) == ("*/30 * * * *", "0 * * * *")
    assert JOBS["sync-to-payload"].per_tenant and JOBS["sync-from-payload"].per_tenant
    async with httpx.AsyncClient() as client:
        context = JobContext(app_engine, settings, None, http=client, tenant_id=catalog.tenant_id)  # per tenant
        await JOBS["sync-to-payload"].run(context)
        await JOBS["sync-from-payload"].run(context)
    pushed = theirs(fake_payload, catalog)
    assert {slug: set(ids) for slug, ids in pushed.items()} == await ours(owner_engine, catalog)
    assert await rows(owner_engine, "select count(*) from sync_cursor where tenant_id = :t and last_success_at is "
                                    "not null and last_error is null", t=catalog.tenant_id) == [(8,)]


async def test_a_row_committed_late_is_not_passed_by_the_cursor(catalog: TenantWorld, fake_payload: FakePayload,
                                                                 owner_engine, app_engine, settings) -> None:
    """`updated_at` is its transaction's start. Product A is changed in a transaction still open (stamped 30 s
    ago) while product B's change (20 s ago) is committed. Without the settle horizon a run sends B, moves the
    cursor past A's time, and A, committed after, is never sent. With it (25 s here) nothing unsettled is read;
    A is sent once committed, B once settled."""
    async with owner_engine.begin() as connection:  # seeded an hour ago, all in Payload, the cursor at the end
        await connection.execute(text("update product set updated_at = now() - interval '1 hour' where tenant_id = :t"),
                                 {"t": catalog.tenant_id})
    await push(app_engine, settings, catalog)
    products = [row[0] for row in await rows(owner_engine, "select id from product where tenant_id = :t order by id",
                                             t=catalog.tenant_id)]
    late, early = str(products[0]), str(products[1])
    stamp = "update product set title = :title, updated_at = now() - make_interval(secs => :age) where id = :id"

    async def titles() -> tuple[str, str]:
        return (fake_payload.by_cityos_id("products", late)["title"],
                fake_payload.by_cityos_id("products", early)["title"])

    settled = settings.model_copy(update={"CITYOS_SYNC_SETTLE_SECONDS": 25.0})
    async with owner_engine.connect() as open_transaction:
        await open_transaction.begin()
        await open_transaction.execute(text(stamp), {"title": "Late", "age": 30, "id": uuid.UUID(late)})
        async with owner_engine.begin() as connection:
            await connection.execute(text(stamp), {"title": "Early", "age": 20, "id": uuid.UUID(early)})
        assert (await push(app_engine, settled, catalog)).startswith("0 sent")  # B is not settled yet
        await open_transaction.commit()
    assert (await push(app_engine, settled, catalog)).startswith("1 sent")
    assert (await titles())[0] == "Late"
    later = settings.model_copy(update={"CITYOS_SYNC_SETTLE_SECONDS": 10.0})  # time has passed: B is settled
    assert (await push(app_engine, later, catalog)).startswith("1 sent")
    assert await titles() == ("Late", "Early")

    # The defect the horizon prevents: with none, the committed B moves the cursor past A, committed after it.
    unsettled = settings.model_copy(update={"CITYOS_SYNC_SETTLE_SECONDS": 0.0})
    async with owner_engine.connect() as open_transaction:
        await open_transaction.begin()
        await open_transaction.execute(text(stamp), {"title": "Late 2", "age": 30, "id": uuid.UUID(late)})
        async with owner_engine.begin() as connection:
            await connection.execute(text(stamp), {"title": "Early 2", "age": 20, "id": uuid.UUID(early)})
        assert (await push(app_engine, unsettled, catalog)).startswith("1 sent")
        await open_transaction.commit()
    assert (await push(app_engine, unsettled, catalog)).startswith("0 sent")
    assert await titles() == ("Late", "Early 2")  # A's change is lost to the sync


STORE_CONTENT = """{ currentStore { name content { brand { tagline story logoUrl } seo { title } }
  vendors(first: 50) { nodes { handle content { brand { tagline } images { url } } } } } }"""


async def test_vendor_and_store_brand_content_appear_in_graphql(
        catalog: TenantWorld, fake_payload: FakePayload, owner_engine, app_engine, settings,
        gql: GraphQLClient) -> None:
    await push(app_engine, settings, catalog)
    before = (await gql(STORE_CONTENT, key=catalog.key))["data"]["currentStore"]
    assert before["content"] is None and all(node["content"] is None for node in before["vendors"]["nodes"])
    [store] = [doc for doc in fake_payload.documents("stores") if doc["cityosId"] == str(catalog.store_id)]
    fake_payload.edit("stores", store["id"], brand={"tagline": "Made in the city", "story": "Since 1999",
                                                    "logoUrl": "https://cdn.payload.test/logo.png"},
                      seo={"title": "The city store"})
    vendor = next(doc for doc in fake_payload.documents("vendors") if doc["tenant"] == str(catalog.tenant_id))
    fake_payload.edit("vendors", vendor["id"], brand={"tagline": "Small batches"},
                      images=[{"image": {"url": "https://cdn.payload.test/v.jpg", "alt": None}}])
    await pull(app_engine, settings, catalog)
    after = (await gql(STORE_CONTENT, key=catalog.key))["data"]["currentStore"]
    assert after["content"] == {"brand": {"tagline": "Made in the city", "story": "Since 1999",
                                          "logoUrl": "https://cdn.payload.test/logo.png"},
                                "seo": {"title": "The city store"}}
    [(handle,)] = await rows(owner_engine, "select handle from vendor where id = :v", v=uuid.UUID(vendor["cityosId"]))
    by_handle = {node["handle"]: node["content"] for node in after["vendors"]["nodes"]}
    assert by_handle.pop(handle) == {"brand": {"tagline": "Small batches"},
                                     "images": [{"url": "https://cdn.payload.test/v.jpg"}]}
    assert all(content is None or content == {"brand": None, "images": []} for content in by_handle.values())
