"""Storefront cart and checkout, and order queries and status changes. Thin: authorize, call the service."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated, Any

import strawberry
from sqlalchemy import ColumnElement, false, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.auth.authz import Authorizer, ResourceRef
from cityos.domain.base import table_of
from cityos.domain.commerce import service as carts
from cityos.domain.marketplace.ledger import LedgerPolicy
from cityos.domain.orders import service as orders
from cityos.domain.platform.models import Outbox
from cityos.domain.platform.outbox import retry_message
from cityos.errors import NO_STORE_CONTEXT, BadUserInput, Conflict, NotFound, PaymentFailed, Unauthenticated
from cityos.integrations.stripe import client as stripe_api
from cityos.integrations.stripe.webhooks import process_event
from cityos.resolvers.loaders import in_tenant
from cityos.schema.commerce import (
    CART_TABLE,
    CHECKOUT_ATTEMPT_TABLE,
    ORDER_TABLE,
    VENDOR_ORDER_TABLE,
    WEBHOOK_TABLE,
    Cart,
    CheckoutAttempt,
    CheckoutSession,
    Order,
    OutboxMessage,
    VendorOrder,
    WebhookEvent,
)
from cityos.schema.relay import (
    After,
    Before,
    Connection,
    First,
    Last,
    PageRequest,
    SortKey,
    from_global_id,
    page_query,
    to_global_id,
)
from cityos.schema.tenancy import STORE_TABLE, Info, node_by_global_id
from cityos.schema.values import OrderStatus, OutboxStatus

ORDER_PLAN_ATTRIBUTES = {"tenant_id": ORDER_TABLE.c.tenant_id, "store_id": ORDER_TABLE.c.store_id,
                         "customer_id": ORDER_TABLE.c.customer_id,
                         "access_token_hash": func.coalesce(ORDER_TABLE.c.access_token_hash, "")}
VENDOR_ORDER_PLAN_ATTRIBUTES = {"tenant_id": VENDOR_ORDER_TABLE.c.tenant_id,
                                "store_id": VENDOR_ORDER_TABLE.c.store_id,
                                "vendor_id": VENDOR_ORDER_TABLE.c.vendor_id}
AccessToken = Annotated[str | None, strawberry.argument(
    description="The orderAccessToken startCheckout returned (proves the caller bought the cart).")]
WebhookStatus = Annotated[str | None, strawberry.argument(description="processed | ignored | refused | failed")]
WebhookEventId = Annotated[strawberry.ID, strawberry.argument(description="The WebhookEvent's id.")]
AttemptStatus = Annotated[str | None, strawberry.argument(
    description="pending | superseded | canceled | ordered | refund_pending | refunded")]


@strawberry.input(description="Options for a new cart.")
class CreateCartInput:
    currency_code: str | None = strawberry.field(default=None, description="Default: the store's currency")
    email: str | None = strawberry.field(default=None, description="The shopper's email, for the receipt (can be set "
                                                                   "later with setCartEmail).")


@strawberry.input(description="A postal address inside the cart's region (country and state must belong to it).")
class AddressInput:
    first_name: str = strawberry.field(description="Recipient's first name.")
    last_name: str = strawberry.field(description="Recipient's last name.")
    company: str | None = strawberry.field(default=None, description="Company name (optional).")
    address_1: str = strawberry.field(description="Street and number.")
    address_2: str | None = strawberry.field(default=None, description="Apartment, suite, floor (optional).")
    city: str = strawberry.field(description="City or town.")
    province: str = strawberry.field(description="State code, e.g. CA or US-CA")
    postal_code: str = strawberry.field(description="Postal code; in the US a ZIP code, 12345 or 12345-6789.")
    country_code: str = strawberry.field(description="ISO 3166-1 alpha-2 country code; must be the country of the "
                                                     "cart's region.")
    phone: str | None = strawberry.field(default=None, description="Phone number for the courier (optional).")


async def _cart_for(info: Info, cart_id: strawberry.ID, action: str = "update") -> Cart:
    cart: Cart = await node_by_global_id(info, cart_id, "Cart", action)
    return cart


async def _changed_cart(info: Info, cart: Cart, change: Any) -> Cart:
    """Run a cart change in its own savepoint, on the locked cart row; return the cart as it now is."""

    async def work(connection: AsyncConnection) -> Any:
        row = await carts.load_cart(connection, cart.row.id, lock=True)
        await change(connection, row)
        return await carts.load_cart(connection, cart.row.id)

    return Cart.from_row(await info.context.db.mutate(work))


def _present_access_token(info: Info, token: str | None) -> None:
    """The caller proves it holds an order access token: its hash joins the principal's attributes for the rest
    of this operation, and Cerbos compares it with the order's (policies/order.yaml). Nothing else changes."""
    if not token:
        return
    if len(token) > 200:
        raise BadUserInput("not an order access token", field="accessToken")
    context = info.context
    context.principal = dataclasses.replace(context.principal, access_token_hash=carts.access_token_hash(token),
                                            _cerbos=[])
    context.authz = Authorizer(context.services.pdp, context.principal, context.services.pdp_counter)


