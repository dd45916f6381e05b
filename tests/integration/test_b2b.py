"""B2B over HTTP against the real database and Cerbos: the deployment plan's scenario (company account → quote
with volume pricing → one negotiation round → two approval levels → order → credit deducted), concurrency of
credit, approvals and conversion, bad input, expiry through the job's clock seam, and company isolation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.engines import create_app_engine
from cityos.graphql.core.relay import from_global_id, to_global_id
from cityos.jobs.quotes import expire_quotes
from cityos.jobs.registry import JOBS
from tests.commerce_flow import ADDRESS, OPS, shop
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes
from tests.integration.test_erpnext_sync import erp_api, erp_settings, fake_erpnext

__all__ = ["erp_api", "erp_settings", "fake_erpnext", "shop"]


@pytest.fixture
async def app_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_app_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()


@dataclass
class Acme:
    """A company of the shop with an admin, a buyer and an approver, each with a token."""

    id: str
    local: str
    staff: str
    admin: str
    buyer: str
    approver: str
    buyer_user: str


async def ok(gql: GraphQLClient, name: str, variables: dict[str, Any], token: str, key: str | None = None,
             ) -> dict[str, Any]:
    body = await gql(OPS[name], variables, token=token, key=key)
    assert "errors" not in body, (name, body)
    data: dict[str, Any] = body["data"]
    return data


async def variant(owner_engine: AsyncEngine, world: TenantWorld, sku: str) -> str:
    async with owner_engine.connect() as connection:
        found = (await connection.execute(text("select id from variant where tenant_id = :t and sku = :s"),
                                          {"t": world.tenant_id, "s": sku})).scalar_one()
    return to_global_id("Variant", found)


async def category(owner_engine: AsyncEngine, world: TenantWorld, handle: str) -> str:
    async with owner_engine.connect() as connection:
        found = (await connection.execute(text("select id from category where tenant_id = :t and handle = :h"),
                                          {"t": world.tenant_id, "h": handle})).scalar_one()
    return to_global_id("Category", found)


async def vendor_of(owner_engine: AsyncEngine, world: TenantWorld, handle: str) -> str:
    async with owner_engine.connect() as connection:
        return str((await connection.execute(text("select id from vendor where tenant_id = :t and handle = :h"),
                                             {"t": world.tenant_id, "h": handle})).scalar_one())


async def make_company(gql: GraphQLClient, tokens: Tokens, world: TenantWorld, *, credit: int = 500_000,
                       buyer_limit: dict[str, Any] | None = None, name: str = "Acme Corp") -> Acme:
    staff = tokens("tenant_admin", world)
    address = {**ADDRESS, "company": name}
    company = (await ok(gql, "admin/CreateCompany", {"input": {
        "legalName": name, "taxId": "US-12-3456789", "currencyCode": "usd", "creditLimit": credit,
        "paymentTerms": "NET_30", "billingAddress": address, "shippingAddress": address}}, staff))["createCompany"]
    local = str(from_global_id(company["id"], "Company")[1])
    tag = uuid.uuid4().hex[:8]
    admin_id, buyer_id, approver_id = f"admin-{tag}", f"buyer-{tag}", f"approver-{tag}"
    await ok(gql, "storefront/InviteCompanyUser", {"companyId": company["id"], "input": {
        "customerId": admin_id, "email": f"{admin_id}@acme.example", "role": "COMPANY_ADMIN"}}, staff)
    admin = tokens("company_admin", world, company=local, subject=admin_id)
    buyer_user = (await ok(gql, "storefront/InviteCompanyUser", {"companyId": company["id"], "input": {
        "customerId": buyer_id, "email": f"{buyer_id}@acme.example", "role": "COMPANY_BUYER",
        "limit": buyer_limit}}, admin))["inviteCompanyUser"]
    await ok(gql, "storefront/InviteCompanyUser", {"companyId": company["id"], "input": {
        "customerId": approver_id, "email": f"{approver_id}@acme.example", "role": "APPROVER"}}, admin)
    return Acme(company["id"], local, staff, admin, tokens("company_buyer", world, company=local, subject=buyer_id),
                tokens("company_buyer", world, company=local, subject=approver_id), buyer_user["id"])


async def approved_quote(gql: GraphQLClient, world: TenantWorld, acme: Acme, lines: list[dict[str, Any]],
                         variant_id: str) -> dict[str, Any]:
    """A quote answered once by the store and accepted (no rule, no limit: approved at once)."""
    quote = (await ok(gql, "storefront/RequestQuote", {"input": {"lines": lines}}, acme.buyer,
                      world.key))["requestQuote"]
    answered = (await ok(gql, "vendor/RespondToQuote", {"id": quote["id"], "input": {"lines": [
        {"variantId": variant_id, "unitPrice": 1000}]}}, acme.staff))["respondToQuote"]
    accepted = (await ok(gql, "storefront/AcceptQuote", {"id": quote["id"], "version": answered["version"]},
                         acme.buyer, world.key))["acceptQuote"]
    assert accepted["status"] == "APPROVED", accepted
    return accepted


def line(quote: dict[str, Any], sku: str) -> dict[str, Any]:
    return next(item for item in quote["lines"] if item["sku"] == sku)


async def test_company_account_quote_negotiation_two_level_approval_order_and_credit(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    """The deployment plan's B2B scenario, end to end over HTTP."""
    acme = await make_company(gql, tokens, shop, buyer_limit={"orderLimit": 50_000})
    socks, coffee = await variant(owner_engine, shop, "NW-SOCK-1"), await variant(owner_engine, shop,
                                                                                  "CP-COFFEE-1LB")
    # Company pricing: 15% off the Home category from 10 units, coffee at 14.50 from 30.
    price_list = (await ok(gql, "admin/SetCompanyPriceList", {"companyId": acme.id, "input": {
        "name": "Acme contract", "currencyCode": "usd", "entries": [
            {"categoryId": await category(owner_engine, shop, "home"), "minQuantity": 10, "percentOff": "15"},
            {"variantId": coffee, "minQuantity": 30, "unitAmount": 1450}]}}, acme.staff))["setCompanyPriceList"]
    assert len(price_list["entries"]) == 2
    # Two levels from 1,000.00: any approver, then the company admin by name.
    company = (await ok(gql, "storefront/Company", {"id": acme.id}, acme.admin, shop.key))["node"]
    admin_subject = next(user["customerId"] for user in company["users"] if user["role"] == "COMPANY_ADMIN")
    stranger = await gql(OPS["storefront/SetApprovalRule"], {"companyId": acme.id, "input": {
        "minAmount": 100_000, "levels": [{"mode": "ALL", "userIds": ["not-a-member"]}]}}, token=acme.admin,
        key=shop.key)
    assert error_codes(stranger) == ["BAD_USER_INPUT"]
    await ok(gql, "storefront/SetApprovalRule", {"companyId": acme.id, "input": {"minAmount": 100_000, "levels": [
        {"mode": "ANY", "roles": ["APPROVER"]}, {"mode": "ALL", "userIds": [admin_subject]}]}}, acme.admin, shop.key)

    # The buyer requests a bulk quote: the unit price is the lowest of list, volume tiers and the company's list.
    quote = (await ok(gql, "storefront/RequestQuote", {"input": {"lines": [  # bulk: by SKU (or variant id)
        {"sku": "NW-SOCK-1", "quantity": 60}, {"sku": "LU-CANDLE", "quantity": 24},
        {"variantId": coffee, "quantity": 30}], "message": "Quarterly restock"}}, acme.buyer,
        shop.key))["requestQuote"]
    assert quote["status"] == "REQUESTED" and quote["version"] == 1
    assert line(quote, "NW-SOCK-1")["unitPrice"]["amount"] == 800  # product tier (50+ at 8.00)
    assert line(quote, "LU-CANDLE")["unitPrice"]["amount"] == 2040  # company list 15% beats the 10% tier
    assert line(quote, "CP-COFFEE-1LB")["unitPrice"]["amount"] == 1450  # company list beats the 15.00 tier
    assert quote["total"]["amount"] == 60 * 800 + 24 * 2040 + 30 * 1450

    # One round: the store lowers the socks, the buyer counters on coffee, the coffee's vendor meets halfway.
    answered = (await ok(gql, "vendor/RespondToQuote", {"id": quote["id"], "input": {"lines": [
        {"variantId": socks, "unitPrice": 750}], "message": "Best we can do on socks"}}, acme.staff))
    assert answered["respondToQuote"]["status"] == "RESPONDED"
    countered = (await ok(gql, "storefront/CounterQuote", {"id": quote["id"], "input": {"lines": [
        {"variantId": coffee, "unitPrice": 1400}]}}, acme.buyer, shop.key))["counterQuote"]
    assert countered["status"] == "COUNTERED" and countered["version"] == 3
    cedar = tokens("vendor_admin", shop, vendor=await vendor_of(owner_engine, shop, "cedar-pantry"))
    foreign_line = await gql(OPS["vendor/RespondToQuote"], {"id": quote["id"], "input": {"lines": [
        {"variantId": socks, "unitPrice": 1}]}}, token=cedar)
    assert error_codes(foreign_line) == ["BAD_USER_INPUT"]  # a vendor edits only its own products' lines
    final = (await ok(gql, "vendor/RespondToQuote", {"id": quote["id"], "input": {"lines": [
        {"variantId": coffee, "unitPrice": 1420}]}}, cedar))["respondToQuote"]
    assert [item["sku"] for item in final["lines"]] == ["CP-COFFEE-1LB"]  # the vendor sees its own line only
    assert final["versions"][-1]["changes"] == [{"sku": "CP-COFFEE-1LB", "field": "unit_price", "oldValue": 1400,
                                                 "newValue": 1420}]
    history = (await ok(gql, "storefront/QuoteById", {"id": quote["id"]}, acme.buyer, shop.key))["node"]
    assert [(v["number"], v["authorKind"]) for v in history["versions"]] == [
        (1, "buyer"), (2, "store"), (3, "buyer"), (4, "vendor")]
    assert [m["body"] for m in history["messages"]] == ["Quarterly restock", "Best we can do on socks"]
    expected_total = 60 * 750 + 24 * 2040 + 30 * 1420
    assert history["total"]["amount"] == expected_total

    # An old version cannot be accepted; the current one waits for two levels of approval.
    stale = await gql(OPS["storefront/AcceptQuote"], {"id": quote["id"], "version": 2}, token=acme.buyer, key=shop.key)
    assert error_codes(stale) == ["INVALID_STATE_TRANSITION"]
    accepted = (await ok(gql, "storefront/AcceptQuote", {"id": quote["id"], "version": 4}, acme.buyer,
                         shop.key))["acceptQuote"]
    assert accepted["status"] == "PENDING_APPROVAL"
    early = await gql(OPS["storefront/ConvertQuoteToOrder"], {"id": quote["id"]}, token=acme.buyer, key=shop.key)
    assert error_codes(early) == ["INVALID_STATE_TRANSITION"]
    pending = (await ok(gql, "storefront/ApprovalRequests", {"status": "PENDING"}, acme.approver,
                        shop.key))["approvalRequests"]["nodes"]
    request = next(item for item in pending if item["quote"]["id"] == quote["id"])
    assert set(request["reasons"]) == {"order_limit", "threshold"} and request["currentLevel"] == 0
    self_approval = await gql(OPS["storefront/DecideApproval"], {"id": request["id"], "level": 0,
                                                                 "decision": "APPROVE"}, token=acme.buyer, key=shop.key)
    assert error_codes(self_approval) == ["FORBIDDEN"]
    first = (await ok(gql, "storefront/DecideApproval", {"id": request["id"], "level": 0, "decision": "APPROVE",
                                                         "comment": "Within budget"}, acme.approver,
                      shop.key))["decideApproval"]
    assert first["currentLevel"] == 1 and first["status"] == "PENDING"
    wrong_level = await gql(OPS["storefront/DecideApproval"], {"id": request["id"], "level": 1,
                                                               "decision": "APPROVE"}, token=acme.approver,
                            key=shop.key)
    assert error_codes(wrong_level) == ["FORBIDDEN"]  # level 2 names the admin only
    second = (await ok(gql, "storefront/DecideApproval", {"id": request["id"], "level": 1, "decision": "APPROVE"},
                       acme.admin, shop.key))["decideApproval"]
    assert second["status"] == "APPROVED" and second["currentLevel"] == 2
    assert [(step["level"], step["decision"], step["comment"]) for step in second["steps"]] == [
        (0, "APPROVE", "Within budget"), (1, "APPROVE", None)]

    # Convert: one order split by vendor, paid on account, an invoice due in 30 days, the credit deducted.
    converted = (await ok(gql, "storefront/ConvertQuoteToOrder", {"id": quote["id"]}, acme.buyer,
                          shop.key))["convertQuoteToOrder"]
    totals = converted["order"]["totals"]
    tax = round(expected_total * 0.0825)
    assert totals["subtotal"]["amount"] - totals["discountTotal"]["amount"] == expected_total
    assert totals["taxTotal"]["amount"] == tax and totals["total"]["amount"] == expected_total + tax
    assert len(converted["order"]["vendorOrders"]) == 3 and converted["quote"]["status"] == "ORDERED"
    assert converted["order"]["status"] == "AWAITING_PAYMENT"  # on account: not paid while its invoice is open
    invoice = converted["invoice"]
    assert invoice["status"] == "OPEN" and invoice["paymentTerms"] == "NET_30"
    assert invoice["amount"]["amount"] == expected_total + tax
    due = datetime.fromisoformat(invoice["dueAt"]) - datetime.fromisoformat(invoice["createdAt"])
    assert abs(due - timedelta(days=30)) < timedelta(minutes=1)  # issued now (the database's now vs ours)
    company = (await ok(gql, "storefront/Company", {"id": acme.id}, acme.admin, shop.key))["node"]
    assert company["availableCredit"]["amount"] == 500_000 - (expected_total + tax)
    assert company["orders"]["totalCount"] == 1
    assert company["spending"] == [{"customerId": company["users"][1]["customerId"],
                                    "spent": {"amount": expected_total, "currencyCode": "usd"}}]
    again = await gql(OPS["storefront/ConvertQuoteToOrder"], {"id": quote["id"]}, token=acme.buyer, key=shop.key)
    assert error_codes(again) == ["CONFLICT"]

    # Paying the invoice restores the credit, once.
    paid = (await ok(gql, "admin/PayInvoice", {"id": invoice["id"]}, acme.staff))["payInvoice"]
    assert paid["status"] == "PAID"
    order = (await ok(gql, "admin/OrderById", {"id": converted["order"]["id"]}, acme.staff))["order"]
    assert order["status"] == "PAID"  # the invoice paid: so is the order
    twice = await gql(OPS["admin/PayInvoice"], {"id": invoice["id"]}, token=acme.staff)
    assert error_codes(twice) == ["INVALID_STATE_TRANSITION"]
    company = (await ok(gql, "storefront/Company", {"id": acme.id}, acme.admin, shop.key))["node"]
    assert company["availableCredit"]["amount"] == 500_000


