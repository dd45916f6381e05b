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
                       default_currency_code: str | None = None) -> Row[tuple[uuid.UUID]]:
    values: dict[str, object] = {"updated_at": func.now()}
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


async def create_sales_channel(connection: AsyncConnection, *, tenant_id: uuid.UUID, store_id: uuid.UUID, name: str,
                               description: str | None, is_default: bool) -> Row[tuple[uuid.UUID]]:
    """A sales channel of a store; the default one (what storefronts sell) is unique per store."""
    name = rules.validate_name(name)
    text_value = description.strip() if description else None
    if text_value and len(text_value) > 2000:
        raise BadUserInput("description must be at most 2000 characters", field="description")

    async def work() -> Row[tuple[uuid.UUID]]:
        if is_default:
            await connection.execute(update(SalesChannel)
                                     .where(SalesChannel.store_id == store_id, SalesChannel.is_default)
                                     .values(is_default=False, updated_at=func.now()))
        return (await connection.execute(insert(SalesChannel).values(
            tenant_id=tenant_id, id=uuid.uuid4(), store_id=store_id, name=name, description=text_value,
            is_default=is_default).returning(*SalesChannel.__table__.c))).one()

    return await unique_or_conflict(connection, work, f"the store has a sales channel named {name!r}", "name")


async def update_sales_channel(connection: AsyncConnection, *, channel_id: uuid.UUID, name: str | None = None,
                               description: str | None = None, is_default: bool | None = None,
                               is_disabled: bool | None = None) -> Row[tuple[uuid.UUID]]:
    """Change a sales channel. Making it the default unsets the store's previous default; the default channel
    cannot be disabled, and a store keeps a default (make another one the default instead of unsetting it)."""
    channel = (await connection.execute(select(SalesChannel.__table__).where(SalesChannel.id == channel_id)
                                        .with_for_update())).first()
    if channel is None:
        raise NotFound("sales channel not found")
    values: dict[str, object] = {"updated_at": func.now()}
    if name is not None:
        values["name"] = rules.validate_name(name)
    if description is not None:
        if len(description.strip()) > 2000:
            raise BadUserInput("description must be at most 2000 characters", field="description")
        values["description"] = description.strip() or None
    if is_default is False and channel.is_default:
        raise BadUserInput("a store keeps a default sales channel: make another channel the default",
                           field="isDefault")
    default = bool(is_default) or channel.is_default
    if is_disabled is not None:
        if is_disabled and default:
            raise BadUserInput("the default sales channel cannot be disabled", field="isDisabled")
        values["is_disabled"] = is_disabled

    async def work() -> Row[tuple[uuid.UUID]]:
        if is_default and not channel.is_default:
            await connection.execute(update(SalesChannel).where(SalesChannel.store_id == channel.store_id,
                                                                SalesChannel.is_default)
                                     .values(is_default=False, updated_at=func.now()))
            values["is_default"] = True
        return (await connection.execute(update(SalesChannel).where(SalesChannel.id == channel.id).values(**values)
                                         .returning(*SalesChannel.__table__.c))).one()

    return await unique_or_conflict(connection, work, "the store has a sales channel with that name", "name")
