"""What the compiler knows of each GraphQL object type: its table, its scalar fields as SQL expressions, its
relations. Declared types (`cityos.graphql.core.nodes.Declaration`) derive their scalars from the declaration and
the strawberry definition exactly as `Declared.from_row` reads them: a field without a resolver, guard or converter
(`Declaration.fields`) is the column of the same name, `id` the global id. Anything else is not covered, and an
operation that selects it falls back to the resolvers.

Relations are listed here by (type, field) and must say what the resolver does (tests/graphql/test_compiler_shapes
checks each against its resolver's source)."""

from __future__ import annotations

import enum
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Literal

from sqlalchemy import ARRAY, Boolean, CheckConstraint, ColumnElement, DateTime, Table, Text, case, cast, func, literal
from sqlalchemy.dialects.postgresql import JSONB

from cityos.domain.base import table_of
from cityos.domain.catalog.models import ProductCategory as ProductCategoryModel
from cityos.domain.catalog.models import Variant as VariantModel
from cityos.domain.catalog.models import VariantPrice as VariantPriceModel
from cityos.graphql.core.compiler import pricing
from cityos.graphql.core.nodes import DECLARATIONS, Declaration
from cityos.graphql.core.permissions import FieldPermission
from graphql import (
    GraphQLEnumType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)

Source = Any  # a FROM item with `.c` (a table alias or a derived table)
Build = Callable[[Source], ColumnElement[Any]]
DEFINITION_BACKREF = "strawberry-definition"
SIMPLE_SCALARS = frozenset({"String", "Int", "Boolean"})


def concat(*parts: Any) -> ColumnElement[Any]:
    """`a || b || …` in SQL: NULL if any part is NULL (unlike concat())."""
    result: Any = parts[0] if isinstance(parts[0], ColumnElement) else literal(parts[0], Text)
    for part in parts[1:]:
        result = result.op("||")(part if isinstance(part, ColumnElement) else literal(part, Text))
    return cast(result, Text)


def base64url(text: ColumnElement[Any]) -> ColumnElement[Any]:
    """Python's `base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")` in SQL."""
    encoded = func.encode(func.convert_to(text, literal("UTF8")), literal("base64"))
    return func.rtrim(func.translate(encoded, literal("+/\n"), literal("-_")), literal("="))