CartOptions = Annotated[CreateCartInput | None, strawberry.argument(description="Options for the new cart.")]
CartIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the cart.")]
VariantIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the variant.")]
Quantity = Annotated[int, strawberry.argument(description="Number of units, at least 1.")]
LineIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the cart line.")]
LineQuantity = Annotated[int, strawberry.argument(
    description="New number of units, at least 1 (removeCartLine removes a line).")]
Email = Annotated[str, strawberry.argument(description="The shopper's email.")]
Address = Annotated[AddressInput, strawberry.argument(description="The shipping address.")]
ShippingOptionIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of a shipping option from "
                                                                               "the cart's availableShippingOptions.")]
OrderIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the order.")]
NewOrderStatus = Annotated[OrderStatus, strawberry.argument(description="The status to move to (PENDING never is "
                                                                         "one: INVALID_STATE_TRANSITION).")]
OutboxIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the outbox message.")]
OutboxStatusArg = Annotated[OutboxStatus | None, strawberry.argument(description="Only messages in this status.")]


@strawberry.type
class CommerceQuery:
    @strawberry.field(description="A cart by id (the id is the storefront's handle on an anonymous cart).")
    async def cart(self, info: Info, id: CartIdArg) -> Cart:
        return await _cart_for(info, id, "read")

    @strawberry.field(description="An order by id. A guest buyer sends the cart's order access token (from "
                                  "startCheckout) as accessToken; customers and staff need none.")
    async def order(self, info: Info, id: OrderIdArg,
                    access_token: AccessToken = None) -> Order:
        _present_access_token(info, access_token)
        order: Order = await node_by_global_id(info, id, "Order")
        return order

    @strawberry.field(description="Orders the caller may read: a customer's own, a store admin's store's.")
    async def orders(self, info: Info, first: First = None, after: After = None, last: Last = None,
                     before: Before = None) -> Connection[Order]:
        allowed = await info.context.authz.sql_filter("order", "read", ORDER_TABLE, ORDER_PLAN_ATTRIBUTES)
        return await page_query(info.context.db.execute,
                                select(ORDER_TABLE).where(allowed, *in_tenant(info.context.db, ORDER_TABLE)),
                                PageRequest(first, after, last, before), Order.from_row)

    @strawberry.field(description="Vendor orders the caller may read: a vendor's own, a store admin's store's.")
    async def vendor_orders(self, info: Info, first: First = None, after: After = None,
                            last: Last = None, before: Before = None) -> Connection[VendorOrder]:
        allowed = await info.context.authz.sql_filter("vendor_order", "read", VENDOR_ORDER_TABLE,
                                                      VENDOR_ORDER_PLAN_ATTRIBUTES)
        return await page_query(info.context.db.execute, select(VENDOR_ORDER_TABLE).where(
                                    allowed, *in_tenant(info.context.db, VENDOR_ORDER_TABLE)),
                                PageRequest(first, after, last, before), VendorOrder.from_row)


