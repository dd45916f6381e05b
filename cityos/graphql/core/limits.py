"""What one operation may ask for, measured in time linear in the document.

Fragments are measured once each and their measure reused at every spread (a document whose fragments spread
each other twice per level has an exponential expansion but a linear description; it is measured as written).
Three measures, each with a limit:

- depth: the longest chain of nested selections; introspection (`__schema`, `__type`, `ofType`, …) has a limit of
  its own, above the standard introspection query's 15 levels;
- aliases: fields carrying an alias, counted as the expanded operation would execute them;
- cost: what the operation would make the server do. A field that returns an object costs its weight (1 unless
  `FIELD_WEIGHTS` says otherwise) plus what is selected under it; a scalar field costs nothing; a list of objects
  multiplies what is selected under it by the page it asks for (`first`/`last`, default and maximum from the
  Relay module), so `products(first: 100) { nodes { variants(first: 100) { … } } }` costs about 10,000.

Depth and aliases are validation rules (`GRAPHQL_VALIDATION_FAILED`); cost needs the variables, so it is measured
by the `CostLimit` extension after validation and refused with `COST_LIMIT_EXCEEDED` before execution. Ask for the
cost with the request extension `{"cost": true}`: the response's `extensions.cost` gives it with the budget.
A cost depends on the document, the operation and the values of the variables its page arguments read: it is
measured once per (document text, operation, those values) and remembered (`CostCache`).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql.language import IntValueNode
from strawberry.extensions import SchemaExtension

from cityos.graphql.core.relay import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
)

MAX_DEPTH = 12
MAX_INTROSPECTION_DEPTH = 20  # the standard introspection query (GraphiQL, codegen) is 15 deep
MAX_ALIASES = 50
MAX_COST = 25_000
# Fields worth more than one unit of work: they call out or aggregate.
FIELD_WEIGHTS: Mapping[str, int] = {"shippingOptions": 5, "totals": 2}
PAGE_ARGUMENTS = ("first", "last")


@dataclass(frozen=True)
class Measure:
    depth: int = 0
    aliases: int = 0
    cost: int = 0
    introspection_depth: int = 0


class _Measurer:
    """Measures selection sets, each fragment once (cycles measure as empty: another rule reports them)."""

    def __init__(self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode],
                 variables: Mapping[str, Any] | None) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables or {}
        self.done: dict[str, Measure] = {}
        self.active: set[str] = set()
        self.read: dict[str, int | None] = {}  # the variables a page argument read, by name: their page sizes

    def selection_set(self, selection_set: SelectionSetNode | None, parent: Any) -> Measure:
        depth = aliases = cost = introspection_depth = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                measure = self.field(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                scope = self.schema.get_type(condition.name.value) if condition else parent
                measure = self.selection_set(selection.selection_set, scope or parent)
            elif isinstance(selection, FragmentSpreadNode):
                measure = self.fragment(selection.name.value)
            else:  # pragma: no cover - the grammar has no other selection
                continue
            depth = max(depth, measure.depth)
            aliases += measure.aliases
            cost += measure.cost
            introspection_depth = max(introspection_depth, measure.introspection_depth)
        return Measure(depth, aliases, cost, introspection_depth)

    def fragment(self, name: str) -> Measure:
        if name in self.done:
            return self.done[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.active:
            return Measure()
        self.active.add(name)
        measure = self.selection_set(definition.selection_set,
                                     self.schema.get_type(definition.type_condition.name.value))
        self.active.discard(name)
        self.done[name] = measure
        return measure

    def field(self, node: FieldNode, parent: Any) -> Measure:
        name = node.name.value
        field_type = _field_type(self.schema, parent, name)
        named = get_named_type(field_type) if field_type is not None else None
        inner = self.selection_set(node.selection_set, named)
        alias = 1 if node.alias else 0
        if node.selection_set is None:
            return Measure(depth=1, aliases=alias, cost=0)
        if name in INTROSPECTION_ROOTS or _is_introspection_type(parent):
            # Introspection reads the schema in memory: its lists are as long as the schema, not the data.
            return Measure(depth=1, aliases=alias + inner.aliases, cost=1 + inner.cost,
                           introspection_depth=max(inner.depth, inner.introspection_depth) + 1)
        cost = FIELD_WEIGHTS.get(name, 1) + self._multiplier(node, field_type) * inner.cost
        return Measure(depth=inner.depth + 1, aliases=alias + inner.aliases, cost=cost,
                       introspection_depth=inner.introspection_depth)

    def _multiplier(self, node: FieldNode, field_type: Any) -> int:
        """How many objects the field returns at most: its page size for a connection, the page of its parent
        connection for `edges`/`nodes`; 1 otherwise."""
        size = None
        for argument in node.arguments or ():
            if argument.name.value in PAGE_ARGUMENTS:
                size = self._int(argument.value)
        if size is not None:
            return max(0, min(size, MAX_PAGE_SIZE))
        if _is_list(field_type) and node.name.value not in {"edges", "nodes"}:
            return DEFAULT_PAGE_SIZE
        return 1

    def _int(self, value: Any) -> int | None:
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, VariableNode):
            size = _page_size(self.variables, value.name.value)
            self.read[value.name.value] = size
            return DEFAULT_PAGE_SIZE if size is None else size
        return None


def _page_size(variables: Mapping[str, Any], name: str) -> int | None:
    found = variables.get(name)
    return found if isinstance(found, int) and not isinstance(found, bool) else None


@dataclass
class CostCache:
    """Costs measured per (document text, operation name): the names of the variables its page arguments read
    (the same whatever their values: the measure walks the whole document) and the cost per tuple of their
    values. Bounded: documents up to `max_length` characters, the least recently used going first past
    `max_documents`, and at most `per_document` tuples each (about 8 MB at most)."""

    max_documents: int = 500
    max_length: int = 16_000
    per_document: int = 64
    _documents: OrderedDict[tuple[str, str | None], tuple[tuple[str, ...], dict[tuple[int | None, ...], int]]] = \
        field(default_factory=OrderedDict)

    def cost(self, query: str | None, operation_name: str | None, variables: Mapping[str, Any] | None,
             measure: Any) -> int:
        """The cost, from the cache or `measure()` (a `_Measurer` and the operation's measure)."""
        if query is None or len(query) > self.max_length:
            return int(measure()[1].cost)
        key = (query, operation_name)
        known = self._documents.get(key)
        values = variables or {}
        if known is not None:
            self._documents.move_to_end(key)
            names, costs = known
            found = costs.get(tuple(_page_size(values, name) for name in names))
            if found is not None:
                return found
        measurer, measured = measure()
        names = tuple(sorted(measurer.read))
        if known is None:
            if len(self._documents) >= self.max_documents:
                self._documents.popitem(last=False)
            known = self._documents[key] = (names, {})
        if len(known[1]) < self.per_document:
            known[1][tuple(measurer.read[name] for name in names)] = measured.cost
        return int(measured.cost)


COSTS = CostCache()


INTROSPECTION_ROOTS = {"__schema": "__Schema", "__type": "__Type"}


def _field_type(schema: GraphQLSchema, parent: Any, name: str) -> Any:
    if name in INTROSPECTION_ROOTS:
        return schema.get_type(INTROSPECTION_ROOTS[name])
    fields = getattr(parent, "fields", None)
    definition = fields.get(name) if fields else None
    return definition.type if definition is not None else None


def _is_introspection_type(parent: Any) -> bool:
    return parent is not None and str(getattr(parent, "name", "")).startswith("__")


def _is_list(field_type: Any) -> bool:
    if isinstance(field_type, GraphQLNonNull):
        field_type = field_type.of_type
    return isinstance(field_type, GraphQLList)


def _root_type(schema: GraphQLSchema, operation: OperationDefinitionNode) -> GraphQLObjectType | None:
    return schema.get_root_type(operation.operation)


def measure_operation(schema: GraphQLSchema, operation: OperationDefinitionNode,
                      fragments: Mapping[str, FragmentDefinitionNode],
                      variables: Mapping[str, Any] | None = None) -> Measure:
    return _measured(schema, operation, fragments, variables)[1]


def _measured(schema: GraphQLSchema, operation: OperationDefinitionNode,
              fragments: Mapping[str, FragmentDefinitionNode],
              variables: Mapping[str, Any] | None) -> tuple[_Measurer, Measure]:
    measurer = _Measurer(schema, fragments, variables)
    return measurer, measurer.selection_set(operation.selection_set, _root_type(schema, operation))


def _fragments_of(definitions: Any) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}


