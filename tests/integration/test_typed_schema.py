"""The schema is typed, as a client sees it through introspection over HTTP: statuses are enums (the domain's own
enums, value for value), shipping addresses are `Address` objects, and every amount in a currency is `Money`."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

import pytest

from cityos.domain.commerce.models import CartStatus
from cityos.domain.fulfillment.models import ShipmentStatus
from cityos.domain.marketplace.models import PayoutStatus, VendorStatus
from cityos.domain.orders.models import OrderStatus
from cityos.domain.platform.models import OutboxStatus
from tests.conftest import GraphQLClient

TYPE_REF = "kind name ofType { kind name ofType { kind name ofType { kind name } } }"
INTROSPECTION = f"""{{ __schema {{ types {{
  name kind enumValues {{ name }}
  fields {{ name type {{ {TYPE_REF} }} args {{ name type {{ {TYPE_REF} }} }} }}
  inputFields {{ name type {{ {TYPE_REF} }} }}
}} }} }}"""

STATUS_FIELDS: dict[tuple[str, str], type[StrEnum]] = {
    ("Order", "status"): OrderStatus,
    ("VendorOrder", "status"): OrderStatus,
    ("Cart", "status"): CartStatus,
    ("Shipment", "status"): ShipmentStatus,
    ("TrackingEvent", "status"): ShipmentStatus,
    ("Payout", "status"): PayoutStatus,
    ("OutboxMessage", "status"): OutboxStatus,
    ("Vendor", "status"): VendorStatus,
    ("LiveOrderEvent", "orderStatus"): OrderStatus,
    ("LiveOrderEvent", "shipmentStatus"): ShipmentStatus,
}
# Amounts without a currency of their own: they apply in whatever currency a sale or payout is in.
CURRENCY_LESS_AMOUNTS = {("Vendor", "payoutMinimum"), ("CommissionRule", "flatPerLine"),
                         ("CommissionRule", "minimum"), ("CommissionRule", "maximum"),
                         ("PromotionConditions", "minSubtotal")}  # in the cart's currency, whichever it is
MONEY_NAME = re.compile(r"(amount|price|total|balance|minimum|maximum|flatPerLine|pending|available|paidOut)$",
                        re.IGNORECASE)


def named(type_ref: dict[str, Any]) -> tuple[str, str]:
    while type_ref.get("ofType"):
        type_ref = type_ref["ofType"]
    return type_ref["kind"], type_ref["name"]


@pytest.fixture
async def types(gql: GraphQLClient) -> dict[str, dict[str, Any]]:
    body = await gql(INTROSPECTION, {})
    assert "errors" not in body, body
    return {type_["name"]: type_ for type_ in body["data"]["__schema"]["types"]}


def fields_of(types: dict[str, dict[str, Any]], type_name: str) -> dict[str, dict[str, Any]]:
    return {field["name"]: field for field in types[type_name]["fields"] or types[type_name]["inputFields"] or []}


async def test_statuses_are_the_domain_enums(types: dict[str, dict[str, Any]]) -> None:
    for (type_name, field_name), enum in STATUS_FIELDS.items():
        kind, name = named(fields_of(types, type_name)[field_name]["type"])
        assert (kind, name) == ("ENUM", enum.__name__), (type_name, field_name)
        assert [value["name"] for value in types[name]["enumValues"]] == [member.name for member in enum]
    # inputs take the same enums
    mutation = fields_of(types, "Mutation")
    update_status = {arg["name"]: arg for arg in mutation["updateOrderStatus"]["args"]}["status"]
    assert named(update_status["type"]) == ("ENUM", "OrderStatus")
    assert "OrderStatusInput" not in types
    outbox = {arg["name"]: arg for arg in fields_of(types, "Query")["outboxMessages"]["args"]}["status"]
    assert named(outbox["type"]) == ("ENUM", "OutboxStatus")
    assert named(fields_of(types, "UpdateVendorInput")["status"]["type"]) == ("ENUM", "VendorStatus")


async def test_shipping_addresses_are_address_objects(types: dict[str, dict[str, Any]]) -> None:
    for type_name in ("Cart", "Order"):
        assert named(fields_of(types, type_name)["shippingAddress"]["type"]) == ("OBJECT", "Address")
    address = fields_of(types, "Address")
    assert set(address) == {"firstName", "lastName", "company", "address1", "address2", "city", "province",
                            "postalCode", "countryCode", "phone"}
    optional = {name for name, field in address.items() if field["type"]["kind"] != "NON_NULL"}
    assert optional == {"company", "address2", "phone"}


async def test_no_amount_in_a_currency_is_a_bare_int(types: dict[str, dict[str, Any]]) -> None:
    bare = sorted(f"{type_name}.{field['name']}" for type_name, type_ in types.items()
                  if type_["kind"] == "OBJECT" and not type_name.startswith("__") and type_name != "Money"
                  for field in type_["fields"] or []
                  if MONEY_NAME.search(field["name"]) and field["name"] != "totalCount"
                  and named(field["type"]) == ("SCALAR", "Int")
                  and (type_name, field["name"]) not in CURRENCY_LESS_AMOUNTS)
    assert bare == []
    money_fields = {("CartLine", "unitPrice"), ("CartLine", "listUnitPrice"), ("CartLine", "total"),
                    ("Totals", "subtotal"), ("Totals", "total"), ("ShippingOption", "amount"),
                    ("OrderLine", "unitPrice"), ("CheckoutSession", "amount"), ("LedgerEntry", "vendorAmount"),
                    ("Payout", "amount"), ("VendorBalance", "available"), ("PriceTier", "unitAmount")}
    for type_name, field_name in money_fields:
        assert named(fields_of(types, type_name)[field_name]["type"]) == ("OBJECT", "Money"), (type_name, field_name)