def isoformat(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """`datetime.isoformat()` of a timestamptz as asyncpg returns it (UTC): microseconds only when not zero."""
    utc = func.timezone(literal("UTC"), column)
    micros = func.to_char(utc, literal("US"))
    fraction = case((micros == "000000", literal("", Text)), else_=concat(".", micros))
    return concat(func.to_char(utc, literal('YYYY-MM-DD"T"HH24:MI:SS')), fraction, "+00:00")


def global_id(type_name: str, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """`to_global_id(type_name, id)` in SQL."""
    return base64url(concat(f"{type_name}:", cast(column, Text)))


def cursor(created_at: ColumnElement[Any], key: ColumnElement[Any]) -> ColumnElement[Any]:
    """`encode_keys((created_at, id))` in SQL: base64url of `[{"t":"<iso>"},{"u":"<uuid>"}]` (orjson's bytes)."""
    return base64url(concat('[{"t":"', isoformat(created_at), '"},{"u":"', cast(key, Text), '"}]'))


@dataclass(frozen=True)
class Scalar:
    """A field read from its row's `columns`; `build` is its value (JSON-encoded by `jsontext.scalar`), or, `json`,
    a jsonb value written by `jsontext.document` (which may mark the root for the resolvers)."""

    columns: tuple[str, ...]
    build: Build
    json: bool = False


@dataclass(frozen=True)
class Link:
    """A many-to-many link table: its rows join the parent (`parent_column`) to the child (`child_column`)."""

    table: Table
    parent_column: str
    child_column: str


@dataclass(frozen=True)
class Relation:
    """connection: a Relay connection of declared children filtered by the child's `read` plan (page_children
    with planned=True); list: every child row, ordered by (created_at, id) or, `by_rank`, by (rank, name) as
    Python sorts them, not authorized apart from RLS (a part of its parent); one: the row whose `child_column`
    equals the parent's `parent_column` (a by-key load), null unless the child's `read` plan allows it when
    `planned`; linked: the rows a link table joins to the parent (by-key loads of the linked ids)."""

    kind: Literal["connection", "list", "one", "linked"]
    child: str
    child_column: str
    parent_column: str = "id"
    planned: bool = False
    by_rank: bool = False
    link: Link | None = None


@dataclass(frozen=True)
class Guard:
    """A field guarded by a field permission (`guarded_field`: Cerbos `action` = read:field:<name> on the
    resource `declaration` whose id is the row's `resource_column`) whose value is `value`: in SQL, the value
    where the action's query plan allows it, else null with FORBIDDEN "<name> requires <action>"."""

    action: str
    name: str
    declaration: Declaration
    resource_column: str
    value: Scalar | Relation


@dataclass(frozen=True)
class Derived:
    """A field with arguments whose value is built from rows selected for its parent's row (`parent_columns`):
    `rows(parent, arguments)` is a SELECT of the child shape's columns correlated to the parent, `order(rows)` their
    order; kind one: the first row's object, or null without one; list: an array of every row's. `arguments`
    converts the field's coerced arguments as the resolver does, raising ValueError where the resolver reports an
    error (the field then falls back)."""

    kind: Literal["one", "list"]
    child: str
    parent_columns: tuple[str, ...]
    rows: Callable[[Source, dict[str, Any]], Any]
    order: Callable[[Source], list[Any]]
    arguments: Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(eq=False)  # hashed by identity: one per type and schema
class Shape:
    type_name: str
    table: Table
    declaration: Declaration | None
    scalars: dict[str, Scalar] = field(default_factory=dict)
    relations: dict[str, Relation] = field(default_factory=dict)
    guards: dict[str, Guard] = field(default_factory=dict)
    derived: dict[str, Derived] = field(default_factory=dict)


RELATIONS: dict[tuple[str, str], Relation] = {
    ("Store", "vendors"): Relation("connection", "Vendor", "store_id"),
    # page_children without `planned` keeps the children CheckResources allows; the query plan for `read` on the
    # same attributes selects the same rows (the differential tests hold both paths to it).
    ("Store", "domains"): Relation("connection", "StoreDomain", "store_id"),
    ("Store", "salesChannels"): Relation("connection", "SalesChannel", "store_id"),
    ("Vendor", "products"): Relation("connection", "Product", "vendor_id"),
    ("Product", "variants"): Relation("list", "Variant", "product_id"),
    ("Product", "vendor"): Relation("one", "Vendor", "id", "vendor_id"),
    ("Variant", "prices"): Relation("list", "Money", "variant_id"),
    ("Store", "tenant"): Relation("one", "Tenant", "id", "tenant_id", planned=True),
    ("Tenant", "stores"): Relation("connection", "Store", "tenant_id"),
    ("Category", "parent"): Relation("one", "Category", "id", "parent_id"),
    ("Category", "children"): Relation("list", "Category", "parent_id", by_rank=True),
    ("Product", "categories"): Relation("linked", "Category", "id", by_rank=True, link=Link(
        table_of(ProductCategoryModel), "product_id", "category_id")),
}
VARIANT_TABLE = table_of(VariantModel)
PRICE_TABLE = table_of(VariantPriceModel)
# Guarded fields (their permission is read from the field's FieldPermission): (type, field) → the resource's type
# and the row's column naming it ("id": the object itself), and what the resolver returns when allowed.
GUARDED: dict[tuple[str, str], tuple[str, str, Scalar | Relation]] = {
    ("Vendor", "contactEmail"): ("Vendor", "id", Scalar(("contact_email",), lambda source: source.c.contact_email)),
    ("Vendor", "stripeAccountId"): ("Vendor", "id", Scalar(("stripe_account_id",),
                                                           lambda source: source.c.stripe_account_id)),
    ("Variant", "inventoryQuantity"): ("Product", "product_id", Scalar(
        ("inventory_quantity",), lambda source: source.c.inventory_quantity)),
    ("Store", "publishableKeys"): ("Store", "id", Relation("connection", "PublishableApiKey", "store_id")),
}
# Fields with arguments computed from rows of their own (volume pricing): (type, field) → how.
DERIVED: dict[tuple[str, str], Derived] = {
    ("Variant", "tiers"): Derived("list", "PriceTier", ("id", "product_id"), pricing.tier_rows, pricing.tier_order,
                                  pricing.tier_arguments),
    ("Variant", "unitPrice"): Derived("one", "Money", ("id", "product_id"), pricing.unit_price_rows,
                                      pricing.price_order, pricing.unit_price_arguments),
    ("PriceTier", "unitAmount"): Derived("one", "Money", ("unit_amount", "currency_code"), pricing.unit_amount_rows,
                                         lambda rows: [], lambda given: given),
}
# Fields with a resolver of their own whose SQL equivalent is exact: (type, field) → how.
COMPUTED: dict[tuple[str, str], Scalar] = {
    # `self.images[0] if self.images else None`: arrays in SQL count from 1, and [1] of an empty one is NULL.
    ("Product", "thumbnail"): Scalar(("images",), lambda source: source.c.images[1]),
}


def _column(name: str) -> Scalar:
    return Scalar((name,), lambda source: source.c[name])


def _timestamp(name: str) -> Scalar:
    return Scalar((name,), lambda source: isoformat(source.c[name]))


def _json(name: str) -> Scalar:
    """A not-null jsonb column the resolver returns as `json.loads` decodes it (the JSON scalar passes it on)."""
    return Scalar((name,), lambda source: source.c[name], json=True)


def _id(type_name: str) -> Scalar:
    return Scalar(("id",), lambda source: global_id(type_name, source.c.id))


def _probe(convert: Callable[[Any], Any], name: str, value: Any) -> Any:
    """What a `Declaration.fields` converter makes of a row whose only attribute is `name`; an exception means it
    reads something else (then the field is not covered)."""
    try:
        return convert(SimpleNamespace(**{name: value}))
    except Exception:  # any failure: not a converter of that one column
        return _FAILED


_FAILED = object()


def checked_values(table: Table, name: str) -> set[str] | None:
    """The values a CHECK constraint `<name> in ('a', 'b', …)` of the table allows the column, if it has one."""
    for constraint in table.constraints:
        if isinstance(constraint, CheckConstraint):
            match = re.fullmatch(rf"\s*{re.escape(name)}\s+in\s*\(((?:\s*'[^']*'\s*,?)+)\)\s*",
                                 str(constraint.sqltext))
            if match:
                return set(re.findall(r"'([^']*)'", match.group(1)))
    return None


def converted_scalar(name: str, graphql_field: Any, convert: Callable[[Any], Any], table: Table) -> Scalar | None:
    """A field computed by a converter with an exact SQL equivalent, checked by running the converter on every
    value the SQL covers: an enum of a not-null column whose CHECK constraint allows only the enum's values
    (`Status(row.status)`, serialized as the GraphQL enum value's name) and a not-null text array read as a
    list (`list(row.images)`)."""
    if name not in table.c or table.c[name].nullable:
        return None
    field_type = graphql_field.type
    if not isinstance(field_type, GraphQLNonNull):
        return None
    inner = field_type.of_type
    if isinstance(inner, GraphQLEnumType):
        wrapped = getattr(inner, "wrapped_cls", None)  # strawberry's: serialized by the member's value
        if wrapped is None:
            return None
        allowed = checked_values(table, name)
        if allowed is None or not allowed <= {value.value for value in inner.values.values()}:
            return None  # the column may hold a value the converter rejects: the resolvers report that
        whens = []
        for value_name, value in inner.values.items():
            member = _probe(convert, name, value.value)
            if not isinstance(member, wrapped) or not isinstance(member, enum.Enum) or member.value != value.value:
                return None
            whens.append((value.value, value_name))
        if not whens:
            return None
        return Scalar((name,), lambda source: case(
            *((source.c[name] == stored, literal(value_name, Text)) for stored, value_name in whens)))
    if isinstance(inner, GraphQLList) and isinstance(table.c[name].type, ARRAY) \
            and isinstance(inner.of_type, GraphQLNonNull) and get_named_type(inner).name == "String":
        sample = ("a", "b")
        converted = _probe(convert, name, sample)
        if type(converted) is not list or converted != list(sample) or _probe(convert, name, ()) != []:
            return None
        return Scalar((name,), lambda source: func.array_to_json(source.c[name]))
    return None


def derived_scalars(graphql_type: GraphQLObjectType, declaration: Declaration) -> dict[str, Scalar]:
    """The fields of a declared type that are plainly columns, as `_readers_of` reads them."""
    scalars: dict[str, Scalar] = {}
    table = declaration.table
    for name, graphql_field in graphql_type.fields.items():
        definition = graphql_field.extensions.get(DEFINITION_BACKREF)
        if definition is None or definition.base_resolver is not None or definition.extensions:
            continue
        python_name = definition.python_name
        if python_name in declaration.fields:
            converted = converted_scalar(python_name, graphql_field, declaration.fields[python_name], table)
            if converted is not None:
                scalars[name] = converted
            continue
        field_type = graphql_field.type.of_type if isinstance(graphql_field.type, GraphQLNonNull) \
            else graphql_field.type
        if isinstance(field_type, GraphQLList):
            continue
        named = get_named_type(field_type).name  # type: ignore[attr-defined]  # never None for a field
        if python_name == "id" and named == "ID":
            scalars[name] = _id(declaration.type_name)
        elif python_name in table.c and named in SIMPLE_SCALARS:
            scalars[name] = _column(python_name)
        elif python_name in table.c and named == "JSON" and isinstance(table.c[python_name].type, JSONB) \
                and not table.c[python_name].nullable:
            scalars[name] = _json(python_name)
        elif python_name in table.c and named == "DateTime" and isinstance(table.c[python_name].type, DateTime) \
                and table.c[python_name].type.timezone:
            scalars[name] = _timestamp(python_name)
    return scalars


def _manual_shapes() -> dict[str, Shape]:
    """Types without a declaration of their own, read as parts of a declared parent."""
    variant = Shape("Variant", VARIANT_TABLE, None, {
        "id": _id("Variant"), "sku": _column("sku"), "title": _column("title"),
        "weightGrams": _column("weight_grams"), "options": _json("options"),
        "inStock": Scalar(("inventory_quantity",),
                          lambda source: cast(source.c.inventory_quantity > 0, Boolean)),
    })
    money = Shape("Money", PRICE_TABLE, None, {"amount": _column("amount"), "currencyCode": _column("currency_code")})
    tier = Shape("PriceTier", pricing.TIER_TABLE, None, {
        "minQuantity": _column("min_quantity"), "currencyCode": _column("currency_code"),
        # strawberry's Decimal is str(Decimal): asyncpg gives numeric(5,2) its scale, as numeric's text does
        "percentOff": Scalar(("percent_off",), lambda source: cast(source.c.percent_off, Text)),
    })
    return {"Variant": variant, "Money": money, "PriceTier": tier}


def guard_of(schema: GraphQLSchema, type_name: str, field_name: str, resource: str, column: str,
             value: Scalar | Relation) -> Guard | None:
    """The guard of a field, from the field permission its definition carries (None: it has no single one)."""
    graphql_type = schema.get_type(type_name)
    if not isinstance(graphql_type, GraphQLObjectType) or field_name not in graphql_type.fields \
            or resource not in DECLARATIONS:
        return None
    definition = graphql_type.fields[field_name].extensions.get(DEFINITION_BACKREF)
    permissions = [extension for extension in getattr(definition, "extensions", None) or ()
                   if isinstance(extension, FieldPermission)]
    if len(permissions) != 1 or len(definition.extensions) != 1:
        return None
    return Guard(permissions[0].action, permissions[0].field_name, DECLARATIONS[resource], column, value)


class Shapes:
    """Every shape of one GraphQL schema, built on first use."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.by_name: dict[str, Shape] = {}
        for type_name, declaration in DECLARATIONS.items():
            graphql_type = schema.get_type(type_name)
            if isinstance(graphql_type, GraphQLObjectType):
                self.by_name[type_name] = Shape(type_name, declaration.table, declaration,
                                                derived_scalars(graphql_type, declaration))
        for (type_name, field_name), computed in COMPUTED.items():
            if type_name in self.by_name:
                self.by_name[type_name].scalars[field_name] = computed
        self.by_name.update(_manual_shapes())
        for (type_name, field_name), relation in RELATIONS.items():
            if type_name in self.by_name and relation.child in self.by_name:
                self.by_name[type_name].relations[field_name] = relation
        for (type_name, field_name), derived in DERIVED.items():
            if type_name in self.by_name and derived.child in self.by_name:
                self.by_name[type_name].derived[field_name] = derived
        for (type_name, field_name), (resource, column, value) in GUARDED.items():
            guard = guard_of(schema, type_name, field_name, resource, column, value)
            if type_name in self.by_name and guard is not None:
                self.by_name[type_name].guards[field_name] = guard

    def get(self, type_name: str) -> Shape | None:
        return self.by_name.get(type_name)


_SHAPES: dict[int, Shapes] = {}
_LOCK = threading.Lock()


def shapes_of(schema: GraphQLSchema) -> Shapes:
    with _LOCK:
        found = _SHAPES.get(id(schema))
        if found is None:
            found = _SHAPES[id(schema)] = Shapes(schema)
        return found


