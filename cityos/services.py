"""The long-lived services of one process: settings, database engines, broker, policy decision point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.auth.pdp import create_pdp_client
from cityos.config import Settings
from cityos.db import create_app_engine
from cityos.realtime import Broker, create_broker


@dataclass
class Services:
    settings: Settings
    app_engine: AsyncEngine
    broker: Broker
    pdp: Any

    @classmethod
    def start(cls, settings: Settings) -> Services:
        if not settings.DATABASE_URL:
            raise RuntimeError("DATABASE_URL is not set (cityos serve sets it when it embeds Postgres)")
        if not settings.CERBOS_URL:
            raise RuntimeError("CERBOS_URL is not set (cityos serve sets it when it embeds Cerbos)")
        return cls(
            settings=settings,
            app_engine=create_app_engine(settings.DATABASE_URL),
            broker=create_broker(settings.REDIS_URL),
            pdp=create_pdp_client(settings.CERBOS_URL),
        )

    async def close(self) -> None:
        await self.broker.close()
        await self.pdp.close()
        await self.app_engine.dispose()
