"""The schema: every context's queries and mutations composed into one Apollo Federation v2 subgraph."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, ValidationCache
from strawberry.federation.schema import FederationAny
from strawberry.federation.schema_directives import Link
from strawberry.types import ExecutionContext

from cityos.errors import BadUserInput
from cityos.graphql.b2b.mutations import B2BMutation
from cityos.graphql.b2b.queries import B2BQuery
from cityos.graphql.b2b.subscriptions import B2BSubscription
from cityos.graphql.b2b.types import ApprovalRequest, Company, CompanyInvitation, CompanyUser, Invoice, PriceList, Quote
from cityos.graphql.billing.mutations import BillingMutation
from cityos.graphql.billing.queries import BillingQuery
from cityos.graphql.billing.subscriptions import BillingSubscription
from cityos.graphql.billing.types import CustomerSubscription, SubscriptionPlan
from cityos.graphql.catalog.mutations import CatalogMutation
from cityos.graphql.catalog.queries import CatalogQuery
from cityos.graphql.catalog.types import Category, Product, Variant
from cityos.graphql.commerce.mutations import CommerceMutation
from cityos.graphql.commerce.queries import CommerceQuery
from cityos.graphql.commerce.types import Cart, Order, Shipment, VendorOrder
from cityos.graphql.core.compiler.route import CompiledReads
from cityos.graphql.core.context import Info
from cityos.graphql.core.exposure import ExposureControls
from cityos.graphql.core.extensions import (
    ErrorsInResponseOrder,
    MaskInternalErrors,
    PreExecutionErrorCodes,
    RequestScope,
    is_internal,
)
from cityos.graphql.core.inputs import ArgumentNames, StorableStrings
from cityos.graphql.core.limits import CostLimit, OperationLimits
from cityos.graphql.core.nodes import NODE_LOADERS, nodes_by_global_ids
from cityos.graphql.core.persisted import PersistedQueries
from cityos.graphql.core.relay import Node
from cityos.graphql.customers.mutations import CustomerMutation
from cityos.graphql.customers.queries import CustomerQuery
from cityos.graphql.marketplace.mutations import MarketplaceMutation
from cityos.graphql.marketplace.queries import MarketplaceQuery
from cityos.graphql.marketplace.types import CommissionRule, Payout, Vendor
from cityos.graphql.orders.fulfillment import FulfillmentMutation
from cityos.graphql.orders.mutations import OrdersMutation
from cityos.graphql.orders.queries import OrdersQuery
from cityos.graphql.orders.subscriptions import LiveSubscription
from cityos.graphql.orders.types import Refund, Return
from cityos.graphql.platform.mutations import OutboxMutation
from cityos.graphql.platform.queries import AuditQuery, JobRunQuery, OutboxQuery
from cityos.graphql.promotions.mutations import PromotionsMutation
from cityos.graphql.promotions.queries import PromotionsQuery
from cityos.graphql.promotions.types import Promotion
from cityos.graphql.tenancy.mutations import StoreSetupMutation, TenancyMutation
from cityos.graphql.tenancy.queries import TenancyQuery
from cityos.graphql.tenancy.types import PublishableApiKey, Region, SalesChannel, Store, StoreDomain, Tenant
from cityos.observability.metrics import GraphQLMetrics
from graphql import GraphQLError, GraphQLNonNull, GraphQLUnionType

log = logging.getLogger("cityos.graphql")

# Definitions of the federation directives the subgraph imports, under their imported names, so the exported SDL
# parses with standard tools (graphql-js buildSchema, graphql-core build_schema); Apollo composition checks them
# against the spec. Non-imported federation names take the `federation__` prefix (the link spec).
LINK_DEFINITIONS = '''"""Links this schema to a specification (Apollo Federation) and imports its elements by name."""
directive @link(url: String!, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA

"""What a linked specification is for."""
enum link__Purpose {
  """The specification adds security metadata that clients must respect."""
  SECURITY

  """The specification changes how the schema is executed."""
  EXECUTION
}

"""A name imported from a linked specification, e.g. "@key"."""
scalar link__Import

"""A selection of fields, as a string, e.g. "id" (Apollo Federation)."""
scalar federation__FieldSet'''
FEDERATION_DIRECTIVES = {
    "@key": '''"""The fields that identify an entity across subgraphs; other subgraphs can reference and extend it."""
directive @key(fields: federation__FieldSet!, resolvable: Boolean = true) repeatable on OBJECT | INTERFACE''',
    "@shareable": '''"""The field or type may be resolved by more than one subgraph."""
directive @shareable repeatable on OBJECT | FIELD_DEFINITION''',
    "@external": '''"""The field is owned by another subgraph."""
directive @external on OBJECT | FIELD_DEFINITION''',
}


@strawberry.type(description="Reads: the storefront's store and catalog, carts and orders, the marketplace, any "
                              "object by its global id.")
class Query(TenancyQuery, CatalogQuery, CommerceQuery, MarketplaceQuery, OutboxQuery, JobRunQuery, BillingQuery,
            CustomerQuery, B2BQuery, OrdersQuery, AuditQuery, PromotionsQuery):
    pass


@strawberry.type(description="Live updates over WebSocket (graphql-transport-ws); every event is authorized for "
                              "each subscriber.")
class Subscription(LiveSubscription, BillingSubscription, B2BSubscription):
    pass


@strawberry.type(description="Changes: tenancy and catalog administration, carts and checkout, orders, the "
                              "marketplace. Each mutation runs in its own savepoint.")
class Mutation(TenancyMutation, StoreSetupMutation, CatalogMutation, CommerceMutation, MarketplaceMutation,
               OutboxMutation, BillingMutation, FulfillmentMutation, CustomerMutation, B2BMutation, OrdersMutation,
               PromotionsMutation):
    pass


class CityosSchema(strawberry.federation.Schema):
    """The federation subgraph. `_entities` resolves every `@key(fields: "id")` type through the node registry,
    i.e. exactly like `node(id:)`: RLS for the tenant, one batched Cerbos check, the same error codes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        entity_union = self._schema.get_type("_Entity")
        assert isinstance(entity_union, GraphQLUnionType)
        self.entity_types = frozenset(member.name for member in entity_union.types)
        unregistered = sorted(self.entity_types - NODE_LOADERS.keys())
        if unregistered:
            raise RuntimeError(f"@key types without a node loader (register_node): {', '.join(unregistered)}")

    async def entities_resolver(  # type: ignore[override]  # async on purpose: one batched lookup
            self, info: Info, representations: list[FederationAny]) -> list[FederationAny]:
        """One result per representation, each on its own: a bad representation is a BAD_USER_INPUT error at
        `_entities.<index>` (other failures carry node's codes) and the others still resolve. The objects are
        looked up together (`nodes_by_global_ids`): one statement per type and one PDP call per 50 objects."""
        results: list[Any] = [self._key_of(index, representation)
                              for index, representation in enumerate(representations)]
        wanted = [index for index, result in enumerate(results) if not isinstance(result, BadUserInput)]
        found = await nodes_by_global_ids(info, [results[index] for index in wanted])
        for index, node in zip(wanted, found, strict=True):
            results[index] = node
        return results  # exceptions among them become errors at their own index

    def _key_of(self, index: int, representation: object) -> tuple[str, str] | BadUserInput:
        """(global id, type) of a representation `{__typename, id}` of an entity type."""
        if not isinstance(representation, dict):
            return BadUserInput(f"representation {index} must be an object", field="representations")
        type_name = representation.get("__typename")
        if not isinstance(type_name, str) or type_name not in self.entity_types:
            return BadUserInput(f"representation {index}: {type_name!r} is not an entity type",
                                field="representations")
        global_id = representation.get("id")
        if not isinstance(global_id, str):
            return BadUserInput(f"representation {index}: the key field id must be an ID string",
                                field="representations")
        return global_id, type_name

    def export_sdl(self) -> str:
        """The SDL as `cityos schema export` writes it: the subgraph's schema plus the definitions of the
        directives it links (`@link`, the imported federation directives) so that any GraphQL tool parses it."""
        printed = self.as_str()
        header_end = printed.index("}\n\n") + 2  # the `schema @link(...) { ... }` block comes first
        imports = sorted({str(name) for directive in self.schema_directives if isinstance(directive, Link)
                          for name in directive.import_ or () if name is not None})
        unknown = [name for name in imports if name not in FEDERATION_DIRECTIVES]
        if unknown:
            raise RuntimeError(f"add the definitions of {', '.join(unknown)} to FEDERATION_DIRECTIVES")
        definitions = "\n\n".join([*(FEDERATION_DIRECTIVES[name] for name in imports), LINK_DEFINITIONS])
        return f"{printed[:header_end]}\n{definitions}\n\n{printed[header_end:]}\n"

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        for error in errors:
            if is_internal(error):
                # With SENTRY_DSN set, sentry-sdk's logging integration sends this record (with its exception).
                log.error("unexpected error in %s", error.path, exc_info=error.original_error)


