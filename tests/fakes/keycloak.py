"""A local Keycloak realm for tests: discovery, JWKS (a signing key and an encryption key, as Keycloak serves
them), the client-credentials token endpoint, and tokens shaped exactly like Keycloak's access tokens
(external-apis.md §2)."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cityos.auth.dev_issuer import keycloak_shaped_claims


class FakeKeycloak:
    def __init__(self, realm: str = "cityos") -> None:
        self.realm = realm
        self.base_url = ""  # set when served
        self.signing_key = self._new_key()
        self.encryption_key = RSAKey.generate_key(2048, parameters={"kid": "enc-1", "use": "enc",
                                                                    "alg": "RSA-OAEP"})
        self.jwks_requests = 0
        self.clients: dict[str, str] = {"medusa-backend": "backend-secret-backend-secret-1234"}

    @staticmethod
    def _new_key() -> RSAKey:
        return RSAKey.generate_key(2048, parameters={"kid": uuid.uuid4().hex, "use": "sig", "alg": "RS256"})

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{self.realm}"

    def rotate(self) -> None:
        self.signing_key = self._new_key()

    def app(self) -> Starlette:
        prefix = f"/realms/{self.realm}"
        return Starlette(routes=[
            Route(f"{prefix}/.well-known/openid-configuration", self._discovery),
            Route(f"{prefix}/protocol/openid-connect/certs", self._certs),
            Route(f"{prefix}/protocol/openid-connect/token", self._token, methods=["POST"]),
        ])

    async def _discovery(self, _request: Request) -> JSONResponse:
        base = f"{self.issuer}/protocol/openid-connect"
        return JSONResponse({
            "issuer": self.issuer, "authorization_endpoint": f"{base}/auth", "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/certs", "userinfo_endpoint": f"{base}/userinfo",
            "introspection_endpoint": f"{base}/token/introspect", "end_session_endpoint": f"{base}/logout",
            "id_token_signing_alg_values_supported": ["RS256"],
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        })

    async def _certs(self, _request: Request) -> JSONResponse:
        self.jwks_requests += 1
        return JSONResponse({"keys": [self.signing_key.as_dict(private=False),
                                      self.encryption_key.as_dict(private=False)]})

    async def _token(self, request: Request) -> JSONResponse:
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if form.get("grant_type") != "client_credentials" or self.clients.get(client_id) != secret:
            return JSONResponse({"error": "unauthorized_client"}, status_code=401)
        claims = self.claims(subject=str(uuid.uuid4()), roles=[], azp=client_id)
        claims["preferred_username"] = f"service-account-{client_id}"
        return JSONResponse({"access_token": self.sign(claims), "expires_in": 300, "token_type": "Bearer",
                             "scope": "profile email"})

    def claims(self, *, subject: str | None = None, roles: list[str] | None = None, tenant: str | None = None,
               stores: list[str] | None = None, vendor: str | None = None, company: str | None = None,
               azp: str = "medusa-admin", ttl: int = 300, email: str | None = None,
               email_verified: bool = True) -> dict[str, Any]:
        return keycloak_shaped_claims(email=email, email_verified=email_verified,
                                      subject=subject or str(uuid.uuid4()), roles=roles or [], tenant=tenant,
                                      stores=stores or [], vendor=vendor, company=company, ttl_seconds=ttl,
                                      client_id="medusa-backend", issuer=self.issuer, azp=azp)

    def sign(self, claims: dict[str, Any], key: RSAKey | None = None, header: dict[str, Any] | None = None) -> str:
        key = key or self.signing_key
        return jwt.encode(header or {"alg": "RS256", "typ": "JWT", "kid": key.kid}, claims, key)

    def token(self, **kwargs: Any) -> str:
        return self.sign(self.claims(**kwargs))

    @staticmethod
    def expired_claims(claims: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        return {**claims, "iat": now - 3600, "exp": now - 600}