async def test_two_orders_racing_for_the_last_credit_never_overdraw(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    acme = await make_company(gql, tokens, shop, credit=30_000)
    honey = await variant(owner_engine, shop, "CP-HONEY-12")
    quotes = [await approved_quote(gql, shop, acme, [{"variantId": honey, "quantity": 20}], honey)
              for _ in range(2)]  # 20 × 10.00 + 8.25% tax = 216.50 each; 300.00 of credit fits one
    bodies = await asyncio.gather(*(gql(OPS["storefront/ConvertQuoteToOrder"], {"id": quote["id"]},
                                        token=acme.buyer, key=shop.key) for quote in quotes))
    codes = sorted(tuple(error_codes(body)) for body in bodies)
    assert codes == [(), ("CREDIT_LIMIT_EXCEEDED",)], bodies
    refused = next(body for body in bodies if "errors" in body)
    assert refused["errors"][0]["extensions"]["available"] == 30_000 - 21_650
    company = (await ok(gql, "storefront/Company", {"id": acme.id}, acme.admin, shop.key))["node"]
    assert company["availableCredit"]["amount"] == 30_000 - 21_650
    async with owner_engine.connect() as connection:
        used = (await connection.execute(text("select credit_used from company where id = :c"),
                                         {"c": acme.local})).scalar_one()
    assert used == 21_650


async def test_converting_a_quote_twice_at_once_makes_one_order(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    acme = await make_company(gql, tokens, shop)
    honey = await variant(owner_engine, shop, "CP-HONEY-12")
    quote = await approved_quote(gql, shop, acme, [{"variantId": honey, "quantity": 3}], honey)
    bodies = await asyncio.gather(*(gql(OPS["storefront/ConvertQuoteToOrder"], {"id": quote["id"]},
                                        token=acme.buyer, key=shop.key) for _ in range(3)))
    assert sorted(tuple(error_codes(body)) for body in bodies) == [(), ("CONFLICT",), ("CONFLICT",)], bodies
    async with owner_engine.connect() as connection:
        orders = (await connection.execute(text("select count(*) from orders where company_id = :c"),
                                           {"c": acme.local})).scalar_one()
        invoices = (await connection.execute(text("select count(*) from invoice where company_id = :c"),
                                             {"c": acme.local})).scalar_one()
    assert (orders, invoices) == (1, 1)


async def test_an_approval_level_moves_forward_once_when_two_approvers_click_together(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    acme = await make_company(gql, tokens, shop)
    honey = await variant(owner_engine, shop, "CP-HONEY-12")
    await ok(gql, "storefront/SetApprovalRule", {"companyId": acme.id, "input": {"minAmount": 0, "levels": [
        {"mode": "ANY", "roles": ["APPROVER", "COMPANY_ADMIN"]}, {"mode": "ANY", "roles": ["COMPANY_ADMIN"]}]}},
        acme.admin, shop.key)
    quote = (await ok(gql, "storefront/RequestQuote", {"input": {"lines": [{"variantId": honey, "quantity": 2}]}},
                      acme.buyer, shop.key))["requestQuote"]
    await ok(gql, "vendor/RespondToQuote", {"id": quote["id"], "input": {"lines": [
        {"variantId": honey, "quantity": 3}]}}, acme.staff)
    assert (await ok(gql, "storefront/AcceptQuote", {"id": quote["id"], "version": 2}, acme.buyer,
                     shop.key))["acceptQuote"]["status"] == "PENDING_APPROVAL"
    request = (await ok(gql, "storefront/ApprovalRequests", {"status": "PENDING"}, acme.admin,
                        shop.key))["approvalRequests"]["nodes"][0]
    bodies = await asyncio.gather(*(gql(OPS["storefront/DecideApproval"], {
        "id": request["id"], "level": 0, "decision": "APPROVE"}, token=token, key=shop.key)
        for token in (acme.approver, acme.admin)))
    assert sorted(tuple(error_codes(body)) for body in bodies) == [(), ("INVALID_STATE_TRANSITION",)], bodies
    after = (await ok(gql, "storefront/ApprovalRequests", {}, acme.admin, shop.key))["approvalRequests"]["nodes"]
    decided = next(item for item in after if item["id"] == request["id"])
    assert decided["currentLevel"] == 1 and decided["status"] == "PENDING"
    assert len(decided["steps"]) == 1


async def test_bad_input_and_state_errors_are_typed(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, other_world: TenantWorld,
        owner_engine: AsyncEngine) -> None:
    acme = await make_company(gql, tokens, shop)
    honey = await variant(owner_engine, shop, "CP-HONEY-12")
    for quantity in (0, -3):
        body = await gql(OPS["storefront/RequestQuote"], {"input": {"lines": [
            {"variantId": honey, "quantity": quantity}]}}, token=acme.buyer, key=shop.key)
        assert error_codes(body) == ["BAD_USER_INPUT"], body
    for line in ({"sku": "NO-SUCH-SKU", "quantity": 1}, {"sku": "CP-HONEY-12", "variantId": honey, "quantity": 1}):
        body = await gql(OPS["storefront/RequestQuote"], {"input": {"lines": [line]}}, token=acme.buyer,
                         key=shop.key)
        assert error_codes(body) == ["BAD_USER_INPUT"], body
    foreign = to_global_id("Variant", uuid.uuid4())  # not sold in this store (or anywhere)
    body = await gql(OPS["storefront/RequestQuote"], {"input": {"lines": [{"variantId": foreign, "quantity": 1}]}},
                     token=acme.buyer, key=shop.key)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    quote = (await ok(gql, "storefront/RequestQuote", {"input": {"lines": [{"variantId": honey, "quantity": 2}]}},
                      acme.buyer, shop.key))["requestQuote"]
    for edit in ({"unitPrice": 0}, {"unitPrice": -100}, {"quantity": 0}):
        body = await gql(OPS["vendor/RespondToQuote"], {"id": quote["id"], "input": {"lines": [
            {"variantId": honey, **edit}]}}, token=acme.staff)
        assert error_codes(body) == ["BAD_USER_INPUT"], body
    early = await gql(OPS["storefront/AcceptQuote"], {"id": quote["id"], "version": 1}, token=acme.buyer,
                      key=shop.key)
    assert error_codes(early) == ["INVALID_STATE_TRANSITION"]  # nothing answered yet
    not_buyer = await gql(OPS["storefront/CounterQuote"], {"id": quote["id"], "input": {"lines": [
        {"variantId": honey, "unitPrice": 1}]}}, token=acme.approver, key=shop.key)
    assert error_codes(not_buyer) == ["FORBIDDEN"]

    # A rejected quote cannot be accepted or ordered.
    await ok(gql, "storefront/SetApprovalRule", {"companyId": acme.id, "input": {"minAmount": 0, "levels": [
        {"mode": "ANY", "roles": ["APPROVER"]}]}}, acme.admin, shop.key)
    await ok(gql, "vendor/RespondToQuote", {"id": quote["id"], "input": {"lines": [
        {"variantId": honey, "unitPrice": 1300}]}}, acme.staff)
    await ok(gql, "storefront/AcceptQuote", {"id": quote["id"], "version": 2}, acme.buyer, shop.key)
    request = (await ok(gql, "storefront/ApprovalRequests", {"status": "PENDING"}, acme.approver,
                        shop.key))["approvalRequests"]["nodes"][0]
    rejected = (await ok(gql, "storefront/DecideApproval", {"id": request["id"], "level": 0, "decision": "REJECT",
                                                            "comment": "Not this quarter"}, acme.approver,
                         shop.key))["decideApproval"]
    assert rejected["status"] == "REJECTED"
    for name, variables in (("storefront/AcceptQuote", {"id": quote["id"], "version": 2}),
                            ("storefront/ConvertQuoteToOrder", {"id": quote["id"]})):
        body = await gql(OPS[name], variables, token=acme.buyer, key=shop.key)
        assert error_codes(body) == ["INVALID_STATE_TRANSITION"], (name, body)


async def test_expire_quotes_job_marks_quotes_past_their_validity(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine,
        app_engine: AsyncEngine) -> None:
    assert JOBS["expire-quotes"].schedule == "0 1 * * *" and JOBS["expire-quotes"].per_tenant
    acme = await make_company(gql, tokens, shop)
    honey = await variant(owner_engine, shop, "CP-HONEY-12")
    quote = (await ok(gql, "storefront/RequestQuote", {"input": {"lines": [{"variantId": honey, "quantity": 2}],
                                                                 "validDays": 7}}, acme.buyer,
                      shop.key))["requestQuote"]
    answered = (await ok(gql, "vendor/RespondToQuote", {"id": quote["id"], "input": {"lines": [
        {"variantId": honey, "unitPrice": 1300}]}}, acme.staff))["respondToQuote"]
    now = datetime.now(UTC)
    assert await expire_quotes(app_engine, shop.tenant_id, lambda: now + timedelta(days=6)) == {
        "expired": 0, "approvals_closed": 0}
    assert (await expire_quotes(app_engine, shop.tenant_id, lambda: now + timedelta(days=8)))["expired"] == 1
    assert (await expire_quotes(app_engine, shop.tenant_id, lambda: now + timedelta(days=9)))["expired"] == 0
    body = await gql(OPS["storefront/AcceptQuote"], {"id": quote["id"], "version": answered["version"]},
                     token=acme.buyer, key=shop.key)
    assert error_codes(body) == ["INVALID_STATE_TRANSITION"]
    listed = (await ok(gql, "storefront/Quotes", {"status": "EXPIRED"}, acme.buyer, shop.key))["quotes"]
    assert [item["id"] for item in listed["nodes"]] == [quote["id"]]


async def test_company_users_see_their_own_and_never_another_companys(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    acme = await make_company(gql, tokens, shop)
    globex = await make_company(gql, tokens, shop, name="Globex")
    honey = await variant(owner_engine, shop, "CP-HONEY-12")
    quote = (await ok(gql, "storefront/RequestQuote", {"input": {"lines": [{"variantId": honey, "quantity": 2}]}},
                      acme.buyer, shop.key))["requestQuote"]
    for token in (globex.admin, globex.buyer):
        body = await gql(OPS["storefront/QuoteById"], {"id": quote["id"]}, token=token, key=shop.key)
        assert body.get("data", {}).get("node") is None and error_codes(body) == ["FORBIDDEN"], body
        listed = (await ok(gql, "storefront/Quotes", {}, token, shop.key))["quotes"]
        assert quote["id"] not in [item["id"] for item in listed["nodes"]]
        company = await gql(OPS["storefront/Company"], {"id": acme.id}, token=token, key=shop.key)
        assert company["data"]["node"] is None
    # Buyers do not see the credit limit or the tax id; the admin does.
    as_buyer = await gql(OPS["storefront/Company"], {"id": acme.id}, token=acme.buyer, key=shop.key)
    assert as_buyer["data"]["node"]["creditLimit"] is None and as_buyer["data"]["node"]["taxId"] is None
    assert {error["path"][-1] for error in as_buyer["errors"]} >= {"creditLimit", "taxId", "availableCredit"}
    as_admin = (await ok(gql, "storefront/Company", {"id": acme.id}, acme.admin, shop.key))["node"]
    assert as_admin["creditLimit"]["amount"] == 500_000 and as_admin["taxId"] == "US-12-3456789"
    # A token whose company claim the company's users do not back is refused.
    stranger = tokens("company_buyer", shop, company=acme.local, subject="not-a-member")
    body = await gql(OPS["storefront/Quotes"], {}, token=stranger, key=shop.key)
    assert error_codes(body) == ["FORBIDDEN"]
    # A removed user's token stops working.
    await ok(gql, "storefront/RemoveCompanyUser", {"id": acme.buyer_user}, acme.admin, shop.key)
    body = await gql(OPS["storefront/Quotes"], {}, token=acme.buyer, key=shop.key)
    assert error_codes(body) == ["FORBIDDEN"]


QUOTE_EVENTS = "subscription { quoteEvents { type quoteId quoteStatus version } }"
STORE_QUOTE_EVENTS = "subscription($s: ID) { quoteEvents(storeId: $s) { type quoteId quoteStatus } }"
APPROVAL_EVENTS = "subscription { approvalEvents { type quoteId approvalRequestId approvalStatus level } }"


async def test_quote_and_approval_events_reach_who_may_read_them(
        server: Any, gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    from tests.integration.test_subscriptions import Client

    acme = await make_company(gql, tokens, shop)
    globex = await make_company(gql, tokens, shop, name="Globex")
    honey = await variant(owner_engine, shop, "CP-HONEY-12")
    await ok(gql, "storefront/SetApprovalRule", {"companyId": acme.id, "input": {"minAmount": 0, "levels": [
        {"mode": "ANY", "roles": ["APPROVER"]}]}}, acme.admin, shop.key)
    cedar = tokens("vendor_user", shop, vendor=await vendor_of(owner_engine, shop, "cedar-pantry"))
    lumen = tokens("vendor_user", shop, vendor=await vendor_of(owner_engine, shop, "lumen-home"))
    clients = {name: await Client.connect(server.url, token) for name, token in (
        ("buyer", acme.buyer), ("approver", acme.approver), ("globex", globex.admin), ("cedar", cedar),
        ("lumen", lumen), ("store", tokens("store_admin", shop, stores=[str(shop.store_id)])))}
    try:
        await clients["buyer"].subscribe(QUOTE_EVENTS)
        await clients["approver"].subscribe(APPROVAL_EVENTS)
        await clients["globex"].subscribe(QUOTE_EVENTS)
        await clients["cedar"].subscribe(QUOTE_EVENTS)
        await clients["lumen"].subscribe(QUOTE_EVENTS)
        await clients["store"].subscribe(STORE_QUOTE_EVENTS, {"s": to_global_id("Store", shop.store_id)})
        quote = (await ok(gql, "storefront/RequestQuote", {"input": {"lines": [
            {"variantId": honey, "quantity": 4}]}}, acme.buyer, shop.key))["requestQuote"]
        for name in ("buyer", "cedar", "store"):
            event = (await clients[name].receive())["payload"]["data"]["quoteEvents"]
            assert (event["type"], event["quoteId"], event["quoteStatus"]) == (
                "quote.requested", quote["id"], "REQUESTED"), name
        await ok(gql, "vendor/RespondToQuote", {"id": quote["id"], "input": {"lines": [
            {"variantId": honey, "unitPrice": 1300}]}}, cedar)
        event = (await clients["buyer"].receive())["payload"]["data"]["quoteEvents"]
        assert (event["type"], event["version"]) == ("quote.responded", 2)
        await ok(gql, "storefront/AcceptQuote", {"id": quote["id"], "version": 2}, acme.buyer, shop.key)
        approval = (await clients["approver"].receive())["payload"]["data"]["approvalEvents"]
        assert (approval["type"], approval["quoteId"], approval["approvalStatus"], approval["level"]) == (
            "approval.requested", quote["id"], "PENDING", 0)
        await ok(gql, "storefront/DecideApproval", {"id": approval["approvalRequestId"], "level": 0,
                                                    "decision": "APPROVE"}, acme.approver, shop.key)
        decided = (await clients["approver"].receive())["payload"]["data"]["approvalEvents"]
        assert (decided["type"], decided["approvalStatus"]) == ("approval.decided", "APPROVED")
        statuses = [(await clients["buyer"].receive())["payload"]["data"]["quoteEvents"]["quoteStatus"]
                    for _ in range(2)]
        assert statuses == ["PENDING_APPROVAL", "APPROVED"]
        # Another company of the tenant and a vendor without products on the quote hear nothing of it.
        assert await clients["globex"].nothing_for(1.0)
        assert await clients["lumen"].nothing_for(0.5)
    finally:
        for client in clients.values():
            await client.close()


async def test_an_order_on_account_goes_to_erpnext_as_the_companys_invoice_and_its_payment(
        shop: TenantWorld, tokens: Tokens, owner_engine: AsyncEngine, app_engine: AsyncEngine,
        erp_api: Any, erp_settings: Any, fake_erpnext: Any) -> None:
    """Through the outbox: the company as a Customer of type Company (legal name, tax id), a submitted Sales
    Invoice due by the payment terms and no payment yet; paying the invoice makes the Payment Entry, once."""
    from tests.integration.test_erpnext_sync import dispatch

    gql = GraphQLClient(erp_api)
    acme = await make_company(gql, tokens, shop)
    honey = await variant(owner_engine, shop, "CP-HONEY-12")
    quote = await approved_quote(gql, shop, acme, [{"variantId": honey, "quantity": 10}], honey)
    converted = (await ok(gql, "storefront/ConvertQuoteToOrder", {"id": quote["id"]}, acme.buyer,
                          shop.key))["convertQuoteToOrder"]
    order_id = from_global_id(converted["order"]["id"], "Order")[1]
    await dispatch(app_engine, erp_settings)
    customers = fake_erpnext.documents("Customer", cityos_id=f"company:{shop.tenant_id}:{acme.local}")
    assert [(c["customer_name"], c["customer_type"], c["tax_id"]) for c in customers] == [
        ("Acme Corp", "Company", "US-12-3456789")]
    invoices = fake_erpnext.documents("Sales Invoice", cityos_id=f"order:{order_id}")
    assert len(invoices) == 1 and invoices[0]["customer"] == customers[0]["name"]
    assert invoices[0]["due_date"] == converted["invoice"]["dueAt"][:10]
    assert invoices[0]["docstatus"] == 1
    assert fake_erpnext.documents("Payment Entry", cityos_id=f"payment:{order_id}") == []

    await ok(gql, "admin/PayInvoice", {"id": converted["invoice"]["id"]}, acme.staff)
    await dispatch(app_engine, erp_settings)
    await dispatch(app_engine, erp_settings)
    payments = fake_erpnext.documents("Payment Entry", cityos_id=f"payment:{order_id}")
    invoice_id = from_global_id(converted["invoice"]["id"], "Invoice")[1]
    assert [(p["reference_no"], p["references"][0]["reference_name"]) for p in payments] == [
        (f"invoice:{invoice_id}", invoices[0]["name"])]
    assert len(fake_erpnext.documents("Sales Invoice", cityos_id=f"order:{order_id}")) == 1


async def test_an_approved_quote_paid_by_card_becomes_one_order_through_checkout(
        gql: GraphQLClient, http: Any, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine,
        fake_stripe: Any) -> None:
    """The existing PaymentIntent flow, priced as quoted: the webhook settles the order and the quote is ordered;
    no credit is taken; converting it again is CONFLICT."""
    from tests.commerce_flow import send_event

    acme = await make_company(gql, tokens, shop, credit=1000)
    honey = await variant(owner_engine, shop, "CP-HONEY-12")
    quote = await approved_quote(gql, shop, acme, [{"variantId": honey, "quantity": 5}], honey)
    session = (await ok(gql, "storefront/StartQuoteCheckout", {"id": quote["id"]}, acme.buyer,
                        shop.key))["startQuoteCheckout"]
    assert session["amount"]["amount"] == 5000 + 413  # 5 × 10.00 as quoted; tax 412.5 rounds half up
    response = await send_event(http, fake_stripe, "payment_intent.succeeded",
                                fake_stripe.pay(session["paymentIntentId"]))
    assert response.status_code == 200, response.text
    read = (await ok(gql, "storefront/QuoteById", {"id": quote["id"]}, acme.buyer, shop.key))["node"]
    assert read["status"] == "ORDERED" and read["order"]["id"] == session["orderId"]
    company = (await ok(gql, "storefront/Company", {"id": acme.id}, acme.admin, shop.key))["node"]
    assert company["availableCredit"]["amount"] == 1000 and company["orders"]["totalCount"] == 1
    again = await gql(OPS["storefront/ConvertQuoteToOrder"], {"id": quote["id"]}, token=acme.buyer, key=shop.key)
    assert error_codes(again) == ["CONFLICT"]
    card_again = await gql(OPS["storefront/StartQuoteCheckout"], {"id": quote["id"]}, token=acme.buyer, key=shop.key)
    assert error_codes(card_again) == ["CONFLICT"]


async def test_company_carts_use_the_company_price_and_hold_the_buyers_limits_at_checkout(
        gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    from tests.commerce_flow import Shopper

    acme = await make_company(gql, tokens, shop, buyer_limit={"orderLimit": 30_000})
    await ok(gql, "admin/SetCompanyPriceList", {"companyId": acme.id, "input": {
        "name": "Acme contract", "currencyCode": "usd", "entries": [
            {"categoryId": await category(owner_engine, shop, "home"), "minQuantity": 10, "percentOff": "15"}]}},
        acme.staff)
    buyer = Shopper(gql, shop, acme.buyer)
    small = await buyer.ready_cart({"LU-CANDLE": 12})  # 12 × 20.40: the company's 15% beats the 10% tier
    cart = (await buyer.ok("storefront/Cart", {"id": small}))["cart"]
    assert cart["lines"][0]["unitPrice"]["amount"] == 2040 and cart["lines"][0]["listUnitPrice"]["amount"] == 2400
    retail = Shopper(gql, shop, tokens("customer", shop))
    plain = (await retail.ok("storefront/Cart", {"id": await retail.ready_cart({"LU-CANDLE": 12})}))["cart"]
    assert plain["lines"][0]["unitPrice"]["amount"] == 2160  # no company: the volume tier
    assert (await buyer.ok("storefront/StartCheckout", {"cartId": small}))["startCheckout"]["paymentIntentId"]
    large = await buyer.ready_cart({"LU-CANDLE": 20})  # 408.00 > the buyer's 300.00 per order
    refused = await buyer("storefront/StartCheckout", {"cartId": large})
    assert error_codes(refused) == ["INVALID_STATE_TRANSITION"], refused
    assert refused["errors"][0]["extensions"]["reasons"] == ["order_limit"]


async def test_listing_quotes_and_companies_costs_the_same_statements_for_one_or_many(
        server: Any, gql: GraphQLClient, tokens: Tokens, shop: TenantWorld, owner_engine: AsyncEngine) -> None:
    """N+1 guard: lines, versions, messages, users and price lists are batched per request."""
    acme = await make_company(gql, tokens, shop)
    honey = await variant(owner_engine, shop, "CP-HONEY-12")

    async def cost(name: str, token: str) -> tuple[int, int]:
        statements, checks = server.statements.count, server.services.pdp_counter.check_calls
        body = await gql(OPS[name], {"first": 50}, token=token, key=shop.key)
        assert "errors" not in body, body
        return server.statements.count - statements, server.services.pdp_counter.check_calls - checks

    async def quote() -> None:
        created = (await ok(gql, "storefront/RequestQuote", {"input": {"lines": [
            {"variantId": honey, "quantity": 2}], "message": "Hello"}}, acme.buyer, shop.key))["requestQuote"]
        await ok(gql, "vendor/RespondToQuote", {"id": created["id"], "input": {"lines": [
            {"variantId": honey, "unitPrice": 1300}], "message": "Deal"}}, acme.staff)

    await quote()
    await cost("storefront/Quotes", acme.buyer)  # warm per-process caches
    one = await cost("storefront/Quotes", acme.buyer), await cost("admin/Companies", acme.staff)
    for _ in range(4):
        await quote()
        await make_company(gql, tokens, shop, name=f"Other {uuid.uuid4().hex[:6]}")
    assert (await cost("storefront/Quotes", acme.buyer), await cost("admin/Companies", acme.staff)) == one
