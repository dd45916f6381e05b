"""GraphQL types of carts, checkout and orders. Amounts are `Money` (minor units and their currency)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy.engine import Row
from strawberry.scalars import JSON

from cityos.auth.authz import ResourceRef
from cityos.domain.base import table_of
from cityos.domain.commerce import service as carts
from cityos.domain.commerce.models import Cart as CartModel
from cityos.domain.commerce.models import CheckoutAttempt as CheckoutAttemptModel
from cityos.domain.fulfillment.models import Shipment as ShipmentModel
from cityos.domain.fulfillment.models import TrackingEvent as TrackingEventModel
from cityos.domain.orders.models import Order as OrderModel
from cityos.domain.orders.models import OrderLine as OrderLineModel
from cityos.domain.orders.models import VendorOrder as VendorOrderModel
from cityos.domain.platform.models import WebhookInbox
from cityos.graphql.catalog.types import Variant, load_variant
from cityos.graphql.core.permissions import guarded_field
from cityos.graphql.core.relay import Node, to_global_id
from cityos.graphql.core.values import Address, CartStatus, Money, OrderStatus, OutboxStatus, ShipmentStatus, money
from cityos.graphql.marketplace.types import VENDOR_TABLE, Vendor
from cityos.graphql.tenancy.types import Info, register_table_node

CART_TABLE = table_of(CartModel)
ORDER_TABLE = table_of(OrderModel)
VENDOR_ORDER_TABLE = table_of(VendorOrderModel)
ORDER_LINE_TABLE = table_of(OrderLineModel)
SHIPMENT_TABLE = table_of(ShipmentModel)
TRACKING_TABLE = table_of(TrackingEventModel)
CHECKOUT_ATTEMPT_TABLE = table_of(CheckoutAttemptModel)
WEBHOOK_TABLE = table_of(WebhookInbox)


@strawberry.type(description="Amounts of a cart or order, all in its currency; total = subtotal − discountTotal + "
                             "shippingTotal + taxTotal.")
class Totals:
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    subtotal: Money = strawberry.field(description="Sum of the line totals.")
    discount_total: Money = strawberry.field(description="Discounts taken off the subtotal.")
    shipping_total: Money = strawberry.field(description="Price of the shipping option.")
    tax_total: Money = strawberry.field(description="Tax: (subtotal − discountTotal + shippingTotal) × the region's "
                                                    "rate, rounded half up.")
    total: Money = strawberry.field(description="What the customer pays.")

    @classmethod
    def of(cls, amounts: Any, currency_code: str) -> Totals:
        """From anything with subtotal, discount_total, shipping_total, tax_total and total in minor units (an
        order or vendor order row, the domain's cart Totals)."""
        return cls(currency_code=currency_code, subtotal=money(amounts.subtotal, currency_code),
                   discount_total=money(amounts.discount_total, currency_code),
                   shipping_total=money(amounts.shipping_total, currency_code),
                   tax_total=money(amounts.tax_total, currency_code), total=money(amounts.total, currency_code))


@strawberry.type(description="A way to ship a cart (standard, express, …) with its price.")
class ShippingOption:
    id: strawberry.ID = strawberry.field(description="Global id of the option (for setShippingOption).")
    code: str = strawberry.field(description="Stable code (standard, express, free).")
    name: str = strawberry.field(description="Display name.")
    amount: Money = strawberry.field(description="Price, in the cart's currency.")

    @classmethod
    def from_row(cls, row: Row[Any], currency_code: str) -> ShippingOption:
        return cls(id=to_global_id("ShippingOption", row.id), code=row.code, name=row.name,
                   amount=money(row.amount, currency_code))


@strawberry.type(description="One variant in a cart, priced by the server in the cart's currency.")
class CartLine:
    id: strawberry.ID = strawberry.field(description="Global id of the line (for updateCartLine and removeCartLine).")
    quantity: int = strawberry.field(description="Units ordered.")
    sku: str = strawberry.field(description="The variant's SKU.")
    title: str = strawberry.field(description="Product and variant title.")
    list_unit_price: Money = strawberry.field(description="List price of one unit.")
    unit_price: Money = strawberry.field(description="Price of one unit after volume pricing.")
    total: Money = strawberry.field(description="unitPrice × quantity.")
    variant_pk: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The variant, or null if it no longer exists.")
    async def variant(self, info: Info) -> Variant | None:
        return await load_variant(info, self.variant_pk)


@strawberry.type(description="A payment error the provider reported for the cart's last checkout attempt.")
class PaymentError:
    code: str | None = strawberry.field(description="Stripe error code (e.g. card_declined).")
    decline_code: str | None = strawberry.field(description="The card issuer's decline code (e.g. "
                                                            "insufficient_funds), when given.")
    message: str | None = strawberry.field(description="Human-readable explanation from Stripe.")


@strawberry.type(description="One checkout of a cart (one Stripe PaymentIntent) and what became of it. A payment "
                             "that succeeded always ends as an order (status ordered) or an automatic refund "
                             "(refund_pending, then refunded) with the reason.")
class CheckoutAttempt:
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

    @classmethod
    def from_row(cls, row: Row[Any]) -> CheckoutAttempt:
        return cls(id=to_global_id("CheckoutAttempt", row.id), status=row.status,
                   payment_intent_id=row.payment_intent_id, amount=money(row.amount, row.currency_code),
                   currency_code=row.currency_code,
                   reason=row.reason, refund_id=row.refund_id,
                   order_id=to_global_id("Order", row.order_id) if row.order_id else None,
                   created_at=row.created_at, settled_at=row.settled_at, row=row)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("checkout_attempt", self.row.id, tenant_id=self.row.tenant_id,
                              store_id=self.row.store_id, customer_id=self.row.customer_id or "")


@strawberry.federation.type(keys=["id"], description="A shopping cart. Totals are computed by the server.")
class Cart(Node):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    email: str | None = strawberry.field(description="The shopper's email, for the receipt.")
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    status: CartStatus = strawberry.field(description="Open, or completed (an order was made from it).")
    shipping_address: Address | None = strawberry.field(description="The shipping address as set by "
                                                                    "setShippingAddress, or null.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    row: strawberry.Private[Any]
    _priced: strawberry.Private[list[carts.PricedCart]]

    @classmethod
    def from_row(cls, row: Row[Any]) -> Cart:
        return cls(id=to_global_id("Cart", row.id), email=row.email, currency_code=row.currency_code,
                   status=CartStatus(row.status), shipping_address=Address.from_stored(row.shipping_address),
                   created_at=row.created_at, row=row, _priced=[])

    def resource(self) -> ResourceRef:
        return ResourceRef.of("cart", self.row.id, tenant_id=self.row.tenant_id, store_id=self.row.store_id,
                              customer_id=self.row.customer_id or "")

    async def priced(self, info: Info) -> carts.PricedCart:
        if not self._priced:
            self._priced.append(await info.context.db.run(lambda connection: carts.priced_cart(connection, self.row)))
        return self._priced[0]

    @strawberry.field(description="The cart's lines, priced with volume pricing.")
    async def lines(self, info: Info) -> list[CartLine]:
        return [CartLine(id=to_global_id("CartLine", row.line_id), quantity=line.quantity, sku=row.sku,
                         title=f"{row.product_title} — {row.variant_title}",
                         list_unit_price=money(line.list_unit_price, self.currency_code),
                         unit_price=money(line.unit_price, self.currency_code),
                         total=money(line.total, self.currency_code), variant_pk=row.variant_id)
                for row, line in (await self.priced(info)).lines]

    @strawberry.field(description="Server-computed totals.")
    async def totals(self, info: Info) -> Totals:
        return Totals.of((await self.priced(info)).totals, self.currency_code)

    @strawberry.field(description="The chosen shipping option, or null.")
    async def shipping_option(self, info: Info) -> ShippingOption | None:
        option = (await self.priced(info)).option
        return ShippingOption.from_row(option, self.currency_code) if option is not None else None

    @strawberry.field(description="The shipping options offered for this cart's region and subtotal.")
    async def available_shipping_options(self, info: Info) -> list[ShippingOption]:
        totals = (await self.priced(info)).totals
        rows = await info.context.db.run(lambda connection: carts.shipping_options_for(
            connection, self.row, totals.subtotal - totals.discount_total))
        return [ShippingOption.from_row(row, self.currency_code) for row in rows]

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
    discount_total: Money = strawberry.field(description="Discounts on this line.")
    total: Money = strawberry.field(description="subtotal − discountTotal.")

    @classmethod
    def from_row(cls, row: Row[Any], currency_code: str) -> OrderLine:
        return cls(id=to_global_id("OrderLine", row.id), sku=row.sku, title=row.title, quantity=row.quantity,
                   list_unit_price=money(row.list_unit_price, currency_code),
                   unit_price=money(row.unit_price, currency_code), subtotal=money(row.subtotal, currency_code),
                   discount_total=money(row.discount_total, currency_code), total=money(row.total, currency_code))


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
class Shipment(Node):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    status: ShipmentStatus = strawberry.field(description="Where the delivery is.")
    tracking_number: str | None = strawberry.field(description="Fleetbase's tracking number, once known.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    row: strawberry.Private[Any]

    @classmethod
    def from_row(cls, row: Row[Any]) -> Shipment:
        return cls(id=to_global_id("Shipment", row.id), status=ShipmentStatus(row.status),
                   tracking_number=row.tracking_number,
                   created_at=row.created_at, row=row)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("shipment", self.row.id, tenant_id=self.row.tenant_id, store_id=self.row.store_id,
                              vendor_id=self.row.vendor_id or "", customer_id=self.row.customer_id or "")

    @strawberry.field(description="Tracking events, oldest first.")
    async def events(self, info: Info) -> list[TrackingEvent]:
        rows = await info.context.loaders.many_by_key(TRACKING_TABLE, "shipment_id").load(self.row.id)
        return [TrackingEvent(status=ShipmentStatus(row.status), source_event=row.source_event,
                              occurred_at=row.occurred_at, location=row.location)
                for row in sorted(rows, key=lambda r: r.occurred_at)]


@strawberry.federation.type(keys=["id"], description="The part of an order one vendor fulfils.")
class VendorOrder(Node):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    status: OrderStatus = strawberry.field(description="Follows the order's status.")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    row: strawberry.Private[Any]

    @classmethod
    def from_row(cls, row: Row[Any]) -> VendorOrder:
        return cls(id=to_global_id("VendorOrder", row.id), status=OrderStatus(row.status), created_at=row.created_at,
                   row=row)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("vendor_order", self.row.id, tenant_id=self.row.tenant_id,
                              store_id=self.row.store_id, vendor_id=self.row.vendor_id or "")

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
class Order(Node):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    status: OrderStatus = strawberry.field(description="Where the order is in its state machine.")
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")
    shipping_address: Address = strawberry.field(description="The shipping address the order was placed with.")
    shipping_option_code: str = strawberry.field(description="Code of the chosen shipping option (standard, express, "
                                                             "free).")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    row: strawberry.Private[Any]

    @classmethod
    def from_row(cls, row: Row[Any]) -> Order:
        return cls(id=to_global_id("Order", row.id), status=OrderStatus(row.status), currency_code=row.currency_code,
                   shipping_address=Address.from_json(row.shipping_address),
                   shipping_option_code=row.shipping_option_code, created_at=row.created_at, row=row)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("order", self.row.id, tenant_id=self.row.tenant_id, store_id=self.row.store_id,
                              customer_id=self.row.customer_id or "",
                              access_token_hash=self.row.access_token_hash or "")

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


register_table_node("Cart", CART_TABLE, Cart.from_row)
register_table_node("Order", ORDER_TABLE, Order.from_row)
register_table_node("VendorOrder", VENDOR_ORDER_TABLE, VendorOrder.from_row)
register_table_node("Shipment", SHIPMENT_TABLE, Shipment.from_row)


@strawberry.type(description="A call out waiting in the outbox, sent, or given up on (dead).")
class OutboxMessage:
    id: strawberry.ID = strawberry.field(description="Opaque global id of the object.")
    topic: str = strawberry.field(description="What the call does, e.g. fleetbase.create_order.")
    status: OutboxStatus = strawberry.field(description="Pending, sent, or dead (gave up after the last retry).")
    attempts: int = strawberry.field(description="How many times sending was tried.")
    last_error: str | None = strawberry.field(description="The error of the last failed attempt.")
    next_attempt_at: datetime = strawberry.field(description="When the dispatcher tries next (backoff 30 s × 2ⁿ).")
    created_at: datetime = strawberry.field(description="When the object was created (ISO 8601, UTC).")
    payload: JSON = strawberry.field(description="The call's arguments as JSON.")
    row: strawberry.Private[Any]

    @classmethod
    def from_row(cls, row: Row[Any]) -> OutboxMessage:
        return cls(id=to_global_id("OutboxMessage", row.id), topic=row.topic, status=OutboxStatus(row.status),
                   attempts=row.attempts, last_error=row.last_error, next_attempt_at=row.next_attempt_at,
                   created_at=row.created_at, payload=row.payload, row=row)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("outbox_message", self.row.id, tenant_id=self.row.tenant_id)


@strawberry.type(description="A webhook event the platform received (Stripe), and how its handling ended.")
class WebhookEvent:
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

    @classmethod
    def from_row(cls, row: Row[Any]) -> WebhookEvent:
        return cls(id=to_global_id("WebhookEvent", row.id), provider=row.provider, event_id=row.event_id,
                   event_type=row.event_type, status=row.status, error=row.error, attempts=row.attempts,
                   received_at=row.received_at, processed_at=row.processed_at, payload=row.payload, row=row)

    def resource(self) -> ResourceRef:
        return ResourceRef.of("webhook_event", self.row.id, tenant_id=self.row.tenant_id or "")
