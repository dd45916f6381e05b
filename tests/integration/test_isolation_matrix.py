"""Every operation in graphql/operations/, run as every role of tenant A against tenant B's objects: nothing of
B comes back and nothing of B changes. Later issues add their operations and variables here."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from cityos.auth.principal import ROLES
from cityos.graphql.core.relay import to_global_id
from cityos.seed import seed_catalog, seed_region
from tests.conftest import GraphQLClient, TenantWorld, Tokens, make_tenant
from tests.operations import all_operations

OPS = all_operations()


class Target:
    """Tenant B's objects, by global id."""

    def __init__(self, world: TenantWorld, ids: dict[str, uuid.UUID]) -> None:
        self.world = world
        self.ids = ids
        self.store = to_global_id("Store", world.store_id)
        self.tenant = to_global_id("Tenant", world.tenant_id)
        self.domain = to_global_id("StoreDomain", ids["store_domain"])
        self.key = to_global_id("PublishableApiKey", ids["publishable_api_key"])
        self.product = to_global_id("Product", ids["product"])
        self.variant = to_global_id("Variant", ids["variant"])
        self.category = to_global_id("Category", ids["category"])
        self.vendor = to_global_id("Vendor", ids["vendor"])
        self.cart = to_global_id("Cart", ids["cart"])
        self.cart_line = to_global_id("CartLine", ids["cart_line"])
        self.option = to_global_id("ShippingOption", ids["shipping_option"])
        self.region = to_global_id("Region", ids["region"]) if "region" in ids else ""
        self.channel = to_global_id("SalesChannel", ids["sales_channel"]) if "sales_channel" in ids else ""
        self.vendor_order = to_global_id("VendorOrder", ids["vendor_order"]) if "vendor_order" in ids else ""
        self.address = (to_global_id("CustomerAddress", ids["customer_address"])
                        if "customer_address" in ids else "")
        self.order = to_global_id("Order", ids["orders"])
        self.rule = to_global_id("CommissionRule", ids["commission_rule"])
        self.vendor_user = to_global_id("VendorUser", ids["vendor_user"])
        self.outbox = to_global_id("OutboxMessage", ids["outbox"])
        # Checkout attempts and webhook events exist in the matrix's B (other users of Target may omit them).
        self.attempt = to_global_id("CheckoutAttempt", ids["checkout_attempt"]) if "checkout_attempt" in ids else ""
        self.webhook = to_global_id("WebhookEvent", ids["webhook_inbox"]) if "webhook_inbox" in ids else ""
        self.job_run = to_global_id("JobRun", ids["job_run"]) if "job_run" in ids else ""
        self.plan = to_global_id("SubscriptionPlan", ids["subscription_plan"]) if "subscription_plan" in ids else ""
        self.subscription = (to_global_id("CustomerSubscription", ids["customer_subscription"])
                             if "customer_subscription" in ids else "")
        self.refund = to_global_id("Refund", ids["refund"]) if "refund" in ids else ""
        self.order_return = to_global_id("Return", ids["order_return"]) if "order_return" in ids else ""
        self.order_line = to_global_id("OrderLine", ids["order_line"]) if "order_line" in ids else ""
        self.vendor_order = to_global_id("VendorOrder", ids["vendor_order"]) if "vendor_order" in ids else ""
        b2b = {key: ids.get(key) for key in ("company", "company_user", "price_list", "quote", "approval_request",
                                             "invoice", "company_invitation")}
        self.company = to_global_id("Company", b2b["company"]) if b2b["company"] else ""
        self.company_user = to_global_id("CompanyUser", b2b["company_user"]) if b2b["company_user"] else ""
        self.price_list = to_global_id("PriceList", b2b["price_list"]) if b2b["price_list"] else ""
        self.quote = to_global_id("Quote", b2b["quote"]) if b2b["quote"] else ""
        self.approval = to_global_id("ApprovalRequest", b2b["approval_request"]) if b2b["approval_request"] else ""
        self.invoice = to_global_id("Invoice", b2b["invoice"]) if b2b["invoice"] else ""
        self.promotion = to_global_id("Promotion", ids["promotion"]) if "promotion" in ids else ""
        self.invitation = (to_global_id("CompanyInvitation", b2b["company_invitation"])
                           if b2b["company_invitation"] else "")

    def secrets(self) -> list[str]:
        """Strings that must never appear in A's responses (A has no catalog of its own: SKUs and titles of
        the seeded catalog are B's)."""
        w = self.world
        found = [self.store, self.tenant, self.domain, self.key, self.product, self.variant, self.category,
                 self.vendor, self.cart, self.cart_line, self.order, self.rule, self.vendor_user, self.outbox,
                 self.attempt, self.webhook, self.job_run, self.plan, self.subscription, self.region,
                 self.channel, self.vendor_order, self.address, "Tenant B dock street", *self.company_secrets(),
                 self.refund, self.order_return, self.order_line, "re_tenant_b", "tr_tenant_b_debt",
                 "tenant b wants a refund", "audit_tenant_b", "pi_tenant_b_attempt",
                 "evt_tenant_b_failed", "jobrun_tenant_b", "Tenant B tee club", "cus_tenant_b", "pi_tenant_b_renewal",
                 "b-subscriber@example.com",
                 "b-customer@example.com", "acct_tenant_b", "seller@b.example", self.promotion, "TENANTBSECRET",
                 "Tenant B promo", "Tenant B automatic promo",
                 *(str(value) for value in self.ids.values()), str(w.store_id), str(w.tenant_id),
                 w.slug, w.domain, f"Store 0 of {w.slug}", "NW-TEE-S", "Merino Tee", "Northwind Outfitters",
                 "Apparel"]
        return [secret for secret in found if secret]

    def company_secrets(self) -> list[str]:
        """What only B's company Acme (its users, approvers and the tenant's staff) may see: checked against B's
        other company, Globex, too."""
        found = [self.company, self.company_user, self.price_list, self.quote, self.approval, self.invoice,
                 self.invitation,
                 "Tenant B Industries", "TAX-TENANT-B", "b-acme-buyer", "b-acme-admin", "Tenant B contract",
                 "Tenant B secret message", "Tenant B approval comment",
                 *(str(self.ids[key]) for key in ("company", "company_user", "price_list", "quote",
                                                  "approval_request", "invoice", "company_order",
                                                  "company_invitation") if key in self.ids)]
        return [secret for secret in found if secret]