OUTBOX_TABLE = table_of(Outbox)
OUTBOX_PLAN_ATTRIBUTES = {"tenant_id": OUTBOX_TABLE.c.tenant_id}
WEBHOOK_PLAN_ATTRIBUTES = {"tenant_id": WEBHOOK_TABLE.c.tenant_id}
ATTEMPT_PLAN_ATTRIBUTES = {"tenant_id": CHECKOUT_ATTEMPT_TABLE.c.tenant_id,
                           "store_id": CHECKOUT_ATTEMPT_TABLE.c.store_id,
                           "customer_id": func.coalesce(CHECKOUT_ATTEMPT_TABLE.c.customer_id, "")}


def _webhooks_of_tenant(info: Info) -> ColumnElement[bool]:
    """Always explicit: the inbox also holds events whose tenant is unknown (tenant_id null), which RLS lets
    every transaction see; they belong to no tenant's admins."""
    tenant_id = info.context.db.tenant_id
    return WEBHOOK_TABLE.c.tenant_id == tenant_id if tenant_id is not None else false()


@strawberry.type
class OutboxQuery:
    @strawberry.field(description="The tenant's outbox (calls out to Fleetbase and others), newest first; "
                                  "filter by status, e.g. dead (tenant admins).")
    async def outbox_messages(self, info: Info, status: OutboxStatusArg = None, first: First = None,
                              after: After = None) -> Connection[OutboxMessage]:
        allowed = await info.context.authz.sql_filter("outbox_message", "read", OUTBOX_TABLE, OUTBOX_PLAN_ATTRIBUTES)
        statement = select(OUTBOX_TABLE).where(allowed, *in_tenant(info.context.db, OUTBOX_TABLE))
        if status is not None:
            statement = statement.where(OUTBOX_TABLE.c.status == status)
        order = [SortKey(OUTBOX_TABLE.c.created_at, True), SortKey(OUTBOX_TABLE.c.id, True)]
        return await page_query(info.context.db.execute, statement, PageRequest(first, after), OutboxMessage.from_row,
                                order)

    @strawberry.field(description="Webhook events the tenant received, newest first; filter by status: refused "
                                  "(kept with the reason) or failed (replay them with replayWebhookEvent). Tenant "
                                  "admins.")
    async def webhook_events(self, info: Info,
                             status: WebhookStatus = None,
                             first: First = None, after: After = None) -> Connection[WebhookEvent]:
        allowed = await info.context.authz.sql_filter("webhook_event", "read", WEBHOOK_TABLE,
                                                      WEBHOOK_PLAN_ATTRIBUTES)
        statement = select(WEBHOOK_TABLE).where(allowed, _webhooks_of_tenant(info))
        if status is not None:
            statement = statement.where(WEBHOOK_TABLE.c.status == status)
        order = [SortKey(WEBHOOK_TABLE.c.received_at, True), SortKey(WEBHOOK_TABLE.c.id, True)]
        return await page_query(info.context.db.execute, statement, PageRequest(first, after), WebhookEvent.from_row,
                                order)

    @strawberry.field(description="Checkouts of the stores the caller administers, newest first; filter by status, "
                                  "e.g. refund_pending or refunded (payments that could not become orders, and "
                                  "why).")
    async def checkout_attempts(self, info: Info,
                                status: AttemptStatus = None,
                                first: First = None, after: After = None) -> Connection[CheckoutAttempt]:
        allowed = await info.context.authz.sql_filter("checkout_attempt", "read", CHECKOUT_ATTEMPT_TABLE,
                                                      ATTEMPT_PLAN_ATTRIBUTES)
        statement = select(CHECKOUT_ATTEMPT_TABLE).where(allowed, *in_tenant(info.context.db, CHECKOUT_ATTEMPT_TABLE))
        if status is not None:
            statement = statement.where(CHECKOUT_ATTEMPT_TABLE.c.status == status)
        order = [SortKey(CHECKOUT_ATTEMPT_TABLE.c.created_at, True), SortKey(CHECKOUT_ATTEMPT_TABLE.c.id, True)]
        return await page_query(info.context.db.execute, statement, PageRequest(first, after),
                                CheckoutAttempt.from_row, order)


