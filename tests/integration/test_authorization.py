"""Cerbos on every object and sensitive field: batching, field permissions, tenant overrides, failing closed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cityos.app import create_app
from cityos.auth.authz import SharedDecisions
from cityos.config import Settings
from cityos.graphql.core.permissions import FIELD_PERMISSIONS
from cityos.graphql.core.relay import to_global_id
from cityos.graphql.schema import schema
from cityos.services import Services
from tests import infrastructure
from tests.conftest import GraphQLClient, Server, TenantWorld, Tokens, error_codes, make_tenant


async def test_fifty_objects_cost_one_pdp_call(server: Server, gql: GraphQLClient, owner_engine,
                                               tokens: Tokens, monkeypatch: pytest.MonkeyPatch) -> None:
    world = await make_tenant(owner_engine, stores=50)
    body = await gql("{ stores(first: 50) { nodes { id } } }", token=tokens("tenant_admin", world))
    ids = [node["id"] for node in body["data"]["stores"]["nodes"]]
    assert len(ids) == 50
    counter = server.services.pdp_counter
    # Through the resolvers (Store.content is not compiled): the fifty decisions come from one query plan (one
    # PlanResources at most, none once warm), evaluated in-process; no CheckResources.
    resolved = "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Store { content { __typename } } } }"
    admin = tokens("tenant_admin", world)  # one principal (tokens() names a new subject each time)
    for most in (1, 0):
        before, plans = counter.check_calls, counter.plan_calls
        body = await gql(resolved, {"ids": ids}, token=admin)
        assert [node["id"] for node in body["data"]["nodes"]] == ids
        assert counter.check_calls - before == 0 and counter.plan_calls - plans <= most
    # Without the shared plans (a plan the evaluator cannot read): the fifty checks are one CheckResources batch.
    monkeypatch.setattr(server.services, "decisions", None)
    before = counter.check_calls
    body = await gql(resolved, {"ids": ids}, token=tokens("tenant_admin", world))
    assert [node["id"] for node in body["data"]["nodes"]] == ids
    assert counter.check_calls - before == 1
    # Compiled: no decision per object, the `read` query plan (at most one PlanResources call) applied in SQL.
    before, plans = counter.check_calls, counter.plan_calls
    body = await gql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids},
                     token=tokens("tenant_admin", world))
    assert [node["id"] for node in body["data"]["nodes"]] == ids
    assert counter.check_calls - before == 0 and counter.plan_calls - plans <= 1


async def test_a_denied_field_is_null_with_forbidden_at_its_path(gql: GraphQLClient, tokens: Tokens,
                                                                 world: TenantWorld) -> None:
    query = "{ currentStore { name publishableKeys { totalCount nodes { redacted } } } }"
    body = await gql(query, key=world.key)
    assert body["data"]["currentStore"]["name"] == f"Store 0 of {world.slug}"
    assert body["data"]["currentStore"]["publishableKeys"] is None
    assert body["errors"][0]["path"] == ["currentStore", "publishableKeys"]
    assert error_codes(body) == ["FORBIDDEN"]
    admin = await gql(query, key=world.key, token=tokens("tenant_admin", world))
    assert "errors" not in admin
    assert admin["data"]["currentStore"]["publishableKeys"]["totalCount"] == 1
    assert world.key not in str(admin)


def test_field_permissions_are_declared_and_described() -> None:
    assert FIELD_PERMISSIONS[("Store", "publishable_keys")] == "read:field:publishable_keys"
    assert "Requires permission `read:field:publishable_keys`" in schema.as_str()


UPDATE = 'mutation($id: ID!) { updateStore(id: $id, input: {name: "Renamed by store admin"}) { name } }'


async def test_a_tenant_override_changes_the_decision_for_that_tenant_only(gql: GraphQLClient, owner_engine,
                                                                            tokens: Tokens) -> None:
    acme = await make_tenant(owner_engine, slug="acme")
    other = await make_tenant(owner_engine)
    for world, expected in ((acme, ["FORBIDDEN"]), (other, [])):
        token = tokens("store_admin", world, stores=["store-0"])
        body = await gql(UPDATE, {"id": to_global_id("Store", world.store_id)}, token=token)
        assert error_codes(body) == expected, (world.slug, body)
        # reading and managing domains stay allowed at Acme: the override only narrows `update`
        domains = await gql('mutation($id: ID!) { addStoreDomain(storeId: $id, domain: $d) { domain } }'
                            .replace("$d", f'"extra.{world.slug}.test"'),
                            {"id": to_global_id("Store", world.store_id)}, token=token)
        assert "errors" not in domains, domains


async def test_the_pdp_unreachable_fails_closed(settings: Settings, work_dir: Path, owner_engine,
                                                tokens: Tokens) -> None:
    world = await make_tenant(owner_engine)
    with infrastructure.cerbos_server(work_dir / "cerbos-stoppable") as pdp:
        # The resolvers decide by query plans kept for `ttl` seconds by design (the compiled path likewise:
        # tests/integration/test_compiled_reads.py): while warm, a decision needs no PDP; once they expire, every
        # decision that must ask the PDP fails closed.
        own = settings.model_copy(update={"CERBOS_URL": pdp.url, "CITYOS_COMPILED_READS": False})
        services = Services.start(own)
        now = [0.0]
        services.decisions = SharedDecisions(clock=lambda: now[0])
        app = create_app(own, services)
        app.state.services = services
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                query = {"query": "{ stores { totalCount nodes { name } } currentStore { name } }"}
                headers = {"authorization": f"Bearer {tokens('tenant_admin', world)}",
                           "x-publishable-api-key": world.key}
                ok = (await client.post("/graphql", json=query, headers=headers)).json()
                assert ok["data"]["stores"]["totalCount"] == 1
                pdp.stop()
                warm = (await client.post("/graphql", json=query, headers=headers)).json()
                assert warm["data"]["currentStore"] == ok["data"]["currentStore"]  # the warm plan
                assert warm["data"]["stores"] is None and set(error_codes(warm)) == {"UNAVAILABLE"}
                now[0] += services.decisions.ttl
                down = (await client.post("/graphql", json=query, headers=headers)).json()
                assert error_codes(down) and set(error_codes(down)) == {"UNAVAILABLE"}
                assert down["data"] is None or all(value is None for value in down["data"].values())
                ready = await client.get("/health/ready")
                assert ready.status_code == 503
                assert "cerbos" in ready.json()["failed"]
        finally:
            await services.close()
