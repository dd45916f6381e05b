"""An error affects only its own path: a failing root field next to any query operation leaves that operation's
data as it was, and a failed statement does not poison the rest of the operation's transaction."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from cityos.db.request import RequestDatabase
from cityos.errors import Unavailable
from cityos.graphql.core.relay import to_global_id
from graphql import OperationDefinitionNode, OperationType, parse
from tests.conftest import GraphQLClient, Server, Tokens, make_tenant
from tests.integration.test_isolation_matrix import VARIABLES, Target, full_tenant
from tests.operations import all_operations

MISSING_STORE = to_global_id("Store", uuid.UUID(int=7))
FAILING_FIELDS = {
    "NOT_FOUND": f'cityosFailing: store(id: "{MISSING_STORE}") {{ id name }}',
    "BAD_USER_INPUT": 'cityosFailing: node(id: "not-an-id") { id }',
}
QUERIES = {name: document for name, document in all_operations().items()
           if any(isinstance(d, OperationDefinitionNode) and d.operation is OperationType.QUERY
                  for d in parse(document).definitions)}


def with_field(document: str, field: str) -> str:
    """The document with one more root field at the end of its operation's selection set."""
    operation = next(d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode))
    assert operation.selection_set.loc is not None
    closing = operation.selection_set.loc.end - 1
    return f"{document[:closing]} {field} {document[closing:]}"


@pytest.fixture(scope="module")
async def shop(owner_engine: Any) -> Target:
    return await full_tenant(owner_engine)


def test_every_query_operation_is_covered() -> None:
    assert len(QUERIES) >= 20
    assert set(QUERIES) <= set(VARIABLES)


@pytest.mark.parametrize("code", sorted(FAILING_FIELDS))
async def test_a_failing_root_field_leaves_every_operation_its_data(code: str, gql: GraphQLClient,
                                                                    tokens: Tokens, shop: Target) -> None:
    credentials = {"token": tokens("tenant_admin", shop.world), "key": shop.world.key}
    for name, document in QUERIES.items():
        variables = VARIABLES[name](shop)
        alone = await gql(document, variables, **credentials)
        assert alone.get("data"), (name, alone)
        together = await gql(with_field(document, FAILING_FIELDS[code]), variables, **credentials)
        data = together["data"]
        assert data is not None, (name, together)
        assert data.pop("cityosFailing") is None
        assert data == alone["data"], name
        failing = [e for e in together["errors"] if e["path"] == ["cityosFailing"]]
        assert [e["extensions"]["code"] for e in failing] == [code], (name, together)
        others = [e for e in together["errors"] if e["path"] != ["cityosFailing"]]
        assert others == alone.get("errors", []), name


async def test_a_failed_statement_does_not_poison_the_operation(server: Server) -> None:
    database = RequestDatabase(server.services.app_engine)
    assert (await database.execute(text("select 1"))).scalar() == 1
    with pytest.raises(Exception, match="division by zero"):
        await database.execute(text("select 1/0"))
    assert (await database.execute(text("select 2"))).scalar() == 2
    await database.finish(commit=True)


async def test_writes_before_a_failed_read_are_kept(server: Server, owner_engine: Any) -> None:
    """A mutation's writes committed to the transaction survive a later failing read in the same operation."""
    world = await make_tenant(owner_engine)
    database = RequestDatabase(server.services.app_engine)
    database.scope_to(world.tenant_id)

    async def rename(connection: Any) -> None:
        await connection.execute(text("update store set name = 'Renamed' where id = :id"), {"id": world.store_id})

    await database.mutate(rename)
    with pytest.raises(Exception, match="division by zero"):
        await database.execute(text("select 1/0"))
    await database.finish(commit=True)
    async with owner_engine.connect() as connection:
        name = (await connection.execute(text("select name from store where id = :id"),
                                         {"id": world.store_id})).scalar()
    assert name == "Renamed"


async def test_a_statement_cancelled_by_the_server_timeout_is_unavailable(server: Server) -> None:
    """The server's statement_timeout (CITYOS_DB_TIMEOUT) cancels a slow statement: UNAVAILABLE, not an internal
    error, and the operation's next statements still run."""
    database = RequestDatabase(server.services.app_engine)

    async def slow(connection: Any) -> Any:
        await connection.execute(text("set local statement_timeout = '50ms'"))
        return await connection.execute(text("select pg_sleep(2)"))

    with pytest.raises(Unavailable, match="did not answer in time"):
        await database.run(slow)
    assert (await database.execute(text("select 3"))).scalar() == 3
    with pytest.raises(Unavailable, match="nothing was changed"):
        await database.mutate(slow)
    await database.finish(commit=False)