def nullable_root_fields(built: CityosSchema) -> CityosSchema:
    """Every root query and mutation field is nullable: a field that fails (NOT_FOUND, FORBIDDEN, a bad
    argument) is null with its error at its own path, and its siblings keep their data. The federation fields
    (`_service`, `_entities`) keep the types the gateway expects."""
    graphql_schema = built._schema
    for root in (graphql_schema.query_type, graphql_schema.mutation_type):
        for name, field in (root.fields if root else {}).items():
            if isinstance(field.type, GraphQLNonNull) and not name.startswith("_"):
                field.type = field.type.of_type
    return built


def audited_mutations(built: CityosSchema) -> CityosSchema:
    """Every root mutation field names itself as the action of the changes it makes (RequestDatabase.action):
    the audit trigger records it with each changed row (db/audit.py). Root mutation fields run one after the
    other, so the name set before a field runs is the one its savepoint uses. A mutation added later gets it
    without a line of its own."""
    mutation_type = built._schema.mutation_type
    for name, field in (mutation_type.fields if mutation_type else {}).items():
        resolve = field.resolve
        if resolve is None or name.startswith("_"):
            continue

        def named(root: Any, info: Any, _resolve: Any = resolve, _name: str = name, **kwargs: Any) -> Any:
            info.context.db.action = _name
            return _resolve(root, info, **kwargs)

        field.resolve = named
    return built


def build_schema() -> CityosSchema:
    return audited_mutations(nullable_root_fields(CityosSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Node, Tenant, Store, StoreDomain, SalesChannel, PublishableApiKey, Region, Product, Variant, Vendor,
               Category, Cart, Order, VendorOrder, Shipment, CommissionRule, Payout, SubscriptionPlan,
               CustomerSubscription, Company, CompanyUser, PriceList, Quote, ApprovalRequest, Invoice, Refund, Return,
               Promotion, CompanyInvitation],
        federation_version="2.7",
        extensions=[
            PersistedQueries,  # first: it supplies the document the others look at
            RequestScope,
            ErrorsInResponseOrder,  # around CompiledReads: both paths' errors in one order
            CompiledReads,  # after RequestScope: needs the identified caller
            GraphQLMetrics,
            MaskInternalErrors,
            lambda: ParserCache(maxsize=1024),
            lambda: ValidationCache(maxsize=1024),
            lambda: MaxTokensLimiter(max_token_count=5000),
            lambda: AddValidationRules([OperationLimits]),
            CostLimit,
            StorableStrings,
            ArgumentNames,
            ExposureControls,
            PreExecutionErrorCodes,
        ],
    )))


schema = build_schema()
