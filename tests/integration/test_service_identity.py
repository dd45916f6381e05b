"""The service identity against the fake Keycloak: client credentials through authlib, one token cached while it
is valid, a new one fetched when it is about to expire or was invalidated, and the token accepted by our API's
verifier as the service account's."""

from __future__ import annotations

import asyncio

import pytest
from joserfc import jwt

from cityos.integrations.keycloak.service_token import ServiceTokenError, ServiceTokenSource
from tests.fakes.keycloak import FakeKeycloak

SECRET = "backend-secret-backend-secret-1234"


async def test_tokens_are_cached_then_refreshed(keycloak: FakeKeycloak) -> None:
    source = ServiceTokenSource(keycloak.issuer, "medusa-backend", SECRET)
    try:
        first, second = await asyncio.gather(source.access_token(), source.access_token())
        assert first == second and source.fetches == 1  # concurrent callers share one grant
        assert (await source.headers()) == {"Authorization": f"Bearer {first}"}
        claims = jwt.decode(first, keycloak.signing_key).claims
        assert claims["azp"] == "medusa-backend"
        assert claims["preferred_username"] == "service-account-medusa-backend"
        assert claims["iss"] == keycloak.issuer
        source.invalidate()  # a 401 downstream: the next call fetches a new token
        third = await source.access_token()
        assert third != first and source.fetches == 2
    finally:
        await source.aclose()
    # The fake's tokens live 300 s: with a leeway beyond that every token counts as expiring, so each call
    # fetches anew.
    eager = ServiceTokenSource(keycloak.issuer, "medusa-backend", SECRET, leeway=301)
    try:
        assert await eager.access_token() != await eager.access_token()
        assert eager.fetches == 2
    finally:
        await eager.aclose()


async def test_a_wrong_secret_is_an_error_not_a_token(keycloak: FakeKeycloak) -> None:
    source = ServiceTokenSource(keycloak.issuer, "medusa-backend", "not-the-secret")
    try:
        with pytest.raises(ServiceTokenError, match="no service token"):
            await source.access_token()
    finally:
        await source.aclose()
