"""The context of one GraphQL operation: who is asking, for which store and tenant, and its database scope."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cityos.domain.tenancy import rules
from cityos.domain.tenancy.service import StoreRef, store_by_domain, store_by_publishable_key
from cityos.errors import Unauthenticated
from cityos.observability.logs import tenant_id_var
from cityos.request_db import RequestDatabase
from cityos.resolvers.loaders import Loaders

if TYPE_CHECKING:
    from cityos.config import Settings
    from cityos.services import Services

PUBLISHABLE_KEY_HEADER = "x-publishable-api-key"


@dataclass
class RequestContext:
    services: Services
    headers: dict[str, str]
    request: Any = None
    response: Any = None
    store: StoreRef | None = None
    db: RequestDatabase = field(init=False)
    loaders: Loaders = field(init=False)
    _identified: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.db = RequestDatabase(self.services.app_engine)
        self.loaders = Loaders(self.db)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def tenant_id(self) -> uuid.UUID | None:
        return self.store.tenant_id if self.store else None

    async def identify(self) -> None:
        """Name the request's store and tenant before anything is resolved.

        A publishable key wins over the Host header; an unknown, malformed or revoked key is UNAUTHENTICATED.
        """
        if self._identified:
            return
        key = self.headers.get(PUBLISHABLE_KEY_HEADER)
        host = rules.host_of(self.headers.get("host", ""))
        try:
            if key:
                self.store = await self.db.run(lambda connection: store_by_publishable_key(connection, key.strip()))
                if self.store is None:
                    raise Unauthenticated("unknown or revoked publishable API key")
            elif host is not None:
                self.store = await self.db.run(lambda connection: store_by_domain(connection, host))
        finally:
            await self.db.finish(commit=False)
        self._identified = True
        self.db.scope_to(self.tenant_id)
        if self.tenant_id:
            tenant_id_var.set(str(self.tenant_id))
