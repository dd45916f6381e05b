"""A vendor's own shipping in the commission ledger, over HTTP against the fake Stripe: one checkout charges two
vendors' own shipping and the store's; each vendor's shipping is a `shipping` entry of its vendor order (no
commission by default), paid out by process-vendor-payouts with its sales, and reversed exactly — from the
transfer when it was paid out — when the shipping is refunded; the store's shipping stays the platform's."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from cityos.db.engines import create_app_engine
from cityos.domain.marketplace.rules import reversed_share
from cityos.domain.orders.rules import tax_shares
from cityos.graphql.core.relay import from_global_id, to_global_id
from cityos.integrations.stripe.client import create_stripe_client
from cityos.jobs.payouts import process_vendor_payouts
from tests.commerce_flow import OPS, Shopper, paid_order, send_event, shop, usd
from tests.conftest import GraphQLClient, TenantWorld, Tokens
from tests.fakes.stripe import FakeStripe
from tests.integration.test_payouts import connect_vendor

__all__ = ["shop"]
OWN = {"cedar-pantry": 700, "lumen-home": 900}  # each vendor's own flat shipping; northwind uses the store's 500
ORDER = """query VendorShipping($id: ID!) { order(id: $id) { totals { shippingTotal { amount } taxTotal { amount }
  total { amount } } lines { id sku total { amount } } vendorOrders { vendor { handle }
  totals { shippingTotal { amount } } } } }"""


@pytest.fixture
def stripe_client(settings):
    return create_stripe_client(settings)


@pytest.fixture
async def app_engine(database_url: str):
    engine = create_app_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()


async def own_shipping(gql: GraphQLClient, shop: TenantWorld, owner_engine, admin: str) -> None:
    """The cedar-pantry and lumen-home vendors ship their own items (options created over the API)."""
    region = (await gql(OPS["admin/Regions"], {"first": 1}, token=admin))["data"]["regions"]["nodes"][0]["id"]
    async with owner_engine.connect() as connection:
        vendors = dict((await connection.execute(text("select handle, id from vendor where tenant_id = :t"),
                                                 {"t": shop.tenant_id})).all())
    for handle, amount in OWN.items():
        created = await gql(OPS["admin/CreateShippingOption"], {"input": {
            "regionId": region, "vendorId": to_global_id("Vendor", vendors[handle]), "code": "standard",
            "name": f"{handle} courier", "amount": usd(amount)}}, token=admin)
        assert "errors" not in created, created


async def entries(owner_engine, order: str) -> list[tuple[str, str, int, int, int]]:
    async with owner_engine.connect() as connection:
        return [tuple(row) for row in (await connection.execute(text(
            "select v.handle, t.kind, t.line_amount, t.commission_amount, t.vendor_amount from commission_transaction "
            "t join vendor v on v.tenant_id = t.tenant_id and v.id = t.vendor_id where t.order_id = :o and "
            "t.order_line_id is null order by v.handle, t.kind"), {"o": from_global_id(order)[1]})).all()]


async def vendor_sum(owner_engine, tenant, handle: str, kinds: tuple[str, ...]) -> int:
    async with owner_engine.connect() as connection:
        return int((await connection.execute(text(
            "select coalesce(sum(t.vendor_amount), 0) from commission_transaction t join vendor v on v.tenant_id = "
            "t.tenant_id and v.id = t.vendor_id where t.tenant_id = :t and v.handle = :h and t.kind = any(:k)"),
            {"t": tenant, "h": handle, "k": list(kinds)})).scalar_one())


async def test_each_vendors_own_shipping_is_paid_out_and_reversed_exactly(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, owner_engine,
        app_engine, stripe_client, tokens: Tokens) -> None:
    admin = tokens("tenant_admin", shop)
    await own_shipping(gql, shop, owner_engine, admin)
    order = await paid_order(Shopper(gql, shop), http, fake_stripe,
                             {"CP-COFFEE-1LB": 2, "LU-CANDLE": 1, "NW-TEE-M": 1})
    sold = (await gql(ORDER, {"id": order}, token=admin))["data"]["order"]
    parts = {part["vendor"]["handle"]: part["totals"]["shippingTotal"]["amount"] for part in sold["vendorOrders"]}
    assert parts == {**OWN, "northwind-outfitters": 500}
    assert sold["totals"]["shippingTotal"]["amount"] == 2100  # one checkout charges each vendor's and the store's

    # Each vendor's own shipping is its entry, whole (no commission by default); the store's 500 is no entry.
    assert await entries(owner_engine, order) == [("cedar-pantry", "shipping", 700, 0, 700),
                                                  ("lumen-home", "shipping", 900, 0, 900)]

    # Paid out with the vendors' sales: each transfer is its sales' share plus its shipping, exactly.
    accounts = {handle: await connect_vendor(owner_engine, fake_stripe, shop.tenant_id, handle) for handle in OWN}
    before = set(fake_stripe.transfers)
    assert "2 paid" in await process_vendor_payouts(app_engine, stripe_client, 100, [shop.tenant_id])
    made = {fake_stripe.transfers[t]["destination"]: fake_stripe.transfers[t]["amount"]
            for t in set(fake_stripe.transfers) - before}
    for handle, account in accounts.items():
        sales = await vendor_sum(owner_engine, shop.tenant_id, handle, ("sale",))
        assert made[account] == sales + OWN[handle], handle
    assert made[accounts["cedar-pantry"]] == (3800 - 95) + 700  # 2 × 19.00 less 2.5 %, and its shipping
    assert made[accounts["lumen-home"]] == (2400 - 60) + 900

    # The shipping is refunded: each vendor's shipping is reversed whole, taken back from its transfer; the
    # buyer gets the whole shipping and its tax share back.
    refunded = await gql(OPS["admin/RefundOrder"], {"orderId": order, "input": {"lines": [],
                                                                               "refundShipping": True}},
                         token=admin)
    refund = refunded["data"]["refundOrder"]
    _, shipping_tax = tax_shares([line["total"]["amount"] for line in sold["lines"]], 2100,
                                 sold["totals"]["taxTotal"]["amount"])
    assert refund["status"] == "SUCCEEDED" and refund["shippingAmount"] == usd(2100 + shipping_tax), refunded
    assert sorted((r["status"], r["amount"]["amount"]) for r in refund["transferReversals"]) == [
        ("REVERSED", 700), ("REVERSED", 900)]
    for handle, account in accounts.items():
        transfer = next(t for t in fake_stripe.transfers.values() if t["destination"] == account)
        assert transfer["amount_reversed"] == OWN[handle]
    assert await entries(owner_engine, order) == [
        ("cedar-pantry", "reversal", -700, 0, -700), ("cedar-pantry", "shipping", 700, 0, 700),
        ("lumen-home", "reversal", -900, 0, -900), ("lumen-home", "shipping", 900, 0, 900)]
    # Net, each vendor keeps exactly its sales' share: its shipping was given back.
    for handle in OWN:
        assert await vendor_sum(owner_engine, shop.tenant_id, handle, ("sale", "shipping", "reversal")) == \
            await vendor_sum(owner_engine, shop.tenant_id, handle, ("sale",))


async def test_shipping_refunded_before_the_payout_is_netted_and_restored_if_the_refund_fails(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, owner_engine,
        app_engine, stripe_client, tokens: Tokens, settings: Any) -> None:
    admin = tokens("tenant_admin", shop)
    await own_shipping(gql, shop, owner_engine, admin)
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"CP-COFFEE-1LB": 1, "LU-CANDLE": 2})
    sold = (await gql(ORDER, {"id": order}, token=admin))["data"]["order"]
    candle = next(line for line in sold["lines"] if line["sku"] == "LU-CANDLE")
    # One candle and the shipping, before any payout: nothing to take back from a transfer.
    body = await gql(OPS["admin/RefundOrder"], {"orderId": order, "input": {
        "lines": [{"lineId": candle["id"], "quantity": 1}], "refundShipping": True}}, token=admin)
    refund = body["data"]["refundOrder"]
    assert refund["status"] == "SUCCEEDED" and refund["transferReversals"] == [], body
    # The refund fails later at Stripe: the shipping reversals are restored with the candle's.
    failed = fake_stripe.fail_refund(refund["stripeRefundId"])
    answer = await send_event(http, fake_stripe, "refund.failed", failed)
    assert answer.json()["outcome"].startswith("refund failed; 3 ledger reversal(s) restored"), answer.text
    assert await entries(owner_engine, order) == [
        ("cedar-pantry", "restored", 700, 0, 700), ("cedar-pantry", "reversal", -700, 0, -700),
        ("cedar-pantry", "shipping", 700, 0, 700),
        ("lumen-home", "restored", 900, 0, 900), ("lumen-home", "reversal", -900, 0, -900),
        ("lumen-home", "shipping", 900, 0, 900)]
    # Refunded again (it did not happen), then paid out: each payout nets exactly its sales and shipping less
    # what was refunded.
    again = await gql(OPS["admin/RefundOrder"], {"orderId": order, "input": {
        "lines": [{"lineId": candle["id"], "quantity": 1}], "refundShipping": True}}, token=admin)
    assert again["data"]["refundOrder"]["status"] == "SUCCEEDED", again
    accounts = {handle: await connect_vendor(owner_engine, fake_stripe, shop.tenant_id, handle) for handle in OWN}
    before = set(fake_stripe.transfers)
    await process_vendor_payouts(app_engine, stripe_client, 100, [shop.tenant_id])
    made = {fake_stripe.transfers[t]["destination"]: fake_stripe.transfers[t]["amount"]
            for t in set(fake_stripe.transfers) - before}
    candle_share = reversed_share(4800, 120, 2, 0, 1)  # 2 × 24.00 at 2.5 %: the first unit refunded
    assert made == {accounts["cedar-pantry"]: 1900 - 48,  # its coffee; its shipping refunded
                    accounts["lumen-home"]: (4800 - 120) - candle_share.vendor}
