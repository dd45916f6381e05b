"""`me`: the signed-in customer's account."""

from __future__ import annotations

import strawberry

from cityos.domain.customers import service
from cityos.errors import Forbidden, Unauthenticated
from cityos.graphql.core.context import Info
from cityos.graphql.customers.types import CustomerAccount, account_resource


def customer_of(info: Info) -> str:
    """The signed-in customer's subject (a Keycloak `customer` token with a tenant)."""
    principal = info.context.principal
    if not principal.authenticated:
        raise Unauthenticated("sign in as a customer")
    if "customer" not in principal.roles or principal.tenant_id is None:
        raise Forbidden("customer accounts are for signed-in customers of a store")
    return principal.id


async def account(info: Info, customer_id: str) -> CustomerAccount:
    principal = info.context.principal
    row = await info.context.db.run(lambda connection: service.profile(connection, customer_id))
    rows = await info.context.db.run(lambda connection: service.addresses(connection, customer_id))
    return CustomerAccount(customer_id=customer_id, email=principal.email or (row.email if row else None),
                           first_name=row.first_name if row else None, last_name=row.last_name if row else None,
                           phone=row.phone if row else None, address_rows=rows)


@strawberry.type
class CustomerQuery:
    @strawberry.field(description="The signed-in customer's account: profile, address book and orders (customers "
                                  "only).")
    async def me(self, info: Info) -> CustomerAccount:
        customer_id = customer_of(info)
        await info.context.authz.require(account_resource(info.context.principal.tenant_id, customer_id), "read")
        return await account(info, customer_id)
