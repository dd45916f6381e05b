"""Refunds that move money, over HTTP against the fake Stripe: partial and full refunds, the exact ledger
reversals, concurrency (two admins, a payout run), Stripe's refusals and events, transfer reversals and vendor
debts, per-vendor refunds under a tenant's policy."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from cityos.db.engines import create_app_engine
from cityos.domain.marketplace.rules import reversed_share, units_part
from cityos.domain.orders.rules import tax_shares
from cityos.domain.tenancy import service as tenancy
from cityos.graphql.core.relay import from_global_id, to_global_id
from cityos.integrations.stripe.client import create_stripe_client
from cityos.jobs.outbox import dispatch_outbox
from cityos.jobs.payouts import process_vendor_payouts
from cityos.seed import seed_catalog, seed_region
from tests.commerce_flow import OPS, Shopper, paid_order, send_event, shop, stock
from tests.conftest import GraphQLClient, Server, TenantWorld, Tokens, error_codes, make_tenant
from tests.fakes.stripe import FakeStripe
from tests.integration.test_payouts import connect_vendor

__all__ = ["shop"]

LINES = """query OrderLines($id: ID!) { order(id: $id) { status totals { shippingTotal { amount } taxTotal { amount }
  total { amount } } lines { id sku quantity total { amount } } vendorOrders { id vendor { handle } } } }"""


@pytest.fixture
def stripe_client(settings):
    return create_stripe_client(settings)


@pytest.fixture
async def app_engine(database_url: str):
    engine = create_app_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()


class Admin:
    def __init__(self, gql: GraphQLClient, token: str) -> None:
        self.gql, self.token = gql, token

    async def __call__(self, name: str, variables: dict[str, Any]) -> dict[str, Any]:
        return await self.gql(OPS[name], variables, token=self.token)

    async def order(self, order: str) -> dict[str, Any]:
        body = await self.gql(LINES, {"id": order}, token=self.token)
        assert "errors" not in body, body
        return dict(body["data"]["order"])


def line_of(order: dict[str, Any], sku: str) -> dict[str, Any]:
    return next(line for line in order["lines"] if line["sku"] == sku)


async def ledger(owner_engine, order: str) -> list[tuple]:
    async with owner_engine.connect() as connection:
        return list((await connection.execute(text(
            "select l.sku, t.kind, t.line_amount, t.commission_amount, t.vendor_amount from commission_transaction t "
            "join order_line l on l.id = t.order_line_id and l.tenant_id = t.tenant_id where t.order_id = :o "
            "order by l.sku, t.kind, t.created_at"), {"o": from_global_id(order)[1]})).all())


def intent_of(stripe: FakeStripe, refund_id: str) -> str:
    return str(stripe.refunds[refund_id]["payment_intent"])


async def test_partial_refunds_by_line_and_shipping_then_the_rest(gql: GraphQLClient, http: httpx.AsyncClient,
                                                                  shop: TenantWorld, fake_stripe: FakeStripe,
                                                                  owner_engine, tokens: Tokens) -> None:
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1, "CP-HONEY-12": 2})
    admin = Admin(gql, tokens("store_admin", shop, stores=["store-0"]))
    sold = await admin.order(order)
    honey, candle = line_of(sold, "CP-HONEY-12"), line_of(sold, "LU-CANDLE")
    stock_before = await stock(owner_engine, "CP-HONEY-12", shop.tenant_id)

    body = await admin("admin/RefundOrder", {"orderId": order, "input": {
        "lines": [{"lineId": honey["id"], "quantity": 1, "restock": True}], "refundShipping": True,
        "note": "one jar broke"}})
    refund = body["data"]["refundOrder"]
    shipping, tax, total = (sold["totals"][key]["amount"] for key in ("shippingTotal", "taxTotal", "total"))
    line_totals = [line["total"]["amount"] for line in sold["lines"]]
    line_tax, shipping_tax = tax_shares(line_totals, shipping, tax)
    honey_tax = line_tax[sold["lines"].index(honey)]
    expected = 1400 + units_part(honey_tax, 2, 0, 1) + shipping + shipping_tax
    assert refund["status"] == "SUCCEEDED" and refund["amount"]["amount"] == expected
    assert refund["shippingAmount"]["amount"] == shipping + shipping_tax
    stripe_refund = fake_stripe.refunds[refund["stripeRefundId"]]
    assert stripe_refund["amount"] == expected and stripe_refund["reason"] == "requested_by_customer"
    assert stripe_refund["metadata"]["refund_id"] == str(from_global_id(refund["id"])[1])
    assert await stock(owner_engine, "CP-HONEY-12", shop.tenant_id) == stock_before + 1
    share = reversed_share(2800, 70, 2, 0, 1)  # the honey line's sale: 2.5 % of 28.00
    assert ("CP-HONEY-12", "reversal", -1400, -share.commission, -share.vendor) in await ledger(owner_engine, order)
    assert (await admin.order(order))["status"] == "PAID"

    too_much = await admin("admin/RefundOrder", {"orderId": order, "input": {
        "lines": [{"lineId": candle["id"], "quantity": 1}, {"lineId": honey["id"], "quantity": 1}],
        "refundShipping": True}})
    assert error_codes(too_much) == ["BAD_USER_INPUT"]  # the shipping was refunded already
    over = await admin("admin/RefundOrder", {"orderId": order, "input": {
        "lines": [{"lineId": honey["id"], "quantity": 2}]}})
    assert error_codes(over) == ["BAD_USER_INPUT"]
    assert over["errors"][0]["extensions"]["refundableQuantity"] == 1

    rest = await admin("admin/UpdateOrderStatus", {"id": order, "status": "REFUNDED"})
    assert rest["data"]["updateOrderStatus"]["status"] == "REFUNDED", rest
    refunds = (await admin("admin/Refunds", {"orderId": order, "first": 10}))["data"]["refunds"]
    assert refunds["totalCount"] == 2
    assert sum(node["amount"]["amount"] for node in refunds["nodes"]) == total  # exactly what was captured
    assert sum(r["amount"] for r in fake_stripe.refunds.values()
               if r["payment_intent"] == intent_of(fake_stripe, refund["stripeRefundId"])) == total
    entries = await ledger(owner_engine, order)
    for sku in ("CP-HONEY-12", "LU-CANDLE"):  # every sale reversed exactly, commission and vendor share
        assert sum(entry[3] for entry in entries if entry[0] == sku) == 0
        assert sum(entry[4] for entry in entries if entry[0] == sku) == 0
    unpaid = await admin("admin/RefundOrder", {"orderId": order, "input": {"refundShipping": True}})
    assert error_codes(unpaid) == ["INVALID_STATE_TRANSITION"]


async def test_two_admins_refunding_at_once_never_refund_more_than_was_captured(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe,
        tokens: Tokens) -> None:
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"CP-HONEY-12": 2})
    sold_by = [Admin(gql, tokens("store_admin", shop, stores=["store-0"], subject=f"admin-{n}")) for n in (1, 2)]
    sold = await sold_by[0].order(order)
    honey = line_of(sold, "CP-HONEY-12")
    both_units = {"lines": [{"lineId": honey["id"], "quantity": 2}]}  # the shipping stays: the order stays paid
    bodies = await asyncio.gather(*(admin("admin/RefundOrder", {"orderId": order, "input": both_units})
                                    for admin in sold_by))
    made = [body for body in bodies if body["data"]["refundOrder"]]
    refused = [body for body in bodies if not body["data"]["refundOrder"]]
    assert len(made) == 1 and len(refused) == 1
    assert error_codes(refused[0]) == ["BAD_USER_INPUT"]
    refund = made[0]["data"]["refundOrder"]
    left = sold["totals"]["total"]["amount"] - refund["amount"]["amount"]
    assert refused[0]["errors"][0]["extensions"]["refundable"] == left  # what can still be refunded: the shipping
    intent = intent_of(fake_stripe, refund["stripeRefundId"])
    assert [r["amount"] for r in fake_stripe.refunds.values() if r["payment_intent"] == intent] == \
        [refund["amount"]["amount"]]


async def test_a_refused_refund_is_failed_and_leaves_the_ledger(gql: GraphQLClient, http: httpx.AsyncClient,
                                                               shop: TenantWorld, fake_stripe: FakeStripe,
                                                               owner_engine, tokens: Tokens) -> None:
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1})
    admin = Admin(gql, tokens("store_admin", shop, stores=["store-0"]))
    candle = line_of(await admin.order(order), "LU-CANDLE")
    before = await ledger(owner_engine, order)
    fake_stripe.failures.append((400, "invalid_request_error", "charge_disputed",
                                 "This charge is disputed and cannot be refunded."))
    body = await admin("admin/RefundOrder", {"orderId": order, "input": {"lines": [{"lineId": candle["id"],
                                                                                    "quantity": 1}]}})
    assert error_codes(body) == ["PAYMENT_FAILED"]
    assert "charge_disputed" in body["errors"][0]["message"]
    refunds = (await admin("admin/Refunds", {"orderId": order, "first": 10}))["data"]["refunds"]["nodes"]
    assert [(r["status"], r["stripeRefundId"]) for r in refunds] == [("FAILED", None)]
    assert "charge_disputed" in refunds[0]["failureReason"]
    assert await ledger(owner_engine, order) == before
    again = await admin("admin/RefundOrder", {"orderId": order, "input": {"lines": [{"lineId": candle["id"],
                                                                                     "quantity": 1}]}})
    assert again["data"]["refundOrder"]["status"] == "SUCCEEDED"  # a failed refund does not count


async def test_stripe_events_move_refunds_and_replays_reverse_nothing_twice(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, owner_engine,
        tokens: Tokens) -> None:
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1, "CP-HONEY-12": 1})
    admin = Admin(gql, tokens("tenant_admin", shop))
    sold = await admin.order(order)
    candle, honey = line_of(sold, "LU-CANDLE"), line_of(sold, "CP-HONEY-12")
    first = (await admin("admin/RefundOrder", {"orderId": order, "input": {
        "lines": [{"lineId": candle["id"], "quantity": 1}]}}))["data"]["refundOrder"]
    second = (await admin("admin/RefundOrder", {"orderId": order, "input": {
        "lines": [{"lineId": honey["id"], "quantity": 1}]}}))["data"]["refundOrder"]
    intent = intent_of(fake_stripe, first["stripeRefundId"])
    entries = await ledger(owner_engine, order)

    charge = fake_stripe.charge(intent)
    event_id = f"evt_{uuid.uuid4().hex}"
    answer = await send_event(http, fake_stripe, "charge.refunded", charge, event_id)
    assert answer.status_code == 200, answer.text
    replay = await send_event(http, fake_stripe, "charge.refunded", charge, event_id)
    assert replay.json()["duplicate"] is True
    redelivered = await send_event(http, fake_stripe, "charge.refunded", charge)  # same content, new event id
    assert redelivered.status_code == 200
    assert await ledger(owner_engine, order) == entries  # no double reversal

    failed = fake_stripe.fail_refund(second["stripeRefundId"])
    outcome = await send_event(http, fake_stripe, "refund.failed", failed)
    assert outcome.json()["outcome"] == "refund failed; 1 ledger reversal(s) restored", outcome.json()
    again = await send_event(http, fake_stripe, "refund.failed", failed)
    assert again.json()["outcome"] == "ignored: refund already failed"
    restored = await ledger(owner_engine, order)
    honey_entries = [entry for entry in restored if entry[0] == "CP-HONEY-12"]
    assert [entry[1] for entry in honey_entries] == ["restored", "reversal", "sale"]
    assert sum(entry[4] for entry in honey_entries) == honey_entries[-1][4]  # the vendor keeps its share
    refunds = {r["id"]: r for r in (await admin("admin/Refunds", {"orderId": order, "first": 10}))["data"][
        "refunds"]["nodes"]}
    assert refunds[second["id"]]["status"] == "FAILED" and refunds[first["id"]]["status"] == "SUCCEEDED"
    retry = await admin("admin/RefundOrder", {"orderId": order, "input": {
        "lines": [{"lineId": honey["id"], "quantity": 1}]}})  # the failed refund's units can be refunded again
    assert retry["data"]["refundOrder"]["status"] == "SUCCEEDED", retry


async def test_a_refund_failing_later_takes_its_restock_back_never_below_zero(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, owner_engine,
        tokens: Tokens, caplog: pytest.LogCaptureFixture) -> None:
    """Units a refund put back in stock go out again when Stripe fails the refund later; units sold again
    meanwhile cannot be: stock stays at zero and the refund line records the shortfall (and it is logged)."""
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 3})
    admin = Admin(gql, tokens("tenant_admin", shop))
    candle = line_of(await admin.order(order), "LU-CANDLE")
    sold = await stock(owner_engine, "LU-CANDLE", shop.tenant_id)

    async def refund(quantity: int) -> dict[str, Any]:
        body = await admin("admin/RefundOrder", {"orderId": order, "input": {"lines": [
            {"lineId": candle["id"], "quantity": quantity, "restock": True}]}})
        assert body["data"]["refundOrder"]["status"] == "SUCCEEDED", body
        return dict(body["data"]["refundOrder"])

    async def lines_of(refund_id: str) -> list[tuple[int, int, int]]:
        refunds = (await admin("admin/Refunds", {"orderId": order, "first": 10}))["data"]["refunds"]["nodes"]
        return [(line["quantity"], line["unstocked"], line["restockShortfall"])
                for line in next(r for r in refunds if r["id"] == refund_id)["lines"]]

    # Stock to spare: the restocked unit goes out again.
    first = await refund(1)
    assert await stock(owner_engine, "LU-CANDLE", shop.tenant_id) == sold + 1
    answer = await send_event(http, fake_stripe, "refund.failed", fake_stripe.fail_refund(first["stripeRefundId"]))
    assert answer.json()["outcome"] == ("refund failed; 1 ledger reversal(s) restored; 1 restocked unit(s) taken "
                                        "back"), answer.text
    assert await stock(owner_engine, "LU-CANDLE", shop.tenant_id) == sold
    assert await lines_of(first["id"]) == [(1, 1, 0)]

    # Two restocked, then all but one unit sold to another buyer: one taken back, one short; never negative.
    second = await refund(2)
    left = await stock(owner_engine, "LU-CANDLE", shop.tenant_id)
    assert left == sold + 2
    await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": left - 1})
    assert await stock(owner_engine, "LU-CANDLE", shop.tenant_id) == 1
    with caplog.at_level("WARNING", logger="cityos.domain.orders.refunds"):
        answer = await send_event(http, fake_stripe, "refund.failed",
                                  fake_stripe.fail_refund(second["stripeRefundId"]))
    assert answer.json()["outcome"] == ("refund failed; 1 ledger reversal(s) restored; 1 restocked unit(s) taken "
                                        "back, 1 sold again meanwhile (recorded)"), answer.text
    assert await stock(owner_engine, "LU-CANDLE", shop.tenant_id) == 0
    assert await lines_of(second["id"]) == [(2, 1, 1)]
    assert any("sold again meanwhile" in record.getMessage() for record in caplog.records)
    replay = await send_event(http, fake_stripe, "refund.failed", fake_stripe.fail_refund(second["stripeRefundId"]))
    assert replay.json()["outcome"] == "ignored: refund already failed"
    assert await stock(owner_engine, "LU-CANDLE", shop.tenant_id) == 0


async def test_a_stripe_outage_leaves_the_refund_pending_for_the_dispatcher(
        gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, owner_engine,
        server: Server, settings, tokens: Tokens) -> None:
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1})
    admin = Admin(gql, tokens("store_admin", shop, stores=["store-0"]))
    candle = line_of(await admin.order(order), "LU-CANDLE")
    fake_stripe.failures.extend([503, 503, 503])  # the SDK's two retries fail too
    body = await admin("admin/RefundOrder", {"orderId": order, "input": {"lines": [{"lineId": candle["id"],
                                                                                    "quantity": 1}]}})
    pending = body["data"]["refundOrder"]
    assert (pending["status"], pending["stripeRefundId"]) == ("PENDING", None), body
    assert await ledger(owner_engine, order) == [("LU-CANDLE", "sale", 2400, 60, 2340)]  # nothing taken yet
    async with owner_engine.begin() as connection:  # the lease taken by the first try has run out
        await connection.execute(text("update outbox set next_attempt_at = now() where topic = 'stripe.refund_order' "
                                      "and payload->>'refund_id' = :r"), {"r": str(from_global_id(pending["id"])[1])})
    async with httpx.AsyncClient() as client:
        sent = await dispatch_outbox(server.services.app_engine, settings, client, server.services.broker,
                                     stripe=server.services.stripe, only=("stripe.refund_order",))
    assert sent.startswith("1 sent"), sent
    refunds = (await admin("admin/Refunds", {"orderId": order}))["data"]["refunds"]["nodes"]
    assert refunds[0]["status"] == "SUCCEEDED" and refunds[0]["stripeRefundId"] in fake_stripe.refunds
    assert ("LU-CANDLE", "reversal", -2400, -60, -2340) in await ledger(owner_engine, order)


async def test_canceling_a_paid_order_refunds_it_and_restocks(gql: GraphQLClient, http: httpx.AsyncClient,
                                                              shop: TenantWorld, fake_stripe: FakeStripe,
                                                              owner_engine, tokens: Tokens) -> None:
    before = await stock(owner_engine, "LU-CANDLE", shop.tenant_id)
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 3})
    admin = Admin(gql, tokens("store_admin", shop, stores=["store-0"]))
    total = (await admin.order(order))["totals"]["total"]["amount"]
    body = await admin("admin/UpdateOrderStatus", {"id": order, "status": "CANCELED"})
    assert body["data"]["updateOrderStatus"]["status"] == "CANCELED", body
    assert await stock(owner_engine, "LU-CANDLE", shop.tenant_id) == before
    refunds = (await admin("admin/Refunds", {"orderId": order, "first": 10}))["data"]["refunds"]["nodes"]
    assert [(r["status"], r["amount"]["amount"]) for r in refunds] == [("SUCCEEDED", total)]
    assert refunds[0]["stripeRefundId"] in fake_stripe.refunds
    async with owner_engine.connect() as connection:
        lumen = (await connection.execute(text("select id from vendor where tenant_id = :t and handle = 'lumen-home'"),
                                          {"t": shop.tenant_id})).scalar_one()
    vendor = tokens("vendor_user", shop, vendor=str(lumen))
    seen = await gql(OPS["admin/Refunds"], {"orderId": order}, token=vendor)
    assert seen["data"]["refunds"]["totalCount"] == 0  # the shipping was refunded too: the store's refund


async def test_a_fulfilled_order_cannot_be_canceled_and_no_money_moves(gql: GraphQLClient, http: httpx.AsyncClient,
                                                                         shop: TenantWorld, fake_stripe: FakeStripe,
                                                                         tokens: Tokens) -> None:
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1})
    admin = Admin(gql, tokens("store_admin", shop, stores=["store-0"]))
    assert (await admin("admin/UpdateOrderStatus", {"id": order, "status": "FULFILLED"}))["data"][
        "updateOrderStatus"]["status"] == "FULFILLED"
    refunds_before = len(fake_stripe.refunds)
    canceled = await admin("admin/UpdateOrderStatus", {"id": order, "status": "CANCELED"})
    assert error_codes(canceled) == ["INVALID_STATE_TRANSITION"]
    assert len(fake_stripe.refunds) == refunds_before
    assert (await admin("admin/Refunds", {"orderId": order}))["data"]["refunds"]["totalCount"] == 0
    refunded = await admin("admin/UpdateOrderStatus", {"id": order, "status": "REFUNDED"})
    assert refunded["data"]["updateOrderStatus"]["status"] == "REFUNDED", refunded


async def test_a_paid_out_share_is_reversed_from_the_transfer_or_owed(gql: GraphQLClient, http: httpx.AsyncClient,
                                                                      shop: TenantWorld, fake_stripe: FakeStripe,
                                                                      owner_engine, app_engine, stripe_client,
                                                                      tokens: Tokens) -> None:
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"CP-COFFEE-1LB": 2})
    account = await connect_vendor(owner_engine, fake_stripe, shop.tenant_id, "cedar-pantry")
    assert "1 paid" in await process_vendor_payouts(app_engine, stripe_client, 100, [shop.tenant_id])
    admin = Admin(gql, tokens("store_admin", shop, stores=["store-0"]))
    coffee = line_of(await admin.order(order), "CP-COFFEE-1LB")
    share = reversed_share(3800, 95, 2, 0, 1)  # 2 × 19.00 at 2.5 %

    body = await admin("admin/RefundOrder", {"orderId": order, "input": {
        "lines": [{"lineId": coffee["id"], "quantity": 1}]}})
    reversal = body["data"]["refundOrder"]["transferReversals"]
    assert [(r["status"], r["amount"]["amount"]) for r in reversal] == [("REVERSED", share.vendor)], body
    async with owner_engine.connect() as connection:
        cedar = (await connection.execute(text("select id from vendor where stripe_account_id = :a"),
                                          {"a": account})).scalar_one()
    seen = await gql(OPS["admin/Refunds"], {"orderId": order}, token=tokens("vendor_user", shop, vendor=str(cedar)))
    assert seen["data"]["refunds"]["nodes"][0]["transferReversals"][0]["status"] == "REVERSED"  # its lines
    transfer = fake_stripe.transfers[reversal[0]["stripeTransferId"]]
    assert transfer["amount_reversed"] == share.vendor and transfer["reversed"] is False
    partial = await send_event(http, fake_stripe, "transfer.reversed", transfer)  # a partial reversal's event
    assert partial.json()["outcome"].startswith("ignored: a partial reversal")

    fake_stripe.account_debits[account] = 10**9  # the vendor paid everything out to its bank
    owed = await admin("admin/RefundOrder", {"orderId": order, "input": {
        "lines": [{"lineId": coffee["id"], "quantity": 1}]}})
    debt = owed["data"]["refundOrder"]["transferReversals"]
    assert [(r["status"], r["amount"]["amount"]) for r in debt] == [("DEBT", 3800 - 95 - share.vendor)], owed
    assert debt[0]["failureReason"].startswith("balance_insufficient")
    fake_stripe.account_debits.pop(account)

    # The debt view: the store's admins and the vendor's admins see it, outstanding, with the refund it comes from.
    owed_amount = debt[0]["amount"]["amount"]
    async with owner_engine.connect() as connection:
        lumen = (await connection.execute(text("select id from vendor where tenant_id = :t and handle = 'lumen-home'"),
                                          {"t": shop.tenant_id})).scalar_one()
    cedar_id, cedar_admin = to_global_id("Vendor", cedar), tokens("vendor_admin", shop, vendor=str(cedar))
    listed = (await admin("admin/VendorDebts", {"vendorId": cedar_id, "first": 10}))["data"]["vendorDebts"]
    assert listed["totalCount"] == 1, listed
    [entry] = listed["nodes"]
    assert (entry["vendorId"], entry["refundId"], entry["orderId"]) == (cedar_id, owed["data"]["refundOrder"]["id"],
                                                                        order)
    assert entry["amount"]["amount"] == entry["outstanding"]["amount"] == owed_amount
    assert entry["nettedByPayoutId"] is None and entry["payoutId"] == debt[0]["payoutId"]
    assert entry["stripeTransferId"] == debt[0]["stripeTransferId"]
    assert entry["failureReason"].startswith("balance_insufficient")
    own = (await gql(OPS["vendor/OwnDebts"], {"first": 10}, token=cedar_admin))["data"]["vendorDebts"]
    assert [(n["refundId"], n["outstanding"]["amount"]) for n in own["nodes"]] == [(entry["refundId"], owed_amount)]
    for other in (tokens("vendor_admin", shop, vendor=str(lumen)), tokens("vendor_user", shop, vendor=str(cedar)),
                  tokens("store_admin", shop, stores=["store-9"])):
        hidden = await gql(OPS["admin/VendorDebts"], {"first": 10}, token=other)
        assert hidden["data"]["vendorDebts"]["totalCount"] == 0, hidden  # another vendor, a vendor user, another store

    # The debt is netted from the vendor's next payout: its next sale pays out less the debt.
    await paid_order(Shopper(gql, shop), http, fake_stripe, {"CP-COFFEE-1LB": 4})
    await connect_vendor(owner_engine, fake_stripe, shop.tenant_id, "cedar-pantry")
    before = set(fake_stripe.transfers)
    await process_vendor_payouts(app_engine, stripe_client, 100, [shop.tenant_id])
    made = [fake_stripe.transfers[t] for t in set(fake_stripe.transfers) - before]
    assert [t["amount"] for t in made] == [(7600 - 190) - owed_amount]
    netted = (await admin("admin/VendorDebts", {"first": 10}))["data"]["vendorDebts"]["nodes"]
    async with owner_engine.connect() as connection:
        payout = (await connection.execute(text("select id from payout where stripe_transfer_id = :t"),
                                           {"t": made[0]["id"]})).scalar_one()
    assert [(n["nettedByPayoutId"], n["outstanding"]["amount"]) for n in netted] == [
        (to_global_id("Payout", payout), 0)]
    still = await admin("admin/VendorDebts", {"outstanding": True, "first": 10})
    assert still["data"]["vendorDebts"]["totalCount"] == 0
    done = await admin("admin/VendorDebts", {"outstanding": False, "first": 10})
    assert done["data"]["vendorDebts"]["totalCount"] == 1


async def test_a_refund_racing_a_payout_pays_the_vendor_exactly_once(gql: GraphQLClient, http: httpx.AsyncClient,
                                                                     shop: TenantWorld, fake_stripe: FakeStripe,
                                                                     owner_engine, app_engine, stripe_client,
                                                                     tokens: Tokens) -> None:
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-THROW-OAT": 2})
    await connect_vendor(owner_engine, fake_stripe, shop.tenant_id, "lumen-home")
    admin = Admin(gql, tokens("store_admin", shop, stores=["store-0"]))
    throw = line_of(await admin.order(order), "LU-THROW-OAT")
    before = set(fake_stripe.transfers)
    body, _ = await asyncio.gather(
        admin("admin/RefundOrder", {"orderId": order, "input": {"lines": [{"lineId": throw["id"], "quantity": 1}]}}),
        process_vendor_payouts(app_engine, stripe_client, 100, [shop.tenant_id]))
    assert body["data"]["refundOrder"]["status"] == "SUCCEEDED", body
    await process_vendor_payouts(app_engine, stripe_client, 100, [shop.tenant_id])  # whatever is still owed
    transferred = sum(fake_stripe.transfers[t]["amount"] - fake_stripe.transfers[t]["amount_reversed"]
                      for t in set(fake_stripe.transfers) - before)
    async with owner_engine.connect() as connection:
        sale, owed = (await connection.execute(text(
            "select sum(vendor_amount) filter (where kind = 'sale'), sum(vendor_amount) from commission_transaction "
            "where order_id = :o"), {"o": from_global_id(order)[1]})).one()
        unpaid = (await connection.execute(text(
            "select coalesce(sum(t.vendor_amount), 0) from commission_transaction t where t.order_id = :o and "
            "t.id not in (select transaction_id from payout_transaction_link)"), {"o": from_global_id(order)[1]})
        ).scalar_one()
    # What the vendor holds (transfers less reversals) plus what is still owed to it (or by it) is exactly its
    # share of what was sold less its share of what was refunded: never paid twice, never taken back twice.
    assert transferred + unpaid == owed
    assert owed < sale


async def test_vendors_refund_their_own_lines_only_where_the_tenant_allows(gql: GraphQLClient,
                                                                           http: httpx.AsyncClient, owner_engine,
                                                                           fake_stripe: FakeStripe,
                                                                           tokens: Tokens, shop: TenantWorld) -> None:
    order = await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-CANDLE": 1, "CP-HONEY-12": 1})
    sold = await Admin(gql, tokens("tenant_admin", shop)).order(order)
    parts = {part["vendor"]["handle"]: part["id"] for part in sold["vendorOrders"]}
    async with owner_engine.connect() as connection:
        lumen = (await connection.execute(text("select id from vendor where tenant_id = :t and handle = 'lumen-home'"),
                                          {"t": shop.tenant_id})).scalar_one()
    vendor_admin = tokens("vendor_admin", shop, vendor=str(lumen))
    candle, honey = line_of(sold, "LU-CANDLE"), line_of(sold, "CP-HONEY-12")
    refused = await gql(OPS["vendor/RefundVendorOrder"], {"vendorOrderId": parts["lumen-home"], "input": {
        "lines": [{"lineId": candle["id"], "quantity": 1}]}}, token=vendor_admin)
    assert error_codes(refused) == ["FORBIDDEN"]  # off by default

    acme = await acme_shop(owner_engine)
    acme_order = await paid_order(Shopper(gql, acme), http, fake_stripe, {"LU-CANDLE": 1, "CP-HONEY-12": 1})
    acme_sold = await Admin(gql, tokens("tenant_admin", acme)).order(acme_order)
    acme_parts = {part["vendor"]["handle"]: part["id"] for part in acme_sold["vendorOrders"]}
    async with owner_engine.connect() as connection:
        acme_lumen = (await connection.execute(text(
            "select id from vendor where tenant_id = :t and handle = 'lumen-home'"),
            {"t": acme.tenant_id})).scalar_one()
    acme_vendor = tokens("vendor_admin", acme, vendor=str(acme_lumen))
    acme_candle, acme_honey = line_of(acme_sold, "LU-CANDLE"), line_of(acme_sold, "CP-HONEY-12")
    other_line = await gql(OPS["vendor/RefundVendorOrder"], {"vendorOrderId": acme_parts["lumen-home"], "input": {
        "lines": [{"lineId": acme_honey["id"], "quantity": 1}]}}, token=acme_vendor)
    assert error_codes(other_line) == ["BAD_USER_INPUT"]  # another vendor's line is not in its vendor order
    other_order = await gql(OPS["vendor/RefundVendorOrder"], {"vendorOrderId": acme_parts["cedar-pantry"], "input": {
        "lines": [{"lineId": acme_honey["id"], "quantity": 1}]}}, token=acme_vendor)
    assert error_codes(other_order) == ["NOT_FOUND"]  # another vendor's order does not exist for it
    own = await gql(OPS["vendor/RefundVendorOrder"], {"vendorOrderId": acme_parts["lumen-home"], "input": {
        "lines": [{"lineId": acme_candle["id"], "quantity": 1}]}}, token=acme_vendor)
    assert own["data"]["refundVendorOrder"]["status"] == "SUCCEEDED", own
    assert own["data"]["refundVendorOrder"]["amount"]["amount"] == 2400  # the candle (no tax in this region)
    seen = await gql(OPS["admin/Refunds"], {"first": 10}, token=acme_vendor)
    assert seen["data"]["refunds"]["totalCount"] == 1
    assert honey  # the default tenant's vendor could not refund even its own line


async def acme_shop(owner_engine) -> TenantWorld:
    """A seeded shop of the tenant `acme`, whose scoped policy lets vendor admins refund their own lines (the
    tenant is reused when another test made it already: its slug is unique)."""
    async with owner_engine.connect() as connection:
        found = (await connection.execute(text(
            "select t.id as tenant_id, s.id as store_id, d.domain from tenant t join store s on s.tenant_id = t.id "
            "and s.handle = 'store-0' join store_domain d on d.store_id = s.id and d.is_primary "
            "where t.slug = 'acme'"))).first()
    if found is None:
        world = await make_tenant(owner_engine, slug="acme")
    else:
        async with owner_engine.begin() as connection:
            _, key = await tenancy.create_publishable_key(connection, tenant_id=found.tenant_id,
                                                          store_id=found.store_id, title="refunds")
        world = TenantWorld(found.tenant_id, "acme", found.store_id, found.domain, key)
    async with owner_engine.begin() as connection:
        if not (await connection.execute(text("select count(*) from region where tenant_id = :t"),
                                         {"t": world.tenant_id})).scalar_one():
            await seed_region(connection, world.tenant_id)
        await seed_catalog(connection, world.tenant_id, world.store_id)
    return world
