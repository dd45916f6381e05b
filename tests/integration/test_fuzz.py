"""Schemathesis fuzzes every query and mutation of graphql/schema.graphql against the served API, as a storefront
guest (publishable key) and as a tenant admin (Keycloak token), on a tenant with a seeded catalog.

No response may be an HTTP 5xx and no GraphQL error may be INTERNAL_SERVER_ERROR: every failure the fuzzer can
provoke must be a typed error. Generation is derandomized (the same cases on every run) and bounded per operation.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.graphql import nodes
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import graphql
from cityos.graphql.core.relay import to_global_id
from cityos.seed import seed_catalog, seed_region
from tests.conftest import Server, Tokens, make_tenant
from tests.infrastructure import PROJECT_ROOT

SCHEMA_FILE = PROJECT_ROOT / "graphql" / "schema.graphql"
EXAMPLES_PER_OPERATION = 20  # valid documents; + NEGATIVE (schema-violating) ones, × 2 roles × every operation
NEGATIVE_EXAMPLES_PER_OPERATION = 4

# Seeded tables whose rows the fuzzer aims at, by the GraphQL type of their global id.
ID_TABLES = {"Store": "store", "Tenant": "tenant", "StoreDomain": "store_domain",
             "PublishableApiKey": "publishable_api_key", "Product": "product", "Variant": "variant",
             "Category": "category", "Vendor": "vendor", "Region": "region", "ShippingOption": "shipping_option",
             "Cart": "cart", "CartLine": "cart_line"}

JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)), max_leaves=12)


def value_node(value: Any) -> graphql.ValueNode:
    """A GraphQL literal for a JSON value."""
    if value is None:
        return nodes.Null
    if isinstance(value, bool):
        return nodes.Boolean(value)
    if isinstance(value, int):
        return nodes.Int(value)
    if isinstance(value, float):
        return nodes.Float(value)
    if isinstance(value, str):
        return nodes.String(value)
    if isinstance(value, list):
        return nodes.List([value_node(item) for item in value])
    return nodes.Object([graphql.ObjectFieldNode(name=graphql.NameNode(value=key), value=value_node(item))
                         for key, item in value.items() if key.isidentifier() and key.isascii()])


def decimals() -> st.SearchStrategy[graphql.ValueNode]:
    """Numbers as clients send them, and as they should not: NaN, infinities, absurd precision and magnitude."""
    plain = st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-200, max_value=200)
    odd = st.sampled_from(["NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "1e400", "-0",
                           "0.000000000000000000001", "1" * 80, "1E+999999", "12.5%", "", " 7 ", "0x10"])
    return st.one_of(plain.map(str).map(nodes.String), plain.map(float).map(nodes.Float), odd.map(nodes.String),
                     st.integers(-(2**70), 2**70).map(nodes.Int),
                     st.sampled_from(["1e400", "0.000000000000000000001", "-1e-30"]).map(
                         lambda raw: graphql.FloatValueNode(value=raw)))


def date_times() -> st.SearchStrategy[graphql.ValueNode]:
    valid = st.datetimes().map(lambda moment: moment.isoformat() + "Z")
    odd = st.sampled_from(["", "now", "2026-13-45T25:61:00Z", "0000-00-00", "9999-12-31T23:59:59+14:00",
                           "2026-01-01", "-1"])
    return st.one_of(valid, odd, st.text(max_size=12)).map(nodes.String)


def identifiers(real: list[str]) -> st.SearchStrategy[graphql.ValueNode]:
    junk = st.one_of(st.text(max_size=30), st.uuids().map(str),
                     st.sampled_from(["", "=", "U3RvcmU6", "U3RvcmU6eA==", "Tm9wZTox", "bm90LWEtaWQ",
                                      to_global_id("Store", uuid.UUID(int=0)), to_global_id("Nope", uuid.uuid4())]))
    return st.one_of(st.sampled_from(real), st.sampled_from(real), junk).map(nodes.String)


def representations(real: list[str]) -> st.SearchStrategy[graphql.ValueNode]:
    typed = st.builds(lambda kind, ident: {"__typename": kind, "id": ident},
                      st.sampled_from([*ID_TABLES, "Order", "Nope", ""]), st.sampled_from(real) | st.text(max_size=8))
    return st.one_of(typed, JSON_VALUES).map(value_node)


@dataclass
class Findings:
    cases: int = 0
    failures: list[str] = field(default_factory=list)

    def check(self, role: str, body: str, response: requests.Response) -> None:
        self.cases += 1
        if response.status_code >= 500:
            self.failures.append(f"[{role}] HTTP {response.status_code} for {body!r}: {response.text[:300]}")
            return
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            self.failures.append(f"[{role}] not JSON ({response.status_code}) for {body!r}: {response.text[:300]}")
            return
        errors = payload.get("errors") if isinstance(payload, dict) else None
        for error in errors or ():
            if (error.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR":
                self.failures.append(f"[{role}] INTERNAL_SERVER_ERROR for {body!r}: {error}")


def fuzz(url: str, roles: dict[str, dict[str, str]], real_ids: list[str]) -> Findings:
    """Runs in a worker thread (the served app needs the test's event loop free)."""
    schemathesis.graphql.scalar("ID", identifiers(real_ids))
    schemathesis.graphql.scalar("Decimal", decimals())
    schemathesis.graphql.scalar("DateTime", date_times())
    schemathesis.graphql.scalar("JSON", JSON_VALUES.map(value_node))
    schemathesis.graphql.scalar("_Any", representations(real_ids))
    for name in ("link__Import", "federation__FieldSet"):
        schemathesis.graphql.scalar(name, st.text(max_size=10).map(nodes.String))
    schema = schemathesis.graphql.from_path(SCHEMA_FILE)
    findings = Findings()
    session = requests.Session()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    for operation in operations:
        for mode, examples in ((schemathesis.GenerationMode.POSITIVE, EXAMPLES_PER_OPERATION),
                               (schemathesis.GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES_PER_OPERATION)):
            run_operation(operation, mode, examples, url, roles, session, findings)
    return findings


def run_operation(operation: Any, mode: Any, examples: int, url: str, roles: dict[str, dict[str, str]],
                  session: requests.Session, findings: Findings) -> None:
    @settings(max_examples=examples, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def test(case: Any) -> None:
        for role, headers in roles.items():
            response = case.call(base_url=url, session=session, headers=headers, timeout=30)
            findings.check(role, str(case.body), response)

    test()


async def seeded_ids(engine: AsyncEngine, tenant_id: uuid.UUID) -> list[str]:
    ids = []
    async with engine.connect() as connection:
        for kind, table in ID_TABLES.items():
            where = "id = :t" if table == "tenant" else "tenant_id = :t"
            rows = await connection.execute(text(f"select id from {table} where {where} limit 5"),
                                            {"t": tenant_id})
            ids.extend(to_global_id(kind, row[0]) for row in rows)
    return ids


async def test_fuzzing_finds_no_internal_errors(server: Server, owner_engine: AsyncEngine, tokens: Tokens) -> None:
    world = await make_tenant(owner_engine)
    async with owner_engine.begin() as connection:
        await seed_region(connection, world.tenant_id)
        await seed_catalog(connection, world.tenant_id, world.store_id)
    async with asyncio.timeout(30):
        await asyncio.to_thread(requests.post, f"{server.url}/graphql", timeout=10,
                                json={"query": "mutation { createCart { id } }"},
                                headers={"x-publishable-api-key": world.key})
    real_ids = await seeded_ids(owner_engine, world.tenant_id)
    roles = {"guest": {"x-publishable-api-key": world.key},
             "tenant_admin": {"authorization": f"Bearer {tokens('tenant_admin', world)}"}}
    started = time.perf_counter()
    findings = await asyncio.to_thread(fuzz, f"{server.url}/graphql", roles, real_ids)
    elapsed = time.perf_counter() - started
    print(f"fuzzed {findings.cases} cases in {elapsed:.1f} s")
    assert findings.cases > 2000
    assert not findings.failures, f"{len(findings.failures)} failures:\n" + "\n".join(findings.failures[:40])

