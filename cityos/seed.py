"""`cityos seed`: the plan's seed data, idempotent (a second run changes nothing).

Runs as the database owner. The demo store's publishable key is created once and kept in
`<data dir>/demo-publishable-key` so a development install can print it at every start; the database holds
only its hash, as for every key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cityos import seed_data
from cityos.domain.commerce.models import Currency, PaymentProvider, Region, RegionState
from cityos.domain.tenancy import rules
from cityos.domain.tenancy.models import PublishableApiKey, SalesChannel, Store, StoreDomain, Tenant
from cityos.domain.tenancy.service import create_publishable_key


@dataclass(frozen=True)
class SeedResult:
    tenant_id: uuid.UUID
    store_id: uuid.UUID
    publishable_key: str
    domain: str


async def _upsert_returning_id(connection: AsyncConnection, model: type, values: dict[str, object],
                               keys: list[str]) -> uuid.UUID:
    table = model.__table__  # type: ignore[attr-defined]
    await connection.execute(insert(table).values(id=uuid.uuid4(), **values).on_conflict_do_nothing())
    where = [table.c[key] == values[key] for key in keys]
    return uuid.UUID(str((await connection.execute(select(table.c.id).where(*where))).scalar_one()))


async def seed_reference_data(connection: AsyncConnection) -> None:
    for code, name, symbol, digits in seed_data.CURRENCIES:
        await connection.execute(insert(Currency).values(
            code=code, name=name, symbol=symbol, decimal_digits=digits).on_conflict_do_nothing())
    for provider in seed_data.PAYMENT_PROVIDERS:
        await connection.execute(insert(PaymentProvider).values(id=provider).on_conflict_do_nothing())


async def seed_region(connection: AsyncConnection, tenant_id: uuid.UUID) -> uuid.UUID:
    region_id = await _upsert_returning_id(
        connection, Region, {"tenant_id": tenant_id, **seed_data.US_REGION}, ["tenant_id", "name"])
    for code, name in seed_data.US_STATES:
        await connection.execute(insert(RegionState).values(
            tenant_id=tenant_id, id=uuid.uuid4(), region_id=region_id, code=code, name=name,
        ).on_conflict_do_nothing())
    return region_id


async def _demo_key(connection: AsyncConnection, tenant_id: uuid.UUID, store_id: uuid.UUID,
                    key_file: Path) -> str:
    if key_file.exists():
        key = key_file.read_text().strip()
        found = (await connection.execute(select(PublishableApiKey.id).where(
            PublishableApiKey.token_hash == rules.hash_publishable_key(key),
            PublishableApiKey.revoked_at.is_(None)))).first()
        if found:
            return key
    _row, key = await create_publishable_key(connection, tenant_id=tenant_id, store_id=store_id,
                                             title=seed_data.DEMO_KEY_TITLE)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return key


async def seed(engine: AsyncEngine, data_dir: Path) -> SeedResult:
    async with engine.begin() as connection:
        await seed_reference_data(connection)
        tenant_id = await _upsert_returning_id(connection, Tenant, dict(seed_data.DEMO_TENANT), ["slug"])
        store_id = await _upsert_returning_id(
            connection, Store, {"tenant_id": tenant_id, **seed_data.DEMO_STORE}, ["tenant_id", "handle"])
        await connection.execute(insert(SalesChannel).values(
            tenant_id=tenant_id, id=uuid.uuid4(), store_id=store_id, name="Default Sales Channel",
            is_default=True).on_conflict_do_nothing())
        await connection.execute(insert(StoreDomain).values(
            tenant_id=tenant_id, id=uuid.uuid4(), store_id=store_id, domain=seed_data.DEMO_DOMAIN,
            is_primary=True).on_conflict_do_nothing())
        await seed_region(connection, tenant_id)
        key = await _demo_key(connection, tenant_id, store_id, data_dir / "demo-publishable-key")
    return SeedResult(tenant_id, store_id, key, seed_data.DEMO_DOMAIN)
