"""GraphQL types of carts, checkout and orders. Amounts are `Money` (minor units and their currency)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy.engine import Row
from strawberry.scalars import JSON

from cityos.domain.base import table_of
from cityos.domain.billing import cart as billing_cart
from cityos.domain.commerce import queries as commerce_queries
from cityos.domain.commerce import service as carts
from cityos.domain.commerce.models import Cart as CartModel
from cityos.domain.commerce.models import CheckoutAttempt as CheckoutAttemptModel
from cityos.domain.fulfillment.models import Shipment as ShipmentModel
from cityos.domain.fulfillment.models import TrackingEvent as TrackingEventModel
from cityos.domain.orders import queries as order_queries
from cityos.domain.orders.models import Order as OrderModel
from cityos.domain.orders.models import OrderLine as OrderLineModel
from cityos.domain.orders.models import OrderLineKind
from cityos.domain.orders.models import VendorOrder as VendorOrderModel
from cityos.domain.platform import queries as platform_queries
from cityos.domain.platform.models import WebhookInbox
from cityos.domain.promotions import service as promotion_service
from cityos.graphql.catalog.types import Variant, load_variant
from cityos.graphql.core.context import Info
from cityos.graphql.core.nodes import Attribute, Declaration, Declared, columns, declare
from cityos.graphql.core.permissions import guarded_field
from cityos.graphql.core.relay import Node, to_global_id
from cityos.graphql.core.values import (
    Address,
    CartStatus,
    Money,
    OrderFulfillment,
    OrderStatus,
    OutboxStatus,
    ShipmentStatus,
    VendorFulfillment,
    described_enum,
    money,
)
from cityos.graphql.marketplace.types import VENDOR_TABLE, Vendor

CART_TABLE = table_of(CartModel)
ORDER_TABLE = table_of(OrderModel)
VENDOR_ORDER_TABLE = table_of(VendorOrderModel)
ORDER_LINE_TABLE = table_of(OrderLineModel)
SHIPMENT_TABLE = table_of(ShipmentModel)
TRACKING_TABLE = table_of(TrackingEventModel)
CHECKOUT_ATTEMPT_TABLE = table_of(CheckoutAttemptModel)
WEBHOOK_TABLE = table_of(WebhookInbox)
OUTBOX_TABLE = platform_queries.OUTBOX

CART = Declaration("Cart", CART_TABLE, "cart", columns(CART_TABLE, "tenant_id", "store_id", "customer_id"),
                   fields={"status": lambda row: CartStatus(row.status),
                           "shipping_address": lambda row: Address.from_stored(row.shipping_address),
                           "_priced": lambda row: []})
ORDER = Declaration(
    "Order", ORDER_TABLE, "order",
    {**columns(ORDER_TABLE, "tenant_id", "store_id", "customer_id", "company_id"),
     "access_token_hash": Attribute(order_queries.ORDER_ACCESS_TOKEN_HASH, lambda row: row.access_token_hash or "")},
    fields={"status": lambda row: OrderStatus(row.status),
            "fulfillment_status": lambda row: OrderFulfillment(row.fulfillment_status),
            "shipping_address": lambda row: Address.from_json(row.shipping_address)})
VENDOR_ORDER = Declaration("VendorOrder", VENDOR_ORDER_TABLE, "vendor_order",
                           columns(VENDOR_ORDER_TABLE, "tenant_id", "store_id", "vendor_id"),
                           fields={"status": lambda row: OrderStatus(row.status),
                                   "fulfillment_status": lambda row: VendorFulfillment(row.fulfillment_status)})
SHIPMENT = Declaration("Shipment", SHIPMENT_TABLE, "shipment",
                       columns(SHIPMENT_TABLE, "tenant_id", "store_id", "vendor_id", "customer_id"),
                       fields={"status": lambda row: ShipmentStatus(row.status)})
CHECKOUT_ATTEMPT = Declaration(
    "CheckoutAttempt", CHECKOUT_ATTEMPT_TABLE, "checkout_attempt",
    {**columns(CHECKOUT_ATTEMPT_TABLE, "tenant_id", "store_id"),
     "customer_id": Attribute(commerce_queries.ATTEMPT_CUSTOMER_ID, lambda row: row.customer_id or "")},
    fields={"amount": lambda row: money(row.amount, row.currency_code),
            "order_id": lambda row: to_global_id("Order", row.order_id) if row.order_id else None},
    node=False)
OUTBOX_MESSAGE = Declaration("OutboxMessage", OUTBOX_TABLE, "outbox_message", columns(OUTBOX_TABLE, "tenant_id"),
                             fields={"status": lambda row: OutboxStatus(row.status)}, node=False)
WEBHOOK_EVENT = Declaration("WebhookEvent", WEBHOOK_TABLE, "webhook_event", columns(WEBHOOK_TABLE, "tenant_id"),
                            node=False)


@strawberry.type(description="Amounts of a cart or order, all in its currency; total = subtotal − discountTotal + "
                             "shippingTotal + taxTotal.")
class Totals:
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    subtotal: Money = strawberry.field(description="Sum of the line totals.")
    discount_total: Money = strawberry.field(description="Discounts taken off the subtotal.")
    shipping_total: Money = strawberry.field(description="Price of the shipping option.")
    tax_total: Money = strawberry.field(description="Tax on (subtotal − discountTotal + shippingTotal) at the "
                                                    "shipping state's or the region's rate, rounded half up; when "
                                                    "taxInclusive, the tax those amounts already contain.")
    total: Money = strawberry.field(description="What the customer pays.")
    tax_inclusive: bool = strawberry.field(default=False, description="Whether prices and shipping include the tax "
                                                                      "(then total does not add taxTotal).")

    @classmethod
    def of(cls, amounts: Any, currency_code: str) -> Totals:
        """From anything with subtotal, discount_total, shipping_total, tax_total and total in minor units (an
        order or vendor order row, the domain's cart Totals)."""
        return cls(currency_code=currency_code, subtotal=money(amounts.subtotal, currency_code),
                   discount_total=money(amounts.discount_total, currency_code),
                   shipping_total=money(amounts.shipping_total, currency_code),
                   tax_total=money(amounts.tax_total, currency_code), total=money(amounts.total, currency_code),
                   tax_inclusive=bool(getattr(amounts, "tax_inclusive", False)))


@strawberry.type(description="A way to ship a cart (standard, express, …) with its price.")
class ShippingOption:
    id: strawberry.ID = strawberry.field(description="Global id of the option (for setShippingOption).")
    code: str = strawberry.field(description="Stable code (standard, express, free).")
    name: str = strawberry.field(description="Display name.")
    amount: Money = strawberry.field(description="Price, in the cart's currency.")

    @classmethod
    def from_row(cls, row: Row[Any], currency_code: str, amount: int | None = None) -> ShippingOption:
        """`amount`: what the option costs for this cart (its quote), else its flat amount."""
        return cls(id=to_global_id("ShippingOption", row.id), code=row.code, name=row.name,
                   amount=money(row.amount if amount is None else amount, currency_code))


@strawberry.type(description="One variant in a cart, priced by the server in the cart's currency.")
class CartLine:
    id: strawberry.ID = strawberry.field(description="Global id of the line (for updateCartLine and removeCartLine).")
    quantity: int = strawberry.field(description="Units ordered.")
    sku: str = strawberry.field(description="The variant's SKU.")
    title: str = strawberry.field(description="Product and variant title.")
    list_unit_price: Money = strawberry.field(description="List price of one unit.")
    unit_price: Money = strawberry.field(description="Price of one unit after volume pricing.")
    total: Money = strawberry.field(description="unitPrice × quantity − promotionDiscount.")
    promotion_discount: Money = strawberry.field(description="What the cart's promotions take off this line.")
    variant_pk: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The variant, or null if it no longer exists.")
    async def variant(self, info: Info) -> Variant | None:
        return await load_variant(info, self.variant_pk)


@strawberry.type(description="A promotion's part of one cart line.")
class AppliedPromotionLine:
    line_id: strawberry.ID = strawberry.field(description="Global id of the cart line.")
    amount: Money = strawberry.field(description="Taken off the line.")


@strawberry.type(description="A promotion applied to a cart and what it takes off.")
class AppliedPromotion:
    promotion_id: strawberry.ID = strawberry.field(description="Global id of the promotion.")
    name: str = strawberry.field(description="Its display name.")
    code: str | None = strawberry.field(description="Its code; null for an automatic promotion.")
    amount: Money = strawberry.field(description="Taken off the lines in all.")
    shipping_discount: Money = strawberry.field(description="Shipping it waives (free shipping).")
    lines: list[AppliedPromotionLine] = strawberry.field(description="Its amount per line (lines it reaches).")


@strawberry.type(description="A payment error the provider reported for the cart's last checkout attempt.")
class PaymentError:
    code: str | None = strawberry.field(description="Stripe error code (e.g. card_declined).")
    decline_code: str | None = strawberry.field(description="The card issuer's decline code (e.g. "
                                                            "insufficient_funds), when given.")
    message: str | None = strawberry.field(description="Human-readable explanation from Stripe.")


@strawberry.type(description="One checkout of a cart (one Stripe PaymentIntent) and what became of it. A payment "
                             "that succeeded always ends as an order (status ordered) or an automatic refund "
                             "(refund_pending, then refunded) with the reason.")
@declare(CHECKOUT_ATTEMPT)
class CheckoutAttempt(Declared):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the checkout attempt.")
    status: str = strawberry.field(description="pending (awaiting payment) | superseded (the cart changed; its "
                                               "PaymentIntent is being canceled) | canceled | ordered | "
                                               "refund_pending | refunded")
    payment_intent_id: str = strawberry.field(description="The Stripe PaymentIntent of this checkout.")
    amount: Money = strawberry.field(description="What this checkout charges.")
    currency_code: str = strawberry.field(description="ISO 4217 code, lower case.")
    reason: str | None = strawberry.field(description="Why the checkout was superseded, or why its payment is "
                                                      "refunded instead of becoming an order.")
    refund_id: str | None = strawberry.field(description="The Stripe refund (re_…) once Stripe made it.")
    order_id: strawberry.ID | None = strawberry.field(description="The order this payment became.")
    created_at: datetime = strawberry.field(description="When the checkout started.")
    settled_at: datetime | None = strawberry.field(description="When its payment was settled (order or refund).")
    row: strawberry.Private[Any]




described_enum(OrderLineKind, "What an order line sells.", {
    OrderLineKind.ITEM: "Units of a variant.",
    OrderLineKind.FEE: "A fee for a variant (a subscription's setup fee): no stock, no shipment, never restocked.",
})


@strawberry.type(description="A subscription plan in a cart: at checkout its first period and setup fee are paid "
                             "and the order starts the subscription (addSubscriptionToCart).")
class CartSubscriptionItem:
    plan_id: strawberry.ID = strawberry.field(description="Global id of the SubscriptionPlan.")
    name: str = strawberry.field(description="The plan's name.")
    quantity: int = strawberry.field(description="Units of the plan's variant per period.")
    amount: Money | None = strawberry.field(description="Each period's price × quantity, before tax; null when the "
                                                        "plan has no price in the cart's currency any more.")
    setup_fee: Money | None = strawberry.field(description="Charged once, with the first period (null as amount).")


@strawberry.federation.type(keys=["id"], description="A shopping cart. Totals are computed by the server.")
@declare(CART)
class Cart(Node, Declared):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    email: str | None = strawberry.field(description="The shopper's email, for the receipt.")
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    status: CartStatus = strawberry.field(description="Open, or completed (an order was made from it).")
    shipping_address: Address | None = strawberry.field(description="The shipping address as set by "
                                                                    "setShippingAddress, or null.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    row: strawberry.Private[Any]
    _priced: strawberry.Private[list[asyncio.Future[carts.PricedCart]]]



    async def priced(self, info: Info) -> carts.PricedCart:
        """The cart priced once per request: its fields resolve concurrently and share one pricing."""
        if not self._priced:
            self._priced.append(asyncio.ensure_future(info.context.db.run(
                lambda connection: carts.priced_cart(connection, self.row))))
        return await self._priced[0]

    @strawberry.field(description="The cart's lines, priced with volume pricing.")
    async def lines(self, info: Info) -> list[CartLine]:
        return [CartLine(id=to_global_id("CartLine", row.line_id), quantity=line.quantity, sku=row.sku,
                         title=f"{row.product_title} — {row.variant_title}",
                         list_unit_price=money(line.list_unit_price, self.currency_code),
                         unit_price=money(line.unit_price, self.currency_code),
                         total=money(line.total, self.currency_code),
                         promotion_discount=money(line.promotion_discount, self.currency_code),
                         variant_pk=row.variant_id)
                for row, line in (await self.priced(info)).lines]

    @strawberry.field(description="The promotions applied to the cart (codes and automatic ones, re-evaluated on "
                                  "every change), each with its amount per line.")
    async def promotions(self, info: Info) -> list[AppliedPromotion]:
        priced = await self.priced(info)
        waiver = next((item.promotion_id for item in priced.promotions.applied if item.free_shipping), None)
        return [AppliedPromotion(
            promotion_id=to_global_id("Promotion", item.promotion_id), name=item.name, code=item.code,
            amount=money(item.amount, self.currency_code),
            shipping_discount=money(priced.shipping_waived if item.promotion_id == waiver else 0,
                                    self.currency_code),
            lines=[AppliedPromotionLine(line_id=to_global_id("CartLine", row.line_id),
                                        amount=money(part, self.currency_code))
                   for (row, _), part in zip(priced.lines, item.lines, strict=True) if part])
            for item in priced.promotions.applied]

    @strawberry.field(description="The promotion codes applied to the cart (applyPromotionCode), whether or not "
                                  "their conditions hold now.")
    async def promotion_codes(self, info: Info) -> list[str]:
        return await info.context.db.run(lambda connection: promotion_service.cart_codes(connection, self.row.id))

    @strawberry.field(description="The subscription plans in the cart (a cart holds products or subscriptions, "
                                  "not both); the checkout's amount adds their tax.")
    async def subscription_items(self, info: Info) -> list[CartSubscriptionItem]:
        rows = await info.context.db.run(lambda connection: billing_cart.items_of(connection, self.row))
        currency = self.currency_code
        return [CartSubscriptionItem(
            plan_id=to_global_id("SubscriptionPlan", row.plan_id), name=row.name, quantity=row.quantity,
            amount=money(row.amount * row.quantity, currency) if row.amount is not None else None,
            setup_fee=money(row.setup_fee, currency) if row.amount is not None else None) for row in rows]

    @strawberry.field(description="Server-computed totals.")
    async def totals(self, info: Info) -> Totals:
        return Totals.of((await self.priced(info)).totals, self.currency_code)

    @strawberry.field(description="The chosen shipping option, or null.")
    async def shipping_option(self, info: Info) -> ShippingOption | None:
        priced = await self.priced(info)
        if priced.option is None:
            return None
        return ShippingOption.from_row(priced.option, self.currency_code,
                                       priced.shipping.total if priced.shipping is not None else None)

    @strawberry.field(description="The shipping options offered for this cart's region and subtotal.")
    async def available_shipping_options(self, info: Info) -> list[ShippingOption]:
        priced = await self.priced(info)
        rows = await info.context.db.run(lambda connection: carts.shipping_options_for(connection, self.row, priced))
        return [ShippingOption.from_row(row, self.currency_code, quote.total) for row, quote in rows]

    @strawberry.field(description="The cart's checkouts, newest first: each PaymentIntent and what became of it "
                                  "(an order, or a refund and why).")
    async def checkout_attempts(self, info: Info) -> list[CheckoutAttempt]:
        rows = await info.context.loaders.many_by_key(CHECKOUT_ATTEMPT_TABLE, "cart_id").load(self.row.id)
        attempts = [CheckoutAttempt.from_row(row) for row in sorted(rows, key=lambda r: (r.created_at, r.id),
                                                                    reverse=True)]
        return await info.context.authz.visible(attempts, CheckoutAttempt.resource)

    @strawberry.field(description="Why the last payment attempt failed, or null.")
    def payment_error(self) -> PaymentError | None:
        error = self.row.payment_error
        if not error:
            return None
        return PaymentError(code=error.get("code"), decline_code=error.get("decline_code"),
                            message=error.get("message"))


@strawberry.type(description="One variant of an order as sold: prices frozen at checkout, amounts in the order's "
                             "currency.")
class OrderLine:
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    sku: str = strawberry.field(description="The variant's SKU at checkout.")
    title: str = strawberry.field(description="Product and variant title at checkout.")
    quantity: int = strawberry.field(description="Units sold.")
    list_unit_price: Money = strawberry.field(description="List price of one unit.")
    unit_price: Money = strawberry.field(description="Price of one unit after volume pricing.")
    subtotal: Money = strawberry.field(description="listUnitPrice × quantity.")
    discount_total: Money = strawberry.field(description="Discounts on this line (volume pricing and promotions).")
    total: Money = strawberry.field(description="subtotal − discountTotal.")
    promotion_discount: Money = strawberry.field(description="The part of discountTotal the promotions took off.")
    kind: OrderLineKind = strawberry.field(description="ITEM (units of the variant) or FEE (a subscription's setup "
                                                       "fee: no stock, no shipment).")

    @classmethod
    def from_row(cls, row: Row[Any], currency_code: str) -> OrderLine:
        return cls(id=to_global_id("OrderLine", row.id), sku=row.sku, title=row.title, quantity=row.quantity,
                   kind=OrderLineKind(row.kind),
                   list_unit_price=money(row.list_unit_price, currency_code),
                   unit_price=money(row.unit_price, currency_code), subtotal=money(row.subtotal, currency_code),
                   discount_total=money(row.discount_total, currency_code), total=money(row.total, currency_code),
                   promotion_discount=money(row.promotion_discount, currency_code))


def _totals(row: Row[Any], currency_code: str) -> Totals:
    return Totals.of(row, currency_code)


@strawberry.type(description="One step of a shipment's delivery as reported by Fleetbase.")
class TrackingEvent:
    status: ShipmentStatus = strawberry.field(description="The shipment status this event moved it to.")
    source_event: str = strawberry.field(description="The Fleetbase webhook event it came from (e.g. "
                                                     "order.dispatched).")
    occurred_at: datetime = strawberry.field(description="When it happened (ISO 8601, UTC).")
    location: JSON | None = strawberry.field(description="Where, when given: a GeoJSON-like object with coordinates.")


@strawberry.federation.type(keys=["id"], description="The delivery of a vendor order (through Fleetbase).")
@declare(SHIPMENT)
class Shipment(Node, Declared):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    status: ShipmentStatus = strawberry.field(description="Where the delivery is.")
    tracking_number: str | None = strawberry.field(description="Fleetbase's tracking number, once known.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    row: strawberry.Private[Any]

    @strawberry.field(description="Tracking events, oldest first.")
    async def events(self, info: Info) -> list[TrackingEvent]:
        rows = await info.context.loaders.many_by_key(TRACKING_TABLE, "shipment_id").load(self.row.id)
        return [TrackingEvent(status=ShipmentStatus(row.status), source_event=row.source_event,
                              occurred_at=row.occurred_at, location=row.location)
                for row in sorted(rows, key=lambda r: r.occurred_at)]


@strawberry.federation.type(keys=["id"], description="The part of an order one vendor fulfils.")
@declare(VENDOR_ORDER)
class VendorOrder(Node, Declared):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    status: OrderStatus = strawberry.field(description="Follows the order's status.")
    fulfillment_status: VendorFulfillment = strawberry.field(description="Where the vendor is with it: processing → "
                                                                         "ready → shipped → delivered.")
    tracking_number: str | None = strawberry.field(description="The carrier's tracking number, once shipped.")
    carrier: str | None = strawberry.field(description="Who carries it (the vendor's carrier, or fleetbase).")
    shipped_at: datetime | None = strawberry.field(description="When it shipped.")
    delivered_at: datetime | None = strawberry.field(description="When it was delivered.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    row: strawberry.Private[Any]

    @strawberry.field(description="This vendor's share; shipping and tax allocated by largest remainder, so the "
                                  "vendor orders sum exactly to the order.")
    async def totals(self, info: Info) -> Totals:
        order = await info.context.loaders.by_key(ORDER_TABLE).load(self.row.order_id)
        return _totals(self.row, order.currency_code if order else "")

    @strawberry.field(description="The vendor fulfilling it (null for products without a vendor).")
    async def vendor(self, info: Info) -> Vendor | None:
        if self.row.vendor_id is None:
            return None
        row = await info.context.loaders.by_key(VENDOR_TABLE).load(self.row.vendor_id)
        return Vendor.from_row(row) if row else None

    @strawberry.field(description="The lines this vendor fulfils.")
    async def lines(self, info: Info) -> list[OrderLine]:
        rows = await info.context.loaders.many_by_key(ORDER_LINE_TABLE, "vendor_order_id").load(self.row.id)
        order = await info.context.loaders.by_key(ORDER_TABLE).load(self.row.order_id) if rows else None
        return [OrderLine.from_row(row, order.currency_code if order else "") for row in rows]

    @strawberry.field(description="Its delivery, once the outbox dispatcher created it.")
    async def shipment(self, info: Info) -> Shipment | None:
        rows = await info.context.loaders.many_by_key(SHIPMENT_TABLE, "vendor_order_id").load(self.row.id)
        return Shipment.from_row(rows[0]) if rows else None


@strawberry.federation.type(keys=["id"], description="A paid cart: one order, split into vendor orders.")
@declare(ORDER)
class Order(Node, Declared):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    status: OrderStatus = strawberry.field(description="Where the order is in its state machine.")
    fulfillment_status: OrderFulfillment = strawberry.field(description="Derived from its vendor orders: partially "
                                                                        "shipped, shipped, delivered, …")
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    shipping_address: Address = strawberry.field(description="The shipping address the order was placed with.")
    shipping_option_code: str = strawberry.field(description="Code of the chosen shipping option (standard, express, "
                                                             "free).")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    row: strawberry.Private[Any]

    @guarded_field("Order", "email", "The customer's email (customer contact data).")
    def email(self) -> str | None:
        return str(self.row.email)

    @strawberry.field(description="The order's totals (the sums of its vendor orders').")
    def totals(self) -> Totals:
        return _totals(self.row, self.currency_code)

    @strawberry.field(description="Every line of the order, all vendors.")
    async def lines(self, info: Info) -> list[OrderLine]:
        rows = await info.context.loaders.many_by_key(ORDER_LINE_TABLE, "order_id").load(self.row.id)
        return [OrderLine.from_row(row, self.currency_code) for row in rows]

    @strawberry.field(description="The order split by vendor.")
    async def vendor_orders(self, info: Info) -> list[VendorOrder]:
        rows = await info.context.loaders.many_by_key(VENDOR_ORDER_TABLE, "order_id").load(self.row.id)
        return [VendorOrder.from_row(row) for row in rows]


@strawberry.type(description="What the storefront needs to confirm the payment with Stripe.js.")
class CheckoutSession:
    payment_intent_id: str = strawberry.field(description="The Stripe PaymentIntent id (pi_…).")
    client_secret: str = strawberry.field(description="The PaymentIntent's client secret for Stripe.js "
                                                      "(confirmPayment).")
    amount: strawberry.Private[int]  # minor units, as Stripe has it; the GraphQL field `amount` is Money
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    order_id: strawberry.ID = strawberry.field(description="Global id the order will have once the payment succeeds.")
    publishable_key: str = strawberry.field(description="The Stripe publishable key (pk_test_… or pk_live_…) to "
                                                        "initialise Stripe.js with, before confirming clientSecret.")
    order_access_token: str = strawberry.field(description="Keep this with the cart: send it as `accessToken` to "
                                                           "completeCheckout and order(id:) to read the order the "
                                                           "cart becomes (a guest has no other way). The same for "
                                                           "every startCheckout of the cart.")

    @strawberry.field(name="amount", description="Amount to pay.")
    def amount_due(self) -> Money:
        return money(self.amount, self.currency_code)




@strawberry.type(description="A call out waiting in the outbox, sent, or given up on (dead).")
@declare(OUTBOX_MESSAGE)
class OutboxMessage(Declared):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    topic: str = strawberry.field(description="What the call does, e.g. fleetbase.create_order.")
    status: OutboxStatus = strawberry.field(description="Pending, sent, dead (gave up after the last retry), or "
                                                        "skipped (not sent on purpose).")
    attempts: int = strawberry.field(description="How many times sending was tried.")
    last_error: str | None = strawberry.field(description="The error of the last failed attempt.")
    next_attempt_at: datetime = strawberry.field(description="When the dispatcher tries next (backoff 30 s × 2ⁿ).")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    payload: JSON = strawberry.field(description="The call's arguments as JSON.")
    row: strawberry.Private[Any]




@strawberry.type(description="A webhook event the platform received (Stripe), and how its handling ended.")
@declare(WEBHOOK_EVENT)
class WebhookEvent(Declared):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the webhook event.")
    provider: str = strawberry.field(description="Who sent it, e.g. stripe.")
    event_id: str = strawberry.field(description="The provider's event id (evt_…).")
    event_type: str = strawberry.field(description="e.g. payment_intent.succeeded.")
    status: str = strawberry.field(description="processed | ignored | refused (a business refusal, kept with its "
                                               "reason) | failed (handling failed; Stripe retries, or replay it)")
    error: str | None = strawberry.field(description="Why it was refused or failed.")
    attempts: int = strawberry.field(description="How many times it was handled (deliveries and replays).")
    received_at: datetime = strawberry.field(description="When it first arrived.")
    processed_at: datetime | None = strawberry.field(description="When its handling last ended.")
    payload: JSON = strawberry.field(description="The event as Stripe sent it.")
    row: strawberry.Private[Any]


