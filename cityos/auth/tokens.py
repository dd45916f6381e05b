"""Verify access tokens: Keycloak's (RS256, keys from the realm's JWKS found by discovery) and, in development
only, the local dev issuer's. joserfc does the cryptography; nothing here is home-made crypto."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from cityos.auth.principal import ROLES, TokenIdentity
from cityos.errors import Unauthenticated, Unavailable

log = logging.getLogger(__name__)
ALGORITHM = "RS256"
LEEWAY_SECONDS = 30
MIN_REFRESH_INTERVAL_SECONDS = 30.0
MAX_TOKEN_BYTES = 16_384


class JwksSource:
    """The realm's signing keys: discovery → jwks_uri, cached; refreshed at most once per interval when a token
    names an unknown kid, so a flood of forged kids costs Keycloak one request per interval."""

    def __init__(self, issuer: str, client: httpx.AsyncClient,
                 min_refresh_interval: float = MIN_REFRESH_INTERVAL_SECONDS) -> None:
        self.issuer = issuer.rstrip("/")
        self.client = client
        self.min_refresh_interval = min_refresh_interval
        self._keys: KeySet | None = None
        self._kids: set[str] = set()
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def _fetch(self) -> None:
        try:
            discovery = await self.client.get(f"{self.issuer}/.well-known/openid-configuration")
            discovery.raise_for_status()
            jwks = await self.client.get(discovery.json()["jwks_uri"])
            jwks.raise_for_status()
            document = jwks.json()
        except (httpx.HTTPError, KeyError, ValueError) as error:
            raise Unavailable("the identity provider's keys cannot be fetched") from error
        signing = [key for key in document.get("keys", []) if key.get("use", "sig") == "sig"
                   and key.get("kty") == "RSA"]
        self._keys = KeySet.import_key_set({"keys": signing})
        self._kids = {key.get("kid", "") for key in signing}
        self._fetched_at = time.monotonic()
        self.fetches += 1

    async def keys_for(self, kid: str | None) -> KeySet:
        async with self._lock:
            stale = time.monotonic() - self._fetched_at >= self.min_refresh_interval
            if self._keys is None or (kid not in self._kids and stale):
                await self._fetch()
        assert self._keys is not None
        return self._keys


class StaticKeys:
    def __init__(self, keys: KeySet) -> None:
        self.keys = keys

    async def keys_for(self, kid: str | None) -> KeySet:
        return self.keys


@dataclass(frozen=True)
class TrustedIssuer:
    issuer: str
    keys: JwksSource | StaticKeys
    authorized_parties: frozenset[str]
    client_id: str  # whose resource_access roles count


def _segment(raw: str, index: int) -> dict[str, Any]:
    try:
        part = raw.split(".")[index]
        decoded = orjson.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError, binascii.Error, orjson.JSONDecodeError):
        raise Unauthenticated("malformed token") from None
    if not isinstance(decoded, dict):
        raise Unauthenticated("malformed token")
    return decoded


def _as_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list):
        return tuple(str(item) for item in value if item)
    return ()


def _roles_of(access: Any, claim: str) -> set[str]:
    """`{"roles": [..]}` as Keycloak writes it; any other shape makes the token unusable."""
    if access is None:
        return set()
    roles = access.get("roles", []) if isinstance(access, dict) else None
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise Unauthenticated(f"invalid token: {claim} must be an object with a list of role names")
    return set(roles)


def identity_from_claims(claims: dict[str, Any], client_id: str, issuer: str) -> TokenIdentity:
    realm_roles = _roles_of(claims.get("realm_access"), "realm_access")
    resource_access = claims.get("resource_access")
    if resource_access is not None and not isinstance(resource_access, dict):
        raise Unauthenticated("invalid token: resource_access must be an object")
    client_roles = _roles_of((resource_access or {}).get(client_id), f"resource_access.{client_id}")
    tenant = claims.get("tenant_id")
    if not isinstance(claims.get("exp"), int | float) or not isinstance(tenant, str | type(None)):
        raise Unauthenticated("invalid token: exp must be a number and tenant_id a string")
    return TokenIdentity(
        subject=str(claims["sub"]),
        roles=frozenset((realm_roles | client_roles) & ROLES),
        tenant=str(tenant) if tenant else None,
        stores=_as_list(claims.get("store_ids")),
        vendor_id=str(claims["vendor_id"]) if claims.get("vendor_id") else None,
        company_id=str(claims["company_id"]) if claims.get("company_id") else None,
        expires_at=int(claims["exp"]),
        issuer=issuer,
        username=claims.get("preferred_username"),
        email=claims["email"].strip().lower() if isinstance(claims.get("email"), str) else None,
        email_verified=claims.get("email_verified") is True,
    )


class TokenVerifier:
    def __init__(self, issuers: list[TrustedIssuer]) -> None:
        self.issuers = {issuer.issuer: issuer for issuer in issuers}

    async def verify(self, raw: str) -> TokenIdentity:
        if len(raw) > MAX_TOKEN_BYTES or raw.count(".") != 2:
            raise Unauthenticated("malformed token")
        header, unverified = _segment(raw, 0), _segment(raw, 1)
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated(f"token algorithm must be {ALGORITHM}")
        trusted = self.issuers.get(str(unverified.get("iss", "")))
        if trusted is None:
            raise Unauthenticated("token issuer is not trusted")
        keys = await trusted.keys.keys_for(header.get("kid"))
        try:
            token = jwt.decode(raw, keys, algorithms=[ALGORITHM])
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": trusted.issuer},
                exp={"essential": True},
                sub={"essential": True},
                azp={"essential": True, "values": sorted(trusted.authorized_parties)},
            ).validate(token.claims)
        except JoseError as error:
            raise Unauthenticated(f"invalid token: {error.error}") from None
        if token.claims.get("typ", "Bearer") != "Bearer":
            raise Unauthenticated("not an access token")
        return identity_from_claims(token.claims, trusted.client_id, trusted.issuer)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("the Authorization header must be 'Bearer <access token>'")
    return value.strip()

