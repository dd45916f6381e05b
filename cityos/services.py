"""The long-lived services of one process: settings, database engines, broker, policy decision point."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import stripe
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.auth import dev_issuer
from cityos.auth.authz import PdpCounter, SharedDecisions
from cityos.auth.cache import TtlCache
from cityos.auth.identity import StoreDirectory, TenantDirectory
from cityos.auth.pdp import create_pdp_client
from cityos.auth.tokens import JwksSource, StaticKeys, TokenVerifier, TrustedIssuer
from cityos.config import Settings
from cityos.db.engines import create_app_engine, value_reads
from cityos.integrations.stripe.client import create_stripe_client
from cityos.ratelimit import RateLimiter
from cityos.realtime import Broker, create_broker


def build_verifier(settings: Settings, http: httpx.AsyncClient) -> TokenVerifier:
    issuers = []
    if settings.keycloak_issuer:
        issuers.append(TrustedIssuer(settings.keycloak_issuer, JwksSource(settings.keycloak_issuer, http),
                                     settings.keycloak_authorized_parties, settings.KEYCLOAK_CLIENT_ID))
    if settings.dev_tokens_trusted:
        keys = StaticKeys(dev_issuer.public_keys(settings.CITYOS_DATA_DIR))
        issuers.append(TrustedIssuer(dev_issuer.DEV_ISSUER, keys, frozenset({dev_issuer.DEV_CLIENT}),
                                     settings.KEYCLOAK_CLIENT_ID))
    return TokenVerifier(issuers, TtlCache(settings.CITYOS_AUTH_CACHE_TTL, settings.CITYOS_AUTH_CACHE_SIZE))


@dataclass
class Services:
    settings: Settings
    app_engine: AsyncEngine
    broker: Broker
    pdp: Any
    http: httpx.AsyncClient
    verifier: TokenVerifier
    tenants: TenantDirectory
    stores: StoreDirectory
    pdp_counter: PdpCounter
    stripe: stripe.StripeClient
    rate_limiter: RateLimiter
    # Every decision of every request and live event: cached query plans, 5 s (cityos.auth.authz.SharedDecisions).
    decisions: SharedDecisions = field(default_factory=SharedDecisions)
    # A streaming replica for query operations over HTTP (DATABASE_READ_URL); None: the primary serves them.
    read_engine: AsyncEngine | None = None
    # The time seam of what depends on "now" beyond a request (billing periods, proration, dunning): tests move it.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @classmethod
    def start(cls, settings: Settings) -> Services:
        if not settings.DATABASE_URL:
            raise RuntimeError("DATABASE_URL is not set (cityos serve sets it when it embeds Postgres)")
        if not settings.CERBOS_URL:
            raise RuntimeError("CERBOS_URL is not set (cityos serve sets it when it embeds Cerbos)")
        engine = create_app_engine(settings.DATABASE_URL, timeout=settings.CITYOS_DB_TIMEOUT)
        http = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0))
        return cls(
            settings=settings,
            app_engine=engine,
            broker=create_broker(settings.REDIS_URL, settings.CITYOS_SUBSCRIBER_QUEUE),
            pdp=create_pdp_client(settings.CERBOS_URL),
            http=http,
            verifier=build_verifier(settings, http),
            tenants=TenantDirectory(engine),
            stores=StoreDirectory(engine, settings.CITYOS_AUTH_CACHE_TTL, settings.CITYOS_AUTH_CACHE_SIZE),
            pdp_counter=PdpCounter(),
            stripe=create_stripe_client(settings),
            rate_limiter=RateLimiter(settings),
            read_engine=create_app_engine(settings.DATABASE_READ_URL, timeout=settings.CITYOS_DB_TIMEOUT)
            if settings.DATABASE_READ_URL else None,
        )

    async def warm_up(self) -> None:
        """Connect to the policy decision point before the first request needs it (best effort, bounded), and
        follow the identity announcements that invalidate cached stores."""
        await self.stores.listen(self.broker)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pdp.server_info(), timeout=5)

    async def close(self) -> None:
        await self.stores.close()
        await self.http.aclose()
        await self.broker.close()
        await self.pdp.close()
        for engine in (self.app_engine, self.read_engine):
            if engine is not None:
                reads = value_reads(engine)
                if reads is not None:
                    await reads.close()
                await engine.dispose()
