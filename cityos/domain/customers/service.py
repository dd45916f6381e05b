"""Customer account use cases over one tenant-scoped connection: the profile, the address book, reordering a
past order into a new cart, and claiming the guest orders placed with the customer's verified email."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.catalog.models import Product, Variant, VariantPrice
from cityos.domain.commerce import service as carts
from cityos.domain.customers import rules
from cityos.domain.customers.models import CustomerAddress, CustomerProfile
from cityos.domain.fulfillment.models import Shipment
from cityos.domain.orders.models import Order, OrderLine
from cityos.errors import ApiError, BadUserInput, NotFound

PROFILE = table_of(CustomerProfile)
ADDRESS = table_of(CustomerAddress)
ORDER = table_of(Order)
ORDER_LINE = table_of(OrderLine)
SHIPMENT = table_of(Shipment)
VARIANT = table_of(Variant)
PRODUCT = table_of(Product)
PRICE = table_of(VariantPrice)


async def profile(connection: AsyncConnection, customer_id: str) -> Row[Any] | None:
    return (await connection.execute(select(PROFILE).where(PROFILE.c.customer_id == customer_id))).first()


async def save_profile(connection: AsyncConnection, *, tenant_id: uuid.UUID, customer_id: str, email: str | None,
                       first_name: str | None, last_name: str | None, phone: str | None) -> Row[Any]:
    """Create or change the customer's profile; omitted (None) fields stay as they are. The email is the token's
    verified one, never an argument."""
    values = {"first_name": rules.validate_profile_name(first_name, "firstName"),
              "last_name": rules.validate_profile_name(last_name, "lastName"), "phone": rules.validate_phone(phone)}
    given = {key: value for key, value, sent in zip(values, values.values(), (first_name, last_name, phone),
                                                      strict=True) if sent is not None}
    if email:
        given["email"] = email
    statement = insert(PROFILE).values(tenant_id=tenant_id, id=uuid.uuid4(), customer_id=customer_id, **given)
    return (await connection.execute(statement.on_conflict_do_update(
        index_elements=["tenant_id", "customer_id"], set_={**given, "updated_at": func.now()})
        .returning(*PROFILE.c))).one()


async def addresses(connection: AsyncConnection, customer_id: str) -> list[Row[Any]]:
    return list((await connection.execute(select(ADDRESS).where(ADDRESS.c.customer_id == customer_id)
                                          .order_by(ADDRESS.c.created_at, ADDRESS.c.id))).all())


async def _unset_default(connection: AsyncConnection, customer_id: str) -> None:
    await connection.execute(update(ADDRESS).where(ADDRESS.c.customer_id == customer_id, ADDRESS.c.is_default)
                             .values(is_default=False, updated_at=func.now()))


def _label(label: str | None) -> str | None:
    return rules.validate_profile_name(label, "label")


async def add_address(connection: AsyncConnection, *, tenant_id: uuid.UUID, customer_id: str, label: str | None,
                      address: dict[str, Any], is_default: bool) -> Row[Any]:
    cleaned = rules.validate_saved_address(address)
    count = (await connection.execute(select(func.count()).where(ADDRESS.c.customer_id == customer_id))).scalar_one()
    if count >= rules.MAX_ADDRESSES:
        raise BadUserInput(f"an address book holds at most {rules.MAX_ADDRESSES} addresses", field="address")
    if is_default or count == 0:  # the first address is the default
        await _unset_default(connection, customer_id)
        is_default = True
    return (await connection.execute(insert(ADDRESS).values(
        tenant_id=tenant_id, id=uuid.uuid4(), customer_id=customer_id, label=_label(label), address=cleaned,
        is_default=is_default).returning(*ADDRESS.c))).one()


async def update_address(connection: AsyncConnection, *, customer_id: str, address_id: uuid.UUID,
                         label: str | None, address: dict[str, Any] | None, is_default: bool | None) -> Row[Any]:
    """Change one of the customer's own addresses (another customer's is NOT_FOUND)."""
    found = (await connection.execute(select(ADDRESS).where(ADDRESS.c.id == address_id,
                                                            ADDRESS.c.customer_id == customer_id)
                                      .with_for_update())).first()
    if found is None:
        raise NotFound("no address with that id in your address book")
    values: dict[str, Any] = {"updated_at": func.now()}
    if label is not None:
        values["label"] = _label(label)
    if address is not None:
        values["address"] = rules.validate_saved_address(address)
    if is_default:
        await _unset_default(connection, customer_id)
        values["is_default"] = True
    elif is_default is False and found.is_default:
        raise BadUserInput("make another address the default instead", field="isDefault")
    return (await connection.execute(update(ADDRESS).where(ADDRESS.c.id == found.id).values(**values)
                                     .returning(*ADDRESS.c))).one()


async def remove_address(connection: AsyncConnection, *, customer_id: str, address_id: uuid.UUID) -> uuid.UUID:
    removed = (await connection.execute(delete(ADDRESS).where(ADDRESS.c.id == address_id,
                                                              ADDRESS.c.customer_id == customer_id)
                                        .returning(ADDRESS.c.id, ADDRESS.c.is_default))).first()
    if removed is None:
        raise NotFound("no address with that id in your address book")
    if removed.is_default:  # the oldest remaining address becomes the default
        oldest = (await connection.execute(select(ADDRESS.c.id).where(ADDRESS.c.customer_id == customer_id)
                                           .order_by(ADDRESS.c.created_at, ADDRESS.c.id).limit(1))).scalar()
        if oldest is not None:
            await connection.execute(update(ADDRESS).where(ADDRESS.c.id == oldest).values(is_default=True))
    return uuid.UUID(str(removed.id))


async def reorder(connection: AsyncConnection, order: Row[Any], customer_id: str) -> tuple[Row[Any], list[str]]:
    """A new cart of the order's store and currency with the order's lines again (each capped at the stock on
    hand; variants no longer sold, out of stock or unpriced are left out and named), the order's email and, when
    it is still inside the cart's region, its shipping address. Returns the cart and the skipped SKUs."""
    cart = await carts.create_cart(connection, tenant_id=order.tenant_id, store_id=order.store_id,
                                   currency_code=order.currency_code, customer_id=customer_id, email=order.email)
    found = (await connection.execute(
        select(ORDER_LINE.c.variant_id, ORDER_LINE.c.sku, func.sum(ORDER_LINE.c.quantity).label("quantity"),
               VARIANT.c.inventory_quantity, PRODUCT.c.status, PRICE.c.amount)
        .outerjoin(VARIANT, and_(VARIANT.c.tenant_id == ORDER_LINE.c.tenant_id,
                                 VARIANT.c.id == ORDER_LINE.c.variant_id))
        .outerjoin(PRODUCT, and_(PRODUCT.c.tenant_id == VARIANT.c.tenant_id, PRODUCT.c.id == VARIANT.c.product_id))
        .outerjoin(PRICE, and_(PRICE.c.tenant_id == VARIANT.c.tenant_id, PRICE.c.variant_id == VARIANT.c.id,
                               PRICE.c.currency_code == order.currency_code))
        .where(ORDER_LINE.c.order_id == order.id)
        .group_by(ORDER_LINE.c.variant_id, ORDER_LINE.c.sku, VARIANT.c.inventory_quantity, PRODUCT.c.status,
                  PRICE.c.amount)
        .order_by(func.min(ORDER_LINE.c.created_at), ORDER_LINE.c.sku))).all()
    skipped = []
    for row in found:
        sold = row.inventory_quantity is not None and row.status == "published" and row.amount is not None
        quantity = rules.reorder_quantity(rules.ReorderLine(row.variant_id, row.sku, int(row.quantity),
                                                            row.inventory_quantity if sold else None))
        if quantity == 0:
            skipped.append(row.sku)
            continue
        await carts.set_line_quantity(connection, cart, row.variant_id, quantity, add=False)
    if order.shipping_address:
        try:
            async with connection.begin_nested():
                checked = await carts.validate_address(connection, cart, dict(order.shipping_address))
                await carts.update_cart(connection, cart, shipping_address=checked)
        except ApiError:
            pass  # the region changed since: the customer enters an address again
    return await carts.load_cart(connection, cart.id), skipped


async def claim_guest_orders(connection: AsyncConnection, *, customer_id: str, email: str) -> list[Row[Any]]:
    """Guest orders placed with `email` (the customer's verified email) become the customer's, with their
    shipments; an order of another customer is never taken."""
    claimed = list((await connection.execute(update(ORDER).where(
        ORDER.c.customer_id.is_(None), func.lower(ORDER.c.email) == email.lower())
        .values(customer_id=customer_id, updated_at=func.now()).returning(*ORDER.c))).all())
    if claimed:
        await connection.execute(update(SHIPMENT).where(SHIPMENT.c.order_id.in_([row.id for row in claimed]),
                                                        SHIPMENT.c.customer_id.is_(None))
                                 .values(customer_id=customer_id, updated_at=func.now()))
    return sorted(claimed, key=lambda row: (row.created_at, row.id))
