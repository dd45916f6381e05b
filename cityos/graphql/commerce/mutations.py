"""Storefront cart and checkout, order status changes. Thin: authorize, call the service."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.auth.authz import ResourceRef
from cityos.domain.b2b import service as b2b
from cityos.domain.billing import cart as billing_cart
from cityos.domain.commerce import checkout
from cityos.domain.commerce import service as carts
from cityos.domain.kernel import validate_email
from cityos.errors import NO_STORE_CONTEXT, BadUserInput, PaymentFailed, Unauthenticated
from cityos.graphql.commerce.arguments import (
    AccessToken,
    Address,
    CartIdArg,
    CartOptions,
    Email,
    LineIdArg,
    LineQuantity,
    PromotionCode,
    Quantity,
    ShippingOptionIdArg,
    VariantIdArg,
)
from cityos.graphql.commerce.queries import cart_for, present_access_token
from cityos.graphql.commerce.types import (
    Cart,
    CheckoutSession,
    Order,
)
from cityos.graphql.core.context import Info
from cityos.graphql.core.nodes import node_by_global_id
from cityos.graphql.core.relay import (
    from_global_id,
    to_global_id,
)
from cityos.graphql.tenancy.types import STORE_TABLE
from cityos.integrations.stripe import client as stripe_api
from cityos.integrations.stripe.billing import StripeBilling
from cityos.integrations.stripe.checkout import StripePayments


async def _changed_cart(info: Info, cart: Cart, change: Any) -> Cart:
    """Run a cart change in its own savepoint, on the locked cart row; return the cart as it now is."""

    async def work(connection: AsyncConnection) -> Any:
        row = await carts.load_cart(connection, cart.row.id, lock=True)
        await change(connection, row)
        return await carts.load_cart(connection, cart.row.id)

    return Cart.from_row(await info.context.db.mutate(work))



@strawberry.type
class CommerceMutation:
    @strawberry.mutation(description="A new cart in the storefront's store (named by the publishable key).")
    async def create_cart(self, info: Info, input: CartOptions = None) -> Cart:
        store = info.context.store
        principal = info.context.principal
        if store is None:
            raise Unauthenticated(NO_STORE_CONTEXT)
        customer_id = principal.id if principal.authenticated and principal.roles & {
            "customer", "company_admin", "company_buyer"} else None
        # A company user's cart is the company's: its price list prices it (the claim was checked at identify).
        company_id = uuid.UUID(principal.company_id) if principal.company_role and principal.company_id else None
        if company_id is not None:  # its prices and checkout only in the stores the company is restricted to
            company = await info.context.loaders.by_key(b2b.COMPANY).load(company_id)
            if company is not None:
                b2b.check_store(company, store.store_id)
        await info.context.authz.require(ResourceRef.of("cart", "new", tenant_id=store.tenant_id,
                                                        store_id=store.store_id, customer_id=customer_id or ""),
                                         "create")
        row = await info.context.loaders.by_key(STORE_TABLE).load(store.store_id)
        currency = (input.currency_code if input and input.currency_code else row.default_currency_code)
        region_id = from_global_id(input.region_id, "Region")[1] if input and input.region_id else None
        created = await info.context.db.mutate(lambda connection: carts.create_cart(
            connection, tenant_id=store.tenant_id, store_id=store.store_id, currency_code=currency,
            customer_id=customer_id, email=input.email if input else None, company_id=company_id,
            region_id=region_id))
        return Cart.from_row(created)

    @strawberry.mutation(description="Add units of a variant to a cart (merged with an existing line of the same "
                                     "variant).")
    async def add_cart_line(self, info: Info, cart_id: CartIdArg, variant_id: VariantIdArg,
                            quantity: Quantity = 1) -> Cart:
        cart = await cart_for(info, cart_id)
        _, variant = from_global_id(variant_id, "Variant")
        return await _changed_cart(info, cart, lambda connection, row: carts.set_line_quantity(
            connection, row, variant, quantity, add=True))

    @strawberry.mutation(description="Set a line's quantity (up to the stock on hand).")
    async def update_cart_line(self, info: Info, cart_id: CartIdArg, line_id: LineIdArg,
                               quantity: LineQuantity) -> Cart:
        cart = await cart_for(info, cart_id)
        _, line = from_global_id(line_id, "CartLine")

        async def change(connection: AsyncConnection, row: Any) -> None:
            variant = await carts.line_variant(connection, row, line)
            await carts.set_line_quantity(connection, row, variant, quantity, add=False)

        return await _changed_cart(info, cart, change)

    @strawberry.mutation(description="Remove a line from a cart.")
    async def remove_cart_line(self, info: Info, cart_id: CartIdArg, line_id: LineIdArg) -> Cart:
        cart = await cart_for(info, cart_id)
        _, line = from_global_id(line_id, "CartLine")
        return await _changed_cart(info, cart, lambda connection, row: carts.remove_line(connection, row, line))

    @strawberry.mutation(description="Set the shopper's email.")
    async def set_cart_email(self, info: Info, cart_id: CartIdArg, email: Email) -> Cart:
        cart = await cart_for(info, cart_id)
        checked = validate_email(email)
        return await _changed_cart(info, cart, lambda connection, row: carts.update_cart(connection, row,
                                                                                          email=checked))

    @strawberry.mutation(description="Set the shipping address (inside the region's country and states); returns the "
                                     "cart with its available shipping options.")
    async def set_shipping_address(self, info: Info, cart_id: CartIdArg, address: Address) -> Cart:
        cart = await cart_for(info, cart_id)

        async def change(connection: AsyncConnection, row: Any) -> None:
            checked = await carts.validate_address(connection, row, dict(address.__dict__))
            await carts.release_reservations(connection, row)
            await carts.update_cart(connection, row, shipping_address=checked)

        return await _changed_cart(info, cart, change)

    @strawberry.mutation(description="Choose one of the cart's available shipping options.")
    async def set_shipping_option(self, info: Info, cart_id: CartIdArg,
                                  shipping_option_id: ShippingOptionIdArg) -> Cart:
        cart = await cart_for(info, cart_id)
        _, option = from_global_id(shipping_option_id, "ShippingOption")
        return await _changed_cart(info, cart, lambda connection, row: carts.choose_shipping_option(
            connection, row, option))

    @strawberry.mutation(description="Apply a promotion code (case-insensitive) to the cart: it applies whenever its "
                                     "conditions hold. NOT_FOUND for an unknown code or another store's, "
                                     "PROMOTION_EXPIRED outside its dates (extensions.reason: expired or "
                                     "not_started), PROMOTION_EXHAUSTED without uses left.")
    async def apply_promotion_code(self, info: Info, cart_id: CartIdArg, code: PromotionCode) -> Cart:
        cart = await cart_for(info, cart_id)
        now = datetime.now(UTC)
        return await _changed_cart(info, cart, lambda connection, row: carts.apply_promotion_code(
            connection, row, code, now))

    @strawberry.mutation(description="Remove a promotion code from the cart (NOT_FOUND when it is not applied).")
    async def remove_promotion_code(self, info: Info, cart_id: CartIdArg, code: PromotionCode) -> Cart:
        cart = await cart_for(info, cart_id)
        return await _changed_cart(info, cart, lambda connection, row: carts.remove_promotion_code(
            connection, row, code))

    @strawberry.mutation(description="Reserve the cart's stock and create its Stripe PaymentIntent; returns the "
                                     "client secret and publishable key for Stripe.js, and the order access "
                                     "token. OUT_OF_STOCK when a unit is gone. Changing the cart afterwards "
                                     "starts a new checkout (the old PaymentIntent is canceled).")
    async def start_checkout(self, info: Info, cart_id: CartIdArg) -> CheckoutSession:
        cart = await cart_for(info, cart_id, "checkout")
        settings = info.context.settings
        if cart.row.company_id is not None:  # a company buyer's limits and approval rules hold here too
            now = datetime.now(UTC)
            await info.context.db.run(lambda connection: b2b.check_cart_purchase(connection, cart.row, now))
        snapshot_of: checkout.Snapshot = checkout.cart_snapshot
        if await info.context.db.run(lambda connection: billing_cart.has_items(connection, cart.row.id)):
            # A cart of subscription plans: the PaymentIntent is its Stripe Customer's, the card saved for renewals.
            customer = await StripeBilling(info.context.services.stripe).create_customer(
                email=cart.row.email, idempotency_key=f"cart-{cart.row.id}-customer", metadata={
                    "tenant_id": str(cart.row.tenant_id), "cart_id": str(cart.row.id),
                    "customer_id": str(cart.row.customer_id or "")})

            async def subscriptions_snapshot(connection: AsyncConnection, row: Any) -> dict[str, Any]:
                return await billing_cart.checkout_snapshot(connection, row, stripe_customer=customer)

            snapshot_of = subscriptions_snapshot

        started = await checkout.start_checkout(info.context.db, cart.row, StripePayments(info.context.services.stripe),
                                                cookie_secret=settings.COOKIE_SECRET,
                                                reservation_minutes=settings.CITYOS_RESERVATION_MINUTES,
                                                snapshot_of=snapshot_of)
        return CheckoutSession(payment_intent_id=started.payment_intent_id, client_secret=started.client_secret,
                               amount=started.amount, currency_code=started.currency_code,
                               order_id=to_global_id("Order", started.order_id),
                               publishable_key=settings.STRIPE_PUBLISHABLE_KEY,
                               order_access_token=started.order_access_token)

    @strawberry.mutation(description="After Stripe.js confirmed the payment: settle the checkout (the webhook may "
                                     "already have) and return its order. Idempotent: every later call returns "
                                     "the same order. A guest sends the orderAccessToken from startCheckout. "
                                     "PAYMENT_FAILED when the payment has not succeeded, or was refunded.")
    async def complete_checkout(self, info: Info, cart_id: CartIdArg,
                                access_token: AccessToken = None
                                ) -> Order:
        present_access_token(info, access_token)
        cart = await cart_for(info, cart_id, "checkout")
        if cart.row.status == "completed":
            done: Order = await node_by_global_id(info, to_global_id("Order", cart.row.order_id), "Order")
            return done
        if not cart.row.payment_intent_id:
            if cart.row.payment_error and cart.row.payment_error.get("code") == "payment_refunded":
                raise PaymentFailed(str(cart.row.payment_error.get("message")), provider_code="payment_refunded")
            raise BadUserInput("start the checkout first", field="cartId")
        intent = await stripe_api.retrieve_payment_intent(info.context.services.stripe, cart.row.payment_intent_id)
        if intent.status != "succeeded":
            raise PaymentFailed(f"the payment has not succeeded (status {intent.status})")
        now, events = info.context.services.clock(), info.context.events

        async def work(connection: AsyncConnection) -> Any:
            settled = await b2b.complete_paid_checkout(
                connection, info.context.settings, cart_id=cart.row.id, intent_id=intent.id,
                amount_received=intent.amount_received, currency=intent.currency, events=events)
            if settled.order is not None:  # a cart of subscription plans starts them (billing/cart.py)
                await billing_cart.subscriptions_from_checkout(connection, intent.id, intent.payment_method, now,
                                                               events)
            return settled

        settled = await info.context.db.mutate(work)
        if settled.order is None:  # recorded; the refund is sent by the outbox dispatcher after this commits
            raise PaymentFailed(f"your payment is refunded: {settled.refund_reason}", provider_code="payment_refunded")
        order = Order.from_row(settled.order)
        await info.context.authz.require(order.resource(), "read")
        return order
