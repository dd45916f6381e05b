"""Tenancy use cases over one connection whose transaction already names the tenant (RLS)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.kernel import unique_or_conflict
from cityos.domain.tenancy import rules
from cityos.domain.tenancy.models import Currency, PublishableApiKey, SalesChannel, Store, StoreDomain, Tenant
from cityos.errors import BadUserInput, NotFound


@dataclass(frozen=True)
class StoreRef:
    tenant_id: uuid.UUID
    store_id: uuid.UUID


async def store_by_publishable_key(connection: AsyncConnection, key: str) -> StoreRef | None:
    if not rules.is_well_formed_publishable_key(key):
        return None
    row = (await connection.execute(text("select tenant_id, store_id from cityos_store_by_publishable_key(:h)"),
                                    {"h": rules.hash_publishable_key(key)})).first()
    return StoreRef(row.tenant_id, row.store_id) if row else None


async def store_by_domain(connection: AsyncConnection, host: str) -> StoreRef | None:
    row = (await connection.execute(text("select tenant_id, store_id from cityos_store_by_domain(:d)"),
                                    {"d": host})).first()
    return StoreRef(row.tenant_id, row.store_id) if row else None


async def create_tenant(connection: AsyncConnection, *, slug: str, name: str) -> Row[tuple[uuid.UUID]]:
    slug = rules.validate_handle(slug, "slug")
    name = rules.validate_name(name)

    async def work() -> Row[tuple[uuid.UUID]]:
        result = await connection.execute(
            insert(Tenant).values(id=uuid.uuid4(), slug=slug, name=name).returning(*Tenant.__table__.c))
        return result.one()

    return await unique_or_conflict(connection, work, f"a tenant with slug {slug!r} already exists", "slug")


async def _ensure_currency(connection: AsyncConnection, code: str) -> str:
    code = code.strip().lower()
    exists = (await connection.execute(select(Currency.code).where(Currency.code == code))).first()
    if not exists:
        raise BadUserInput(f"unknown currency {code!r}", field="defaultCurrencyCode")
    return code


async def create_store(connection: AsyncConnection, *, tenant_id: uuid.UUID, handle: str, name: str,
                       default_currency_code: str = "usd") -> Row[tuple[uuid.UUID]]:
    """A store and its default sales channel."""
    handle = rules.validate_handle(handle)
    name = rules.validate_name(name)
    currency = await _ensure_currency(connection, default_currency_code)
    store_id = uuid.uuid4()

    async def work() -> Row[tuple[uuid.UUID]]:
        row = (await connection.execute(
            insert(Store).values(tenant_id=tenant_id, id=store_id, handle=handle, name=name,
                                 default_currency_code=currency).returning(*Store.__table__.c))).one()
        await connection.execute(insert(SalesChannel).values(
            tenant_id=tenant_id, id=uuid.uuid4(), store_id=store_id, name="Default Sales Channel",
            is_default=True))
        return row

    return await unique_or_conflict(connection, work, f"a store with handle {handle!r} already exists", "handle")


async def update_store(connection: AsyncConnection, *, store_id: uuid.UUID, name: str | None = None,
                       handle: str | None = None,
                       default_currency_code: str | None = None,
                       return_window_days: int | None = None) -> Row[tuple[uuid.UUID]]:
    values: dict[str, object] = {"updated_at": func.now()}
    if return_window_days is not None:
        values["return_window_days"] = rules.validate_return_window(return_window_days)
    if name is not None:
        values["name"] = rules.validate_name(name)
    if handle is not None:
        values["handle"] = rules.validate_handle(handle)
    if default_currency_code is not None:
        values["default_currency_code"] = await _ensure_currency(connection, default_currency_code)

    async def work() -> Row[tuple[uuid.UUID]] | None:
        result = await connection.execute(
            update(Store).where(Store.id == store_id).values(**values).returning(*Store.__table__.c))
        return result.first()

    row = await unique_or_conflict(connection, work, f"a store with handle {handle!r} already exists", "handle")
    if row is None:
        raise NotFound("store not found")
    return row


async def add_store_domain(connection: AsyncConnection, *, tenant_id: uuid.UUID, store_id: uuid.UUID,
                           domain: str, is_primary: bool = False) -> Row[tuple[uuid.UUID]]:
    host = rules.normalize_domain(domain)

    async def work() -> Row[tuple[uuid.UUID]]:
        if is_primary:
            await connection.execute(update(StoreDomain).where(StoreDomain.store_id == store_id)
                                     .values(is_primary=False))
        return (await connection.execute(
            insert(StoreDomain).values(tenant_id=tenant_id, id=uuid.uuid4(), store_id=store_id, domain=host,
                                       is_primary=is_primary).returning(*StoreDomain.__table__.c))).one()

    return await unique_or_conflict(connection, work, f"the domain {host!r} is already in use", "domain")


async def remove_store_domain(connection: AsyncConnection, *, domain_id: uuid.UUID) -> uuid.UUID:
    result = await connection.execute(delete(StoreDomain).where(StoreDomain.id == domain_id)
                                      .returning(StoreDomain.id))
    removed: uuid.UUID | None = result.scalar_one_or_none()
    if removed is None:
        raise NotFound("store domain not found")
    return removed


async def create_publishable_key(connection: AsyncConnection, *, tenant_id: uuid.UUID, store_id: uuid.UUID,
                                 title: str, key: str | None = None) -> tuple[Row[tuple[uuid.UUID]], str]:
    """Returns the stored row and the key itself, which is never stored and cannot be shown again."""
    key = key or rules.new_publishable_key()
    row = (await connection.execute(insert(PublishableApiKey).values(
        tenant_id=tenant_id, id=uuid.uuid4(), store_id=store_id, title=rules.validate_name(title, "title"),
        token_hash=rules.hash_publishable_key(key), redacted=rules.redact_publishable_key(key),
    ).returning(*PublishableApiKey.__table__.c))).one()
    return row, key


async def revoke_publishable_key(connection: AsyncConnection, *, key_id: uuid.UUID) -> Row[tuple[uuid.UUID]]:
    row = (await connection.execute(
        update(PublishableApiKey).where(PublishableApiKey.id == key_id)
        .values(revoked_at=func.coalesce(PublishableApiKey.revoked_at, func.now()), updated_at=func.now())
        .returning(*PublishableApiKey.__table__.c))).first()
    if row is None:
        raise NotFound("publishable key not found")
    return row
