"""From a validated query operation to a plan: per root field, what to read, with every fragment, alias,
variable and @include/@skip resolved. A plan depends on the document, the operation and the variables, never on
the principal (row visibility is added when the SQL is built). Anything not covered raises `NotCovered`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.utilities import get_operation_ast

from cityos.domain.catalog import queries as catalog
from cityos.domain.kernel import SortKey
from cityos.errors import ApiError
from cityos.graphql.core.compiler.shapes import Derived, Guard, Relation, Scalar, Shape, Shapes
from cityos.graphql.core.relay import (
    DEFAULT_KEY_TYPES,
    MAX_PAGE_SIZE,
    PageRequest,
    decode_keys,
    from_global_id,
    key_types,
)
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    OperationType,
    get_named_type,
)


class NotCovered(Exception):
    """The compiler does not cover this operation; the resolvers answer it."""


@dataclass
class Typename:
    name: str


@dataclass
class Obj:
    """A JSON object of one row of `shape`: (response key, what) in response order."""

    shape: Shape
    entries: list[tuple[str, Any]] = field(default_factory=list)  # Typename | Scalar | Child | Guarded | Derivation

    def columns(self) -> set[str]:
        needed = {"id", "tenant_id"}
        for _, entry in self.entries:
            if isinstance(entry, Derivation):
                needed.update(entry.derived.parent_columns)
                continue
            if isinstance(entry, Guarded):
                needed.add(entry.guard.resource_column)
                entry = entry.value
            if isinstance(entry, Scalar):
                needed.update(entry.columns)
            elif isinstance(entry, Child):
                needed.add(entry.relation.parent_column)
        return needed


@dataclass
class Derivation:
    """A field with arguments computed from rows of its own (`shapes.Derived`), with its converted arguments."""

    derived: Derived
    arguments: dict[str, Any]
    obj: Obj


@dataclass(frozen=True)
class Window:
    """A page request with its cursors decoded into the values of the list's sort keys."""

    size: int
    backwards: bool = False
    after: list[Any] | None = None
    before: list[Any] | None = None


