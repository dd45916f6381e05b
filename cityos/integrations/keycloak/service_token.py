"""The service identity: access tokens of our confidential client (`KEYCLOAK_CLIENT_ID`, `medusa-backend`, a
service account) from the realm's token endpoint by the client-credentials grant (external-apis.md §2), through
authlib's OAuth2 client, cached and refreshed.

- One token is cached until `leeway` seconds before its `expires_in` runs out; then a new client-credentials grant
  fetches the next (Keycloak issues no refresh token for this grant, so "refresh" is a new grant, which authlib's
  client also does by itself for a client-credentials token). Concurrent callers share one fetch.
- A 401 from a service that takes the token means it was revoked or the keys rotated: `invalidate()` and retry once.

Where it is used: wherever a service we call takes Keycloak tokens. Per the contract sheet neither Payload (API
keys, `users API-Key …`) nor ERPNext (`token key:secret`) does, so their clients do not use it and no process
builds one yet; `ServiceTokenSource(settings.keycloak_issuer, KEYCLOAK_CLIENT_ID, KEYCLOAK_CLIENT_SECRET)` is the
one way to get such a token when a service needs it.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import authlib.deprecate  # type: ignore[import-untyped]  # noqa: F401 (installs authlib's "always" filter first)

with warnings.catch_warnings():
    # authlib ≥ 1.9.7 prefers the httpx2 package and warns when it falls back to httpx, which we use everywhere.
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]
    from authlib.oauth2.rfc6749 import OAuth2Token  # type: ignore[import-untyped]

import httpx

TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class ServiceTokenError(Exception):
    pass


class ServiceTokenSource:
    def __init__(self, issuer: str, client_id: str, client_secret: str, *, leeway: int = 30) -> None:
        self.token_endpoint = f"{issuer.rstrip('/')}/protocol/openid-connect/token"
        self.leeway = leeway
        self.client = AsyncOAuth2Client(client_id=client_id, client_secret=client_secret,
                                        token_endpoint_auth_method="client_secret_post",  # noqa: S106 (a method name)
                                        token_endpoint=self.token_endpoint, leeway=leeway, timeout=TIMEOUT)
        self._token: OAuth2Token | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    def _valid(self) -> bool:
        return self._token is not None and not self._token.is_expired(leeway=self.leeway)

    async def access_token(self) -> str:
        if not self._valid():
            async with self._lock:
                if not self._valid():  # another caller may have fetched it while this one waited
                    try:
                        self._token = await self.client.fetch_token(self.token_endpoint,
                                                                    grant_type="client_credentials")
                    except Exception as error:  # authlib raises OAuthError; httpx its transport errors
                        raise ServiceTokenError(f"no service token from Keycloak: {error}") from error
                    self.fetches += 1
        assert self._token is not None
        return str(self._token["access_token"])

    async def headers(self) -> dict[str, Any]:
        return {"Authorization": f"Bearer {await self.access_token()}"}

    def invalidate(self) -> None:
        self._token = None

    async def aclose(self) -> None:
        await self.client.aclose()
