"""The compiler's relation registry says what each relation's resolver does, and its scalar fields are exactly
the fields `Declared.from_row` reads from a column of the same name."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

from cityos.graphql.catalog.types import Variant
from cityos.graphql.core.compiler.shapes import COMPUTED, DERIVED, GUARDED, RELATIONS, shapes_of
from cityos.graphql.core.nodes import DECLARATIONS
from cityos.graphql.core.permissions import FieldPermission
from cityos.graphql.schema import schema
from graphql import GraphQLEnumType, GraphQLObjectType

CONVERTED = {("Product", "status"), ("Product", "images"), ("Vendor", "status"), ("Tenant", "status"),
             ("Payout", "status"), ("CheckoutAttempt", "status"), ("WebhookEvent", "status"), ("Cart", "status"),
             ("Order", "status"), ("VendorOrder", "status"), ("Shipment", "status"), ("OutboxMessage", "status"),
             ("JobRun", "outcome"), ("SubscriptionPlan", "status"), ("SubscriptionPlan", "interval"),
             ("CustomerSubscription", "status"), ("Region", "country_codes"), ("Order", "fulfillment_status"),
             ("VendorOrder", "fulfillment_status"), ("CompanyUser", "role"), ("CompanyUser", "status"),
             ("Company", "payment_terms"), ("Company", "status"), ("Quote", "status"), ("ApprovalRequest", "status"),
             ("Invoice", "status"), ("Refund", "status"), ("Return", "status"), ("Promotion", "status"),
             ("Promotion", "action"), ("Promotion", "stacking"), ("CompanyInvitation", "role"),
             ("CompanyInvitation", "status"), ("ApprovalRequest", "payment_method")}

SOURCES = {
    "connection": 'page_children(info, {child}, "{column}"',
    "list": 'many_by_key({table}, "{column}")',
    "one": "by_key({table}).load(self.{parent_column}",
    "linked": 'many_by_key({link}, "{column}").load(self.pk)',
}


def resolver_source(type_name: str, field_name: str) -> str:
    graphql_type = schema._schema.get_type(type_name)
    assert isinstance(graphql_type, GraphQLObjectType)
    definition = graphql_type.fields[field_name].extensions["strawberry-definition"]
    assert definition.base_resolver is not None, (type_name, field_name)
    return " ".join(inspect.getsource(definition.base_resolver.wrapped_func).split())


def test_every_relation_matches_its_resolver() -> None:
    """…including its authorization: connections and planned to-ones are filtered by a Cerbos read plan because
    their resolvers authorize each child; lists and plain to-ones are not, because their resolvers do not."""
    shapes = shapes_of(schema._schema)
    for (type_name, field_name), relation in RELATIONS.items():
        source = resolver_source(type_name, field_name)
        authorizes = "authz" in source or "planned=True" in source or "page_children(" in source
        assert authorizes == (relation.kind == "connection" or relation.planned), (type_name, field_name)
        child = shapes.by_name[relation.child]
        if relation.kind == "connection":
            names = {f'declared("{relation.child}")', child.table.name.upper(),
                     f"{child.table.name.upper()}_TABLE"} | {name for name, value in DECLARATIONS.items()
                                                            if value is child.declaration}
            assert any(SOURCES["connection"].format(child=name, column=relation.child_column) in source
                       or f'{name.upper()}, "{relation.child_column}"' in source for name in names), source
            planned = "planned=True" in source
            # Unplanned page_children keep what CheckResources allows; the compiler uses the read plan.
            assert planned or (type_name, field_name) in {("Store", "domains"), ("Store", "salesChannels"),
                                                          ("Tenant", "stores")}
        elif relation.kind == "list":
            assert f'"{relation.child_column}").load(self.pk)' in source, source
            # the resolver sorts by (rank, name) exactly when the relation says so
            assert relation.by_rank == ("key=lambda c: (c.rank, c.name)" in source), source
        elif relation.kind == "linked":
            assert relation.link is not None and relation.by_rank
            link = f"{relation.link.table.name.upper()}_TABLE"
            assert SOURCES["linked"].format(link=link, column=relation.link.parent_column) in source, source
            assert f"link.{relation.link.child_column} for link in links" in source, source
            assert "key=lambda c: (c.rank, c.name, c.created_at, c.pk)" in source and "if row" in source, source
        else:
            # a planned to-one is null unless the caller may read it; an unplanned one is a plain by-key load
            assert relation.planned == ('.allowed(' in source), source
            assert f"self.{relation.parent_column[:-3]}_pk" in source and ".by_key(" in source, source


def test_declared_scalars_are_columns_read_as_is() -> None:
    shapes = shapes_of(schema._schema)
    for type_name, declaration in DECLARATIONS.items():
        shape = shapes.by_name[type_name]
        for field_name in shape.scalars:
            if (type_name, field_name) in COMPUTED:
                continue
            graphql_type = schema._schema.get_type(type_name)
            assert isinstance(graphql_type, GraphQLObjectType)
            definition = graphql_type.fields[field_name].extensions["strawberry-definition"]
            assert definition.base_resolver is None and not definition.extensions
            assert definition.python_name == "id" or definition.python_name in declaration.table.c
            if definition.python_name in declaration.fields:  # a converter with an exact SQL equivalent
                assert (type_name, definition.python_name) in CONVERTED, (type_name, field_name)
    # Guarded and resolved fields stay out, as do converters without an SQL equivalent: they fall back.
    vendor = shapes.by_name["Vendor"].scalars
    assert "contactEmail" not in vendor
    # A not-null jsonb column the JSON scalar passes on is a JSON document (jsontext.document), not a value.
    assert vendor["requirements"].json and shapes.by_name["Product"].scalars["metadata"].json
    assert shapes.by_name["Variant"].scalars["options"].json and not vendor["name"].json
    # Resolved fields compile only when listed in COMPUTED, with their resolver's source as the SQL's reason.
    assert shapes.by_name["Product"].scalars["thumbnail"] is COMPUTED[("Product", "thumbnail")]
    assert "return self.images[0] if self.images else None" in resolver_source("Product", "thumbnail")
    assert "amount" not in shapes.by_name["Payout"].scalars and "shippingAddress" not in shapes.by_name["Order"].scalars
    assert "scopeId" not in shapes.by_name["CommissionRule"].scalars


def test_converters_match_their_sql() -> None:
    """An enum's SQL maps each stored value to the name strawberry serializes the converted member as; images
    are the array as a JSON list."""
    shapes = shapes_of(schema._schema)
    vendor_status = schema._schema.get_type("VendorStatus")
    assert isinstance(vendor_status, GraphQLEnumType)
    assert {name: value.value for name, value in vendor_status.values.items()} == {
        "PENDING": "pending", "ACTIVE": "active", "SUSPENDED": "suspended"}
    for name, value in vendor_status.values.items():
        member = DECLARATIONS["Vendor"].fields["status"](SimpleNamespace(status=value.value))
        assert vendor_status.serialize(member) == name
    sql = str(shapes.by_name["Vendor"].scalars["status"].build(DECLARATIONS["Vendor"].table).compile(
        compile_kwargs={"literal_binds": True}))
    assert "WHEN (vendor.status = 'active') THEN 'ACTIVE'" in sql, sql
    assert "array_to_json(product.images)" in str(shapes.by_name["Product"].scalars["images"].build(
        DECLARATIONS["Product"].table))


def test_every_guarded_field_has_its_permission_and_its_resolvers_value() -> None:
    """A guarded field compiles with the action of the FieldPermission its definition carries, on the resource its
    resolver checks, and the SQL value is what the resolver returns when allowed."""
    shapes = shapes_of(schema._schema)
    returns = {("Vendor", "contactEmail"): "return self.row.contact_email",
               ("Vendor", "stripeAccountId"): "return self.row.stripe_account_id",
               ("Variant", "inventoryQuantity"): "return self.quantity_on_hand",  # Variant.of: inventory_quantity
               ("Store", "publishableKeys"): 'page_children(info, PUBLISHABLE_KEY, "store_id", self.pk'}
    assert set(returns) == set(GUARDED)
    for (type_name, field_name), (resource, column, _value) in GUARDED.items():
        guard = shapes.by_name[type_name].guards[field_name]
        graphql_type = schema._schema.get_type(type_name)
        assert isinstance(graphql_type, GraphQLObjectType)
        definition = graphql_type.fields[field_name].extensions["strawberry-definition"]
        (permission,) = definition.extensions
        assert isinstance(permission, FieldPermission)
        assert (guard.action, guard.name) == (permission.action, permission.field_name)
        assert guard.declaration is DECLARATIONS[resource] and guard.resource_column == column
        assert returns[(type_name, field_name)] in resolver_source(type_name, field_name)
    assert "product_resource=product.resource()" in " ".join(inspect.getsource(Variant.of).split())
    assert "quantity_on_hand=row.inventory_quantity" in " ".join(inspect.getsource(Variant.of).split())


def test_volume_pricing_compiles_what_its_resolvers_compute() -> None:
    """`shapes.DERIVED` says what the resolvers do: unitPrice applies the variant's tiers only (no company price
    list: were one added to the resolver, the compiled SQL would diverge), tiers are the variant's own or else the
    product's, sorted by minimum quantity, and a tier's unitAmount is null for a percentage tier."""
    shapes = shapes_of(schema._schema)
    assert set(DERIVED) == {("Variant", "tiers"), ("Variant", "unitPrice"), ("PriceTier", "unitAmount")}
    for (type_name, field_name), derived in DERIVED.items():
        assert shapes.by_name[type_name].derived[field_name] is derived
    unit_price = resolver_source("Variant", "unitPrice")
    assert "rules.validate_quantity(quantity)" in unit_price
    assert "rules.unit_price(price.amount, quantity, tiers)" in unit_price, unit_price
    assert "row.currency_code == currency_code.lower()), None)" in unit_price
    tier_rows = " ".join(inspect.getsource(Variant._tier_rows).split())
    assert "rows = own or inherited" in tier_rows and "key=lambda row: row.min_quantity" in tier_rows
    assert "optional_money(row.unit_amount, row.currency_code)" in resolver_source("Variant", "tiers")