@strawberry.type
class OutboxMutation:
    @strawberry.mutation(description="Send a dead (or pending) outbox message again on the next dispatcher run.")
    async def retry_outbox_message(self, info: Info, id: OutboxIdArg) -> OutboxMessage:
        _, local_id = from_global_id(id, "OutboxMessage")
        row = (await info.context.db.execute(select(OUTBOX_TABLE).where(
            OUTBOX_TABLE.c.id == local_id, *in_tenant(info.context.db, OUTBOX_TABLE)))).first()
        if row is None:
            raise NotFound("no outbox message with that id")
        await info.context.authz.require(OutboxMessage.from_row(row).resource(), "retry")
        if row.status == "sent":
            raise BadUserInput("this message was sent", field="id")
        updated = await info.context.db.mutate(lambda connection: retry_message(connection, local_id))
        return OutboxMessage.from_row(updated)

    @strawberry.mutation(description="Handle a refused or failed webhook event again (e.g. after Stripe was "
                                     "unreachable or its key was fixed): the same handling as a delivery, "
                                     "idempotent (a settled payment is never settled twice).")
    async def replay_webhook_event(self, info: Info, id: WebhookEventId) -> WebhookEvent:
        _, local_id = from_global_id(id, "WebhookEvent")
        statement = select(WEBHOOK_TABLE).where(WEBHOOK_TABLE.c.id == local_id, _webhooks_of_tenant(info))
        row = (await info.context.db.execute(statement)).first()
        if row is None:
            raise NotFound("no webhook event with that id")
        await info.context.authz.require(WebhookEvent.from_row(row).resource(), "replay")
        if row.status not in ("refused", "failed"):
            raise BadUserInput(f"this event was {row.status}; only refused or failed events are replayed",
                               field="id")
        # Its own transactions, like a delivery (the refund it may send is made with no lock held).
        await process_event(info.context.services, row.payload, replay=True, tenant_id=row.tenant_id)
        return WebhookEvent.from_row((await info.context.db.execute(statement)).one())


