"""N+1 guard: a nested query costs the same number of statements over 1 parent and over 50."""

from __future__ import annotations

from tests.conftest import GraphQLClient, Server, Tokens, make_tenant

NESTED = """{ stores(first: 50) { totalCount edges { node {
    name tenant { slug }
    domains { totalCount nodes { domain } }
    salesChannels { totalCount nodes { name isDefault } }
} } } }"""


async def count_statements(server: Server, gql: GraphQLClient, token: str) -> tuple[int, int, dict]:
    await gql(NESTED, token=token)  # warm the per-process caches (tenant directory)
    before, pdp_before = server.statements.count, server.services.pdp_counter.check_calls
    body = await gql(NESTED, token=token)
    assert "errors" not in body, body
    return server.statements.count - before, server.services.pdp_counter.check_calls - pdp_before, body


async def test_statement_and_pdp_calls_do_not_grow_with_parents(server: Server, gql: GraphQLClient,
                                                                  owner_engine, tokens: Tokens) -> None:
    one = await make_tenant(owner_engine, stores=1)
    fifty = await make_tenant(owner_engine, stores=50)
    statements_for_one, pdp_for_one, body_one = await count_statements(server, gql, tokens("tenant_admin", one))
    statements_for_fifty, pdp_for_fifty, body_fifty = await count_statements(server, gql,
                                                                             tokens("tenant_admin", fifty))
    assert body_one["data"]["stores"]["totalCount"] == 1
    assert body_fifty["data"]["stores"]["totalCount"] == 50
    assert all(edge["node"]["salesChannels"]["totalCount"] == 1
               for edge in body_fifty["data"]["stores"]["edges"])
    assert statements_for_fifty == statements_for_one
    # set tenant, count, page, then one batch each for tenant, domains, channels
    assert statements_for_one <= 8
    # one PlanResources for the list, then one CheckResources per nesting level (tenants; domains+channels)
    assert pdp_for_fifty == pdp_for_one <= 3