@dataclass
class Page:
    """A connection's selection: entries are (key, kind, payload) with kind typename | totalCount | pageInfo |
    edges | nodes; pageInfo's payload a list of (key, kind, name), edges' a list of (key, kind, Obj | name)."""

    child: Shape
    window: Window
    entries: list[tuple[str, str, Any]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.window.size


@dataclass
class Child:
    """A relation of an object: a connection (Page), a list or a to-one (Obj)."""

    relation: Relation
    selection: Page | Obj


@dataclass(frozen=True)
class Listing:
    """What a root list reads, as its resolver passes it to the domain's query builder: `store_id` the store
    named by `storeId` (`store_named`) or the storefront's; for products the filter, sort and currency."""

    kind: str  # stores | vendors | products | categories
    store_id: uuid.UUID | None = None
    store_named: bool = False
    product_filter: catalog.ProductFilter | None = None
    sort: str = catalog.ProductSort.NEWEST.value
    currency: str | None = None
    roots_only: bool = False


@dataclass
class Guarded:
    """A guarded field: `value` where its permission allows, else null and FORBIDDEN at its path (`nodes`: the
    field's nodes, for the error's locations)."""

    guard: Guard
    value: Scalar | Child
    nodes: tuple[Any, ...]


@dataclass
class RootConnection:
    """`stores`, `vendors`, `products`, `categories`: a keyset page of the declared type's readable rows."""

    field_name: str
    page: Page
    listing: Listing


@dataclass
class RootSingle:
    """`store(id)`, `node(id)`, `currentStore`: one readable row by key; `product(handle)`: by the columns of
    `match` instead; null means fall back (its error)."""

    obj: Obj
    key: uuid.UUID | None
    match: tuple[tuple[str, Any], ...] = ()


@dataclass
class RootNodes:
    """`nodes(ids)`: one readable row per id, null where none exists; an existing row the caller may not read
    means fall back (the resolver's FORBIDDEN)."""

    items: list[RootSingle]


@dataclass
class Uncovered:
    """A root field the compiler does not cover: the resolvers answer it. `nodes` are its field nodes."""

    reason: str
    nodes: list[Any]


@dataclass
class OperationPlan:
    roots: list[tuple[str, Any]]  # (response key, Typename | RootConnection | RootSingle | RootNodes | Uncovered)
    nodes: dict[str, list[Any]] = field(default_factory=dict)  # response key → its field nodes
    needed: list[tuple[str, str]] | None = None  # the (type, action) query plans its statements need (plans.py)


ROOT_CONNECTIONS = {"stores": "Store", "vendors": "Vendor", "products": "Product", "categories": "Category"}
ROOT_ARGUMENTS = {"stores": frozenset(), "vendors": frozenset({"storeId"}),
                  "products": frozenset({"storeId", "filter", "sort", "currencyCode"}),
                  "categories": frozenset({"storeId", "rootsOnly"})}
# Types `node(id)` compiles: loaded by the declaration's default loader (by key, RLS + tenant) and checked for
# `read`; no Cerbos scope of their own. Others (carts, orders, … with loaders or checks of their own) fall back.
NODE_TYPES = frozenset({"Store", "StoreDomain", "SalesChannel", "PublishableApiKey", "Vendor", "Product",
                        "Category"})
CONNECTION_ARGUMENTS = frozenset({"first", "after", "last", "before"})


def listing_order(listing: Listing) -> list[SortKey]:
    """The keyset order of a root list (its cursors' values), as the domain's query builder defines it."""
    if listing.kind == "products":
        return catalog.sort_keys(listing.sort, "usd")
    if listing.kind == "categories":
        order = catalog.categories(store_id=None, roots_only=False).order
        assert order is not None
        return list(order)
    return []  # created_at, id


def window(arguments: dict[str, Any], types: Any) -> Window:
    """The page the paging arguments ask for; malformed ones are the resolver's to report."""
    try:
        request = PageRequest(arguments.get("first"), arguments.get("after"), arguments.get("last"),
                              arguments.get("before"))
        after = decode_keys(request.after, "after", types) if request.after is not None else None
        before = decode_keys(request.before, "before", types) if request.before is not None else None
    except ApiError as error:
        raise NotCovered("bad paging arguments: the resolver reports them") from error
    return Window(request.size, request.backwards, after, before)


def product_filter(given: dict[str, Any] | None) -> catalog.ProductFilter:
    """`listing_filter` of the catalog resolvers, on the coerced argument; what it would reject falls back."""
    given = given or {}
    try:
        category = given.get("categoryId")
        vendor = given.get("vendorId")
        status = given.get("status")
        converted = catalog.ProductFilter(
            category_id=from_global_id(category, "Category")[1] if category else None,
            vendor_id=from_global_id(vendor, "Vendor")[1] if vendor else None,
            price_min=given.get("priceMin"), price_max=given.get("priceMax"), search=given.get("search"),
            in_stock=given.get("inStock"), status=status.value if status is not None else None)
    except ApiError as error:
        raise NotCovered("bad filter: the resolver reports it") from error
    if (converted.price_min or 0) < 0 or (converted.price_max or 0) < 0:
        raise NotCovered("negative price bound: the resolver reports it")
    return converted


class Walker:
    def __init__(self, schema: GraphQLSchema, shapes: Shapes, document: DocumentNode, operation_name: str | None,
                 raw_variables: dict[str, Any] | None, current_store: uuid.UUID | None) -> None:
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            raise NotCovered("not a query")
        variables = get_variable_values(schema, operation.variable_definitions or (), raw_variables or {})
        if isinstance(variables, list):
            raise NotCovered("variables do not coerce")
        self.schema, self.shapes, self.operation = schema, shapes, operation
        self.variables: VariableValues = variables
        self.current_store = current_store
        self.fragments = {definition.name.value: FragmentDetails(definition) for definition in document.definitions
                          if isinstance(definition, FragmentDefinitionNode)}

    def _group(self, collected: Any) -> dict[str, list[FieldDetails]]:
        if collected.new_defer_usages:
            raise NotCovered("@defer")
        grouped: dict[str, list[FieldDetails]] = collected.grouped_field_set
        return grouped

    def _arguments(self, parent: GraphQLObjectType, details: list[FieldDetails]) -> dict[str, Any]:
        node = details[0].node
        try:
            return get_argument_values(parent.fields[node.name.value], node, self.variables,
                                       details[0].fragment_variable_values)
        except GraphQLError as error:
            raise NotCovered("arguments") from error

    def _subfields(self, graphql_type: GraphQLObjectType, details: list[FieldDetails]) -> dict[str, Any]:
        return self._group(collect_subfields(self.schema, self.fragments, self.variables, self.operation,
                                             graphql_type, details))

    def plan(self) -> OperationPlan:
        query_type = self.schema.query_type
        assert query_type is not None
        grouped = self._group(collect_fields(self.schema, self.fragments, self.variables, query_type,
                                             self.operation))
        roots: list[tuple[str, Any]] = []
        nodes = {key: [detail.node for detail in details] for key, details in grouped.items()}
        for key, details in grouped.items():
            name = details[0].node.name.value
            if name == "__typename":
                roots.append((key, Typename(query_type.name)))
                continue
            if name.startswith("__"):  # introspection (__schema, __type) is the resolvers' work
                roots.append((key, Uncovered("introspection", nodes[key])))
                continue
            try:
                roots.append((key, self._root(query_type, name, details)))
            except NotCovered as reason:
                roots.append((key, Uncovered(str(reason), nodes[key])))
        return OperationPlan(roots, nodes)

    def _root(self, query_type: GraphQLObjectType, name: str, details: list[FieldDetails]) -> Any:
        arguments = self._arguments(query_type, details)
        field_type = get_named_type(query_type.fields[name].type)
        if name in ROOT_CONNECTIONS:
            shape = self._shape(ROOT_CONNECTIONS[name])
            given = {key for key, value in arguments.items() if value is not None}
            if given - CONNECTION_ARGUMENTS - ROOT_ARGUMENTS[name]:
                raise NotCovered("arguments")
            listing = self._listing(name, arguments)
            order = listing_order(listing)
            types = key_types(order) if order else DEFAULT_KEY_TYPES
            assert isinstance(field_type, GraphQLObjectType)
            return RootConnection(name, self._page(shape, field_type, details, window(arguments, types)), listing)
        if name == "currentStore":
            if self.current_store is None:
                raise NotCovered("no current store: the resolver answers null")
            return self._single("Store", self.current_store, details)
        if name == "product":
            store = self._listing("vendors", arguments).store_id if arguments.get("storeId") is not None \
                else self.current_store
            if store is None:
                raise NotCovered("no store: the resolver reports it")
            return self._single("Product", None, details, (("store_id", store), ("handle", arguments["handle"])))
        if name in ("store", "node"):
            try:
                type_name, key = from_global_id(arguments["id"], "Store" if name == "store" else None)
            except ApiError as error:
                raise NotCovered("bad id: the resolver reports it") from error
            return self._single(type_name, key, details)
        if name == "nodes":
            if len(arguments["ids"]) > MAX_PAGE_SIZE:
                raise NotCovered("too many ids: the resolver reports it")
            try:
                named = [from_global_id(global_id) for global_id in arguments["ids"]]
            except ApiError as error:
                raise NotCovered("bad id: the resolver reports it") from error
            return RootNodes([self._single(type_name, key, details) for type_name, key in named])
        raise NotCovered(f"root field {name}")

    def _listing(self, name: str, arguments: dict[str, Any]) -> Listing:
        try:
            named = from_global_id(arguments["storeId"], "Store")[1] if arguments.get("storeId") is not None \
                else None
        except ApiError as error:
            raise NotCovered("bad storeId: the resolver reports it") from error
        if name == "vendors":
            return Listing(name, named, named is not None)
        if name == "stores":
            return Listing(name)
        store = named if named is not None else self.current_store
        if name == "categories":
            return Listing(name, store, named is not None, roots_only=bool(arguments.get("rootsOnly")))
        currency = arguments.get("currencyCode")
        return Listing(name, store, named is not None, product_filter(arguments.get("filter")),
                       arguments["sort"].value, currency.lower() if currency else None)

    def _single(self, type_name: str, key: uuid.UUID | None, details: list[FieldDetails],
                match: tuple[tuple[str, Any], ...] = ()) -> RootSingle:
        shape = self._shape(type_name)
        if type_name not in NODE_TYPES or shape.declaration is None or shape.declaration.scope is not None:
            raise NotCovered(f"{type_name} by id")
        graphql_type = self.schema.get_type(type_name)
        assert isinstance(graphql_type, GraphQLObjectType)
        return RootSingle(self._object(shape, graphql_type, details), key, match)

    def _shape(self, type_name: str) -> Shape:
        shape = self.shapes.get(type_name)
        if shape is None:
            raise NotCovered(f"type {type_name}")
        return shape

    def _object(self, shape: Shape, graphql_type: GraphQLObjectType, details: list[FieldDetails]) -> Obj:
        obj = Obj(shape)
        for key, sub in self._subfields(graphql_type, details).items():
            name = sub[0].node.name.value
            if name == "__typename":
                obj.entries.append((key, Typename(graphql_type.name)))
            elif name in shape.scalars:
                obj.entries.append((key, shape.scalars[name]))
            elif name in shape.relations:
                obj.entries.append((key, self._relation(shape.relations[name], graphql_type, sub)))
            elif name in shape.derived:
                obj.entries.append((key, self._derived(shape.derived[name], graphql_type, sub)))
            elif name in shape.guards:
                guard = shape.guards[name]
                value = guard.value if isinstance(guard.value, Scalar) else \
                    self._relation(guard.value, graphql_type, sub)
                obj.entries.append((key, Guarded(guard, value, tuple(detail.node for detail in sub))))
            else:
                raise NotCovered(f"{graphql_type.name}.{name}")
        return obj

    def _derived(self, derived: Derived, parent: GraphQLObjectType, details: list[FieldDetails]) -> Derivation:
        try:
            arguments = derived.arguments(self._arguments(parent, details))
        except ValueError as error:
            raise NotCovered("arguments the resolver reports") from error
        child = self._shape(derived.child)
        child_type = get_named_type(parent.fields[details[0].node.name.value].type)
        assert isinstance(child_type, GraphQLObjectType)
        return Derivation(derived, arguments, self._object(child, child_type, details))

    def _relation(self, relation: Relation, parent: GraphQLObjectType, details: list[FieldDetails]) -> Child:
        arguments = self._arguments(parent, details)
        child = self._shape(relation.child)
        field_type = get_named_type(parent.fields[details[0].node.name.value].type)
        assert isinstance(field_type, GraphQLObjectType)
        if relation.kind != "connection":
            if arguments:
                raise NotCovered("arguments")
            return Child(relation, self._object(child, field_type, details))
        return Child(relation, self._page(child, field_type, details, window(arguments, DEFAULT_KEY_TYPES)))

    def _page(self, child: Shape, connection: GraphQLObjectType, details: list[FieldDetails],
              window: Window) -> Page:
        page = Page(child, window)
        child_type = self.schema.get_type(child.type_name)
        assert isinstance(child_type, GraphQLObjectType)
        for key, sub in self._subfields(connection, details).items():
            name = sub[0].node.name.value
            if name == "__typename":
                page.entries.append((key, "typename", connection.name))
            elif name == "totalCount":
                page.entries.append((key, "totalCount", None))
            elif name == "nodes":
                page.entries.append((key, "nodes", self._object(child, child_type, sub)))
            elif name == "pageInfo":
                info_type = get_named_type(connection.fields[name].type)
                assert isinstance(info_type, GraphQLObjectType)
                page.entries.append((key, "pageInfo", [
                    (info_key, "typename", info_type.name) if info[0].node.name.value == "__typename"
                    else (info_key, info[0].node.name.value, None)
                    for info_key, info in self._subfields(info_type, sub).items()]))
            elif name == "edges":
                edge_type = get_named_type(connection.fields[name].type)
                assert isinstance(edge_type, GraphQLObjectType)
                edges: list[tuple[str, str, Any]] = []
                for edge_key, edge in self._subfields(edge_type, sub).items():
                    edge_name = edge[0].node.name.value
                    if edge_name == "__typename":
                        edges.append((edge_key, "typename", edge_type.name))
                    elif edge_name == "cursor":
                        edges.append((edge_key, "cursor", None))
                    else:
                        edges.append((edge_key, "node", self._object(child, child_type, edge)))
                page.entries.append((key, "edges", edges))
            else:
                raise NotCovered(f"{connection.name}.{name}")
        return page
