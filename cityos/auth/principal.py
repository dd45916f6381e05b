"""Who is asking: the verified token's identity, and the Principal resolved against our tenants and stores."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from typing import Any

from cerbos.engine.v1 import engine_pb2
from google.protobuf.struct_pb2 import ListValue, Value

ROLES = frozenset({"super_admin", "tenant_admin", "store_admin", "vendor_admin", "vendor_user",
                   "company_admin", "company_buyer", "customer"})
GUEST = "guest"
STAFF_ROLES = frozenset({"super_admin", "tenant_admin", "store_admin"})
COMPANY_ROLES = frozenset({"company_admin", "company_buyer"})


@dataclass(frozen=True)
class TokenIdentity:
    """What a verified access token says, before we look anything up."""

    subject: str
    roles: frozenset[str]
    tenant: str | None  # a tenant id or slug
    stores: tuple[str, ...] = ()  # store ids or handles
    vendor_id: str | None = None
    company_id: str | None = None
    expires_at: int | None = None
    issuer: str = ""
    username: str | None = None
    email: str | None = None  # the `email` claim, lower case
    email_verified: bool = False  # Keycloak's `email_verified` claim


@dataclass(frozen=True)
class Principal:
    id: str
    roles: frozenset[str]
    tenant_id: uuid.UUID | None = None
    tenant_slug: str | None = None
    store_ids: tuple[uuid.UUID, ...] = ()  # stores the principal administers (token claim)
    storefront_id: uuid.UUID | None = None  # the store whose publishable key or domain the request came through
    vendor_id: str | None = None
    company_id: str | None = None
    company_role: str = ""  # the role of the principal's company membership (company_admin, company_buyer, approver)
    expires_at: int | None = None
    authenticated: bool = False
    # SHA-256 of an order access token the caller presented (startCheckout gave it to the buyer); policies compare
    # it with the order's own (`R.attr.access_token_hash`), so possession of the token is checked by Cerbos.
    access_token_hash: str = ""
    email: str | None = None  # the token's email, only when Keycloak verified it (claiming guest orders)
    _cerbos: list[engine_pb2.Principal] = field(default_factory=list, compare=False, repr=False)

    @functools.cached_property
    def shape(self) -> tuple[Any, ...]:
        """Everything of the principal a policy (`to_cerbos`) or a compiled statement can read: the key of the
        decisions, query plans and statements cached per principal."""
        return (self.id, tuple(sorted(self.roles)), self.tenant_id, self.tenant_slug, self.store_ids,
                self.storefront_id, self.vendor_id, self.company_id, self.company_role, self.access_token_hash,
                self.email, self.authenticated)

    def to_cerbos(self) -> engine_pb2.Principal:
        if not self._cerbos:
            attributes = {
                "tenant_id": Value(string_value=str(self.tenant_id) if self.tenant_id else ""),
                "store_ids": Value(list_value=ListValue(values=[Value(string_value=str(s)) for s in self.store_ids])),
                "storefront_id": Value(string_value=str(self.storefront_id) if self.storefront_id else ""),
                "vendor_id": Value(string_value=self.vendor_id or ""),
                "company_id": Value(string_value=self.company_id or ""),
                "company_role": Value(string_value=self.company_role),
                "access_token_hash": Value(string_value=self.access_token_hash),
                "email": Value(string_value=self.email or ""),  # verified only (see `email`)
            }
            self._cerbos.append(engine_pb2.Principal(
                id=self.id, roles=sorted(self.roles) or [GUEST], attr=attributes, scope=self.tenant_slug or ""))
        return self._cerbos[0]


def anonymous() -> Principal:
    return Principal(id="anonymous", roles=frozenset({GUEST}))


def guest_of(tenant_id: uuid.UUID, tenant_slug: str | None, store_id: uuid.UUID) -> Principal:
    return Principal(id="guest", roles=frozenset({GUEST}), tenant_id=tenant_id, tenant_slug=tenant_slug,
                     storefront_id=store_id)