# How each operation is aimed at B. Every operation file must be listed (a test checks it).
VARIABLES: dict[str, Callable[[Target], dict[str, Any]]] = {
    "storefront/CurrentStore": lambda b: {},
    "storefront/StoreById": lambda b: {"id": b.store},
    "storefront/NodeById": lambda b: {"id": b.store},
    "storefront/TenantRegions": lambda b: {"id": b.tenant},
    "admin/Stores": lambda b: {"first": 100},
    "admin/Nodes": lambda b: {"ids": [b.store, b.tenant, b.domain, b.key]},
    "admin/CreateTenant": lambda b: {"input": {"slug": f"m-{uuid.uuid4().hex[:10]}", "name": "Matrix"}},
    "admin/CreateStore": lambda b: {"input": {"handle": f"m-{uuid.uuid4().hex[:10]}", "name": "Matrix"}},
    "admin/UpdateStore": lambda b: {"id": b.store, "input": {"name": "Taken over"}},
    "admin/AddStoreDomain": lambda b: {"storeId": b.store, "domain": f"m{uuid.uuid4().hex[:8]}.example.com"},
    "admin/RemoveStoreDomain": lambda b: {"id": b.domain},
    "admin/CreatePublishableKey": lambda b: {"storeId": b.store, "title": "Stolen"},
    "admin/RevokePublishableKey": lambda b: {"id": b.key},
    "vendor/VendorStores": lambda b: {},
    "storefront/Products": lambda b: {"first": 100},
    "storefront/ProductByHandle": lambda b: {"handle": "merino-tee", "storeId": b.store},
    "storefront/Categories": lambda b: {"storeId": b.store},
    "admin/CreateProduct": lambda b: {"input": {"storeId": b.store, "handle": f"m-{uuid.uuid4().hex[:8]}",
                                                "title": "Matrix", "vendorId": b.vendor}},
    "admin/UpdateProduct": lambda b: {"id": b.product, "input": {"title": "Taken over", "status": "ARCHIVED"}},
    "admin/CreateVariant": lambda b: {"productId": b.product, "input": {"sku": f"M-{uuid.uuid4().hex[:8]}",
                                                                        "title": "Matrix"}},
    "admin/UpdateVariant": lambda b: {"id": b.variant, "input": {"inventoryQuantity": 0}},
    "admin/SetVariantPrices": lambda b: {"variantId": b.variant, "prices": [{"amount": 1, "currencyCode": "usd"}]},
    "admin/SetPriceTiers": lambda b: {"currencyCode": "usd", "tiers": [], "productId": b.product},
    "admin/CreateCategory": lambda b: {"input": {"storeId": b.store, "handle": f"m-{uuid.uuid4().hex[:8]}",
                                                 "name": "Matrix", "parentId": b.category}},
    "vendor/VendorProducts": lambda b: {"storeId": b.store},
    "admin/UpdateCategory": lambda b: {"id": b.category, "input": {"name": "Taken over", "parentId": None}},
    "storefront/CreateCart": lambda b: {},
    "storefront/Cart": lambda b: {"id": b.cart},
    "storefront/AddCartLine": lambda b: {"cartId": b.cart, "variantId": b.variant, "quantity": 1},
    "storefront/UpdateCartLine": lambda b: {"cartId": b.cart, "lineId": b.cart_line, "quantity": 2},
    "storefront/RemoveCartLine": lambda b: {"cartId": b.cart, "lineId": b.cart_line},
    "storefront/SetCartEmail": lambda b: {"cartId": b.cart, "email": "thief@example.com"},
    "storefront/SetShippingAddress": lambda b: {"cartId": b.cart, "address": {
        "firstName": "T", "lastName": "T", "address1": "1 Main St", "city": "Austin", "province": "TX",
        "postalCode": "73301", "countryCode": "US"}},
    "storefront/SetShippingOption": lambda b: {"cartId": b.cart, "shippingOptionId": b.option},
    "storefront/StartCheckout": lambda b: {"cartId": b.cart},
    "storefront/CompleteCheckout": lambda b: {"cartId": b.cart, "accessToken": B_ORDER_TOKEN},
    "storefront/OrderByAccessToken": lambda b: {"id": b.order, "accessToken": B_ORDER_TOKEN},
    "storefront/MyOrders": lambda b: {},
    "admin/OrderById": lambda b: {"id": b.order},
    "admin/StoreOrders": lambda b: {"first": 100},
    "admin/UpdateOrderStatus": lambda b: {"id": b.order, "status": "CANCELED"},
    "vendor/VendorOrders": lambda b: {"first": 100},
    "admin/Vendors": lambda b: {"first": 100},
    "admin/CreateVendor": lambda b: {"input": {"storeId": b.store, "handle": f"m-{uuid.uuid4().hex[:8]}",
                                               "name": "Matrix"}},
    "admin/UpdateVendor": lambda b: {"id": b.vendor, "input": {"name": "Taken over", "status": "SUSPENDED"}},
    "admin/CommissionRules": lambda b: {"first": 100},
    "admin/CreateCommissionRule": lambda b: {"input": {"scope": "vendor", "scopeId": b.vendor, "percentage": "0"}},
    "admin/UpdateCommissionRule": lambda b: {"id": b.rule, "input": {"scope": "tenant", "percentage": "0"}},
    "admin/DeleteCommissionRule": lambda b: {"id": b.rule},
    "vendor/VendorAccount": lambda b: {"id": b.vendor},
    "vendor/InviteVendorUser": lambda b: {"vendorId": b.vendor, "role": "vendor_admin", "email": "m@example.com"},
    "vendor/RemoveVendorUser": lambda b: {"vendorId": b.vendor, "id": b.vendor_user},
    "vendor/LedgerEntries": lambda b: {"vendorId": b.vendor},
    "vendor/Payouts": lambda b: {"vendorId": b.vendor},
    "vendor/StartVendorOnboarding": lambda b: {"vendorId": b.vendor},
    "vendor/RefreshVendorOnboarding": lambda b: {"vendorId": b.vendor},
    "vendor/StripeConnectAuthorizeUrl": lambda b: {"vendorId": b.vendor},
    "vendor/CompleteStripeConnect": lambda b: {"code": "ac_matrix", "state": "forged.state"},
    "admin/OutboxMessages": lambda b: {"first": 100},
    "admin/RetryOutboxMessage": lambda b: {"id": b.outbox},
    "admin/WebhookEvents": lambda b: {"first": 100},
    "admin/ReplayWebhookEvent": lambda b: {"id": b.webhook},
    "admin/CheckoutAttempts": lambda b: {"first": 100},
    "admin/JobRuns": lambda b: {"first": 100},
    "admin/SubscriptionPlans": lambda b: {"storeId": b.store, "first": 100},
    "admin/CreateSubscriptionPlan": lambda b: {"input": {"variantId": b.variant, "name": "Matrix", "interval": "DAY",
                                                         "prices": [{"currencyCode": "usd", "amount": 1}]}},
    "admin/UpdateSubscriptionPlan": lambda b: {"id": b.plan, "input": {"name": "Taken over", "trialDays": 0,
                                                                       "prices": [{"currencyCode": "usd",
                                                                                   "amount": 1}]}},
    "admin/ArchiveSubscriptionPlan": lambda b: {"id": b.plan},
    "storefront/AddSubscriptionToCart": lambda b: {"cartId": b.cart, "planId": b.plan, "quantity": 1},
    "storefront/Subscribe": lambda b: {"input": {"planId": b.plan, "currencyCode": "usd",
                                                 "paymentMethodId": "pm_card_visa"}},
    "storefront/CustomerSubscriptions": lambda b: {"first": 100},
    "storefront/MySubscriptions": lambda b: {"first": 100},
    "storefront/CancelCustomerSubscription": lambda b: {"id": b.subscription},
    "storefront/PauseCustomerSubscription": lambda b: {"id": b.subscription},
    "storefront/ResumeCustomerSubscription": lambda b: {"id": b.subscription},
    "storefront/SkipNextBillingCycle": lambda b: {"id": b.subscription},
    "storefront/ChangeSubscriptionPlan": lambda b: {"id": b.subscription, "planId": b.plan},
    "storefront/UpdateSubscriptionPaymentMethod": lambda b: {"id": b.subscription, "paymentMethodId": "pm_card_visa"},
    "storefront/ConfirmSubscriptionPayment": lambda b: {"id": b.subscription},
    "admin/AdminCustomerSubscriptions": lambda b: {"planId": b.plan, "vendorId": b.vendor, "first": 100},
    "admin/DunningPolicy": lambda b: {},
    "admin/SetDunningPolicy": lambda b: {"retryDays": [2], "finalAction": "PAUSE"},
    "vendor/VendorSubscriptions": lambda b: {"planId": b.plan, "first": 100},
    "admin/CreateRegion": lambda b: {"input": {"name": f"m-{uuid.uuid4().hex[:8]}", "currencyCode": "usd",
                                               "countryCodes": ["us"]}},
    "admin/UpdateRegion": lambda b: {"id": b.region, "input": {"taxRate": "0.5", "name": "Taken over"}},
    "admin/RegionSetup": lambda b: {"id": b.tenant},
    "admin/Regions": lambda b: {"first": 20},
    "admin/CreateShippingOption": lambda b: {"input": {"regionId": b.region, "code": "matrix", "name": "Matrix",
                                                       "amount": {"amount": 1, "currencyCode": "usd"},
                                                       "vendorId": b.vendor}},
    "admin/UpdateShippingOption": lambda b: {"id": b.option, "input": {"isActive": False,
                                                                       "amount": {"amount": 1, "currencyCode": "usd"}}},
    "admin/SalesChannels": lambda b: {"storeId": b.store},
    "admin/CreateSalesChannel": lambda b: {"input": {"storeId": b.store, "name": "Matrix", "isDefault": True}},
    "admin/UpdateSalesChannel": lambda b: {"id": b.channel, "input": {"name": "Taken over", "isDefault": True}},
    "admin/OrderFulfillment": lambda b: {"id": b.order},
    "vendor/SetVendorPickupAddress": lambda b: {"vendorId": b.vendor, "address": {
        "address1": "1 Main St", "city": "Austin", "postalCode": "73301", "countryCode": "US"}},
    "vendor/UpdateVendorOrderFulfillment": lambda b: {"id": b.vendor_order, "status": "SHIPPED", "carrier": "ups",
                                                      "trackingNumber": "1Z-MATRIX"},
    "vendor/RequestVendorOrderPickup": lambda b: {"id": b.vendor_order},
    "storefront/Me": lambda b: {"first": 100},
    "storefront/UpdateMyProfile": lambda b: {"input": {"firstName": "Thief"}},
    "storefront/AddMyAddress": lambda b: {"input": {"address": {
        "firstName": "T", "lastName": "T", "address1": "1 Main St", "city": "Austin", "province": "TX",
        "postalCode": "73301", "countryCode": "US"}}},
    "storefront/UpdateMyAddress": lambda b: {"id": b.address, "input": {"label": "Taken over", "isDefault": True}},
    "storefront/RemoveMyAddress": lambda b: {"id": b.address},
    "storefront/Reorder": lambda b: {"orderId": b.order},
    "storefront/ClaimGuestOrders": lambda b: {},
    "admin/RefundOrder": lambda b: {"orderId": b.order, "input": {
        "lines": [{"lineId": b.order_line, "quantity": 1, "restock": True}], "refundShipping": True}},
    "vendor/RefundVendorOrder": lambda b: {"vendorOrderId": b.vendor_order, "input": {
        "lines": [{"lineId": b.order_line, "quantity": 1}]}},
    "admin/Refunds": lambda b: {"orderId": b.order, "first": 100},
    "admin/VendorDebts": lambda b: {"vendorId": b.vendor, "first": 100},
    "vendor/OwnDebts": lambda b: {"first": 100},
    "storefront/RequestReturn": lambda b: {"orderId": b.order, "lines": [{"lineId": b.order_line, "quantity": 1}],
                                           "reason": "stolen"},
    "admin/ApproveReturn": lambda b: {"id": b.order_return, "note": "taken over"},
    "admin/RejectReturn": lambda b: {"id": b.order_return, "note": "taken over"},
    "admin/ReceiveReturn": lambda b: {"id": b.order_return, "lines": [{"lineId": b.order_line, "restock": False}]},
    "admin/Returns": lambda b: {"orderId": b.order, "first": 100},
    "admin/AuditLog": lambda b: {"entityKind": "product", "first": 100},
    "admin/CreateCompany": lambda b: {"input": {"legalName": "Matrix", "currencyCode": "usd", "storeId": b.store}},
    "admin/UpdateCompany": lambda b: {"id": b.company, "input": {"creditLimit": 0, "status": "SUSPENDED"}},
    "admin/Companies": lambda b: {"first": 100},
    "admin/SetCompanyPriceList": lambda b: {"companyId": b.company, "input": {
        "name": "Stolen", "currencyCode": "usd", "entries": [{"variantId": b.variant, "unitAmount": 1}]}},
    "admin/PayInvoice": lambda b: {"id": b.invoice},
    "admin/Invoices": lambda b: {"first": 100},
    "storefront/Company": lambda b: {"id": b.company},
    "storefront/InviteCompanyUser": lambda b: {"companyId": b.company, "input": {
        "customerId": "intruder", "email": "intruder@example.com", "role": "COMPANY_ADMIN"}},
    "storefront/RemoveCompanyUser": lambda b: {"id": b.company_user},
    "storefront/SetSpendingLimit": lambda b: {"id": b.company_user, "input": {"orderLimit": 999_999_999}},
    "storefront/SetApprovalRule": lambda b: {"companyId": b.company, "input": {"minAmount": 0, "levels": [
        {"mode": "ANY", "userIds": ["intruder"]}]}},
    "storefront/RequestQuote": lambda b: {"input": {"cartId": b.cart, "lines": [{"variantId": b.variant,
                                                                                  "quantity": 1}]}},
    "storefront/CounterQuote": lambda b: {"id": b.quote, "input": {"lines": [{"variantId": b.variant,
                                                                              "unitPrice": 1}]}},
    "vendor/RespondToQuote": lambda b: {"id": b.quote, "input": {"lines": [{"variantId": b.variant,
                                                                            "unitPrice": 1}]}},
    "storefront/AddQuoteMessage": lambda b: {"id": b.quote, "body": "intrusion"},
    "storefront/AcceptQuote": lambda b: {"id": b.quote, "version": 2},
    "storefront/ConvertQuoteToOrder": lambda b: {"id": b.quote},
    "storefront/StartQuoteCheckout": lambda b: {"id": b.quote},
    "storefront/Quotes": lambda b: {"first": 100},
    "storefront/QuoteById": lambda b: {"id": b.quote},
    "storefront/ApprovalRequests": lambda b: {"first": 100},
    "storefront/DecideApproval": lambda b: {"id": b.approval, "level": 0, "decision": "APPROVE"},
    "admin/Promotions": lambda b: {"storeId": b.store, "first": 100},
    "admin/CreatePromotion": lambda b: {"input": {"storeId": b.store, "name": "Matrix", "action": "ORDER_PERCENT",
                                                  "percent": "10", "vendorId": b.vendor, "code": "MATRIX"}},
    "admin/UpdatePromotion": lambda b: {"id": b.promotion, "input": {"name": "Taken over", "percent": "99"}},
    "admin/ApprovePromotion": lambda b: {"id": b.promotion},
    "admin/ArchivePromotion": lambda b: {"id": b.promotion},
    "admin/DeletePromotion": lambda b: {"id": b.promotion},
    "admin/PromotionReport": lambda b: {"id": b.promotion},
    "admin/PromotionSettings": lambda b: {"storeId": b.store},
    "admin/SetPromotionSettings": lambda b: {"storeId": b.store, "vendorApprovalRequired": False},
    "vendor/VendorPromotions": lambda b: {"vendorId": b.vendor, "first": 100},
    "storefront/ApplyPromotionCode": lambda b: {"cartId": b.cart, "code": "TENANTBSECRET"},
    "storefront/RemovePromotionCode": lambda b: {"cartId": b.cart, "code": "TENANTBSECRET"},
    "storefront/CartPromotions": lambda b: {"id": b.cart},
    "storefront/ApplySubscriptionPromotion": lambda b: {"subscriptionId": b.subscription, "code": "TENANTBSECRET"},
    "storefront/StorePromotions": lambda b: {"first": 100},
    "admin/SetCompanyStores": lambda b: {"companyId": b.company, "storeIds": [b.store]},
    "storefront/PlaceCompanyOrder": lambda b: {"cartId": b.cart, "paymentMethod": "ON_ACCOUNT"},
    "storefront/InviteCompanyUserByEmail": lambda b: {"companyId": b.company, "input": {
        "email": "intruder@example.com", "role": "COMPANY_ADMIN"}},
    "storefront/RevokeCompanyInvitation": lambda b: {"id": b.invitation},
    "storefront/AcceptCompanyInvitation": lambda b: {"token": B_INVITATION_TOKEN},
}

