"""Turning a paid cart into an order split by vendor, exactly once; order status changes."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.commerce import rules
from cityos.domain.commerce.models import InventoryReservation
from cityos.domain.commerce.service import CART, VARIANT, load_cart, priced_cart, reserve_inventory
from cityos.domain.fulfillment.models import Shipment
from cityos.domain.marketplace.ledger import LedgerPolicy, record_reversals, record_sales
from cityos.domain.orders.models import Order, OrderLine, VendorOrder
from cityos.domain.platform.outbox import enqueue
from cityos.errors import BadUserInput, NotFound, PaymentFailed
from cityos.realtime.events import PendingEvents, event

ORDER = table_of(Order)
VENDOR_ORDER = table_of(VendorOrder)
ORDER_LINE = table_of(OrderLine)
RESERVATION = table_of(InventoryReservation)
SHIPMENT = table_of(Shipment)


async def complete_order(connection: AsyncConnection, *, cart_id: uuid.UUID, intent_id: str, intent_status: str,
                         amount_received: int, currency: str, ledger_policy: LedgerPolicy,
                         events: PendingEvents | None = None, ship: bool = False) -> Row[Any]:
    """Create the cart's order once its payment succeeded. Idempotent: the cart row is locked, and a completed
    cart returns its order, so the webhook and completeCheckout racing each other make exactly one order."""
    cart = await load_cart(connection, cart_id, lock=True)
    if cart.status == "completed":
        existing = (await connection.execute(select(ORDER).where(ORDER.c.id == cart.order_id))).one()
        return existing
    if intent_status != "succeeded":
        raise PaymentFailed(f"the payment has not succeeded (status {intent_status})")
    if cart.payment_intent_id != intent_id or cart.order_id is None:
        raise BadUserInput("this payment does not belong to the cart's current checkout", field="paymentIntentId")
    priced = await priced_cart(connection, cart)
    if amount_received != priced.totals.total or currency.lower() != cart.currency_code:
        raise PaymentFailed("the amount paid does not match the cart's total")
    reserved = {row.variant_id: row.quantity for row in (await connection.execute(
        select(RESERVATION).where(RESERVATION.c.cart_id == cart.id))).all()}
    if any(reserved.get(line.variant_id) != line.quantity for _, line in priced.lines):
        # The reservation expired before the payment arrived: take the units now, if they are still there.
        await reserve_inventory(connection, priced, minutes=1)
    assert priced.option is not None
    totals = priced.totals
    order = (await connection.execute(insert(ORDER).values(
        tenant_id=cart.tenant_id, id=cart.order_id, store_id=cart.store_id, cart_id=cart.id,
        customer_id=cart.customer_id, email=cart.email, currency_code=cart.currency_code,
        status=rules.next_order_status("pending", "paid"), subtotal=totals.subtotal,
        discount_total=totals.discount_total, shipping_total=totals.shipping_total, tax_total=totals.tax_total,
        total=totals.total, payment_intent_id=intent_id, shipping_address=cart.shipping_address,
        shipping_option_code=priced.option.code).returning(*ORDER.c))).one()
    parts = rules.split_by_vendor([line for _, line in priced.lines], totals)
    vendor_order_ids = {}
    for vendor_id, part in parts.items():
        vendor_order_ids[vendor_id] = uuid.uuid4()
        await connection.execute(insert(VENDOR_ORDER).values(
            tenant_id=cart.tenant_id, id=vendor_order_ids[vendor_id], order_id=order.id, store_id=cart.store_id,
            vendor_id=vendor_id, status=order.status, subtotal=part.subtotal, discount_total=part.discount_total,
            shipping_total=part.shipping_total, tax_total=part.tax_total, total=part.total))
    await connection.execute(insert(ORDER_LINE), [{
        "tenant_id": cart.tenant_id, "id": uuid.uuid4(), "order_id": order.id,
        "vendor_order_id": vendor_order_ids[line.vendor_id], "variant_id": line.variant_id,
        "product_id": row.product_id, "vendor_id": line.vendor_id, "sku": row.sku,
        "title": f"{row.product_title} — {row.variant_title}", "quantity": line.quantity,
        "list_unit_price": line.list_unit_price, "unit_price": line.unit_price, "subtotal": line.subtotal,
        "discount_total": line.discount, "total": line.total} for row, line in priced.lines])
    await record_sales(connection, order.id, ledger_policy)  # the vendors' shares and the platform's commission
    for vendor_id, vendor_order_id in vendor_order_ids.items():
        if ship:  # a Fleetbase order per vendor order, sent by the outbox dispatcher once this commits
            await enqueue(connection, tenant_id=cart.tenant_id, topic="fleetbase.create_order",
                          payload={"vendor_order_id": str(vendor_order_id)})
        if events is not None:
            events.add(event("order.created", tenant_id=cart.tenant_id, store_id=cart.store_id, order_id=order.id,
                             vendor_id=vendor_id, vendor_order_id=vendor_order_id, customer_id=cart.customer_id,
                             status=order.status))
    await connection.execute(delete(RESERVATION).where(RESERVATION.c.cart_id == cart.id))  # the units are sold
    await connection.execute(update(CART).where(CART.c.id == cart.id).values(
        status="completed", completed_at=func.now(), payment_error=None, updated_at=func.now()))
    return order


async def change_order_status(connection: AsyncConnection, order_id: uuid.UUID, target: str,
                              events: PendingEvents | None = None) -> Row[Any]:
    order = (await connection.execute(select(ORDER).where(ORDER.c.id == order_id).with_for_update())).first()
    if order is None:
        raise NotFound("no order with that id")
    status = rules.next_order_status(order.status, target)
    if status in ("canceled", "refunded"):
        await record_reversals(connection, order_id)
    if status == "canceled":  # nothing was shipped: the units go back to stock
        for variant_id, quantity in (await connection.execute(select(ORDER_LINE.c.variant_id, ORDER_LINE.c.quantity)
                                                              .where(ORDER_LINE.c.order_id == order_id))).all():
            await connection.execute(update(VARIANT).where(VARIANT.c.id == variant_id)
                                     .values(inventory_quantity=VARIANT.c.inventory_quantity + quantity))
    parts = (await connection.execute(update(VENDOR_ORDER).where(VENDOR_ORDER.c.order_id == order_id)
                                      .values(status=status, updated_at=func.now())
                                      .returning(VENDOR_ORDER.c.id, VENDOR_ORDER.c.vendor_id))).all()
    if status == "canceled":  # stop the couriers too
        for shipment in (await connection.execute(select(SHIPMENT.c.fleetbase_order_id).where(
                SHIPMENT.c.order_id == order_id, SHIPMENT.c.fleetbase_order_id.is_not(None)))).all():
            await enqueue(connection, tenant_id=order.tenant_id, topic="fleetbase.cancel_order",
                          payload={"fleetbase_order_id": shipment.fleetbase_order_id})
    if events is not None:
        for part in parts:
            events.add(event("order.status_changed", tenant_id=order.tenant_id, store_id=order.store_id,
                             order_id=order.id, vendor_id=part.vendor_id, vendor_order_id=part.id,
                             customer_id=order.customer_id, status=status))
    return (await connection.execute(update(ORDER).where(ORDER.c.id == order_id)
                                     .values(status=status, updated_at=func.now()).returning(*ORDER.c))).one()
