"""Vendor, vendor user and commission rule use cases over one tenant-scoped connection."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.kernel import unique_or_conflict, validate_email
from cityos.domain.marketplace import rules
from cityos.domain.marketplace.models import CommissionRule, Vendor, VendorStatus, VendorUser
from cityos.domain.platform.models import ConnectStateUse
from cityos.domain.tenancy.rules import validate_handle, validate_name
from cityos.errors import BadUserInput, NotFound

VENDOR = table_of(Vendor)
VENDOR_USER = table_of(VendorUser)
RULE = table_of(CommissionRule)
STATE_USE = table_of(ConnectStateUse)
VENDOR_STATUSES = tuple(status.value for status in VendorStatus)
VENDOR_ROLES = ("vendor_admin", "vendor_user")


def _vendor_values(name: str | None, status: str | None, contact_email: str | None,
                   payout_minimum: int | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = validate_name(name)
    if status is not None:
        if status not in VENDOR_STATUSES:
            raise BadUserInput(f"status must be one of {', '.join(VENDOR_STATUSES)}", field="status")
        values["status"] = status
    if contact_email is not None:
        values["contact_email"] = validate_email(contact_email)
    if payout_minimum is not None:
        if payout_minimum < 1:
            raise BadUserInput("payoutMinimum must be at least 1", field="payoutMinimum")
        values["payout_minimum"] = payout_minimum
    return values


async def create_vendor(connection: AsyncConnection, *, tenant_id: uuid.UUID, store_id: uuid.UUID, handle: str,
                        name: str, contact_email: str | None, payout_minimum: int | None) -> Row[Any]:
    values = _vendor_values(name, "pending", contact_email, payout_minimum)

    async def work() -> Row[Any]:
        return (await connection.execute(insert(VENDOR).values(
            tenant_id=tenant_id, id=uuid.uuid4(), store_id=store_id, handle=validate_handle(handle), **values)
            .returning(*VENDOR.c))).one()

    return await unique_or_conflict(connection, work, f"a vendor with handle {handle!r} already exists", "handle")


async def update_vendor(connection: AsyncConnection, vendor_id: uuid.UUID, **changes: Any) -> Row[Any]:
    values = _vendor_values(changes.get("name"), changes.get("status"), changes.get("contact_email"),
                            changes.get("payout_minimum"))
    row = (await connection.execute(update(VENDOR).where(VENDOR.c.id == vendor_id)
                                    .values(updated_at=func.now(), **values).returning(*VENDOR.c))).first()
    if row is None:
        raise NotFound("no vendor with that id")
    return row


async def set_stripe_account(connection: AsyncConnection, vendor_id: uuid.UUID, account: str,
                             account_type: str) -> Row[Any]:
    async def work() -> Row[Any]:
        return (await connection.execute(update(VENDOR).where(VENDOR.c.id == vendor_id).values(
            stripe_account_id=account, stripe_account_type=account_type, updated_at=func.now())
            .returning(*VENDOR.c))).one()

    return await unique_or_conflict(connection, work, "that Stripe account is connected to another vendor",
                                    "stripeAccountId")


async def invite_vendor_user(connection: AsyncConnection, *, vendor: Any, email: str | None, subject: str | None,
                             role: str) -> Row[Any]:
    if role not in VENDOR_ROLES:
        raise BadUserInput(f"role must be one of {', '.join(VENDOR_ROLES)}", field="role")
    if not email and not subject:
        raise BadUserInput("invite by email or by Keycloak subject", field="email")

    async def work() -> Row[Any]:
        return (await connection.execute(insert(VENDOR_USER).values(
            tenant_id=vendor.tenant_pk, id=uuid.uuid4(), vendor_id=vendor.pk,
            email=validate_email(email) if email else None, subject=subject.strip() if subject else None,
            role=role, status="active" if subject else "invited").returning(*VENDOR_USER.c))).one()

    return await unique_or_conflict(connection, work, "this person is already a user of the vendor", "email")


async def remove_vendor_user(connection: AsyncConnection, user_id: uuid.UUID) -> None:
    removed = (await connection.execute(delete(VENDOR_USER).where(VENDOR_USER.c.id == user_id)
                                        .returning(VENDOR_USER.c.id))).first()
    if removed is None:
        raise NotFound("no vendor user with that id")


def rule_values(scope: str, scope_id: uuid.UUID | None, percentage: Decimal | None, flat_per_line: int | None,
                minimum: int | None, maximum: int | None, effective_from: datetime | None,
                effective_to: datetime | None) -> dict[str, Any]:
    checked = rules.Rule(uuid.uuid4(), scope, scope_id, percentage, flat_per_line, minimum, maximum, effective_from,
                         effective_to)  # validates
    return {"scope": checked.scope, "scope_id": checked.scope_id, "percentage": checked.percentage,
            "flat_per_line": checked.flat_per_line, "minimum": checked.minimum, "maximum": checked.maximum,
            "effective_from": checked.effective_from, "effective_to": checked.effective_to}


SCOPE_TABLES = {"store": "store", "vendor": "vendor", "category": "category", "product": "product"}


async def check_scope(connection: AsyncConnection, values: dict[str, Any]) -> None:
    """A rule's scope object must exist in the caller's tenant (RLS hides every other tenant's)."""
    if values["scope"] == "tenant":
        return
    found = (await connection.execute(text(f"select 1 from {SCOPE_TABLES[values['scope']]} where id = :id"),
                                      {"id": values["scope_id"]})).first()
    if found is None:
        raise BadUserInput(f"unknown {values['scope']} for this tenant", field="scopeId")


async def create_commission_rule(connection: AsyncConnection, *, tenant_id: uuid.UUID,
                                 values: dict[str, Any]) -> Row[Any]:
    await check_scope(connection, values)
    return (await connection.execute(insert(RULE).values(tenant_id=tenant_id, id=uuid.uuid4(), **values)
                                     .returning(*RULE.c))).one()


async def update_commission_rule(connection: AsyncConnection, rule_id: uuid.UUID, values: dict[str, Any]) -> Row[Any]:
    await check_scope(connection, values)
    row = (await connection.execute(update(RULE).where(RULE.c.id == rule_id).values(updated_at=func.now(), **values)
                                    .returning(*RULE.c))).first()
    if row is None:
        raise NotFound("no commission rule with that id")
    return row


async def delete_commission_rule(connection: AsyncConnection, rule_id: uuid.UUID) -> None:
    if (await connection.execute(delete(RULE).where(RULE.c.id == rule_id).returning(RULE.c.id))).first() is None:
        raise NotFound("no commission rule with that id")


async def redeem_state(connection: AsyncConnection, nonce: str) -> None:
    """A Connect OAuth state works once."""
    used = (await connection.execute(pg_insert(STATE_USE).values(nonce=nonce).on_conflict_do_nothing()
                                     .returning(STATE_USE.c.nonce))).first()
    if used is None:
        raise BadUserInput("this state was already used: start the connection again", field="state")