SNAPSHOT_TABLES = ("store", "store_domain", "publishable_api_key", "sales_channel", "region", "region_state",
                   "vendor", "category",
                   "product", "product_category", "variant", "variant_price", "price_tier", "shipping_option",
                   "cart", "cart_line", "inventory_reservation", "orders", "vendor_order", "order_line",
                   "vendor_user", "commission_rule", "commission_transaction", "payout", "outbox",
                   "checkout_attempt", "webhook_inbox", "job_run", "subscription_plan", "subscription_plan_price",
                   "customer_subscription", "billing_cycle", "billing_attempt", "billing_settings",
                   "customer_profile", "customer_address", "company",
                   "company_user", "price_list", "price_list_entry", "quote", "quote_line", "quote_version",
                   "quote_message", "approval_rule", "approval_request", "approval_step", "invoice", "refund",
                   "refund_line", "refund_transfer_reversal", "order_return", "return_line", "audit_log",
                   "promotion", "promotion_settings", "cart_promotion", "promotion_redemption",
                   "order_line_promotion", "subscription_promotion", "company_invitation", "company_store")
B_SNAPSHOT = "select (select json_agg(t) from tenant t where id = :t)::text, " + ", ".join(
    f"(select json_agg(x order by x::text) from {table} x where tenant_id = :t)::text" for table in SNAPSHOT_TABLES)


