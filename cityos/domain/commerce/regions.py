"""Regions and shipping options as data a tenant sets up: where it sells (countries, states), in which currency,
with which tax (per region and per state, prices with or without tax), and how it ships (flat, free above an
amount, weight bands; per region, optionally a vendor's own). Validation that is pure lives in commerce/rules.py."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.commerce import rules
from cityos.domain.commerce.models import Region, RegionState, ShippingOption
from cityos.domain.kernel import unique_or_conflict
from cityos.domain.tenancy.models import Currency
from cityos.errors import BadUserInput, NotFound

REGION = table_of(Region)
STATE = table_of(RegionState)
OPTION = table_of(ShippingOption)
CURRENCY = table_of(Currency)
COUNTRY = re.compile(r"^[a-z]{2}$")
SUBDIVISION = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
MAX_STATES = 200
MAX_BANDS = 20


@dataclass(frozen=True)
class StateValues:
    code: str  # ISO 3166-2 (US-CA), or without the country when the region has one country (CA)
    name: str
    tax_rate: Decimal | None = None


@dataclass(frozen=True)
class Amount:
    amount: int
    currency_code: str


def _name(value: str, field: str, max_length: int = 100) -> str:
    name = " ".join(value.split())
    if not name or len(name) > max_length:
        raise BadUserInput(f"{field} must be 1-{max_length} characters", field=field)
    return name


def validate_countries(codes: Sequence[str]) -> list[str]:
    countries = list(dict.fromkeys(code.strip().lower() for code in codes))
    if not countries:
        raise BadUserInput("a region sells to at least one country", field="countryCodes")
    for code in countries:
        if not COUNTRY.match(code):
            raise BadUserInput(f"{code!r} is not an ISO 3166-1 alpha-2 country code", field="countryCodes")
    return countries


def validate_states(states: Sequence[StateValues], countries: Sequence[str]) -> list[StateValues]:
    if len(states) > MAX_STATES:
        raise BadUserInput(f"a region lists at most {MAX_STATES} states", field="states")
    cleaned: dict[str, StateValues] = {}
    for state in states:
        code = state.code.strip().upper()
        if "-" not in code and len(countries) == 1:
            code = f"{countries[0].upper()}-{code}"
        if not SUBDIVISION.match(code) or code[:2].lower() not in countries:
            raise BadUserInput(f"{state.code!r} is not an ISO 3166-2 code of the region's countries",
                               field="states.code")
        if code in cleaned:
            raise BadUserInput(f"state {code} is listed twice", field="states.code")
        rate = rules.validate_tax_rate(state.tax_rate, "states.taxRate") if state.tax_rate is not None else None
        cleaned[code] = StateValues(code, _name(state.name, "states.name"), rate)
    return list(cleaned.values())


async def _currency(connection: AsyncConnection, code: str) -> str:
    code = code.strip().lower()
    found = (await connection.execute(select(func.count()).where(CURRENCY.c.code == code))).scalar_one()
    if not found:
        raise BadUserInput(f"unknown currency {code!r}", field="currencyCode")
    return code


async def _replace_states(connection: AsyncConnection, region: Row[Any], states: list[StateValues]) -> None:
    await connection.execute(delete(STATE).where(STATE.c.region_id == region.id))
    if states:
        await connection.execute(insert(STATE), [{
            "tenant_id": region.tenant_id, "id": uuid.uuid4(), "region_id": region.id, "code": state.code,
            "name": state.name, "tax_rate": state.tax_rate} for state in states])


async def create_region(connection: AsyncConnection, *, tenant_id: uuid.UUID, name: str, currency_code: str,
                        country_codes: Sequence[str], tax_rate: Decimal, tax_inclusive: bool,
                        states: Sequence[StateValues]) -> Row[Any]:
    countries = validate_countries(country_codes)
    values = {"tenant_id": tenant_id, "id": uuid.uuid4(), "name": _name(name, "name"),
              "currency_code": await _currency(connection, currency_code), "country_code": countries[0],
              "country_codes": countries, "tax_rate": rules.validate_tax_rate(tax_rate, "taxRate"),
              "tax_inclusive": tax_inclusive}
    cleaned = validate_states(states, countries)

    async def work() -> Row[Any]:
        return (await connection.execute(insert(REGION).values(**values).returning(*REGION.c))).one()

    region = await unique_or_conflict(connection, work, f"a region named {values['name']!r} exists", "name")
    await _replace_states(connection, region, cleaned)
    return region


async def update_region(connection: AsyncConnection, region_id: uuid.UUID, *, name: str | None = None,
                        country_codes: Sequence[str] | None = None, tax_rate: Decimal | None = None,
                        tax_inclusive: bool | None = None, states: Sequence[StateValues] | None = None) -> Row[Any]:
    """Change a region; `states`, when given, replaces its states. Its currency never changes (prices and
    shipping options are in it)."""
    region = (await connection.execute(select(REGION).where(REGION.c.id == region_id).with_for_update())).first()
    if region is None:
        raise NotFound("no region with that id")
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = _name(name, "name")
    countries = list(region.country_codes or [region.country_code])
    if country_codes is not None:
        countries = validate_countries(country_codes)
        values.update(country_code=countries[0], country_codes=countries)
    if tax_rate is not None:
        values["tax_rate"] = rules.validate_tax_rate(tax_rate, "taxRate")
    if tax_inclusive is not None:
        values["tax_inclusive"] = tax_inclusive
    cleaned = validate_states(states, countries) if states is not None else None
    if cleaned is None and country_codes is not None:
        kept = (await connection.execute(select(STATE.c.code).where(STATE.c.region_id == region.id))).scalars()
        if any(code[:2].lower() not in countries for code in kept):
            raise BadUserInput("the region has states of a country it would no longer sell to: send its states "
                               "too", field="countryCodes")

    async def work() -> Row[Any]:
        return (await connection.execute(update(REGION).where(REGION.c.id == region.id)
                                         .values(updated_at=func.now(), **values).returning(*REGION.c))).one()

    updated = await unique_or_conflict(connection, work, "a region with that name exists", "name")
    if cleaned is not None:
        await _replace_states(connection, updated, cleaned)
    return updated


def _amount(value: Amount | None, currency_code: str, field: str) -> int | None:
    """A Money argument of a shipping option: in the region's currency (else BAD_USER_INPUT), not negative."""
    if value is None:
        return None
    if value.currency_code.strip().lower() != currency_code:
        raise BadUserInput(f"{field} is in {value.currency_code.upper()}, but the region sells in "
                           f"{currency_code.upper()}", field=field)
    if value.amount < 0:
        raise BadUserInput(f"{field} cannot be negative", field=field)
    return value.amount


