"""B2B cart orders over HTTP against the real database, Cerbos and the fake Stripe: a company buyer's cart above
their limit waits in pending_approval through the quotes' approval requests (stock held, no payment), then goes on
account (credit, invoice, awaiting payment until the invoice is paid; vendor sales released then) or to a card
payment, or is rejected (canceled, stock back); two approvers at once advance it once; overdue invoices put the
company on credit hold (the mark-overdue-invoices job through its clock seam, reminders in the outbox)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.engines import create_app_engine
from cityos.graphql.core.relay import from_global_id
from cityos.jobs.quotes import mark_overdue_invoices
from cityos.jobs.registry import JOBS
from tests.commerce_flow import OPS, Shopper, send_event, shop, stock
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes
from tests.integration.test_b2b import Acme, approved_quote, make_company, ok, variant, vendor_of

__all__ = ["shop"]


@pytest.fixture
async def app_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_app_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()


async def place(gql: GraphQLClient, world: TenantWorld, token: str, cart: str, method: str) -> dict[str, Any]:
    body = await gql(OPS["storefront/PlaceCompanyOrder"], {"cartId": cart, "paymentMethod": method}, token=token,
                     key=world.key)
    assert "errors" not in body, body
    placed: dict[str, Any] = body["data"]["placeCompanyOrder"]
    return placed


async def scalar(owner_engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with owner_engine.connect() as connection:
        return (await connection.execute(text(sql), params)).scalar_one()


async def held_order(gql: GraphQLClient, shop: TenantWorld, acme: Acme, method: str,
                     candles: int = 20) -> tuple[str, dict[str, Any]]:
    """A company cart of `candles` beeswax candles (20 × 21.60 = 432.00 > the buyer's 300.00 per order), placed."""
    cart = await Shopper(gql, shop, acme.buyer).ready_cart({"LU-CANDLE": candles})
    return cart, await place(gql, shop, acme.buyer, cart, method)


async def test_a_cart_above_the_buyers_limit_waits_for_approval_then_goes_on_account(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    acme = await make_company(gql, tokens, shop, buyer_limit={"orderLimit": 30_000})
    before = await stock(owner_engine, "LU-CANDLE", shop.tenant_id)
    cart, placed = await held_order(gql, shop, acme, "ON_ACCOUNT")
    order, request = placed["order"], placed["approvalRequest"]
    assert order["status"] == "PENDING_APPROVAL" and placed["invoice"] is None and placed["checkout"] is None
    assert request["reasons"] == ["order_limit"] and request["paymentMethod"] == "ON_ACCOUNT"
    assert request["amount"]["amount"] == 20 * 2160
    total = order["totals"]["total"]["amount"]
    # No payment taken, no credit used, the stock held (CITYOS_APPROVAL_HOLD_HOURS), the cart frozen.
    assert await stock(owner_engine, "LU-CANDLE", shop.tenant_id) == before - 20
    hold = await scalar(owner_engine, "select min(expires_at) - now() from inventory_reservation where cart_id = :c",
                        c=str(from_global_id(cart, "Cart")[1]))
    assert timedelta(hours=71) < hold <= timedelta(hours=72)
    company = (await ok(gql, "storefront/Company", {"id": acme.id}, acme.admin, shop.key))["node"]
    assert company["availableCredit"]["amount"] == 500_000 and company["creditHold"] is False
    refused = await gql(OPS["storefront/StartCheckout"], {"cartId": cart}, token=acme.buyer, key=shop.key)
    assert error_codes(refused) == ["INVALID_STATE_TRANSITION"]
    changed = await gql(OPS["storefront/SetCartEmail"], {"cartId": cart, "email": "x@acme.example"},
                        token=acme.buyer, key=shop.key)
    assert error_codes(changed) == ["BAD_USER_INPUT"]
    again = await gql(OPS["storefront/PlaceCompanyOrder"], {"cartId": cart, "paymentMethod": "ON_ACCOUNT"},
                      token=acme.buyer, key=shop.key)
    assert error_codes(again) == ["INVALID_STATE_TRANSITION"]
    # The admin can neither move it by hand nor mark it paid.
    manual = await gql(OPS["admin/UpdateOrderStatus"], {"id": order["id"], "status": "PAID"}, token=acme.staff)
    assert error_codes(manual) == ["INVALID_STATE_TRANSITION"]

    # One level of any company admin (only a spending limit is exceeded): the buyer cannot approve their own.
    own = await gql(OPS["storefront/DecideApproval"], {"id": request["id"], "level": 0, "decision": "APPROVE"},
                    token=acme.buyer, key=shop.key)
    assert error_codes(own) == ["FORBIDDEN"]
    decided = (await ok(gql, "storefront/DecideApproval", {"id": request["id"], "level": 0, "decision": "APPROVE",
                                                           "comment": "ok"}, acme.admin, shop.key))["decideApproval"]
    assert decided["status"] == "APPROVED"
    listed = (await ok(gql, "storefront/ApprovalRequests", {}, acme.admin, shop.key))["approvalRequests"]["nodes"]
    assert next(item for item in listed if item["id"] == request["id"])["order"] == {
        "id": order["id"], "status": "AWAITING_PAYMENT"}
    assert await stock(owner_engine, "LU-CANDLE", shop.tenant_id) == before - 20  # sold, not taken twice
    company = (await ok(gql, "storefront/Company", {"id": acme.id}, acme.admin, shop.key))["node"]
    assert company["availableCredit"]["amount"] == 500_000 - total
    invoices = (await ok(gql, "admin/Invoices", {"status": "OPEN"}, acme.staff))["invoices"]["nodes"]
    invoice = next(item for item in invoices if item["order"]["id"] == order["id"])
    assert invoice["amount"]["amount"] == total
    # The vendor's sales wait for the invoice's payment (no payout claims them), then follow the usual hold.
    order_id = str(from_global_id(order["id"], "Order")[1])
    unpaid = await scalar(owner_engine, "select count(*) from commission_transaction where order_id = :o "
                                        "and available_at = 'infinity'", o=order_id)
    assert unpaid == 1
    paid = (await ok(gql, "admin/PayInvoice", {"id": invoice["id"]}, acme.staff))["payInvoice"]
    assert paid["status"] == "PAID"
    assert (await ok(gql, "admin/OrderById", {"id": order["id"]}, acme.staff))["order"]["status"] == "PAID"
    released = await scalar(owner_engine, "select max(available_at) - min(created_at) from commission_transaction "
                                          "where order_id = :o", o=order_id)
    assert timedelta(days=6) < released <= timedelta(days=7, minutes=1)  # CITYOS_PAYOUT_HOLD_DAYS after the sale


async def test_a_rejected_cart_order_is_canceled_and_its_stock_released(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    acme = await make_company(gql, tokens, shop, buyer_limit={"orderLimit": 30_000})
    before = await stock(owner_engine, "LU-CANDLE", shop.tenant_id)
    _, placed = await held_order(gql, shop, acme, "CARD")
    request = placed["approvalRequest"]
    rejected = (await ok(gql, "storefront/DecideApproval", {"id": request["id"], "level": 0, "decision": "REJECT",
                                                           "comment": "not this quarter"}, acme.admin,
                         shop.key))["decideApproval"]
    assert rejected["status"] == "REJECTED"
    assert await stock(owner_engine, "LU-CANDLE", shop.tenant_id) == before
    order = (await ok(gql, "admin/OrderById", {"id": placed["order"]["id"]}, acme.staff))["order"]
    assert order["status"] == "CANCELED"
    late = await gql(OPS["storefront/DecideApproval"], {"id": request["id"], "level": 0, "decision": "APPROVE"},
                     token=acme.admin, key=shop.key)
    assert error_codes(late) == ["INVALID_STATE_TRANSITION"]
    assert await scalar(owner_engine, "select count(*) from invoice where company_id = :c", c=acme.local) == 0


async def test_an_approved_cart_order_paid_by_card_is_the_same_one_order(
        gql: GraphQLClient, http: Any, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine,
        fake_stripe: Any) -> None:
    acme = await make_company(gql, tokens, shop, buyer_limit={"orderLimit": 30_000})
    cart, placed = await held_order(gql, shop, acme, "CARD")
    order, request = placed["order"], placed["approvalRequest"]
    early = await gql(OPS["storefront/PlaceCompanyOrder"], {"cartId": cart, "paymentMethod": "CARD"},
                      token=acme.buyer, key=shop.key)
    assert error_codes(early) == ["INVALID_STATE_TRANSITION"]  # not approved yet: nothing to pay
    await ok(gql, "storefront/DecideApproval", {"id": request["id"], "level": 0, "decision": "APPROVE"}, acme.admin,
             shop.key)
    assert (await ok(gql, "admin/OrderById", {"id": order["id"]}, acme.staff))["order"]["status"] == "PENDING"
    session = (await place(gql, shop, acme.buyer, cart, "CARD"))["checkout"]
    assert session["orderId"] == order["id"]
    assert session["amount"]["amount"] == order["totals"]["total"]["amount"]
    response = await send_event(http, fake_stripe, "payment_intent.succeeded",
                                fake_stripe.pay(session["paymentIntentId"]))
    assert response.status_code == 200, response.text
    assert (await ok(gql, "admin/OrderById", {"id": order["id"]}, acme.staff))["order"]["status"] == "PAID"
    assert await scalar(owner_engine, "select count(*) from orders where company_id = :c", c=acme.local) == 1
    company = (await ok(gql, "storefront/Company", {"id": acme.id}, acme.admin, shop.key))["node"]
    assert company["availableCredit"]["amount"] == 500_000  # by card: no credit taken


async def test_two_approvers_at_once_advance_a_cart_order_once(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    acme = await make_company(gql, tokens, shop)
    await ok(gql, "storefront/SetApprovalRule", {"companyId": acme.id, "input": {"minAmount": 10_000, "levels": [
        {"mode": "ANY", "roles": ["APPROVER", "COMPANY_ADMIN"]}]}}, acme.admin, shop.key)
    _, placed = await held_order(gql, shop, acme, "ON_ACCOUNT", candles=12)
    request = placed["approvalRequest"]
    assert request["reasons"] == ["threshold"]
    bodies = await asyncio.gather(*(gql(OPS["storefront/DecideApproval"], {
        "id": request["id"], "level": 0, "decision": "APPROVE"}, token=token, key=shop.key)
        for token in (acme.approver, acme.admin)))
    assert sorted(tuple(error_codes(body)) for body in bodies) == [(), ("INVALID_STATE_TRANSITION",)], bodies
    total = placed["order"]["totals"]["total"]["amount"]
    assert await scalar(owner_engine, "select count(*) from invoice where company_id = :c", c=acme.local) == 1
    assert await scalar(owner_engine, "select credit_used from company where id = :c", c=acme.local) == total
    assert await scalar(owner_engine, "select count(*) from approval_step s join approval_request r on "
                                      "r.tenant_id = s.tenant_id and r.id = s.request_id where r.company_id = :c",
                        c=acme.local) == 1


async def test_credit_is_checked_when_placed_and_taken_when_approved(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    acme = await make_company(gql, tokens, shop, credit=20_000, buyer_limit={"orderLimit": 30_000})
    cart = await Shopper(gql, shop, acme.buyer).ready_cart({"LU-CANDLE": 20})
    body = await gql(OPS["storefront/PlaceCompanyOrder"], {"cartId": cart, "paymentMethod": "ON_ACCOUNT"},
                     token=acme.buyer, key=shop.key)
    assert error_codes(body) == ["CREDIT_LIMIT_EXCEEDED"] and body["errors"][0]["extensions"]["available"] == 20_000
    assert await scalar(owner_engine, "select count(*) from orders where company_id = :c", c=acme.local) == 0


async def test_overdue_invoices_put_the_company_on_credit_hold_until_paid(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine,
        app_engine: AsyncEngine) -> None:
    job = JOBS["mark-overdue-invoices"]
    assert job.per_tenant and job.schedule == "15 1 * * *"
    acme = await make_company(gql, tokens, shop)
    cart = await Shopper(gql, shop, acme.buyer).ready_cart({"LU-CANDLE": 2})
    placed = await place(gql, shop, acme.buyer, cart, "ON_ACCOUNT")  # within limits: on account at once
    assert placed["order"]["status"] == "AWAITING_PAYMENT" and placed["approvalRequest"] is None
    invoice = placed["invoice"]
    now = datetime.now(UTC)
    assert await mark_overdue_invoices(app_engine, shop.tenant_id, lambda: now + timedelta(days=29)) == {
        "overdue": 0, "reminded": 0}
    assert await mark_overdue_invoices(app_engine, shop.tenant_id, lambda: now + timedelta(days=31)) == {
        "overdue": 1, "reminded": 1}
    assert await mark_overdue_invoices(app_engine, shop.tenant_id, lambda: now + timedelta(days=32)) == {
        "overdue": 0, "reminded": 0}  # reminded once a week
    assert (await mark_overdue_invoices(app_engine, shop.tenant_id, lambda: now + timedelta(days=38)))[
        "reminded"] == 1
    async with owner_engine.connect() as connection:
        reminders = (await connection.execute(text(
            "select payload from outbox where tenant_id = :t and topic = 'b2b.invoice_overdue' order by created_at"),
            {"t": shop.tenant_id})).scalars().all()
    assert len(reminders) == 2
    first = reminders[0]
    admin_email = next(user["email"] for user in (await ok(gql, "storefront/Company", {"id": acme.id}, acme.admin,
                                                           shop.key))["node"]["users"]
                       if user["role"] == "COMPANY_ADMIN")
    assert first["to"] == [admin_email] and first["company_name"] == "Acme Corp"
    assert first["invoice_id"] == str(from_global_id(invoice["id"], "Invoice")[1])
    assert first["amount"] == invoice["amount"]["amount"] and first["currency_code"] == "usd"
    assert first["days_overdue"] == 1

    overdue = (await ok(gql, "admin/Invoices", {"status": "OVERDUE"}, acme.staff))["invoices"]["nodes"]
    assert [item["id"] for item in overdue] == [invoice["id"]] and overdue[0]["overdueAt"]
    company = (await ok(gql, "storefront/Company", {"id": acme.id}, acme.admin, shop.key))["node"]
    assert company["creditHold"] is True
    second = await Shopper(gql, shop, acme.buyer).ready_cart({"LU-CANDLE": 1})
    held = await gql(OPS["storefront/PlaceCompanyOrder"], {"cartId": second, "paymentMethod": "ON_ACCOUNT"},
                     token=acme.buyer, key=shop.key)
    assert error_codes(held) == ["CREDIT_HOLD"] and held["errors"][0]["extensions"]["overdueInvoices"] == 1
    honey = await variant(owner_engine, shop, "CP-HONEY-12")
    quote = await approved_quote(gql, shop, acme, [{"variantId": honey, "quantity": 2}], honey)
    converted = await gql(OPS["storefront/ConvertQuoteToOrder"], {"id": quote["id"]}, token=acme.buyer,
                          key=shop.key)
    assert error_codes(converted) == ["CREDIT_HOLD"]
    by_card = await place(gql, shop, acme.buyer, second, "CARD")  # a card order is not held
    assert by_card["checkout"]["paymentIntentId"]

    await ok(gql, "admin/PayInvoice", {"id": invoice["id"]}, acme.staff)
    company = (await ok(gql, "storefront/Company", {"id": acme.id}, acme.admin, shop.key))["node"]
    assert company["creditHold"] is False
    assert (await ok(gql, "storefront/ConvertQuoteToOrder", {"id": quote["id"]}, acme.buyer, shop.key))[
        "convertQuoteToOrder"]["order"]["status"] == "AWAITING_PAYMENT"


ORDER_APPROVAL_EVENTS = ("subscription { approvalEvents { type quoteId orderId approvalRequestId approvalStatus "
                         "level } }")


async def test_a_cart_orders_approval_events_reach_the_companys_approvers(
        server: Any, gql: GraphQLClient, tokens: Tokens, shop: TenantWorld) -> None:
    from tests.integration.test_subscriptions import Client

    acme = await make_company(gql, tokens, shop, buyer_limit={"orderLimit": 30_000})
    approver = await Client.connect(server.url, acme.admin)
    try:
        await approver.subscribe(ORDER_APPROVAL_EVENTS)
        _, placed = await held_order(gql, shop, acme, "ON_ACCOUNT")
        requested = (await approver.receive())["payload"]["data"]["approvalEvents"]
        assert requested == {"type": "approval.requested", "quoteId": None, "orderId": placed["order"]["id"],
                             "approvalRequestId": placed["approvalRequest"]["id"], "approvalStatus": "PENDING",
                             "level": 0}
        await ok(gql, "storefront/DecideApproval", {"id": placed["approvalRequest"]["id"], "level": 0,
                                                    "decision": "APPROVE"}, acme.admin, shop.key)
        decided = (await approver.receive())["payload"]["data"]["approvalEvents"]
        assert (decided["type"], decided["orderId"], decided["approvalStatus"], decided["level"]) == (
            "approval.decided", placed["order"]["id"], "APPROVED", 1)
    finally:
        await approver.close()


async def test_placing_one_cart_twice_at_once_makes_one_order(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    acme = await make_company(gql, tokens, shop, buyer_limit={"orderLimit": 30_000})
    for candles in (20, 2):  # held for approval, then placed on account at once
        cart = await Shopper(gql, shop, acme.buyer).ready_cart({"LU-CANDLE": candles})
        bodies = await asyncio.gather(*(gql(OPS["storefront/PlaceCompanyOrder"], {
            "cartId": cart, "paymentMethod": "ON_ACCOUNT"}, token=acme.buyer, key=shop.key) for _ in range(3)))
        codes = sorted(tuple(error_codes(body)) for body in bodies)
        assert codes[0] == () and all(code in (("CONFLICT",), ("INVALID_STATE_TRANSITION",)) for code in codes[1:]), \
            bodies
        cart_id = str(from_global_id(cart, "Cart")[1])
        assert await scalar(owner_engine, "select count(*) from orders where cart_id = :c", c=cart_id) == 1
        assert await scalar(owner_engine, "select count(*) from approval_request r join orders o on "
                                          "o.tenant_id = r.tenant_id and o.id = r.order_id where o.cart_id = :c",
                            c=cart_id) == (1 if candles == 20 else 0)
    assert await scalar(owner_engine, "select count(*) from invoice where company_id = :c", c=acme.local) == 1


async def test_an_order_on_account_ships_before_payment_and_is_fulfilled_once_paid(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    acme = await make_company(gql, tokens, shop)
    cart = await Shopper(gql, shop, acme.buyer).ready_cart({"LU-CANDLE": 2})
    placed = await place(gql, shop, acme.buyer, cart, "ON_ACCOUNT")
    order = (await ok(gql, "admin/OrderById", {"id": placed["order"]["id"]}, acme.staff))["order"]
    [part] = order["vendorOrders"]
    assert part["status"] == "AWAITING_PAYMENT"
    lumen = tokens("vendor_admin", shop, vendor=await vendor_of(owner_engine, shop, "lumen-home"))
    await ok(gql, "vendor/UpdateVendorOrderFulfillment", {"id": part["id"], "status": "SHIPPED", "carrier": "ups",
                                                          "trackingNumber": "1Z999AA10123456784"}, lumen)
    view = (await ok(gql, "admin/OrderFulfillment", {"id": order["id"]}, acme.staff))["order"]
    assert (view["status"], view["fulfillmentStatus"]) == ("AWAITING_PAYMENT", "SHIPPED")  # shipped, not paid
    await ok(gql, "admin/PayInvoice", {"id": placed["invoice"]["id"]}, acme.staff)
    view = (await ok(gql, "admin/OrderFulfillment", {"id": order["id"]}, acme.staff))["order"]
    assert (view["status"], view["fulfillmentStatus"]) == ("FULFILLED", "SHIPPED")