@strawberry.type
class CommerceMutation:
    @strawberry.mutation(description="A new cart in the storefront's store (named by the publishable key).")
    async def create_cart(self, info: Info, input: CartOptions = None) -> Cart:
        store = info.context.store
        principal = info.context.principal
        if store is None:
            raise Unauthenticated(NO_STORE_CONTEXT)
        customer_id = principal.id if principal.authenticated and "customer" in principal.roles else None
        await info.context.authz.require(ResourceRef.of("cart", "new", tenant_id=store.tenant_id,
                                                        store_id=store.store_id, customer_id=customer_id or ""),
                                         "create")
        row = await info.context.loaders.by_key(STORE_TABLE).load(store.store_id)
        currency = (input.currency_code if input and input.currency_code else row.default_currency_code)
        created = await info.context.db.mutate(lambda connection: carts.create_cart(
            connection, tenant_id=store.tenant_id, store_id=store.store_id, currency_code=currency,
            customer_id=customer_id, email=input.email if input else None))
        return Cart.from_row(created)

    @strawberry.mutation(description="Add units of a variant to a cart (merged with an existing line of the same "
                                     "variant).")
    async def add_cart_line(self, info: Info, cart_id: CartIdArg, variant_id: VariantIdArg,
                            quantity: Quantity = 1) -> Cart:
        cart = await _cart_for(info, cart_id)
        _, variant = from_global_id(variant_id, "Variant")
        return await _changed_cart(info, cart, lambda connection, row: carts.set_line_quantity(
            connection, row, variant, quantity, add=True))

    @strawberry.mutation(description="Set a line's quantity (up to the stock on hand).")
    async def update_cart_line(self, info: Info, cart_id: CartIdArg, line_id: LineIdArg,
                               quantity: LineQuantity) -> Cart:
        cart = await _cart_for(info, cart_id)
        _, line = from_global_id(line_id, "CartLine")

        async def change(connection: AsyncConnection, row: Any) -> None:
            variant = await carts.line_variant(connection, row, line)
            await carts.set_line_quantity(connection, row, variant, quantity, add=False)

        return await _changed_cart(info, cart, change)

    @strawberry.mutation(description="Remove a line from a cart.")
    async def remove_cart_line(self, info: Info, cart_id: CartIdArg, line_id: LineIdArg) -> Cart:
        cart = await _cart_for(info, cart_id)
        _, line = from_global_id(line_id, "CartLine")
        return await _changed_cart(info, cart, lambda connection, row: carts.remove_line(connection, row, line))

    @strawberry.mutation(description="Set the shopper's email.")
    async def set_cart_email(self, info: Info, cart_id: CartIdArg, email: Email) -> Cart:
        cart = await _cart_for(info, cart_id)
        checked = carts.validate_email(email)
        return await _changed_cart(info, cart, lambda connection, row: carts.update_cart(connection, row,
                                                                                          email=checked))

    @strawberry.mutation(description="Set the shipping address (inside the region's country and states); returns the "
                                     "cart with its available shipping options.")
    async def set_shipping_address(self, info: Info, cart_id: CartIdArg, address: Address) -> Cart:
        cart = await _cart_for(info, cart_id)

        async def change(connection: AsyncConnection, row: Any) -> None:
            checked = await carts.validate_address(connection, row, dict(address.__dict__))
            await carts.release_reservations(connection, row)
            await carts.update_cart(connection, row, shipping_address=checked)

        return await _changed_cart(info, cart, change)

    @strawberry.mutation(description="Choose one of the cart's available shipping options.")
    async def set_shipping_option(self, info: Info, cart_id: CartIdArg,
                                  shipping_option_id: ShippingOptionIdArg) -> Cart:
        cart = await _cart_for(info, cart_id)
        _, option = from_global_id(shipping_option_id, "ShippingOption")
        return await _changed_cart(info, cart, lambda connection, row: carts.choose_shipping_option(
            connection, row, option))

    @strawberry.mutation(description="Reserve the cart's stock and create its Stripe PaymentIntent; returns the "
                                     "client secret and publishable key for Stripe.js, and the order access "
                                     "token. OUT_OF_STOCK when a unit is gone. Changing the cart afterwards "
                                     "starts a new checkout (the old PaymentIntent is canceled).")
    async def start_checkout(self, info: Info, cart_id: CartIdArg) -> CheckoutSession:
        cart = await _cart_for(info, cart_id, "checkout")
        settings = info.context.settings
        if cart.row.status != "open":
            raise BadUserInput("this cart is already checked out", field="cartId")
        # 1. Price the cart and get its PaymentIntent from Stripe before any row is locked (DESIGN.md §3).
        priced = await info.context.db.run(lambda connection: carts.priced_cart(connection, cart.row))
        problems = carts.checkout_problems(priced)
        if problems:
            raise BadUserInput("; ".join(message for _, message in problems), field=problems[0][0])
        snapshot = carts.checkout_snapshot(priced)
        fingerprint = carts.snapshot_fingerprint(snapshot)
        current = await info.context.db.run(lambda connection: carts.current_attempt(connection, cart.row))
        intent = None
        if current is not None and current.fingerprint == fingerprint and current.status == "pending":
            intent = await stripe_api.retrieve_payment_intent(info.context.services.stripe,
                                                              current.payment_intent_id)
            if intent.status == "succeeded":
                raise BadUserInput("this checkout is paid: call completeCheckout", field="cartId")
            if intent.status == "canceled":
                intent = None
        if intent is None:
            sequence = await info.context.db.run(lambda connection: carts.attempt_count(connection, cart.row.id))
            order_id = carts.order_id_for(cart.row)
            intent = await stripe_api.create_payment_intent(
                info.context.services.stripe, amount=priced.totals.total, currency=cart.row.currency_code,
                transfer_group=str(order_id), idempotency_key=carts.payment_idempotency_key(
                    cart.row.id, fingerprint, sequence),
                metadata={"tenant_id": str(cart.row.tenant_id), "store_id": str(cart.row.store_id),
                          "cart_id": str(cart.row.id), "order_id": str(order_id)})
        token = carts.order_access_token(settings.COOKIE_SECRET, cart.row.tenant_id, cart.row.id)
        paid_intent = intent

        # 2. Under the cart's lock: the cart must still be what the PaymentIntent charges for; reserve its stock.
        async def work(connection: AsyncConnection) -> CheckoutSession:
            row = await carts.load_cart(connection, cart.row.id, lock=True)
            if row.status != "open":
                raise BadUserInput("this cart is already checked out", field="cartId")
            locked = await carts.priced_cart(connection, row)
            if carts.snapshot_fingerprint(carts.checkout_snapshot(locked)) != fingerprint:
                raise Conflict("the cart changed while its checkout started; start the checkout again")
            order_id = str(carts.order_id_for(row))
            if row.payment_intent_id != paid_intent.id:
                await carts.supersede_checkout(connection, row, "a new checkout of the cart started")
                await connection.execute(insert(CHECKOUT_ATTEMPT_TABLE).values(
                    tenant_id=row.tenant_id, id=uuid.uuid4(), cart_id=row.id, store_id=row.store_id,
                    customer_id=row.customer_id, payment_intent_id=paid_intent.id, fingerprint=fingerprint,
                    amount=paid_intent.amount, currency_code=row.currency_code, snapshot=snapshot,
                    status="pending").on_conflict_do_nothing())
            await carts.reserve_inventory(connection, locked, settings.CITYOS_RESERVATION_MINUTES)
            await connection.execute(update(CART_TABLE).where(CART_TABLE.c.id == row.id).values(
                payment_intent_id=paid_intent.id, payment_error=None, order_id=uuid.UUID(order_id),
                access_token_hash=carts.access_token_hash(token), updated_at=func.now()))
            return CheckoutSession(payment_intent_id=paid_intent.id, client_secret=paid_intent.client_secret or "",
                                   amount=paid_intent.amount, currency_code=row.currency_code,
                                   order_id=to_global_id("Order", order_id),
                                   publishable_key=settings.STRIPE_PUBLISHABLE_KEY, order_access_token=token)

        session: CheckoutSession = await info.context.db.mutate(work)
        return session

    @strawberry.mutation(description="After Stripe.js confirmed the payment: settle the checkout (the webhook may "
                                     "already have) and return its order. Idempotent: every later call returns "
                                     "the same order. A guest sends the orderAccessToken from startCheckout. "
                                     "PAYMENT_FAILED when the payment has not succeeded, or was refunded.")
    async def complete_checkout(self, info: Info, cart_id: CartIdArg,
                                access_token: AccessToken = None
                                ) -> Order:
        _present_access_token(info, access_token)
        cart = await _cart_for(info, cart_id, "checkout")
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
        settled = await info.context.db.mutate(lambda connection: orders.settle_payment(
            connection, cart_id=cart.row.id, intent_id=intent.id, amount_received=intent.amount_received,
            currency=intent.currency, ledger_policy=LedgerPolicy.of(info.context.settings),
            events=info.context.events, ship=bool(info.context.settings.FLEETBASE_URL)))
        if settled.order is None:  # recorded; the refund is sent by the outbox dispatcher after this commits
            raise PaymentFailed(f"your payment is refunded: {settled.refund_reason}", provider_code="payment_refunded")
        order = Order.from_row(settled.order)
        await info.context.authz.require(order.resource(), "read")
        return order

    @strawberry.mutation(description="Move an order along its state machine (pending → paid → fulfilled → "
                                     "completed; canceled; refunded). INVALID_STATE_TRANSITION otherwise.")
    async def update_order_status(self, info: Info, id: OrderIdArg, status: NewOrderStatus) -> Order:
        order: Order = await node_by_global_id(info, id, "Order", "update")
        row = await info.context.db.mutate(lambda connection: orders.change_order_status(
            connection, order.row.id, status.value, info.context.events))
        return Order.from_row(row)

