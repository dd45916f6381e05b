"""sync-to-payload (*/30 * * * *) and sync-from-payload (0 * * * *): tenant by tenant, each from its cursor; one
tenant's failure is recorded on its cursor and does not stop the others (integrations/payload/sync.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.config import Settings
from cityos.db.engines import set_platform_scope, tenant_transaction
from cityos.domain.content import service as content
from cityos.integrations.payload.client import PayloadClient
from cityos.integrations.payload.sync import PAGE, RunCounts, pull_tenant, push_tenant


def payload_client(settings: Settings, http: Any) -> PayloadClient | None:
    if not (settings.PAYLOAD_URL and settings.PAYLOAD_API_KEY):
        return None
    return PayloadClient(http, settings.PAYLOAD_URL, settings.PAYLOAD_API_KEY, settings.PAYLOAD_AUTH_COLLECTION)


async def _tenants(engine: AsyncEngine, only: Sequence[uuid.UUID] | None) -> list[uuid.UUID]:
    if only is not None:
        return list(only)
    async with tenant_transaction(engine, None) as connection:
        await set_platform_scope(connection)
        return await content.active_tenants(connection)


async def _sync(name: str, direction: Any, engine: AsyncEngine, settings: Settings, http: Any,
                tenant_ids: Sequence[uuid.UUID] | None, idle: str) -> str:
    """Run one direction of the sync for each tenant; a tenant's failure is counted and the others go on."""
    client = payload_client(settings, http)
    if client is None:
        return f"Payload is not configured; nothing {idle}"
    counts = RunCounts()
    for tenant_id in await _tenants(engine, tenant_ids):
        await direction(engine, client, tenant_id, counts)
    if counts.failed:
        raise RuntimeError(f"{name}: {counts.summary()}")
    return counts.summary()


async def sync_to_payload(engine: AsyncEngine, settings: Settings, http: Any, *, page: int = PAGE,
                          tenant_ids: Sequence[uuid.UUID] | None = None) -> str:
    push = partial(push_tenant, page=page, settle=settings.CITYOS_SYNC_SETTLE_SECONDS)
    return await _sync("sync-to-payload", push, engine, settings, http, tenant_ids, "sent")


async def sync_from_payload(engine: AsyncEngine, settings: Settings, http: Any, *, page: int = PAGE,
                            tenant_ids: Sequence[uuid.UUID] | None = None) -> str:
    return await _sync("sync-from-payload", partial(pull_tenant, page=page), engine, settings, http, tenant_ids,
                       "received")