# B's invitation into its company Acme (sent to an email every role of A's tokens may carry): only its hash is stored.
B_INVITATION_TOKEN = "inv_tenant_b_invitation_token"
# B's guest order can be read with this order access token (its SHA-256 is stored); A's roles present it too.
B_ORDER_TOKEN = "oat_tenant_b_order_access_token"

# B's customer has a cart with a line and a paid order (written directly: the flow itself is tested elsewhere).
B_CART_AND_ORDER = """
with region as (select id from region where tenant_id = :t limit 1),
variant as (select id from variant where tenant_id = :t and sku = 'NW-TEE-S'),
cart as (
  insert into cart (tenant_id, id, store_id, region_id, currency_code, customer_id, email)
  select :t, gen_random_uuid(), :s, region.id, 'usd', 'b-customer', 'b-customer@example.com' from region
  returning id),
line as (
  insert into cart_line (tenant_id, id, cart_id, variant_id, quantity)
  select :t, gen_random_uuid(), cart.id, variant.id, 1 from cart, variant returning id),
paid as (
  insert into orders (tenant_id, id, store_id, cart_id, customer_id, email, currency_code, status, subtotal,
                      discount_total, shipping_total, tax_total, total, payment_intent_id, shipping_address,
                      shipping_option_code)
  select :t, gen_random_uuid(), :s, gen_random_uuid(), 'b-customer', 'b-customer@example.com', 'usd', 'paid',
         4500, 0, 500, 0, 5000, 'pi_' || md5(random()::text), '{}'::jsonb, 'standard'
  returning id)
insert into vendor_order (tenant_id, id, order_id, store_id, vendor_id, status, subtotal, discount_total,
                          shipping_total, tax_total, total)
select :t, gen_random_uuid(), paid.id, :s, v.id, 'paid', 4500, 0, 500, 0, 5000
from paid, vendor v where v.tenant_id = :t and v.handle = 'northwind-outfitters'
"""


# B's order is readable with an order access token; its cart has a refunded checkout; a Stripe event failed.
B_CHECKOUT = """
with guest_order as (update orders set access_token_hash = :token_hash where tenant_id = :t returning id)
insert into checkout_attempt (tenant_id, id, cart_id, store_id, customer_id, payment_intent_id, fingerprint, amount,
                              currency_code, snapshot, status, reason)
select :t, gen_random_uuid(), cart.id, :s, 'b-customer', 'pi_tenant_b_attempt', 'f', 5000, 'usd', '{}'::jsonb,
       'refund_pending', 'b-customer@example.com paid a superseded checkout' from cart where cart.tenant_id = :t
"""


