"""What the fuzzer (tests/integration/test_fuzz.py) and issue #15 turned up, each now a typed error: request bodies
that are JSON but not an object, Decimals that are not finite or too precise, oversized strings and metadata,
a super admin naming another tenant's store, signed webhooks whose body is not a JSON object."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.graphql.core.inputs import JSON_BYTES, NAME_LENGTH, TEXT_LENGTH
from cityos.graphql.core.relay import to_global_id
from cityos.seed import seed_catalog
from tests.conftest import FLEETBASE_SECRET, GraphQLClient, TenantWorld, Tokens, error_codes, make_tenant
from tests.fakes.stripe import FakeStripe
from tests.operations import all_operations

OPS = all_operations()


@pytest.mark.parametrize("body", [b"null", b"42", b"true", b'"x"', b"[]", b"[1]", b"{", b""])
async def test_a_body_that_is_not_a_json_object_is_400(http: httpx.AsyncClient, body: bytes) -> None:
    response = await http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("value", ["NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "0.000000000000000000001",
                                   "12.345"])
async def test_price_tier_percent_off_must_be_a_storable_number(gql: GraphQLClient, tokens: Tokens,
                                                                owner_engine: AsyncEngine, value: str) -> None:
    world = await make_tenant(owner_engine)
    async with owner_engine.begin() as connection:
        await seed_catalog(connection, world.tenant_id, world.store_id)
    products = await gql("{ products(first: 1) { nodes { id } } }", key=world.key)
    product = products["data"]["products"]["nodes"][0]["id"]
    body = await gql("mutation($p: ID!, $t: [PriceTierInput!]!) { setPriceTiers(productId: $p, currencyCode: \"usd\", "
                     "tiers: $t) { id } }", {"p": product, "t": [{"minQuantity": 2, "percentOff": value}]},
                     token=tokens("tenant_admin", world))
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["field"] == "percentOff"


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "0.000000000000000000001", "1.23456"])
async def test_commission_percentage_must_be_a_storable_number(gql: GraphQLClient, tokens: Tokens,
                                                               world: TenantWorld, value: str) -> None:
    body = await gql(OPS["admin/CreateCommissionRule"], {"input": {"scope": "tenant", "percentage": value}},
                     token=tokens("tenant_admin", world))
    assert error_codes(body) == ["BAD_USER_INPUT"], body
    assert body["errors"][0]["extensions"]["field"] == "percentage"


async def test_a_storable_decimal_is_still_accepted(gql: GraphQLClient, tokens: Tokens, world: TenantWorld) -> None:
    body = await gql(OPS["admin/CreateCommissionRule"], {"input": {"scope": "tenant", "percentage": "12.50000"}},
                     token=tokens("tenant_admin", world))
    assert body["data"]["createCommissionRule"]["percentage"] in ("12.5", "12.5000"), body


async def test_strings_and_metadata_have_documented_size_limits(gql: GraphQLClient, tokens: Tokens,
                                                                world: TenantWorld) -> None:
    admin = tokens("tenant_admin", world)
    store = to_global_id("Store", world.store_id)
    base = {"storeId": store, "handle": f"h-{uuid.uuid4().hex[:8]}", "title": "Tee"}
    too_large: list[tuple[dict[str, Any], str]] = [
        ({**base, "title": "t" * (NAME_LENGTH + 1)}, "input.title"),
        ({**base, "description": "d" * (TEXT_LENGTH + 1)}, "input.description"),
        ({**base, "description": "d" * 50_000}, "input.description"),
        ({**base, "metadata": {"blob": "m" * JSON_BYTES}}, "input.metadata"),
    ]
    for product, field in too_large:
        body = await gql(OPS["admin/CreateProduct"], {"input": product}, token=admin)
        assert error_codes(body) == ["BAD_USER_INPUT"], (field, str(body)[:300])
        assert body["errors"][0]["extensions"]["field"] == field
    long_name = "n" * (NAME_LENGTH + 1)
    literal = await gql(f'mutation {{ createCategory(input: {{storeId: "{store}", handle: "c", name: "{long_name}"}}) '
                        "{ id } }", token=admin)
    assert error_codes(literal) == ["BAD_USER_INPUT"] and literal["errors"][0]["extensions"]["field"] == "input.name"
    at_the_limits = {**base, "title": "t" * NAME_LENGTH, "description": "d" * TEXT_LENGTH,
                     "metadata": {"blob": "m" * (JSON_BYTES - 100)}}
    accepted = await gql(OPS["admin/CreateProduct"], {"input": at_the_limits}, token=admin)
    assert "errors" not in accepted, str(accepted)[:300]


async def test_super_admin_with_another_tenants_key_gets_a_typed_error(gql: GraphQLClient, tokens: Tokens,
                                                                       world: TenantWorld,
                                                                       other_world: TenantWorld) -> None:
    body = await gql(OPS["storefront/CreateCart"], {}, key=other_world.key, token=tokens("super_admin", world))
    assert error_codes(body) == ["FORBIDDEN"], body
    platform = await gql(OPS["storefront/CreateCart"], {}, key=other_world.key, token=tokens("super_admin"))
    assert error_codes(platform) == ["UNAUTHENTICATED"], platform  # a platform token is no shopper
    own = await gql(OPS["storefront/CreateCart"], {}, key=world.key, token=tokens("super_admin", world))
    assert own["data"]["createCart"] is not None or "INTERNAL_SERVER_ERROR" not in error_codes(own), own


@pytest.mark.parametrize("payload", [b"null", b"42", b"true", b'"x"', b"[]", b'{"id": "evt_1", "type": 3}',
                                     b'{"id": "evt_x", "type": "payment_intent.succeeded", "data": []}',
                                     b'{"id": "evt_y", "type": "payment_intent.succeeded", "data": {"object": 1}}'])
async def test_signed_stripe_webhook_that_is_not_an_event_object_is_400(http: httpx.AsyncClient,
                                                                        fake_stripe: FakeStripe,
                                                                        payload: bytes) -> None:
    if payload.startswith(b"{") and b"evt_" in payload:  # unique ids: the inbox would treat a rerun as a replay
        payload = payload.replace(b"evt_", f"evt_{uuid.uuid4().hex[:8]}_".encode())
    response = await http.post("/api/admin/integrations/stripe/webhook", content=payload,
                               headers={"stripe-signature": fake_stripe.sign(payload),
                                        "content-type": "application/json"})
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("payload", [b"null", b"42", b"true", b'"x"', b"[]",
                                     b'{"id": "e1", "event": "order.dispatched", "data": [1]}',
                                     b'{"id": "e2", "event": "order.dispatched", "data": "x"}',
                                     b'{"id": "e3", "event": {"a": 1}, "data": {}}'])
async def test_signed_fleetbase_webhook_that_is_not_an_event_object_is_400(http: httpx.AsyncClient,
                                                                           payload: bytes) -> None:
    payload = payload.replace(b'"e', f'"e{uuid.uuid4().hex[:8]}'.encode(), 1) if payload.startswith(b"{") else payload
    signature = hmac.new(FLEETBASE_SECRET.encode(), payload, hashlib.sha256).hexdigest()
    response = await http.post("/webhooks/fleetbase", content=payload, headers={"signature": signature})
    assert response.status_code == 400, (response.status_code, response.text)


def test_limits_are_documented() -> None:
    from tests.infrastructure import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text()
    assert "### Input limits" in readme
    for figure in (f"{NAME_LENGTH}", f"{TEXT_LENGTH:,}", f"{JSON_BYTES // 1024} KB"):
        assert figure in readme, figure
    assert json  # the payloads above are hand-written JSON on purpose
