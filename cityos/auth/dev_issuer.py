"""The development token issuer: `cityos token …` signs Keycloak-shaped access tokens with a local RSA key kept
in the data folder. The server trusts it only when CITYOS_ENV=development (and CITYOS_DEV_TOKENS is on)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

DEV_ISSUER = "urn:cityos:dev-issuer"
DEV_CLIENT = "cityos-cli"
KEY_FILE = "dev-issuer-key.json"


def load_or_create_key(data_dir: Path) -> RSAKey:
    path = data_dir / KEY_FILE
    if path.exists():
        return RSAKey.import_key(orjson.loads(path.read_bytes()))
    key = RSAKey.generate_key(2048, parameters={"kid": f"dev-{uuid.uuid4().hex[:8]}", "use": "sig", "alg": "RS256"})
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(key.as_dict(private=True)))
    path.chmod(0o600)
    return key


def public_keys(data_dir: Path) -> KeySet:
    return KeySet([RSAKey.import_key(load_or_create_key(data_dir).as_dict(private=False))])


def keycloak_shaped_claims(*, subject: str, roles: list[str], tenant: str | None, stores: list[str],
                           vendor: str | None, company: str | None, ttl_seconds: int, client_id: str,
                           issuer: str = DEV_ISSUER, azp: str = DEV_CLIENT, email: str | None = None,
                           email_verified: bool = True) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "exp": now + ttl_seconds, "iat": now, "jti": str(uuid.uuid4()), "iss": issuer, "aud": "account",
        "sub": subject, "typ": "Bearer", "azp": azp, "sid": str(uuid.uuid4()), "acr": "1",
        "realm_access": {"roles": [*roles, "offline_access"]},
        "resource_access": {client_id: {"roles": []}, "account": {"roles": ["view-profile"]}},
        "scope": "openid email profile", "email_verified": email_verified, "preferred_username": subject,
    }
    if email:
        claims["email"] = email
    if tenant:
        claims["tenant_id"] = tenant
    if stores:
        claims["store_ids"] = stores
    if vendor:
        claims["vendor_id"] = vendor
    if company:
        claims["company_id"] = company
    return claims


def mint(data_dir: Path, claims: dict[str, Any]) -> str:
    key = load_or_create_key(data_dir)
    return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": key.kid}, claims, key)