# B's vendor is connected to Stripe, has a user, a vendor commission rule, a sale in the ledger and a payout.
B_MARKETPLACE = """
with vendor as (
  update vendor set stripe_account_id = 'acct_tenant_b_' || left(md5(cast(:t as text)), 6), status = 'active',
         payouts_enabled = true, contact_email = 'seller@b.example'
  where tenant_id = :t and handle = 'northwind-outfitters' returning id),
rule as (
  insert into commission_rule (tenant_id, id, scope, scope_id, percentage)
  select :t, gen_random_uuid(), 'vendor', vendor.id, 7 from vendor returning id),
member as (
  insert into vendor_user (tenant_id, id, vendor_id, email, role, status)
  select :t, gen_random_uuid(), vendor.id, 'seller@b.example', 'vendor_admin', 'active' from vendor returning id),
entry as (
  insert into commission_transaction (tenant_id, id, vendor_id, order_id, vendor_order_id, order_line_id, kind,
                                      currency_code, line_amount, commission_amount, vendor_amount, available_at)
  select :t, gen_random_uuid(), vendor.id, gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'sale', 'usd',
         4500, 315, 4185, now() from vendor returning id, vendor_id)
insert into payout (tenant_id, id, vendor_id, amount, currency_code, status, destination, stripe_transfer_id)
select :t, gen_random_uuid(), entry.vendor_id, 4185, 'usd', 'paid', 'acct_tenant_b', 'tr_tenant_b_' || entry.id
from entry
"""


# B's vendor sells a plan for its tee; B's customer subscribes to it and has a paid renewal.
B_BILLING = """
with plan as (
  insert into subscription_plan (tenant_id, id, store_id, product_id, variant_id, vendor_id, name, interval,
                                 interval_count, trial_days, status)
  select :t, gen_random_uuid(), :s, p.id, v.id, p.vendor_id, 'Tenant B tee club', 'month', 1, 0, 'active'
  from variant v join product p on p.id = v.product_id and p.tenant_id = v.tenant_id
  where v.tenant_id = :t and v.sku = 'NW-TEE-S' returning id, vendor_id),
price as (
  insert into subscription_plan_price (tenant_id, id, plan_id, currency_code, amount, setup_fee)
  select :t, gen_random_uuid(), plan.id, 'usd', 2500, 0 from plan returning id),
sub as (
  insert into customer_subscription (tenant_id, id, store_id, plan_id, vendor_id, customer_id, email, currency_code,
                                     amount, status, anchor, periods_billed, current_period_start, current_period_end,
                                     stripe_customer_id, stripe_payment_method_id)
  select :t, gen_random_uuid(), :s, plan.id, plan.vendor_id, 'b-customer', 'b-subscriber@example.com', 'usd', 2500,
         'active', now() - interval '1 month', 1, now(), now() + interval '1 month', 'cus_tenant_b', 'pm_tenant_b'
  from plan returning id)
insert into billing_cycle (tenant_id, id, subscription_id, period_index, period_start, period_end, amount,
                           currency_code, status, attempts, payment_intent_id)
select :t, gen_random_uuid(), sub.id, 0, now(), now() + interval '1 month', 2500, 'usd', 'paid', 1,
       'pi_tenant_b_renewal' from sub
"""

# B's renewal has a recorded attempt, and B has a dunning policy of its own.
B_DUNNING = """
with attempt as (
  insert into billing_attempt (tenant_id, id, cycle_id, subscription_id, attempt, source, payment_intent_id, amount,
                               outcome)
  select :t, gen_random_uuid(), c.id, c.subscription_id, 1, 'renewal', 'pi_tenant_b_renewal', 2500, 'succeeded'
  from billing_cycle c where c.tenant_id = :t returning id)
insert into billing_settings (tenant_id, id, retry_days, final_action) values (:t, gen_random_uuid(), '{5,9}', 'cancel')
"""


# B's customer has a profile and a saved address; B's vendor a pickup address.
B_CUSTOMER = """
with profile as (
  insert into customer_profile (tenant_id, id, customer_id, email, first_name, phone)
  values (:t, gen_random_uuid(), 'b-customer', 'b-customer@example.com', 'Bea', '+1 555 0100') returning id),
pickup as (
  update vendor set pickup_address = '{"address_1": "Tenant B dock street", "city": "Austin",
                                       "postal_code": "73301", "country_code": "us"}'::jsonb
  where tenant_id = :t and handle = 'northwind-outfitters' returning id)
insert into customer_address (tenant_id, id, customer_id, label, address, is_default)
select :t, gen_random_uuid(), 'b-customer', 'Tenant B dock street home',
       '{"first_name": "Bea", "last_name": "B", "address_1": "Tenant B dock street", "city": "Austin",
         "province": "US-TX", "postal_code": "73301", "country_code": "us"}'::jsonb, true
from profile, pickup
"""


