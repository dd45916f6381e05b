"""Content use cases: our objects to push to Payload (in keyset order), and Payload's content applied here."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.base import table_of
from cityos.domain.catalog.models import Category, Product
from cityos.domain.content import rules
from cityos.domain.content.models import Content, ContentKind
from cityos.domain.marketplace.models import Vendor
from cityos.domain.platform.sync import Position, changed_since
from cityos.domain.tenancy.models import Store, Tenant
from cityos.errors import Forbidden, NotFound

log = logging.getLogger(__name__)
CONTENT = table_of(Content)
TABLES: dict[ContentKind, Table] = {
    ContentKind.PRODUCT: table_of(Product),
    ContentKind.CATEGORY: table_of(Category),
    ContentKind.VENDOR: table_of(Vendor),
    ContentKind.STORE: table_of(Store),
}
TENANT = table_of(Tenant)


async def active_tenants(connection: AsyncConnection) -> list[uuid.UUID]:
    return list((await connection.execute(select(TENANT.c.id).where(TENANT.c.status == "active")
                                          .order_by(TENANT.c.id))).scalars())


async def changed_objects(connection: AsyncConnection, kind: ContentKind, after: Position,
                          limit: int, settle: float) -> Sequence[Any]:
    """The tenant's objects of a kind changed after the cursor and settled, in (updated_at, id) order."""
    table = TABLES[kind]
    statement = select(table).where(*changed_since(table.c.updated_at, table.c.id, after, settle))
    return (await connection.execute(statement.order_by(table.c.updated_at, table.c.id).limit(limit))).all()


async def payload_ids(connection: AsyncConnection, kind: ContentKind,
                      object_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await connection.execute(select(CONTENT.c.object_id, CONTENT.c.payload_id).where(
        CONTENT.c.kind == kind.value, CONTENT.c.object_id.in_(object_ids), CONTENT.c.payload_id.is_not(None)))
    return {row.object_id: row.payload_id for row in rows}


async def record_payload_id(connection: AsyncConnection, tenant_id: uuid.UUID, kind: ContentKind,
                            object_id: uuid.UUID, payload_id: str) -> None:
    await connection.execute(insert(CONTENT).values(
        tenant_id=tenant_id, kind=kind.value, object_id=object_id, payload_id=payload_id,
    ).on_conflict_do_update(index_elements=["tenant_id", "kind", "object_id"],
                            set_={"payload_id": payload_id}))


async def owner_of(connection: AsyncConnection, kind: ContentKind, object_id: uuid.UUID) -> uuid.UUID | None:
    """The tenant that really owns an object (a SECURITY DEFINER lookup across tenants, ids only)."""
    owner: uuid.UUID | None = (await connection.execute(
        text("select cityos_tenant_of_object(:kind, :id)"), {"kind": kind.value, "id": object_id})).scalar()
    return owner


@dataclass
class Applied:
    """How a Payload document was applied: the outcome, the commerce fields Payload holds other values of (drift,
    ignored) and ours (to write back)."""

    outcome: str
    drift: list[str]
    ours: dict[str, Any]


async def apply_document(connection: AsyncConnection, tenant_id: uuid.UUID, kind: ContentKind,
                         document: dict[str, Any], *, deleted: bool = False) -> Applied:
    """Apply a Payload document's content to our object, following the ownership rule. Refuses (raises) a
    document naming another tenant, or an object of another tenant; returns the outcome."""
    object_id = rules.object_id_of(document)
    claimed = rules.tenant_of(document)
    if object_id is None:
        raise NotFound("the document names no cityosId")
    owner = await owner_of(connection, kind, object_id)
    if owner is None:
        raise NotFound(f"no {kind.value} {object_id}")
    if claimed != tenant_id or owner != tenant_id:
        log.warning("payload: refused %s %s: the document names tenant %s, the object belongs to %s, applying "
                    "for %s", kind.value, object_id, claimed, owner, tenant_id)
        raise Forbidden(f"{kind.value} {object_id} is not an object of tenant {tenant_id}")
    table = TABLES[kind]
    ours = rules.commerce_document(kind, (await connection.execute(select(table).where(table.c.id == object_id))).one())
    drift = rules.commerce_drift(kind, document, ours)
    if drift:
        log.warning("payload: %s %s: commerce field(s) %s changed in Payload are ignored (we own commerce); the "
                    "next sync-from-payload writes ours back", kind.value, object_id, ", ".join(drift))
    applied = Applied("", drift, ours)
    version = rules.parse_timestamp(document.get("updatedAt"))
    kept = (await connection.execute(select(CONTENT.c.payload_updated_at).where(
        CONTENT.c.tenant_id == tenant_id, CONTENT.c.kind == kind.value, CONTENT.c.object_id == object_id)
        .with_for_update())).first()
    if deleted:
        await connection.execute(delete(CONTENT).where(
            CONTENT.c.tenant_id == tenant_id, CONTENT.c.kind == kind.value, CONTENT.c.object_id == object_id))
        applied.outcome = f"content of {kind.value} {object_id} removed"
        return applied
    if kept is not None and not rules.is_newer(version, kept.payload_updated_at):
        applied.outcome = f"ignored: {kind.value} {object_id} already has this version or a newer one"
        return applied
    content = rules.content_of(document)
    payload_id = str(document["id"]) if document.get("id") is not None else None
    await connection.execute(insert(CONTENT).values(
        tenant_id=tenant_id, kind=kind.value, object_id=object_id, payload_id=payload_id, content=content,
        payload_updated_at=version,
    ).on_conflict_do_update(index_elements=["tenant_id", "kind", "object_id"], set_={
        "content": content, "payload_updated_at": version, "updated_at": func.now(),
        "payload_id": func.coalesce(payload_id, CONTENT.c.payload_id)}))
    suffix = f"; ignored Payload's {', '.join(drift)} (ours)" if drift else ""
    applied.outcome = f"content of {kind.value} {object_id} applied{suffix}"
    return applied


async def forget_payload_id(connection: AsyncConnection, kind: ContentKind, object_id: uuid.UUID) -> None:
    """The Payload document we knew is gone: the next push looks it up (or creates it) again."""
    await connection.execute(update(CONTENT).where(CONTENT.c.kind == kind.value, CONTENT.c.object_id == object_id)
                             .values(payload_id=None))