class OperationLimits(ValidationRule):
    """Depth and alias limits for every operation of the document, in one linear pass."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        document = context.document
        schema = context.schema
        measurer = _Measurer(schema, _fragments_of(document.definitions), None)
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode):
                continue
            measure = measurer.selection_set(definition.selection_set, _root_type(schema, definition))
            name = definition.name.value if definition.name else "anonymous"
            if measure.depth > MAX_DEPTH:
                context.report_error(GraphQLError(
                    f"'{name}' exceeds the maximum query depth of {MAX_DEPTH} (it is {measure.depth} deep)",
                    definition))
            if measure.introspection_depth > MAX_INTROSPECTION_DEPTH:
                context.report_error(GraphQLError(
                    f"'{name}' exceeds the maximum introspection depth of {MAX_INTROSPECTION_DEPTH} (it is "
                    f"{measure.introspection_depth} deep)", definition))
            if measure.aliases > MAX_ALIASES:
                context.report_error(GraphQLError(
                    f"'{name}' uses {measure.aliases} aliases; at most {MAX_ALIASES} are allowed", definition))


class CostLimit(SchemaExtension):
    """Refuse an operation whose cost (with its variables) exceeds the budget, before it runs."""

    def __init__(self, budget: int = MAX_COST) -> None:
        self.budget = budget
        self.cost: int | None = None

    def on_validate(self) -> Iterator[None]:
        yield
        context = self.execution_context
        document = context.graphql_document
        if context.pre_execution_errors or document is None:
            return
        operation = _selected_operation(document, context.operation_name)
        if operation is None:
            return
        variables = context.variables if isinstance(context.variables, dict) else None
        self.cost = COSTS.cost(context.query, context.operation_name, variables, functools.partial(
            _measured, context.schema._schema, operation, _fragments_of(document.definitions), variables))
        if hasattr(context.context, "cost"):
            context.context.cost = self.cost  # spent from the rate limits once the caller is identified
        if self.cost > self.budget:
            raise GraphQLError(
                f"the operation would cost {self.cost}, more than the budget of {self.budget}: ask for smaller "
                "pages (first/last) or fewer nested lists",
                extensions={"code": "COST_LIMIT_EXCEEDED", "cost": self.cost, "budget": self.budget})

    def get_results(self) -> dict[str, Any]:
        wanted = (self.execution_context.operation_extensions or {}).get("cost")
        if wanted is True and self.cost is not None:
            return {"cost": {"requested": self.cost, "budget": self.budget}}
        return {}


def _selected_operation(document: Any, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((op for op in operations if op.name and op.name.value == name), None)
