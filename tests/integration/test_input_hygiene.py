"""Strings the database cannot store are BAD_USER_INPUT naming the argument; no log line carries bound SQL
parameters (customers' emails and addresses)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from cityos.db.engines import create_app_engine
from cityos.graphql.core.relay import to_global_id
from cityos.observability.logs import JsonFormatter
from tests.conftest import GraphQLClient, TenantWorld, Tokens, error_codes
from tests.operations import all_operations

OPS = all_operations()
NUL = "bad\x00value"


async def test_nul_in_any_argument_is_bad_user_input_naming_it(gql: GraphQLClient, world: TenantWorld,
                                                               tokens: Tokens, caplog: Any) -> None:
    admin = tokens("tenant_admin", world)
    store = to_global_id("Store", world.store_id)
    cart = to_global_id("Cart", world.store_id)  # never reached: the argument is refused first
    cases: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
        (OPS["storefront/ProductByHandle"], {"handle": NUL}, {"key": world.key}, "handle"),
        (OPS["storefront/Products"], {"filter": {"search": NUL}}, {"key": world.key}, "filter.search"),
        (OPS["storefront/CreateCart"], {"input": {"email": NUL}}, {"key": world.key}, "input.email"),
        (OPS["storefront/SetShippingAddress"], {"cartId": cart, "address": {
            "firstName": "Ada", "lastName": "L", "address1": "1 Main St", "city": NUL, "province": "TX",
            "postalCode": "73301", "countryCode": "US"}}, {"key": world.key}, "address.city"),
        (OPS["admin/CreateCategory"], {"input": {"storeId": store, "handle": "h", "name": NUL}}, {"token": admin},
         "input.name"),
        ('{ product(handle: "lit\\u0000eral") { id } }', {}, {"key": world.key}, "handle"),
    ]
    caplog.set_level(logging.DEBUG)
    for document, variables, credentials, field in cases:
        body = await gql(document, variables, **credentials)
        assert error_codes(body) == ["BAD_USER_INPUT"], (field, body)
        assert body["errors"][0]["extensions"]["field"] == field
    assert "INTERNAL_SERVER_ERROR" not in caplog.text
    assert "bad\x00value" not in caplog.text


async def test_logged_database_errors_never_carry_bound_values(server: Any) -> None:
    """asyncpg quotes a value it cannot encode, and Postgres quotes a value it cannot parse: the JSON log line of
    such an error keeps the SQLSTATE and the statement, not the value."""
    engine = create_app_engine(server.services.settings.DATABASE_URL)
    formatter = JsonFormatter()
    try:
        for statement, value in (("select cast(:email as int)", "ada@example.com"),
                                 ("select cast(cast(:email as text) as int)", "grace@example.com")):
            async with engine.connect() as connection:
                with pytest.raises(DBAPIError) as raised:
                    await connection.execute(text(statement), {"email": value})
            record = logging.LogRecord("cityos.graphql", logging.ERROR, __file__, 1, "unexpected error", (),
                                       (type(raised.value), raised.value, raised.value.__traceback__))
            line = formatter.format(record)
            assert value not in line
            assert "sqlstate=" in line and "cast(" in line
    finally:
        await engine.dispose()


async def test_a_malformed_id_names_the_argument_that_held_it(gql: GraphQLClient, world: TenantWorld,
                                                              tokens: Tokens) -> None:
    body = await gql(OPS["storefront/Products"], {"filter": {"categoryId": "nope"}}, key=world.key)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["extensions"]["field"] == "filter.categoryId"
    literal = await gql('{ products(filter: {vendorId: "U3RvcmU6eA"}) { totalCount } }', key=world.key)
    assert literal["errors"][0]["extensions"]["field"] == "filter.vendorId"
    cursor = await gql('query($c: String) { stores(after: $c) { totalCount } }', {"c": "WzEsIDJd"},
                       token=tokens("tenant_admin", world))
    assert error_codes(cursor) == ["BAD_USER_INPUT"]
    assert cursor["errors"][0]["extensions"]["field"] == "after"
    node = await gql(OPS["storefront/NodeById"], {"id": "%%%"}, key=world.key)
    assert node["errors"][0]["extensions"]["field"] == "id"


async def test_storefront_queries_without_a_store_say_so(gql: GraphQLClient) -> None:
    for document in ('{ products { totalCount } }', '{ categories { totalCount } }',
                     '{ product(handle: "merino-tee") { id } }', 'mutation { createCart { id } }'):
        body = await gql(document)
        assert error_codes(body) == ["UNAUTHENTICATED"], (document, body)
        assert "x-publishable-api-key" in body["errors"][0]["message"]
    assert (await gql("{ currentStore { id } }")) == {"data": {"currentStore": None}}
