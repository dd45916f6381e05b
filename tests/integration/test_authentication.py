"""Access tokens shaped exactly like Keycloak's, verified against the fake realm's JWKS; every bad token is
UNAUTHENTICATED with nothing resolved."""

from __future__ import annotations

import base64
import time

import httpx
import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from cityos.auth.tokens import JwksSource, TokenVerifier, TrustedIssuer
from cityos.errors import Unauthenticated
from tests.conftest import GraphQLClient, TenantWorld, error_codes
from tests.fakes.keycloak import FakeKeycloak

STORES = "{ stores { totalCount } }"


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


async def assert_unauthenticated(gql: GraphQLClient, token: str) -> None:
    body = await gql(STORES, token=token)
    assert body["data"] is None, body
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_a_keycloak_token_drives_the_principal(gql: GraphQLClient, keycloak: FakeKeycloak,
                                                     world: TenantWorld) -> None:
    body = await gql(STORES, token=keycloak.token(roles=["tenant_admin"], tenant=world.slug))
    assert body == {"data": {"stores": {"totalCount": 1}}}


async def test_a_tenant_id_claim_may_be_the_uuid(gql: GraphQLClient, keycloak: FakeKeycloak,
                                                 world: TenantWorld) -> None:
    body = await gql(STORES, token=keycloak.token(roles=["tenant_admin"], tenant=str(world.tenant_id)))
    assert body == {"data": {"stores": {"totalCount": 1}}}


async def test_client_credentials_service_account_token_is_verified(gql: GraphQLClient,
                                                                    keycloak: FakeKeycloak) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{keycloak.issuer}/protocol/openid-connect/token", data={
            "grant_type": "client_credentials", "client_id": "medusa-backend",
            "client_secret": keycloak.clients["medusa-backend"]})
    body = await gql(STORES, token=response.json()["access_token"])
    assert body == {"data": {"stores": {"totalCount": 0}}}  # authenticated, but no role sees any store


async def test_expired_token(gql: GraphQLClient, keycloak: FakeKeycloak, world: TenantWorld) -> None:
    claims = keycloak.expired_claims(keycloak.claims(roles=["tenant_admin"], tenant=world.slug))
    await assert_unauthenticated(gql, keycloak.sign(claims))


async def test_wrong_issuer(gql: GraphQLClient, keycloak: FakeKeycloak, world: TenantWorld) -> None:
    claims = {**keycloak.claims(roles=["tenant_admin"], tenant=world.slug),
              "iss": f"{keycloak.base_url}/realms/other"}
    await assert_unauthenticated(gql, keycloak.sign(claims))


async def test_wrong_authorized_party(gql: GraphQLClient, keycloak: FakeKeycloak, world: TenantWorld) -> None:
    await assert_unauthenticated(gql, keycloak.sign(keycloak.claims(roles=["tenant_admin"], tenant=world.slug,
                                                                    azp="some-other-client")))


async def test_wrong_algorithm(gql: GraphQLClient, keycloak: FakeKeycloak, world: TenantWorld) -> None:
    claims = keycloak.claims(roles=["tenant_admin"], tenant=world.slug)
    secret = OctKey.import_key("s" * 64)
    await assert_unauthenticated(gql, jwt.encode({"alg": "HS256", "kid": keycloak.signing_key.kid}, claims, secret))


async def test_alg_none(gql: GraphQLClient, keycloak: FakeKeycloak, world: TenantWorld) -> None:
    claims = keycloak.claims(roles=["tenant_admin"], tenant=world.slug)
    await assert_unauthenticated(gql, f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.")


async def test_unknown_kid(gql: GraphQLClient, keycloak: FakeKeycloak, world: TenantWorld) -> None:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "not-in-the-realm"})
    claims = keycloak.claims(roles=["tenant_admin"], tenant=world.slug)
    await assert_unauthenticated(gql, keycloak.sign(claims, key=stranger))


async def test_tampered_payload(gql: GraphQLClient, keycloak: FakeKeycloak, world: TenantWorld,
                                other_world: TenantWorld) -> None:
    header, _, signature = keycloak.token(roles=["customer"], tenant=world.slug).split(".")
    forged = b64(keycloak.claims(roles=["super_admin", "tenant_admin"], tenant=other_world.slug))
    await assert_unauthenticated(gql, f"{header}.{forged}.{signature}")


