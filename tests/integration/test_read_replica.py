"""DATABASE_READ_URL: query operations over HTTP (the compiled read path and the resolvers alike) read from the
replica; mutations write to the primary. The "replica" here is a copy of the primary taken (cityos backup/restore)
before the store got its catalog, so where each operation read is visible in its answer."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from cityos.config import Settings
from cityos.db.backup import backup, restore
from cityos.embedded.postgres import _bin as postgres_tool
from cityos.seed import seed_catalog, seed_region
from tests import infrastructure
from tests.conftest import app_client, make_tenant
from tests.operations import all_operations

COUNT = "{ products(first: 5) { totalCount } }"


async def test_queries_read_the_replica_and_mutations_write_the_primary(settings: Settings, owner_engine,
                                                                        postgres_admin_url: str, tmp_path) -> None:
    world = await make_tenant(owner_engine)
    replica = await asyncio.to_thread(infrastructure.create_database, postgres_admin_url)
    dump = tmp_path / "primary.dump"
    await asyncio.to_thread(backup, settings.DATABASE_URL, dump, postgres_tool)
    await restore(replica, dump, postgres_tool)
    async with owner_engine.begin() as connection:  # the primary moves on; the copy does not
        await seed_region(connection, world.tenant_id)
        await seed_catalog(connection, world.tenant_id, world.store_id)
    headers = {"x-publishable-api-key": world.key}
    for compiled in (True, False):
        routed = settings.model_copy(update={"DATABASE_READ_URL": replica, "CITYOS_COMPILED_READS": compiled})
        async with app_client(routed) as client:
            read = (await client.post("/graphql", json={"query": COUNT}, headers=headers)).json()
            assert read == {"data": {"products": {"totalCount": 0}}}, (compiled, read)  # the replica's (empty)
            made = (await client.post("/graphql", json={"query": all_operations()["storefront/CreateCart"],
                                                        "variables": {"input": {"email": "r@example.com"}}},
                                      headers=headers)).json()
            assert "errors" not in made, made
    async with owner_engine.connect() as connection:
        carts = (await connection.execute(text("select count(*) from cart where tenant_id = :t"),
                                          {"t": world.tenant_id})).scalar_one()
    assert carts == 2  # both carts were written to the primary
    async with app_client(settings) as client:  # without a replica the primary answers
        read = (await client.post("/graphql", json={"query": COUNT}, headers=headers)).json()
    assert read["data"]["products"]["totalCount"] > 0
