"""Pure rules of customer accounts: what a profile and a saved address may hold, and what a reorder takes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cityos.domain.commerce.rules import validate_postal_code
from cityos.errors import BadUserInput

PHONE = re.compile(r"^\+?[0-9 ()./-]{4,39}$")  # at most 40 characters with the +
COUNTRY = re.compile(r"^[a-z]{2}$")
REQUIRED = ("first_name", "last_name", "address_1", "city", "province", "postal_code", "country_code")
MAX_ADDRESSES = 50


def validate_profile_name(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    name = " ".join(value.split())
    if len(name) > 100:
        raise BadUserInput(f"{field} must be at most 100 characters", field=field)
    return name or None


def validate_phone(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    phone = value.strip()
    if not PHONE.match(phone):
        raise BadUserInput("not a phone number", field="phone")
    return phone


def validate_saved_address(address: dict[str, Any]) -> dict[str, Any]:
    """A saved address holds what a shipping address needs (a checkout still checks it against its region): every
    required part, an ISO 3166-1 alpha-2 country (lower case), a US ZIP code in the US, the state code in upper
    case; texts trimmed, at most 200 characters."""
    cleaned = {key: " ".join(str(value).split()) for key, value in address.items() if value is not None}
    cleaned = {key: value for key, value in cleaned.items() if value}
    for required in REQUIRED:
        if not cleaned.get(required):
            raise BadUserInput(f"the address needs {required}", field=f"address.{required}")
    for key, value in cleaned.items():
        if len(value) > 200:
            raise BadUserInput(f"{key} is longer than 200 characters", field=f"address.{key}")
    cleaned["country_code"] = cleaned["country_code"].lower()
    if not COUNTRY.match(cleaned["country_code"]):
        raise BadUserInput("not an ISO 3166-1 alpha-2 country code", field="address.countryCode")
    cleaned["postal_code"] = validate_postal_code(cleaned["country_code"], cleaned["postal_code"])
    cleaned["province"] = cleaned["province"].upper()
    if "phone" in cleaned:
        cleaned["phone"] = validate_phone(cleaned["phone"]) or ""
    return cleaned


@dataclass(frozen=True)
class ReorderLine:
    variant_id: Any
    sku: str
    wanted: int  # units in the past order
    available: int | None  # units on hand now; None: the variant is no longer sold


def reorder_quantity(line: ReorderLine) -> int:
    """How many units of a past line go into the new cart: as many as before, at most what is in stock; none of
    a variant no longer sold."""
    if line.available is None or line.available <= 0:
        return 0
    return min(line.wanted, line.available)
