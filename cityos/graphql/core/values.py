"""Value types every context's schema shares: `Money`, `Address`, and the status enums.

Each status enum is the domain's own `StrEnum` (the one list that also derives the table's CHECK constraint and
drives the rules), registered here as a GraphQL enum: member names are the GraphQL values (`PAID`), member values
the stored strings (`paid`), and every value is described.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

import strawberry

from cityos.domain.commerce.models import CartStatus
from cityos.domain.fulfillment.models import ShipmentStatus
from cityos.domain.marketplace.models import PayoutStatus, VendorStatus
from cityos.domain.orders.models import OrderFulfillment, OrderStatus, VendorFulfillment
from cityos.domain.platform.models import OutboxStatus

__all__ = [
    "Address",
    "CartStatus",
    "Money",
    "MoneyInput",
    "OrderFulfillment",
    "OrderStatus",
    "OutboxStatus",
    "PayoutStatus",
    "ShipmentStatus",
    "VendorFulfillment",
    "VendorStatus",
    "described_enum",
    "money",
    "optional_money",
]

S = TypeVar("S", bound=StrEnum)


def described_enum(enum: type[S], description: str, values: Mapping[S, str]) -> type[S]:
    """Register the domain enum `enum` as a GraphQL enum with a description for every value. A member without one
    (say, a status added to the domain later) fails at import rather than reaching the schema undescribed."""
    undescribed = [member.name for member in enum if not values.get(member)]
    if undescribed:
        raise ValueError(f"{enum.__name__}: describe {', '.join(undescribed)}")
    strawberry.enum(enum, description=description)
    for value in enum.__strawberry_definition__.values:  # type: ignore[attr-defined]
        value.description = values[enum[value.name]]
    return enum


described_enum(OrderStatus, "Where an order (or a vendor's part of it) is: pending → paid → fulfilled → completed; "
                            "canceled before fulfilment, refunded after payment.", {
    OrderStatus.PENDING: "Created, not paid yet.",
    OrderStatus.PAID: "Payment received (normally set by the Stripe webhook).",
    OrderStatus.FULFILLED: "Every vendor order has been handed over for delivery.",
    OrderStatus.COMPLETED: "Delivered and closed.",
    OrderStatus.CANCELED: "Canceled: reserved stock is returned and commissions are reversed.",
    OrderStatus.REFUNDED: "The payment was refunded; commissions are reversed.",
    OrderStatus.PENDING_APPROVAL: "A company buyer's order above their spending limit or an approval threshold: "
                                  "waiting for the company's approvers (no payment taken, stock held). Approved: "
                                  "PENDING (by card, the buyer pays) or AWAITING_PAYMENT (on account); rejected: "
                                  "CANCELED.",
    OrderStatus.AWAITING_PAYMENT: "Placed on account: fulfilled as any order while its invoice is open; PAID once "
                                  "the invoice is paid (vendor payouts wait for that payment).",
})
described_enum(VendorFulfillment, "Where a vendor is with its part of an order; it only moves forward.", {
    VendorFulfillment.UNFULFILLED: "Paid; the vendor has not started.",
    VendorFulfillment.PROCESSING: "The vendor is preparing it.",
    VendorFulfillment.READY: "Packed and ready for pickup (or handed to Fleetbase, awaiting the courier).",
    VendorFulfillment.SHIPPED: "On its way, with a carrier and a tracking number.",
    VendorFulfillment.DELIVERED: "Delivered to the customer.",
})
described_enum(OrderFulfillment, "An order's fulfilment, derived from its vendor orders'.", {
    OrderFulfillment.UNFULFILLED: "No vendor has started.",
    OrderFulfillment.PROCESSING: "Some vendors are preparing their parts; none shipped.",
    OrderFulfillment.PARTIALLY_SHIPPED: "Some vendor orders shipped, others not yet.",
    OrderFulfillment.SHIPPED: "Every vendor order shipped; none delivered yet.",
    OrderFulfillment.PARTIALLY_DELIVERED: "Every vendor order shipped; some delivered.",
    OrderFulfillment.DELIVERED: "Every vendor order delivered.",
})
described_enum(CartStatus, "Whether a cart can still change.", {
    CartStatus.OPEN: "Being filled or in checkout.",
    CartStatus.AWAITING_APPROVAL: "Its order waits for the company's approvers (then, by card, for payment); it no "
                                  "longer changes.",
    CartStatus.COMPLETED: "Paid: an order was made from it; it no longer changes.",
})
described_enum(ShipmentStatus, "Where a delivery is: created → picked up → in transit → delivered; failed and "
                               "canceled end it from any open state. It never moves backwards.", {
    ShipmentStatus.CREATED: "The courier order exists; nothing has been collected yet.",
    ShipmentStatus.PICKED_UP: "A driver collected the parcel.",
    ShipmentStatus.IN_TRANSIT: "On its way to the customer.",
    ShipmentStatus.DELIVERED: "Handed to the customer.",
    ShipmentStatus.FAILED: "The delivery failed.",
    ShipmentStatus.CANCELED: "The delivery was canceled (e.g. the order was).",
})
described_enum(PayoutStatus, "Where a payout's transfer to the vendor's Stripe account is.", {
    PayoutStatus.PENDING: "Claimed its ledger entries; the transfer has not been confirmed yet.",
    PayoutStatus.PAID: "Stripe made the transfer.",
    PayoutStatus.FAILED: "Stripe refused the transfer; its ledger entries are released for the next run.",
    PayoutStatus.REVERSED: "Stripe reversed the transfer; its ledger entries are released.",
})
described_enum(VendorStatus, "A vendor's standing on the marketplace.", {
    VendorStatus.PENDING: "Not selling yet (e.g. awaiting approval).",
    VendorStatus.ACTIVE: "Selling; receives payouts.",
    VendorStatus.SUSPENDED: "Suspended by the store's admins: no payouts.",
})
described_enum(OutboxStatus, "Where a call out waiting in the outbox is.", {
    OutboxStatus.PENDING: "Waiting for the dispatcher (again, after a failed attempt).",
    OutboxStatus.SENT: "Sent successfully.",
    OutboxStatus.DEAD: "Given up after the last retry; retryOutboxMessage sends it again.",
    OutboxStatus.SKIPPED: "Not sent on purpose (a customer notice while no mail server is configured: "
                          "CITYOS_SMTP_URL); kept, and retryOutboxMessage sends it once one is.",
})


@strawberry.type(description="An amount of money in minor units (cents) of an ISO 4217 currency.")
class Money:
    amount: int = strawberry.field(description="Amount in minor units (cents).")
    currency_code: str = strawberry.field(description="ISO 4217 currency code, lower case (e.g. usd).")


@strawberry.input(description="An amount of money in minor units (cents) of an ISO 4217 currency.")
class MoneyInput:
    amount: int = strawberry.field(description="Amount in minor units (cents), not negative.")
    currency_code: str = strawberry.field(description="ISO 4217 currency code (e.g. usd).")


def money(amount: int, currency_code: str) -> Money:
    return Money(amount=amount, currency_code=currency_code)


def optional_money(amount: int | None, currency_code: str) -> Money | None:
    return None if amount is None else Money(amount=amount, currency_code=currency_code)


@strawberry.type(description="A postal address, as set with setShippingAddress (AddressInput).")
class Address:
    first_name: str = strawberry.field(description="Recipient's first name.")
    last_name: str = strawberry.field(description="Recipient's last name.")
    company: str | None = strawberry.field(description="Company name, when given.")
    address_1: str = strawberry.field(description="Street and number.")
    address_2: str | None = strawberry.field(description="Apartment, suite, floor, when given.")
    city: str = strawberry.field(description="City or town.")
    province: str = strawberry.field(description="ISO 3166-2 subdivision code, e.g. US-CA.")
    postal_code: str = strawberry.field(description="Postal (ZIP) code.")
    country_code: str = strawberry.field(description="ISO 3166-1 alpha-2 country code, lower case (e.g. us).")
    phone: str | None = strawberry.field(description="Phone number for the courier, when given.")

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> Address:
        """From the stored JSON (the snake_case keys of AddressInput, absent when not given)."""

        def text(key: str) -> str:
            return str(stored.get(key) or "")

        def optional(key: str) -> str | None:
            value = stored.get(key)
            return str(value) if value else None

        return cls(first_name=text("first_name"), last_name=text("last_name"), company=optional("company"),
                   address_1=text("address_1"), address_2=optional("address_2"), city=text("city"),
                   province=text("province"), postal_code=text("postal_code"), country_code=text("country_code"),
                   phone=optional("phone"))

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any] | None) -> Address | None:
        return cls.from_json(stored) if stored else None
