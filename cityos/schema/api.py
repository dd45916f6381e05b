"""The schema: every context's queries and mutations composed into one Apollo Federation v2 subgraph."""

from __future__ import annotations

import logging

import strawberry
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, ParserCache, ValidationCache
from strawberry.types import ExecutionContext

from cityos.observability.metrics import GraphQLMetrics
from cityos.resolvers.catalog import CatalogQuery
from cityos.resolvers.catalog_admin import CatalogMutation
from cityos.resolvers.commerce import CommerceMutation, CommerceQuery, OutboxMutation, OutboxQuery
from cityos.resolvers.live import LiveSubscription
from cityos.resolvers.marketplace import MarketplaceMutation, MarketplaceQuery
from cityos.resolvers.tenancy import TenancyQuery
from cityos.resolvers.tenancy_admin import TenancyMutation
from cityos.schema.catalog import Category, Product, Variant
from cityos.schema.commerce import Cart, Order, Shipment, VendorOrder
from cityos.schema.extensions import MaskInternalErrors, PreExecutionErrorCodes, RequestScope, is_internal
from cityos.schema.inputs import ArgumentNames, StorableStrings
from cityos.schema.limits import CostLimit, OperationLimits
from cityos.schema.marketplace import CommissionRule, Payout, Vendor
from cityos.schema.relay import Node
from cityos.schema.tenancy import PublishableApiKey, Region, SalesChannel, Store, StoreDomain, Tenant
from graphql import GraphQLError, GraphQLNonNull

log = logging.getLogger("cityos.graphql")


@strawberry.type
class Query(TenancyQuery, CatalogQuery, CommerceQuery, MarketplaceQuery, OutboxQuery):
    pass


@strawberry.type
class Subscription(LiveSubscription):
    pass


@strawberry.type
class Mutation(TenancyMutation, CatalogMutation, CommerceMutation, MarketplaceMutation, OutboxMutation):
    pass


class CityosSchema(strawberry.federation.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        for error in errors:
            if is_internal(error):
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


def build_schema() -> CityosSchema:
    return nullable_root_fields(CityosSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Node, Tenant, Store, StoreDomain, SalesChannel, PublishableApiKey, Region, Product, Variant, Vendor,
               Category, Cart, Order, VendorOrder, Shipment, CommissionRule, Payout],
        federation_version="2.7",
        extensions=[
            RequestScope,
            GraphQLMetrics,
            MaskInternalErrors,
            lambda: ParserCache(maxsize=1024),
            lambda: ValidationCache(maxsize=1024),
            lambda: MaxTokensLimiter(max_token_count=5000),
            lambda: AddValidationRules([OperationLimits]),
            CostLimit,
            StorableStrings,
            ArgumentNames,
            PreExecutionErrorCodes,
        ],
    ))


schema = build_schema()
