"""The two syncs with Payload, per tenant, resumable from a cursor (domain/platform/sync.py).

- push (`sync-to-payload`): our products, categories, vendors and stores changed since the cursor, in
  (updated_at, id) order, page by page; each upserted by cityosId (idempotent), the cursor advanced after each one.
  A failure stops the tenant's run with the cursor on the last object sent: the next run resumes there.
- pull (`sync-from-payload`): the tenant's documents whose `updatedAt` ≥ the cursor, oldest first, page by page;
  each applied by the ownership rule (domain/content), the cursor advanced after each one. Documents at the cursor's
  instant are seen again on the next run and ignored (their version is already kept).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.engines import tenant_transaction
from cityos.domain.content import rules
from cityos.domain.content import service as content
from cityos.domain.content.models import ContentKind
from cityos.domain.platform import sync
from cityos.errors import ApiError
from cityos.integrations.payload.client import PayloadClient, PayloadError

log = logging.getLogger(__name__)
PAGE = 50
# Stores and vendors before the products and categories that name them.
PUSH_ORDER = (ContentKind.STORE, ContentKind.VENDOR, ContentKind.CATEGORY, ContentKind.PRODUCT)


def push_stream(kind: ContentKind) -> str:
    return f"payload.push.{kind.value}"


def pull_stream(kind: ContentKind) -> str:
    return f"payload.pull.{kind.value}"


@dataclass
class RunCounts:
    sent: int = 0
    applied: int = 0
    refused: int = 0
    ignored: int = 0
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.sent} sent, {self.applied} applied, {self.refused} refused, {self.ignored} ignored"
        return f"{text}; failed: {'; '.join(self.failed)}" if self.failed else text


async def push_tenant(engine: AsyncEngine, client: PayloadClient, tenant_id: uuid.UUID, counts: RunCounts, *,
                      page: int = PAGE, settle: float) -> None:
    for kind in PUSH_ORDER:
        stream = push_stream(kind)
        try:
            while True:
                async with tenant_transaction(engine, tenant_id) as connection:
                    cursor = await sync.position(connection, tenant_id, stream)
                    rows = await content.changed_objects(connection, kind, cursor, page, settle)
                    known = await content.payload_ids(connection, kind, [row.id for row in rows])
                for row in rows:  # no transaction (nor lock) is held during the call
                    payload_id = await client.upsert(rules.COLLECTIONS[kind], rules.commerce_document(kind, row),
                                                     known.get(row.id))
                    async with tenant_transaction(engine, tenant_id) as connection:
                        await content.record_payload_id(connection, tenant_id, kind, row.id, payload_id)
                        await sync.advance(connection, tenant_id, stream, row.updated_at, str(row.id))
                    counts.sent += 1
                if len(rows) < page:
                    break
        except PayloadError as error:
            log.warning("sync-to-payload: tenant %s, %s: %s; the next run resumes from the cursor", tenant_id,
                        kind.value, error)
            counts.failed.append(f"{tenant_id} {kind.value}: {error}")
            async with tenant_transaction(engine, tenant_id) as connection:
                await sync.finish(connection, tenant_id, stream, str(error))
            return  # later kinds may name this one: they wait for the next run
        async with tenant_transaction(engine, tenant_id) as connection:
            await sync.finish(connection, tenant_id, stream, None)


async def pull_tenant(engine: AsyncEngine, client: PayloadClient, tenant_id: uuid.UUID, counts: RunCounts, *,
                      page: int = PAGE) -> None:
    for kind in PUSH_ORDER:
        stream = pull_stream(kind)
        try:
            async with tenant_transaction(engine, tenant_id) as connection:
                cursor = await sync.position(connection, tenant_id, stream)
            where: dict[str, object] = {"tenant": {"equals": str(tenant_id)}}
            if cursor.at is not None:
                where["updatedAt"] = {"greater_than_equal": rules.payload_timestamp(cursor.at)}
            number = 1
            while True:
                found = await client.find(rules.COLLECTIONS[kind], where, page=number, limit=page, sort="updatedAt")
                for document in found.docs:
                    await _apply(engine, client, tenant_id, kind, document, stream, counts)
                if not found.has_next_page:
                    break
                number += 1
        except PayloadError as error:
            log.warning("sync-from-payload: tenant %s, %s: %s; the next run resumes from the cursor", tenant_id,
                        kind.value, error)
            counts.failed.append(f"{tenant_id} {kind.value}: {error}")
            async with tenant_transaction(engine, tenant_id) as connection:
                await sync.finish(connection, tenant_id, stream, str(error))
            continue
        async with tenant_transaction(engine, tenant_id) as connection:
            await sync.finish(connection, tenant_id, stream, None)


async def _apply(engine: AsyncEngine, client: PayloadClient, tenant_id: uuid.UUID, kind: ContentKind,
                 document: dict[str, object], stream: str, counts: RunCounts) -> None:
    """Apply one document; if Payload holds other values of our commerce fields, write ours back (the ownership
    rule) before the cursor moves past it."""
    version = rules.parse_timestamp(document.get("updatedAt"))
    applied = None
    async with tenant_transaction(engine, tenant_id) as connection:
        try:
            async with connection.begin_nested():
                applied = await content.apply_document(connection, tenant_id, kind, dict(document))
        except ApiError as error:
            counts.refused += 1
            log.warning("sync-from-payload: tenant %s: refused %s document %s: %s", tenant_id, kind.value,
                        document.get("id"), error.message)
        else:
            if applied.outcome.startswith("ignored"):
                counts.ignored += 1
            else:
                counts.applied += 1
    if applied is not None and applied.drift and document.get("id") is not None:
        await client.update(rules.COLLECTIONS[kind], str(document["id"]), applied.ours)
    if version is not None:
        async with tenant_transaction(engine, tenant_id) as connection:
            await sync.advance(connection, tenant_id, stream, version, str(document.get("id")))
