"""The signed-in customer's own changes: profile, address book, reorder, claiming guest orders. Thin: the
customer is the token's subject, never an argument."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection

from cityos.domain.customers import service
from cityos.errors import Forbidden
from cityos.graphql.commerce.arguments import AddressInput
from cityos.graphql.commerce.types import Cart, Order
from cityos.graphql.core.context import Info
from cityos.graphql.core.nodes import node_by_global_id
from cityos.graphql.core.relay import from_global_id
from cityos.graphql.customers.queries import account, customer_of
from cityos.graphql.customers.types import ClaimedOrders, CustomerAccount, Reorder, SavedAddress, account_resource


@strawberry.input(description="Changes to the customer's profile; omitted fields stay as they are (an empty "
                              "string clears one).")
class ProfileInput:
    first_name: str | None = strawberry.field(default=None, description="First name.")
    last_name: str | None = strawberry.field(default=None, description="Last name.")
    phone: str | None = strawberry.field(default=None, description="Phone number.")


@strawberry.input(description="An address to save in the address book (any country; a checkout still checks it "
                              "against its region).")
class SavedAddressInput:
    label: str | None = strawberry.field(default=None, description="A name for it (Home, Office, …).")
    address: AddressInput = strawberry.field(description="The address.")
    is_default: bool = strawberry.field(default=False, description="Make it the default (the first one is).")


@strawberry.input(description="Changes to a saved address; omitted fields stay as they are.")
class SavedAddressChanges:
    label: str | None = strawberry.field(default=None, description="New name.")
    address: AddressInput | None = strawberry.field(default=None, description="New address.")
    is_default: bool | None = strawberry.field(default=None, description="Make it the default.")


ProfileChanges = Annotated[ProfileInput, strawberry.argument(description="The changes.")]
NewAddress = Annotated[SavedAddressInput, strawberry.argument(description="The address to save.")]
AddressIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the saved address.")]
AddressChanges = Annotated[SavedAddressChanges, strawberry.argument(description="The changes.")]
OrderIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of one of the customer's orders.")]


async def _own_account(info: Info, action: str) -> str:
    customer_id = customer_of(info)
    await info.context.authz.require(account_resource(info.context.principal.tenant_id, customer_id), action)
    return customer_id


@strawberry.type
class CustomerMutation:
    @strawberry.mutation(description="Change the signed-in customer's profile (created on first use).")
    async def update_my_profile(self, info: Info, input: ProfileChanges) -> CustomerAccount:
        customer_id = await _own_account(info, "update")
        principal = info.context.principal
        await info.context.db.mutate(lambda connection: service.save_profile(
            connection, tenant_id=principal.tenant_id, customer_id=customer_id,  # type: ignore[arg-type]
            email=principal.email, first_name=input.first_name, last_name=input.last_name, phone=input.phone))
        return await account(info, customer_id)

    @strawberry.mutation(description="Save an address in the address book (at most 50).")
    async def add_my_address(self, info: Info, input: NewAddress) -> SavedAddress:
        customer_id = await _own_account(info, "update")
        row = await info.context.db.mutate(lambda connection: service.add_address(
            connection, tenant_id=info.context.principal.tenant_id,  # type: ignore[arg-type]
            customer_id=customer_id, label=input.label, address=dict(input.address.__dict__),
            is_default=input.is_default))
        return SavedAddress.from_row(row)

    @strawberry.mutation(description="Change one of the customer's saved addresses.")
    async def update_my_address(self, info: Info, id: AddressIdArg, input: AddressChanges) -> SavedAddress:
        customer_id = await _own_account(info, "update")
        _, address_id = from_global_id(id, "CustomerAddress")
        row = await info.context.db.mutate(lambda connection: service.update_address(
            connection, customer_id=customer_id, address_id=address_id, label=input.label,
            address=dict(input.address.__dict__) if input.address is not None else None,
            is_default=input.is_default))
        return SavedAddress.from_row(row)

    @strawberry.mutation(description="Remove one of the customer's saved addresses; returns its id.")
    async def remove_my_address(self, info: Info, id: AddressIdArg) -> strawberry.ID:
        customer_id = await _own_account(info, "update")
        _, address_id = from_global_id(id, "CustomerAddress")
        await info.context.db.mutate(lambda connection: service.remove_address(
            connection, customer_id=customer_id, address_id=address_id))
        return id

    @strawberry.mutation(description="Put a past order's lines into a new cart (at today's prices, capped at the "
                                     "stock on hand); items no longer sold are named in skippedSkus.")
    async def reorder(self, info: Info, order_id: OrderIdArg) -> Reorder:
        customer_of(info)
        order: Order = await node_by_global_id(info, order_id, "Order", "reorder")

        async def work(connection: AsyncConnection) -> Any:
            return await service.reorder(connection, order.row, info.context.principal.id)

        cart, skipped = await info.context.db.mutate(work)
        return Reorder(cart=Cart.from_row(cart), skipped_skus=skipped)

    @strawberry.mutation(description="Take the guest orders placed with the customer's email: the sign-in token's "
                                     "email must be verified (email_verified). Orders of other customers are "
                                     "never taken.")
    async def claim_guest_orders(self, info: Info) -> ClaimedOrders:
        customer_id = await _own_account(info, "claim_orders")
        email = info.context.principal.email
        if not email:
            raise Forbidden("claiming guest orders needs a verified email in the sign-in token")
        rows = await info.context.db.mutate(lambda connection: service.claim_guest_orders(
            connection, customer_id=customer_id, email=email))
        return ClaimedOrders(count=len(rows), orders=[Order.from_row(row) for row in rows])
