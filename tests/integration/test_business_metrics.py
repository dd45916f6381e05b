"""Business and integration gauges on /metrics: read from the database at scrape time, per tenant (bounded)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from cityos.observability.business import BUSINESS
from tests.commerce_flow import Shopper, paid_order, shop
from tests.conftest import GraphQLClient, TenantWorld
from tests.fakes.stripe import FakeStripe

__all__ = ["shop"]
Samples = dict[str, dict[frozenset[tuple[str, str]], float]]


async def scrape(http: httpx.AsyncClient) -> Samples:
    BUSINESS.refreshed_at = None  # this scrape reads the database now
    response = await http.get("/metrics")
    assert response.status_code == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get(name, {}).get(frozenset(labels.items()), 0.0)


async def test_orders_gmv_webhooks_and_outbox_are_on_metrics(gql: GraphQLClient, http: httpx.AsyncClient,
                                                             shop: TenantWorld, fake_stripe: FakeStripe,
                                                             owner_engine) -> None:
    async with owner_engine.connect() as connection:
        slug = (await connection.execute(text("select slug from tenant where id = :t"),
                                         {"t": shop.tenant_id})).scalar_one()
    before = await scrape(http)
    assert value(before, "cityos_orders", tenant=slug, status="paid") == 0
    await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1, "CP-HONEY-12": 2})
    async with owner_engine.connect() as connection:
        total = (await connection.execute(text("select sum(total) from orders where tenant_id = :t"),
                                          {"t": shop.tenant_id})).scalar_one()
    after = await scrape(http)
    assert value(after, "cityos_orders", tenant=slug, status="paid") == 1
    assert value(after, "cityos_gmv_minor_units", tenant=slug, currency="usd") == total > 0
    assert value(after, "cityos_webhook_events", source="stripe", status="processed") > value(
        before, "cityos_webhook_events", source="stripe", status="processed")
    assert value(after, "cityos_business_metrics_age_seconds") >= 0
    assert sum(after["cityos_outbox_messages"].values()) > 0  # the order's Fleetbase call waits in the outbox


async def test_tenant_labels_are_bounded(owner_engine, shop: TenantWorld) -> None:
    from cityos.domain.reporting.business import OTHER, snapshot

    async with owner_engine.connect() as connection:
        tenants = (await connection.execute(text("select count(*) from tenant"))).scalar_one()
        bounded = await snapshot(connection, top_tenants=1)
        none = await snapshot(connection, top_tenants=0)
    assert tenants > 1
    assert len({labels[0] for labels in bounded.values["orders"]} - {OTHER}) <= 1
    assert {labels[0] for key in ("orders", "payouts") for labels in none.values[key]} <= {OTHER}
