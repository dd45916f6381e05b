"""The context of one GraphQL operation: who is asking, for which store and tenant, and its database scope."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import strawberry
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from cityos.auth.authz import Authorizer
from cityos.auth.identity import claimed_references, company_membership
from cityos.auth.principal import COMPANY_ROLES, Principal, TokenIdentity, anonymous, guest_of
from cityos.auth.tokens import bearer_token
from cityos.db.audit import AuditActor
from cityos.db.request import RequestDatabase
from cityos.domain.tenancy import rules
from cityos.domain.tenancy.service import StoreRef
from cityos.errors import Forbidden, Unauthenticated, Unavailable
from cityos.graphql.core.loaders import Loaders
from cityos.observability.logs import request_id_var, tenant_id_var
from cityos.realtime.events import PendingEvents

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
    principal: Principal = field(default_factory=anonymous)
    events: PendingEvents = field(default_factory=PendingEvents)
    connection_params: dict[str, Any] | None = None  # a WebSocket's connection_init payload
    cost: int = 1  # the operation's query cost (cityos.graphql.core.limits), spent from the rate limits
    db: RequestDatabase = field(init=False)
    loaders: Loaders = field(init=False)
    authz: Authorizer = field(init=False)
    _identified: bool = field(default=False, init=False)
    _refused: Exception | None = field(default=None, init=False)  # why identify() failed: once per request
    _spent: Exception | bool = field(default=False, init=False)  # spend()'s outcome: once per request

    def __post_init__(self) -> None:
        self.db = RequestDatabase(self.services.app_engine, self.events)
        self.loaders = Loaders(self.db)
        self.authz = Authorizer(self.services.pdp, self.principal, self.services.pdp_counter,
                                self.services.decisions)

    @property
    def is_websocket(self) -> bool:
        return self.connection_params is not None or getattr(self.request, "scope", {}).get("type") == "websocket"

    def read_from_replica(self) -> None:
        """A query operation over HTTP reads from the read replica, when there is one (before its first
        statement; a WebSocket's operations stay on the primary)."""
        if self.services.read_engine is None or self.is_websocket or self.db.started:
            return
        self.db = RequestDatabase(self.services.read_engine, self.events)
        self.loaders = Loaders(self.db)

    def fresh_db(self) -> None:
        """A new transaction scope for the next operation of a long-lived (WebSocket) context."""
        self.db = RequestDatabase(self.services.app_engine, self.events)
        self.db.scope_to(self.principal.tenant_id)
        self.db.audit_actor = self.audit_actor
        self.loaders = Loaders(self.db)

    async def identify_connection(self) -> None:
        """Identify a WebSocket from its connection_init payload: {"Authorization": "Bearer …"} (required), and
        optionally {"x-publishable-api-key": …}. Raises Unauthenticated/Forbidden like an HTTP request."""
        params = self.connection_params or {}
        authorization = params.get("Authorization") or params.get("authorization")
        if not isinstance(authorization, str) or not authorization.strip():
            raise Unauthenticated("send {\"Authorization\": \"Bearer <token>\"} in connection_init")
        self.headers = {**self.headers, "authorization": authorization}
        key = params.get(PUBLISHABLE_KEY_HEADER)
        if isinstance(key, str):
            self.headers[PUBLISHABLE_KEY_HEADER] = key
        await self.identify()
        await self.db.finish(commit=False)
        self.fresh_db()

    @property
    def audit_actor(self) -> AuditActor | None:
        """The signed-in caller whose changes the audit log records (None for guests)."""
        if not self.principal.authenticated:
            return None
        return AuditActor(self.principal.id, request_id_var.get())

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def tenant_id(self) -> uuid.UUID | None:
        return self.principal.tenant_id

    async def identify(self) -> None:
        """Name the principal, store and tenant before anything is resolved.

        The tenant comes from the verified token (staff, vendors, company users, customers) or, for a guest, from
        the publishable key or the Host header; never from an argument. A bad token or an unknown, revoked or
        malformed key is UNAUTHENTICATED.
        """
        if self._identified:
            return
        if self._refused is not None:  # asked again (the warm path handed the request on): the same answer
            raise self._refused
        try:
            await self._identify_once()
        except Exception as error:
            self._refused = error
            raise

    async def _identify_once(self) -> None:
        limiter = self.services.rate_limiter
        await limiter.refuse_guessers(self.client_ip)
        try:
            await self._identify()
        except (OSError, DBAPIError, TimeoutError, PoolTimeout) as error:
            raise Unavailable("the database is unavailable; nothing was returned or changed") from error
        except Unauthenticated:
            await limiter.failed_identification(self.client_ip)
            raise
        if self.store is None and self.headers.get("host") and not self.principal.authenticated and \
                rules.host_of(self.headers.get("host", "")) is not None:
            await limiter.failed_identification(self.client_ip)  # a guessed store domain

    @property
    def client_ip(self) -> str:
        client = getattr(self.request, "client", None)
        return str(client.host) if client is not None else "unknown"

    async def spend(self, cost: int) -> None:
        """Spend the operation's cost from the key's, the principal's and the IP's rate-limit budgets (once per
        request: asked again, the first outcome)."""
        if isinstance(self._spent, Exception):
            raise self._spent
        if self._spent:
            return
        try:
            await self.services.rate_limiter.spend(
                cost, ip=self.client_ip, key=self.headers.get(PUBLISHABLE_KEY_HEADER),
                principal=self.principal.id if self.principal.authenticated else None,
                tenant=self.principal.tenant_slug)
        except Exception as error:
            self._spent = error
            raise
        self._spent = True

    async def _identify(self) -> None:
        token = bearer_token(self.headers.get("authorization"))
        identity = await self.services.verifier.verify(token) if token else None
        await self._find_store()
        if identity is not None:
            self.principal = await self._principal_of(identity)
        elif self.store is not None:
            found = await self.services.tenants.find(str(self.store.tenant_id))
            self.principal = guest_of(self.store.tenant_id, found[1] if found else None, self.store.store_id)
        self.authz = self.authz.for_principal(self.principal)
        self._identified = True
        self.db.scope_to(self.principal.tenant_id)
        self.db.audit_actor = self.audit_actor
        if self.principal.tenant_id:
            tenant_id_var.set(str(self.principal.tenant_id))
        if identity is not None and (identity.stores or identity.vendor_id):
            self.principal = await self._with_references(identity)
            self.authz = self.authz.for_principal(self.principal)
        if identity is not None and identity.roles & COMPANY_ROLES and self.principal.company_id:
            role = await company_membership(self.db, self.principal.company_id, identity.subject, identity.roles)
            self.principal = dataclasses.replace(self.principal, company_role=role, _cerbos=[])
            self.authz = self.authz.for_principal(self.principal)

    async def _find_store(self) -> None:
        self.store = await self.services.stores.find(self.headers.get(PUBLISHABLE_KEY_HEADER),
                                                     self.headers.get("host", ""))

    async def _principal_of(self, identity: TokenIdentity) -> Principal:
        tenant_id: uuid.UUID | None = None
        tenant_slug: str | None = None
        if identity.tenant:
            found = await self.services.tenants.find(identity.tenant)
            if found is None:
                raise Unauthenticated("the token names an unknown tenant")
            tenant_id, tenant_slug = found
        if self.store is not None:
            if tenant_id is None and not identity.roles - {"customer"}:
                # A customer token without a tenant claim shops at the store of the key.
                found = await self.services.tenants.find(str(self.store.tenant_id))
                tenant_id, tenant_slug = self.store.tenant_id, found[1] if found else None
            elif tenant_id is None and "super_admin" in identity.roles:
                # A platform call (no tenant of its own) that happens to carry a key or come through a store
                # domain: it is not a shopper of that store.
                self.store = None
            elif tenant_id != self.store.tenant_id:
                raise Forbidden("the token and the publishable key belong to different tenants")
        return Principal(id=identity.subject, roles=identity.roles, tenant_id=tenant_id, tenant_slug=tenant_slug,
                         storefront_id=self.store.store_id if self.store else None,
                         vendor_id=identity.vendor_id, company_id=identity.company_id,
                         expires_at=identity.expires_at, authenticated=True,
                         email=identity.email if identity.email_verified else None)

    async def _with_references(self, identity: TokenIdentity) -> Principal:
        store_ids, vendor_id = await claimed_references(self.db, identity.stores, identity.vendor_id)
        return dataclasses.replace(self.principal, store_ids=store_ids, vendor_id=vendor_id, _cerbos=[])


Info = strawberry.Info[RequestContext, None]


def tenant_of(info: Info) -> uuid.UUID:
    """The tenant an admin mutation acts in: the authenticated principal's (never an argument)."""
    principal = info.context.principal
    if not principal.authenticated:
        raise Unauthenticated("sign in to change the store")
    if principal.tenant_id is None:
        raise Forbidden("the token names no tenant")
    return principal.tenant_id