# B's order has a line, a partial refund of it (and a vendor debt from it) and an open return of it; B's audit log
# has an entry.
B_REFUNDS = """
with line as (
  insert into order_line (tenant_id, id, order_id, vendor_order_id, variant_id, product_id, vendor_id, sku, title,
                          quantity, list_unit_price, unit_price, subtotal, discount_total, total)
  select :t, gen_random_uuid(), vo.order_id, vo.id, v.id, v.product_id, vo.vendor_id, 'NW-TEE-S', 'Merino Tee', 3,
         1500, 1500, 4500, 0, 4500
  from vendor_order vo, variant v where vo.tenant_id = :t and v.tenant_id = :t and v.sku = 'NW-TEE-S'
  returning id, order_id),
refund as (
  insert into refund (tenant_id, id, order_id, store_id, currency_code, amount, reason, status, stripe_refund_id,
                      ledger_recorded, requested_by)
  select :t, gen_random_uuid(), line.order_id, :s, 'usd', 1500, 'requested_by_customer', 'succeeded',
         're_tenant_b_' || left(md5(cast(:t as text)), 8), true, 'b-admin' from line returning id),
refunded as (
  insert into refund_line (tenant_id, id, refund_id, order_line_id, first_unit, quantity, amount, tax_amount)
  select :t, gen_random_uuid(), refund.id, line.id, 0, 1, 1500, 0 from refund, line returning id),
debt as (
  insert into refund_transfer_reversal (tenant_id, id, refund_id, vendor_id, payout_id, stripe_transfer_id, amount,
                                        currency_code, status, failure_reason)
  select :t, gen_random_uuid(), refund.id, vendor.id, gen_random_uuid(), 'tr_tenant_b_debt', 1400, 'usd', 'debt',
         'tenant_b balance_insufficient'
  from refund, vendor where vendor.tenant_id = :t and vendor.handle = 'northwind-outfitters' returning id),
asked as (
  insert into order_return (tenant_id, id, order_id, store_id, customer_id, status, reason, requested_by)
  select :t, gen_random_uuid(), line.order_id, :s, 'b-customer', 'requested', 'tenant b wants a refund',
         'b-customer' from line returning id)
insert into return_line (tenant_id, id, return_id, order_line_id, quantity)
select :t, gen_random_uuid(), asked.id, line.id, 1 from asked, line
"""
B_AUDIT = """
insert into audit_log (id, tenant_id, actor, action, target_kind, target_id, operation, before, after, request_id)
values (gen_random_uuid(), :t, 'audit_tenant_b admin', 'updateProduct', 'product', 'audit_tenant_b product', 'update',
        '{"title": "audit_tenant_b before"}', '{"title": "audit_tenant_b after"}', 'audit_tenant_b request')
"""
# B's promotions: a code (pending approval: a vendor's, in a store that approves them) applied to B's cart and
# carried by B's subscription, an automatic one; the store's setting; a redemption by B's order.
B_PROMOTIONS = """
with vendor as (select id from vendor where tenant_id = :t and handle = 'northwind-outfitters'),
coded as (
  insert into promotion (tenant_id, id, store_id, vendor_id, name, code, status, action, percent, funding,
                         vendor_share_percent, usage_limit, times_used)
  select :t, gen_random_uuid(), :s, vendor.id, 'Tenant B promo', 'TENANTBSECRET', 'pending_approval',
         'order_percent', 10, 'vendor', 100, 5, 1 from vendor returning id),
automatic as (
  insert into promotion (tenant_id, id, store_id, name, status, action, percent, conditions)
  values (:t, gen_random_uuid(), :s, 'Tenant B automatic promo', 'active', 'order_percent', 5,
          '{"min_subtotal": 99999999}'::jsonb) returning id),
settings as (
  insert into promotion_settings (tenant_id, id, store_id, vendor_approval_required)
  values (:t, gen_random_uuid(), :s, true) returning id),
applied as (
  insert into cart_promotion (tenant_id, id, cart_id, promotion_id, code)
  select :t, gen_random_uuid(), cart.id, coded.id, 'TENANTBSECRET'
  from coded, (select id from cart where tenant_id = :t and company_id is null) cart returning id),
carried as (
  insert into subscription_promotion (tenant_id, id, subscription_id, promotion_id, cycles)
  select :t, gen_random_uuid(), sub.id, coded.id, 3
  from coded, (select id from customer_subscription where tenant_id = :t limit 1) sub returning id)
insert into promotion_redemption (tenant_id, id, promotion_id, order_id, customer_key, currency_code, amount,
                                  order_total)
select :t, gen_random_uuid(), coded.id, o.id, 'b-customer', 'usd', 450, 4550
from coded, (select id from orders where tenant_id = :t and company_id is null) o
"""
# B sells to two companies. Acme (its buyer has a quote answered by the store and accepted, now waiting for an
# approver; a price list; an order on account with its open invoice) and Globex (a company admin and a buyer,
# the matrix's "another company in the same tenant").
B_B2B = """
with acme as (
  insert into company (tenant_id, id, legal_name, tax_id, currency_code, credit_limit, credit_used, payment_terms)
  values (:t, gen_random_uuid(), 'Tenant B Industries', 'TAX-TENANT-B', 'usd', 900000, 5000, 'net30') returning id),
globex as (
  insert into company (tenant_id, id, legal_name, currency_code, credit_limit, payment_terms)
  values (:t, :globex, 'Globex of B', 'usd', 100000, 'net15') returning id),
members as (
  insert into company_user (tenant_id, id, company_id, customer_id, email, role, order_limit)
  select :t, gen_random_uuid(), acme.id, 'b-acme-buyer', 'b-acme-buyer@b.example', 'company_buyer', 10000 from acme
  union all
  select :t, gen_random_uuid(), acme.id, 'b-acme-admin', 'b-acme-admin@b.example', 'company_admin', null from acme
  union all
  select :t, gen_random_uuid(), globex.id, 'b-globex-admin', 'g-admin@b.example', 'company_admin', null from globex
  union all
  select :t, gen_random_uuid(), globex.id, 'b-globex-buyer', 'g-buyer@b.example', 'company_buyer', null from globex
  returning id),
variant as (select v.id, v.product_id, p.vendor_id from variant v join product p on p.id = v.product_id
            and p.tenant_id = v.tenant_id where v.tenant_id = :t and v.sku = 'NW-TEE-S'),
plist as (
  insert into price_list (tenant_id, id, company_id, name, currency_code)
  select :t, gen_random_uuid(), acme.id, 'Tenant B contract', 'usd' from acme returning id),
entry as (
  insert into price_list_entry (tenant_id, id, price_list_id, variant_id, min_quantity, unit_amount)
  select :t, gen_random_uuid(), plist.id, variant.id, 1, 4000 from plist, variant returning id),
cart as (
  insert into cart (tenant_id, id, store_id, region_id, currency_code, customer_id, email, company_id)
  select :t, gen_random_uuid(), :s, r.id, 'usd', 'b-acme-buyer', 'b-acme-buyer@b.example', acme.id
  from acme, (select id from region where tenant_id = :t limit 1) r returning id),
quote as (
  insert into quote (tenant_id, id, company_id, store_id, cart_id, buyer_id, vendor_ids, currency_code, status,
                     version, accepted_version, accepted_total, accepted_at, valid_until)
  select :t, gen_random_uuid(), acme.id, :s, cart.id, 'b-acme-buyer', variant.vendor_id::text, 'usd',
         'pending_approval', 2, 2, 36000, now(), now() + interval '30 days' from acme, cart, variant returning id),
line as (
  insert into quote_line (tenant_id, id, quote_id, variant_id, product_id, vendor_id, sku, title, quantity,
                          list_unit_price, unit_price)
  select :t, gen_random_uuid(), quote.id, variant.id, variant.product_id, variant.vendor_id, 'NW-TEE-S',
         'Merino Tee — Small', 10, 4500, 3600 from quote, variant returning id),
versions as (
  insert into quote_version (tenant_id, id, quote_id, number, author_id, author_kind, lines, changes, total,
                             valid_until)
  select :t, gen_random_uuid(), quote.id, n, case n when 1 then 'b-acme-buyer' else 'b-store-admin' end,
         case n when 1 then 'buyer' else 'store' end,
         jsonb_build_array(jsonb_build_object('variant_id', variant.id, 'product_id', variant.product_id,
                           'vendor_id', variant.vendor_id, 'sku', 'NW-TEE-S', 'title', 'Merino Tee — Small',
                           'quantity', 10, 'list_unit_price', 4500, 'unit_price', case n when 1 then 4000 else 3600
                           end)), '[]'::jsonb, case n when 1 then 40000 else 36000 end, now() + interval '30 days'
  from quote, variant, generate_series(1, 2) n returning id),
message as (
  insert into quote_message (tenant_id, id, quote_id, author_id, author_kind, body)
  select :t, gen_random_uuid(), quote.id, 'b-acme-buyer', 'buyer', 'Tenant B secret message' from quote
  returning id),
rule as (
  insert into approval_rule (tenant_id, id, company_id, min_amount, levels)
  select :t, gen_random_uuid(), acme.id, 0, '[{"mode": "any", "roles": ["company_admin"], "users": []}]'::jsonb
  from acme returning id),
request as (
  insert into approval_request (tenant_id, id, company_id, quote_id, quote_version, buyer_id, amount, currency_code,
                                reasons, levels, current_level, status)
  select :t, gen_random_uuid(), acme.id, quote.id, 2, 'b-acme-buyer', 36000, 'usd', '["threshold"]'::jsonb,
         '[{"mode": "any", "roles": ["company_admin"], "users": []}]'::jsonb, 0, 'pending' from acme, quote
  returning id),
step as (
  insert into approval_step (tenant_id, id, request_id, level, approver_id, approver_role, decision, comment)
  select :t, gen_random_uuid(), request.id, 0, 'b-acme-approver', 'approver', 'approve',
         'Tenant B approval comment' from request returning id),
company_order as (
  insert into orders (tenant_id, id, store_id, cart_id, customer_id, email, currency_code, status, subtotal,
                      discount_total, shipping_total, tax_total, total, payment_intent_id, shipping_address,
                      shipping_option_code, company_id)
  select :t, gen_random_uuid(), :s, gen_random_uuid(), 'b-acme-buyer', 'b-acme-buyer@b.example', 'usd', 'paid',
         5000, 0, 0, 0, 5000, null, '{}'::jsonb, 'b2b-quote', acme.id from acme returning id)
insert into invoice (tenant_id, id, company_id, order_id, buyer_id, amount, currency_code, payment_terms, due_at,
                     status)
select :t, gen_random_uuid(), acme.id, company_order.id, 'b-acme-buyer', 5000, 'usd', 'net30',
       now() + interval '30 days', 'open' from acme, company_order
"""
B_ACME_SNAPSHOT = "select " + ", ".join(
    f"(select json_agg(x order by x::text) from {table} x where tenant_id = :t and {where})::text"
    for table, where in (
        ("company", "id = :c"), ("company_user", "company_id = :c"), ("price_list", "company_id = :c"),
        ("price_list_entry", "price_list_id in (select id from price_list where company_id = :c)"),
        ("quote", "company_id = :c"), ("quote_line", "quote_id in (select id from quote where company_id = :c)"),
        ("quote_version", "quote_id in (select id from quote where company_id = :c)"),
        ("quote_message", "quote_id in (select id from quote where company_id = :c)"),
        ("approval_rule", "company_id = :c"), ("approval_request", "company_id = :c"),
        ("approval_step", "request_id in (select id from approval_request where company_id = :c)"),
        ("invoice", "company_id = :c"), ("orders", "company_id = :c"), ("cart", "company_id = :c"),
        ("company_invitation", "company_id = :c"), ("company_store", "company_id = :c")))


