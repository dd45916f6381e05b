"""Every table, imported once so that Base.metadata is complete (Alembic and tests read it)."""

from cityos.domain.b2b.models import (
    ApprovalRequest,
    ApprovalRule,
    ApprovalStep,
    Company,
    CompanyUser,
    Invoice,
    Quote,
    QuoteLine,
    QuoteMessage,
    QuoteVersion,
)
from cityos.domain.base import Base
from cityos.domain.billing.models import BillingCycle, CustomerSubscription, SubscriptionPlan, SubscriptionPlanPrice
from cityos.domain.catalog.models import (
    Category,
    PriceList,
    PriceListEntry,
    PriceTier,
    Product,
    ProductCategory,
    ProductSalesChannel,
    Variant,
    VariantPrice,
)
from cityos.domain.commerce.models import (
    Cart,
    CartLine,
    CheckoutAttempt,
    InventoryReservation,
    PaymentProvider,
    Region,
    RegionState,
    ShippingOption,
)
from cityos.domain.content.models import Content
from cityos.domain.fulfillment.models import Shipment, TrackingEvent
from cityos.domain.marketplace.models import (
    CommissionRule,
    CommissionTransaction,
    Payout,
    PayoutTransactionLink,
    Vendor,
    VendorUser,
)
from cityos.domain.orders.models import (
    Order,
    OrderLine,
    OrderReturn,
    Refund,
    RefundLine,
    RefundTransferReversal,
    ReturnLine,
    VendorOrder,
)
from cityos.domain.platform.models import AuditLog, ConnectStateUse, Outbox, WebhookInbox
from cityos.domain.platform.sync import SyncCursor
from cityos.domain.promotions.models import (
    CartPromotion,
    OrderLinePromotion,
    Promotion,
    PromotionRedemption,
    PromotionSettings,
    SubscriptionPromotion,
)
from cityos.domain.tenancy.models import Currency, PublishableApiKey, SalesChannel, Store, StoreDomain, Tenant

# Tables whose rows belong to one tenant (row-level security on tenant_id). The audit log also carries
# platform-wide rows (tenant_id null) and has its own policy.
TENANT_OWNED_TABLES = tuple(
    table.name for table in Base.metadata.sorted_tables
    if "tenant_id" in table.c and table.name not in ("audit_log", "outbox")
)

__all__ = [
    "TENANT_OWNED_TABLES",
    "ApprovalRequest",
    "ApprovalRule",
    "ApprovalStep",
    "AuditLog",
    "Base",
    "BillingCycle",
    "Cart",
    "CartLine",
    "CartPromotion",
    "Category",
    "CheckoutAttempt",
    "CommissionRule",
    "CommissionTransaction",
    "Company",
    "CompanyUser",
    "ConnectStateUse",
    "Content",
    "Currency",
    "CustomerSubscription",
    "InventoryReservation",
    "Invoice",
    "Order",
    "OrderLine",
    "OrderLinePromotion",
    "OrderReturn",
    "Outbox",
    "PaymentProvider",
    "Payout",
    "PayoutTransactionLink",
    "PriceList",
    "PriceListEntry",
    "PriceTier",
    "Product",
    "ProductCategory",
    "ProductSalesChannel",
    "Promotion",
    "PromotionRedemption",
    "PromotionSettings",
    "PublishableApiKey",
    "Quote",
    "QuoteLine",
    "QuoteMessage",
    "QuoteVersion",
    "Refund",
    "RefundLine",
    "RefundTransferReversal",
    "Region",
    "RegionState",
    "ReturnLine",
    "SalesChannel",
    "Shipment",
    "ShippingOption",
    "Store",
    "StoreDomain",
    "SubscriptionPlan",
    "SubscriptionPlanPrice",
    "SubscriptionPromotion",
    "SyncCursor",
    "Tenant",
    "TrackingEvent",
    "Variant",
    "VariantPrice",
    "Vendor",
    "VendorOrder",
    "VendorUser",
    "WebhookInbox",
]