def _bands(bands: Sequence[tuple[int | None, Amount]] | None, currency_code: str) -> list[dict[str, Any]] | None:
    if bands is None:
        return None
    if len(bands) > MAX_BANDS:
        raise BadUserInput(f"at most {MAX_BANDS} weight bands", field="weightBands")
    checked = rules.validate_weight_bands([rules.WeightBand(up_to, _amount(amount, currency_code,
                                                                           "weightBands.amount") or 0)
                                           for up_to, amount in bands])
    return [{"up_to_grams": band.up_to_grams, "amount": band.amount} for band in checked] or None


@dataclass(frozen=True)
class OptionValues:
    name: str | None = None
    amount: Amount | None = None
    min_subtotal: Amount | None = None
    free_above: Amount | None = None
    weight_bands: Sequence[tuple[int | None, Amount]] | None = None
    is_active: bool | None = None


def _option_values(values: OptionValues, currency_code: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if values.name is not None:
        found["name"] = _name(values.name, "name")
    if values.amount is not None:
        found["amount"] = _amount(values.amount, currency_code, "amount")
    if values.min_subtotal is not None:
        found["min_subtotal"] = _amount(values.min_subtotal, currency_code, "minSubtotal")
    if values.free_above is not None:
        found["free_above"] = _amount(values.free_above, currency_code, "freeAbove")
    if values.weight_bands is not None:
        found["weight_bands"] = _bands(values.weight_bands, currency_code)
    if values.is_active is not None:
        found["is_active"] = values.is_active
    return found


async def region_of(connection: AsyncConnection, region_id: uuid.UUID) -> Row[Any]:
    region = (await connection.execute(select(REGION).where(REGION.c.id == region_id))).first()
    if region is None:
        raise NotFound("no region with that id")
    return region


async def create_shipping_option(connection: AsyncConnection, *, region: Row[Any], vendor_id: uuid.UUID | None,
                                 code: str, values: OptionValues) -> Row[Any]:
    """A shipping option of a region (a vendor's own when `vendor_id`): every amount in the region's currency."""
    code = code.strip().lower()
    if not CODE.match(code):
        raise BadUserInput("code must be 1-50 lower-case letters, digits, - or _", field="code")
    if values.name is None or values.amount is None:
        raise BadUserInput("a shipping option needs a name and an amount", field="amount")
    row_values = {"tenant_id": region.tenant_id, "id": uuid.uuid4(), "region_id": region.id, "vendor_id": vendor_id,
                  "code": code, **_option_values(values, region.currency_code)}

    async def work() -> Row[Any]:
        return (await connection.execute(insert(OPTION).values(**row_values).returning(*OPTION.c))).one()

    return await unique_or_conflict(connection, work, f"the region already has a {code!r} option"
                                    + (" of this vendor" if vendor_id else ""), "code")


async def update_shipping_option(connection: AsyncConnection, option_id: uuid.UUID, values: OptionValues,
                                 *, clear: Sequence[str] = ()) -> Row[Any]:
    """Change a shipping option; `clear` names the optional amounts to remove (minSubtotal, freeAbove,
    weightBands)."""
    option = (await connection.execute(select(OPTION).where(OPTION.c.id == option_id).with_for_update())).first()
    if option is None:
        raise NotFound("no shipping option with that id")
    region = await region_of(connection, option.region_id)
    changes = _option_values(values, region.currency_code)
    columns = {"minSubtotal": "min_subtotal", "freeAbove": "free_above", "weightBands": "weight_bands"}
    for name in clear:
        if name not in columns:
            raise BadUserInput(f"{name} cannot be cleared", field="clear")
        changes[columns[name]] = None
    return (await connection.execute(update(OPTION).where(OPTION.c.id == option.id)
                                     .values(updated_at=func.now(), **changes).returning(*OPTION.c))).one()