def test_every_operation_is_in_the_matrix() -> None:
    assert set(VARIABLES) == set(OPS)


A_COMPANY = """
with company as (
  insert into company (tenant_id, id, legal_name, currency_code, credit_limit, payment_terms)
  values (:t, :c, 'Tenant A Buyers', 'usd', 100000, 'net30') returning id)
insert into company_user (tenant_id, id, company_id, customer_id, email, role)
select :t, gen_random_uuid(), company.id, 'a-company-admin', 'a-admin@a.example', 'company_admin' from company
union all
select :t, gen_random_uuid(), company.id, 'a-company-buyer', 'a-buyer@a.example', 'company_buyer' from company
"""
# The token subject of each company role: real members of A's company (or of B's Globex), so their company
# claim is checked and they act as company users, not as strangers refused at sign-in.
COMPANY_SUBJECTS = {"company_admin": "admin", "company_buyer": "buyer"}


@pytest.fixture(scope="module")
async def tenants(owner_engine) -> tuple[TenantWorld, Target]:
    a = await make_tenant(owner_engine)
    async with owner_engine.begin() as connection:
        await connection.execute(text(A_COMPANY), {"t": a.tenant_id, "c": A_COMPANY_ID})
    return a, await full_tenant(owner_engine)


A_COMPANY_ID = uuid.uuid4()


def credentials_of(role: str, world: TenantWorld, tokens: Tokens, company: uuid.UUID, prefix: str) -> dict[str, Any]:
    if role == "guest":
        return {"key": world.key}
    subject = f"{prefix}-{COMPANY_SUBJECTS[role]}" if role in COMPANY_SUBJECTS else None
    return {"token": tokens(role, world, stores=[str(world.store_id)], vendor="v-a", company=str(company),
                            subject=subject),
            "key": world.key if role in {"customer", "company_buyer", "company_admin"} else None}


