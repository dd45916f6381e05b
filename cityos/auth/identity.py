"""Identity resolution: which store a request speaks to (publishable key or Host), which tenant a token names,
and which stores and vendor a token's claims mean. The only SQL of identification, kept in one place.

Store lookups are cached per process (`StoreDirectory`, bounded TTL and size). A revoked key or a removed domain
must stop working everywhere at once, so the mutations that do it announce it on IDENTITY_CHANNEL after commit
(`key_revoked`, `domain_removed`) and every process's `listen` drops the entry; the TTL bounds what a lost
announcement (broker down) can cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, cast, or_, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.auth.cache import TtlCache
from cityos.db.request import RequestDatabase
from cityos.domain.b2b.models import CompanyRole, CompanyUser, CompanyUserStatus
from cityos.domain.base import table_of
from cityos.domain.marketplace.models import Vendor
from cityos.domain.tenancy import rules
from cityos.domain.tenancy.models import Store
from cityos.domain.tenancy.service import StoreRef, store_by_domain, store_by_publishable_key
from cityos.errors import Forbidden, Unauthenticated
from cityos.realtime.broker import Broker, SubscriberTooSlow
from cityos.realtime.events import LiveEvent

log = logging.getLogger(__name__)
STORE = table_of(Store)
VENDOR = table_of(Vendor)
COMPANY_USER = table_of(CompanyUser)
TENANT_CACHE_SECONDS = 60.0
IDENTITY_CHANNEL = "cityos:identity"
KEY_REVOKED = "publishable_key.revoked"
DOMAIN_REMOVED = "store_domain.removed"


def key_revoked(token_hash: str) -> LiveEvent:
    """Announced after the revocation commits: every process forgets the key."""
    return LiveEvent((IDENTITY_CHANNEL,), {"type": KEY_REVOKED, "token_hash": token_hash})


def domain_removed(domain: str) -> LiveEvent:
    return LiveEvent((IDENTITY_CHANNEL,), {"type": DOMAIN_REMOVED, "domain": domain.lower()})


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


class StoreDirectory:
    """`store_of_request` with the answers cached: keys by their hash, domains by host name. Only found stores
    are cached (an unknown key or host asks the database each time, so a new domain works at once)."""

    def __init__(self, engine: AsyncEngine, ttl: float, max_entries: int) -> None:
        self.engine = engine
        self.keys: TtlCache[str, StoreRef] = TtlCache(ttl, max_entries)
        self.domains: TtlCache[str, StoreRef] = TtlCache(ttl, max_entries)
        self._listener: asyncio.Task[None] | None = None
        self._pending: dict[tuple[str, str], asyncio.Future[StoreRef | None]] = {}
        self.announcements_applied = 0  # from the broker (tests wait on it: `applied`)
        self._applied = asyncio.Condition()

    async def find(self, key: str | None, host_header: str) -> StoreRef | None:
        key = key.strip() if key else None
        if key:
            token_hash = rules.hash_publishable_key(key)
            cached = self.keys.get(token_hash)
            if cached is None:
                cached = await self._single_flight(("key", token_hash), key, host_header)
                if cached is not None:
                    self.keys.put(token_hash, cached)
            return cached
        host = rules.host_of(host_header)
        if host is None:
            return None
        cached = self.domains.get(host)
        if cached is None:
            cached = await self._single_flight(("host", host), None, host_header)
            if cached is not None:
                self.domains.put(host, cached)
        return cached

    async def _single_flight(self, name: tuple[str, str], key: str | None, host_header: str) -> StoreRef | None:
        """Concurrent misses for one key or host wait for one lookup (a cold start under load would otherwise take
        a pool connection per request for the same answer)."""
        pending = self._pending.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[StoreRef | None] = asyncio.get_running_loop().create_future()
        self._pending[name] = future
        try:
            found = await store_of_request(self.engine, key, host_header)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: the waiters re-raise it
            raise
        else:
            future.set_result(found)
            return found
        finally:
            del self._pending[name]

    def forget(self, event: dict[str, Any]) -> None:
        """Apply one announcement from IDENTITY_CHANNEL."""
        if event.get("type") == KEY_REVOKED:
            self.keys.discard(str(event.get("token_hash")))
        elif event.get("type") == DOMAIN_REMOVED:
            self.domains.discard(str(event.get("domain")))

    def forget_committed(self, events: Sequence[LiveEvent]) -> None:
        """This process's own announcements take effect here before the response is sent (the broker brings them
        to the other processes, and back to this one)."""
        for live_event in events:
            if IDENTITY_CHANNEL in live_event.channels:
                self.forget(live_event.payload)

    def clear(self) -> None:
        self.keys.clear()
        self.domains.clear()

    async def applied(self, count: int) -> None:
        """Return once `count` announcements from the broker have been applied."""
        async with self._applied:
            await self._applied.wait_for(lambda: self.announcements_applied >= count)

    async def listen(self, broker: Broker) -> None:
        """Subscribe to IDENTITY_CHANNEL (in this process's lifetime); returns once subscribed."""
        subscription = await broker.subscribe(IDENTITY_CHANNEL)
        self._listener = asyncio.create_task(self._follow(broker, subscription), name="identity-invalidation")

    async def _follow(self, broker: Broker, subscription: Any) -> None:
        while True:
            try:
                async with subscription:
                    async for event in subscription:
                        self.forget(event)
                        async with self._applied:
                            self.announcements_applied += 1
                            self._applied.notify_all()
            except SubscriberTooSlow:
                log.warning("identity invalidations overflowed: the store cache is cleared")
            self.clear()  # announcements may have been missed: start from the database again
            subscription = await broker.subscribe(IDENTITY_CHANNEL)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None


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
