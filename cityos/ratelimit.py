"""Rate limits per publishable key, per principal and per client IP, in units of query cost.

Each GraphQL operation spends its cost (see cityos.graphql.core.limits; at least 1) from three budgets: its publishable
key's, its principal's (token subject) and its IP's. Over any of them, the operation is refused before execution
with RATE_LIMITED (HTTP 429 with Retry-After). Failed identifications (an unknown publishable key, a Host naming
no store, a bad token) spend from a small per-IP budget of their own, so keys and host names cannot be guessed at
speed. A tenant may have its own key and principal budget (CITYOS_TENANT_RATE_LIMITS). Counters live in Redis
when REDIS_URL is set (shared by every replica), in memory otherwise. Uses the `limits` library (sliding window).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from cityos.config import Settings
from cityos.errors import ApiError, ErrorCode

log = logging.getLogger("cityos.ratelimit")


class RateLimited(ApiError):
    code = ErrorCode.RATE_LIMITED


@dataclass(frozen=True)
class Budgets:
    key: RateLimitItem
    principal: RateLimitItem
    ip: RateLimitItem
    failures: RateLimitItem
    tenants: dict[str, RateLimitItem]

    @classmethod
    def from_settings(cls, settings: Settings) -> Budgets:
        tenants = {}
        for entry in (settings.CITYOS_TENANT_RATE_LIMITS or "").split(","):
            if entry.strip():
                slug, _, limit = entry.partition("=")
                tenants[slug.strip()] = parse(limit.strip())
        return cls(parse(settings.CITYOS_RATE_LIMIT_KEY), parse(settings.CITYOS_RATE_LIMIT_PRINCIPAL),
                   parse(settings.CITYOS_RATE_LIMIT_IP), parse(settings.CITYOS_RATE_LIMIT_FAILURES), tenants)


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.CITYOS_RATE_LIMITS
        self.budgets = Budgets.from_settings(settings)
        storage: Storage = (RedisStorage(f"async+{settings.REDIS_URL}", implementation="redispy",
                                         socket_timeout=2.0, socket_connect_timeout=2.0)
                            if settings.REDIS_URL else MemoryStorage())
        self.limiter = SlidingWindowCounterRateLimiter(storage)

    async def spend(self, cost: int, *, ip: str, key: str | None, principal: str | None,
                    tenant: str | None) -> None:
        """Spend `cost` from every budget that applies, or raise RateLimited naming the first one exceeded."""
        if not self.enabled:
            return
        tenant_budget = self.budgets.tenants.get(tenant or "")
        checks = [("ip", self.budgets.ip, ip)]
        if key:
            checks.append(("publishable key", tenant_budget or self.budgets.key, key))
        if principal:
            checks.append(("principal", tenant_budget or self.budgets.principal, principal))
        for name, budget, identifier in checks:
            await self._hit(budget, name, identifier, max(cost, 1))

    async def refuse_guessers(self, ip: str) -> None:
        """RATE_LIMITED when the IP has spent its failed-identification budget (checked before any lookup)."""
        if not self.enabled:
            return
        try:
            allowed = await self.limiter.test(self.budgets.failures, "failed identifications", ip)
        except (ConnectionError, TimeoutError, OSError):
            return
        if not allowed:
            await self._hit(self.budgets.failures, "failed identifications", ip, 1)

    async def failed_identification(self, ip: str) -> None:
        """Count a failed identification against the IP; raise RateLimited once it guesses too often."""
        if self.enabled:
            await self._hit(self.budgets.failures, "failed identifications", ip, 1)

    async def _hit(self, budget: RateLimitItem, name: str, identifier: str, cost: int) -> None:
        try:
            allowed = await self.limiter.hit(budget, name, identifier, cost=cost)
            if allowed:
                return
            stats = await self.limiter.get_window_stats(budget, name, identifier)
        except (ConnectionError, TimeoutError, OSError) as error:  # fail open: a limit is not an authorization
            log.warning("rate limit storage unavailable (%s); not limiting", type(error).__name__)
            return
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(f"rate limit of the {name} exceeded ({budget}); retry in {retry_after} s",
                          retryAfter=retry_after)