async def full_tenant(owner_engine) -> Target:
    """A tenant with one object of every kind the operations reach (tenant B of the matrix)."""
    b = await make_tenant(owner_engine)
    async with owner_engine.begin() as connection:
        await seed_region(connection, b.tenant_id)
        await seed_catalog(connection, b.tenant_id, b.store_id)
        await connection.execute(text(B_CART_AND_ORDER), {"t": b.tenant_id, "s": b.store_id})
        await connection.execute(text(B_CHECKOUT), {
            "t": b.tenant_id, "s": b.store_id, "token_hash": hashlib.sha256(B_ORDER_TOKEN.encode()).hexdigest()})
        await connection.execute(text(
            "insert into webhook_inbox (id, provider, event_id, event_type, payload, tenant_id, status, error) "
            "values (gen_random_uuid(), 'stripe', :event_id, 'payment_intent.succeeded', "
            "cast(:payload as jsonb), :t, 'failed', 'failed: b-customer@example.com')"),
            {"t": b.tenant_id, "event_id": f"evt_tenant_b_failed_{b.tenant_id}", "payload": orjson.dumps({
                "id": f"evt_tenant_b_failed_{b.tenant_id}", "type": "payment_intent.succeeded", "data": {"object": {
                    "id": "pi_tenant_b_attempt", "object": "payment_intent", "status": "succeeded",
                    "amount_received": 5000, "currency": "usd",
                    "metadata": {"tenant_id": str(b.tenant_id)}}}}).decode()})
        await connection.execute(text(B_MARKETPLACE), {"t": b.tenant_id})
        await connection.execute(text(B_BILLING), {"t": b.tenant_id, "s": b.store_id})
        await connection.execute(text(B_DUNNING), {"t": b.tenant_id})
        await connection.execute(text(B_CUSTOMER), {"t": b.tenant_id})
        await connection.execute(text(B_REFUNDS), {"t": b.tenant_id, "s": b.store_id})
        await connection.execute(text(B_AUDIT), {"t": b.tenant_id})
        globex = uuid.uuid4()
        await connection.execute(text(B_B2B), {"t": b.tenant_id, "s": b.store_id, "globex": globex})
        await connection.execute(text(B_PROMOTIONS), {"t": b.tenant_id, "s": b.store_id})
        await connection.execute(text(
            "insert into company_invitation (tenant_id, id, company_id, email, role, token_hash, expires_at, "
            "invited_by) select :t, gen_random_uuid(), id, 'b-invitee@example.com', 'company_buyer', :h, "
            "now() + interval '7 days', 'b-acme-admin' from company where tenant_id = :t "
            "and legal_name = 'Tenant B Industries'"),
            {"t": b.tenant_id, "h": hashlib.sha256(B_INVITATION_TOKEN.encode()).hexdigest()})
        await connection.execute(text("insert into outbox (id, tenant_id, topic, payload, status, attempts) values "
                                      "(gen_random_uuid(), :t, 'fleetbase.create_order', '{}', 'dead', 5)"),
                                 {"t": b.tenant_id})
        # B's part of a per-tenant job's run (a failed one, with its error).
        await connection.execute(text(
            "insert into job_run (id, job, scheduled_for, tenant_id, outcome, counts, error, finished_at) values "
            "(gen_random_uuid(), 'process-vendor-payouts', now(), :t, 'failed', "
            "'{\"summary\": \"jobrun_tenant_b counts\"}', 'jobrun_tenant_b error', now())"), {"t": b.tenant_id})
        ids = {}
        for table, where in (("store_domain", ""), ("publishable_api_key", ""),
                             ("product", "and handle = 'merino-tee'"), ("variant", "and sku = 'NW-TEE-S'"),
                             ("category", "and handle = 'apparel'"), ("vendor", "and handle = 'northwind-outfitters'"),
                             ("cart", "and company_id is null"), ("cart_line", ""),
                             ("shipping_option", "and code = 'standard'"), ("orders", "and company_id is null"),
                             ("commission_rule", ""), ("vendor_user", ""), ("outbox", ""), ("checkout_attempt", ""),
                             ("webhook_inbox", ""), ("job_run", ""),
                             ("subscription_plan", ""), ("customer_subscription", ""),
                             ("company", "and legal_name = 'Tenant B Industries'"),
                             ("company_user", "and customer_id = 'b-acme-buyer'"), ("price_list", ""),
                             ("quote", ""), ("approval_request", ""), ("invoice", ""), ("company_invitation", ""),
                             ("orders", "and company_id is not null"), ("region", ""), ("sales_channel", ""),
                             ("customer_address", ""), ("refund", ""), ("order_return", ""),
                             ("order_line", "and order_id in (select id from orders where company_id is null)"),
                             ("vendor_order", "and order_id in (select id from orders where company_id is null)"),
                             ("promotion", "and code is not null")):
            key = "company_order" if table == "orders" and "not null" in where else table
            ids[key] = (await connection.execute(text(f"select id from {table} where tenant_id = :t {where}"),
                                                 {"t": b.tenant_id})).scalar_one()
        ids["globex"] = globex
    return Target(b, ids)


async def snapshot(owner_engine, tenant_id: uuid.UUID) -> tuple[Any, ...]:
    async with owner_engine.connect() as connection:
        return tuple((await connection.execute(text(B_SNAPSHOT), {"t": tenant_id})).one())


@pytest.mark.parametrize("role", sorted(ROLES | {"guest"}))
async def test_tenant_a_roles_never_see_or_change_tenant_b(role: str, gql: GraphQLClient, tokens: Tokens,
                                                           tenants: tuple[TenantWorld, Target],
                                                           owner_engine) -> None:
    a, b = tenants
    before = await snapshot(owner_engine, b.world.tenant_id)
    credentials = credentials_of(role, a, tokens, A_COMPANY_ID, "a-company")
    for name, document in OPS.items():
        body = await gql(document, VARIABLES[name](b), **credentials)
        dumped = orjson.dumps(body).decode()
        leaked = [secret for secret in b.secrets() if secret in dumped]
        assert not leaked, (role, name, leaked, body)
    assert await snapshot(owner_engine, b.world.tenant_id) == before, role


@pytest.mark.parametrize("role", sorted(COMPANY_SUBJECTS))
async def test_another_company_of_the_same_tenant_never_sees_or_changes_acme(
        role: str, gql: GraphQLClient, tokens: Tokens, tenants: tuple[TenantWorld, Target], owner_engine) -> None:
    """Globex's admin and buyer, members of B like Acme, run every operation against Acme's objects: nothing of
    Acme comes back and nothing of Acme changes (B's catalog and store they may of course see)."""
    _, b = tenants
    acme = {"t": b.world.tenant_id, "c": b.ids["company"]}

    async def acme_rows() -> tuple[Any, ...]:
        async with owner_engine.connect() as connection:
            return tuple((await connection.execute(text(B_ACME_SNAPSHOT), acme)).one())

    before = await acme_rows()
    credentials = credentials_of(role, b.world, tokens, b.ids["globex"], "b-globex")
    membership = await gql(OPS["storefront/Company"], {"id": to_global_id("Company", b.ids["globex"])},
                           **credentials)
    assert membership["data"]["node"]["legalName"] == "Globex of B", membership  # a real member of Globex
    for name, document in OPS.items():
        body = await gql(document, VARIABLES[name](b), **credentials)
        dumped = orjson.dumps(body).decode()
        leaked = [secret for secret in b.company_secrets() if secret in dumped]
        assert not leaked, (role, name, leaked, body)
    assert await acme_rows() == before, role


async def test_the_matrix_is_not_vacuous(gql: GraphQLClient, tokens: Tokens,
                                         tenants: tuple[TenantWorld, Target]) -> None:
    """The same operations aimed at A's own objects do return them, so an empty answer above means isolation."""
    a, _ = tenants
    own = {"id": to_global_id("Store", a.store_id)}
    for credentials in ({"key": a.key}, {"token": tokens("tenant_admin", a)}):
        body = await gql(OPS["storefront/StoreById"], own, **credentials)
        assert body["data"]["store"]["id"] == own["id"], body
    stores = await gql(OPS["admin/Stores"], {"first": 100}, token=tokens("tenant_admin", a))
    assert stores["data"]["stores"]["totalCount"] >= 1  # its own store, plus any the matrix created in A
    for role in sorted(COMPANY_SUBJECTS):  # A's company roles are checked members acting for A's company
        company = await gql(OPS["storefront/Company"], {"id": to_global_id("Company", A_COMPANY_ID)},
                            **credentials_of(role, a, tokens, A_COMPANY_ID, "a-company"))
        assert company["data"]["node"]["legalName"] == "Tenant A Buyers", (role, company)