async def test_id_tokens_and_malformed_headers_are_refused(http: httpx.AsyncClient, gql: GraphQLClient,
                                                           keycloak: FakeKeycloak, world: TenantWorld) -> None:
    claims = {**keycloak.claims(roles=["tenant_admin"], tenant=world.slug), "typ": "ID"}
    await assert_unauthenticated(gql, keycloak.sign(claims))
    await assert_unauthenticated(gql, "not.a.token")
    body = (await http.post("/graphql", json={"query": STORES}, headers={"authorization": "Basic abc"})).json()
    assert error_codes(body) == ["UNAUTHENTICATED"]
    body = await gql(STORES, token=keycloak.token(roles=["tenant_admin"], tenant="no-such-tenant"))
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_a_token_and_a_key_of_different_tenants_are_forbidden(gql: GraphQLClient, keycloak: FakeKeycloak,
                                                                    world: TenantWorld,
                                                                    other_world: TenantWorld) -> None:
    body = await gql(STORES, token=keycloak.token(roles=["tenant_admin"], tenant=world.slug), key=other_world.key)
    assert body["data"] is None
    assert error_codes(body) == ["FORBIDDEN"]


async def test_development_tokens_are_trusted_in_development(gql: GraphQLClient, settings,
                                                             world: TenantWorld) -> None:
    from cityos.auth import dev_issuer

    claims = dev_issuer.keycloak_shaped_claims(subject="dev", roles=["tenant_admin"], tenant=world.slug,
                                               stores=[], vendor=None, company=None, ttl_seconds=60,
                                               client_id="medusa-backend")
    body = await gql(STORES, token=dev_issuer.mint(settings.CITYOS_DATA_DIR, claims))
    assert body == {"data": {"stores": {"totalCount": 1}}}


def verifier_for(keycloak: FakeKeycloak, client: httpx.AsyncClient, interval: float) -> tuple[TokenVerifier,
                                                                                               JwksSource]:
    source = JwksSource(keycloak.issuer, client, min_refresh_interval=interval)
    return TokenVerifier([TrustedIssuer(keycloak.issuer, source, frozenset({"medusa-admin"}),
                                        "medusa-backend")]), source


async def test_keys_are_cached_and_refreshed_once_for_a_rotated_kid(keycloak: FakeKeycloak) -> None:
    async with httpx.AsyncClient() as client:
        verifier, source = verifier_for(keycloak, client, interval=0)
        for _ in range(3):
            await verifier.verify(keycloak.token(roles=["customer"]))
        assert source.fetches == 1
        old_key = keycloak.signing_key
        keycloak.rotate()
        try:
            identity = await verifier.verify(keycloak.token(roles=["customer"], tenant="t"))
        finally:
            keycloak.signing_key = old_key
        assert identity.roles == frozenset({"customer"})
        assert source.fetches == 2


async def test_a_flood_of_unknown_kids_cannot_hammer_the_realm(keycloak: FakeKeycloak) -> None:
    async with httpx.AsyncClient() as client:
        verifier, source = verifier_for(keycloak, client, interval=3600)
        await verifier.verify(keycloak.token(roles=["customer"]))
        before = keycloak.jwks_requests
        stranger = RSAKey.generate_key(2048, parameters={"kid": "forged"})
        for _ in range(20):
            with pytest.raises(Unauthenticated):
                await verifier.verify(keycloak.sign(keycloak.claims(roles=["customer"]), key=stranger))
        assert keycloak.jwks_requests == before
        assert source.fetches == 1


async def test_claims_become_a_principal(keycloak: FakeKeycloak) -> None:
    async with httpx.AsyncClient() as client:
        verifier, _ = verifier_for(keycloak, client, interval=0)
        claims = keycloak.claims(roles=["vendor_admin", "offline_access"], tenant="acme", stores=["s1", "s2"],
                                 vendor="v9", company="c3")
        claims["resource_access"]["medusa-backend"] = {"roles": ["store_admin", "uma_protection"]}
        identity = await verifier.verify(keycloak.sign(claims))
    assert identity.roles == frozenset({"vendor_admin", "store_admin"})
    assert (identity.tenant, identity.stores, identity.vendor_id, identity.company_id) == (
        "acme", ("s1", "s2"), "v9", "c3")
    assert identity.expires_at and identity.expires_at > time.time()
