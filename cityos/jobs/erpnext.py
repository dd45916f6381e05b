"""sync-to-erpnext (0 3 * * *): the catch-up of accounting. Tenant by tenant from its cursor, every order paid or
refunded since is written to the outbox (unless a message for it is already waiting), then the ERPNext messages
due are sent (the same sender as dispatch-outbox's, integrations/erpnext/sync.py). A tenant's failure stays on its
cursor and does not stop the others; ERPNext being down leaves the messages pending for their retries."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.config import Settings
from cityos.db.engines import set_platform_scope, tenant_transaction
from cityos.domain.accounting.service import STREAM, TOPICS, changed_orders, request_sync
from cityos.domain.content.service import active_tenants
from cityos.domain.platform import sync
from cityos.integrations.erpnext.sync import erpnext_client
from cityos.jobs.outbox import dispatch_outbox

log = logging.getLogger(__name__)
PAGE = 200


async def enqueue_changed_orders(engine: AsyncEngine, tenant_id: uuid.UUID, *, settle: float,
                                 page: int = PAGE) -> int:
    requested = 0
    while True:
        async with tenant_transaction(engine, tenant_id) as connection:
            cursor = await sync.position(connection, tenant_id, STREAM)
            orders = await changed_orders(connection, cursor, page, settle)
            for order in orders:
                requested += await request_sync(connection, tenant_id, order.id)
            if orders:
                await sync.advance(connection, tenant_id, STREAM, orders[-1].updated_at, str(orders[-1].id))
        if len(orders) < page:
            return requested


async def sync_to_erpnext(engine: AsyncEngine, settings: Settings, http: Any, *,
                          tenant_ids: Sequence[uuid.UUID] | None = None) -> str:
    if erpnext_client(settings, http) is None:
        return "ERPNext is not configured; nothing sent"
    if tenant_ids is None:
        async with tenant_transaction(engine, None) as connection:
            await set_platform_scope(connection)
            tenant_ids = await active_tenants(connection)
    requested, failed = 0, []
    for tenant_id in tenant_ids:
        try:
            requested += await enqueue_changed_orders(engine, tenant_id, settle=settings.CITYOS_SYNC_SETTLE_SECONDS)
        except Exception as error:  # one tenant's failure must not stop the others
            log.exception("sync-to-erpnext: tenant %s", tenant_id)
            failed.append(str(tenant_id))
            async with tenant_transaction(engine, tenant_id) as connection:
                await sync.finish(connection, tenant_id, STREAM, f"{type(error).__name__}: {error}")
            continue
        async with tenant_transaction(engine, tenant_id) as connection:
            await sync.finish(connection, tenant_id, STREAM, None)
    sent = await dispatch_outbox(engine, settings, http, only=TOPICS)
    summary = f"{requested} order(s) requested; {sent}"
    if failed:
        raise RuntimeError(f"sync-to-erpnext failed for tenant(s) {', '.join(failed)}; {summary}")
    return summary
