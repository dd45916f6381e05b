"""Identity resolution: which store a request speaks to (publishable key or Host), which tenant a token names,
and which stores and vendor a token's claims mean. The only SQL of identification, kept in one place."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Text, cast, or_, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.request import RequestDatabase
from cityos.domain.b2b.models import CompanyRole, CompanyUser, CompanyUserStatus
from cityos.domain.base import table_of
from cityos.domain.marketplace.models import Vendor
from cityos.domain.tenancy import rules
from cityos.domain.tenancy.models import Store
from cityos.domain.tenancy.service import StoreRef, store_by_domain, store_by_publishable_key
from cityos.errors import Forbidden, Unauthenticated

STORE = table_of(Store)
VENDOR = table_of(Vendor)
COMPANY_USER = table_of(CompanyUser)
TENANT_CACHE_SECONDS = 60.0


async def store_of_request(engine: AsyncEngine, key: str | None, host_header: str) -> StoreRef | None:
    """The store a storefront request names: by publishable key (unknown or revoked → UNAUTHENTICATED) or by the
    Host header through the store domains (unknown → None)."""
    host = rules.host_of(host_header)
    if not key and host is None:
        return None
    async with engine.connect() as connection:
        if key:
            store = await store_by_publishable_key(connection, key.strip())
            if store is None:
                raise Unauthenticated("unknown or revoked publishable API key")
            return store
        return await store_by_domain(connection, host) if host is not None else None


async def claimed_references(db: RequestDatabase, stores: Sequence[str], vendor_id: str | None,
                             ) -> tuple[tuple[uuid.UUID, ...], str | None]:
    """Store and vendor claims may name their objects by id or handle; keep those of the principal's tenant
    (RLS). An unknown vendor handle leaves the vendor claim as it was (it then matches nothing)."""
    store_ids: tuple[uuid.UUID, ...] = ()
    if stores:
        statement = select(STORE.c.id).where(or_(cast(STORE.c.id, Text).in_(stores), STORE.c.handle.in_(stores)))
        store_ids = tuple((await db.execute(statement)).scalars())
    if vendor_id:
        found = (await db.execute(select(VENDOR.c.id).where(or_(
            cast(VENDOR.c.id, Text) == vendor_id, VENDOR.c.handle == vendor_id)).limit(1))).scalar()
        vendor_id = str(found) if found else vendor_id
    return store_ids, vendor_id


async def company_membership(db: RequestDatabase, company_id: str, subject: str, roles: frozenset[str]) -> str:
    """The company role of the token's subject in the company its `company_id` claim names. The claim and the
    company's users must agree: no active membership (or a company_admin token for a non-admin membership) is
    FORBIDDEN, whatever else the token says."""
    try:
        company = uuid.UUID(company_id)
    except ValueError:
        raise Forbidden("the token's company_id names no company") from None
    role = (await db.execute(select(COMPANY_USER.c.role).where(
        COMPANY_USER.c.company_id == company, COMPANY_USER.c.customer_id == subject,
        COMPANY_USER.c.status == CompanyUserStatus.ACTIVE.value))).scalar()
    if role is None:
        raise Forbidden("the token's company_id and the company's users disagree")
    if "company_admin" in roles and role != CompanyRole.COMPANY_ADMIN:
        raise Forbidden("the token says company_admin; the company says otherwise")
    return str(role)


@dataclass
class TenantDirectory:
    """Tenant id/slug lookups for tokens, cached briefly (they change rarely and are not secrets)."""

    engine: AsyncEngine
    _cache: dict[str, tuple[float, tuple[uuid.UUID, str] | None]] = field(default_factory=dict)

    async def find(self, reference: str) -> tuple[uuid.UUID, str] | None:
        cached = self._cache.get(reference)
        if cached and time.monotonic() - cached[0] < TENANT_CACHE_SECONDS:
            return cached[1]
        async with self.engine.connect() as connection:
            row = (await connection.execute(text("select id, slug from cityos_tenant_by_ref(:r)"),
                                            {"r": reference})).first()
        found = (row.id, row.slug) if row else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[reference] = (time.monotonic(), found)
        return found
