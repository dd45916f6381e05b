"""Routing, per root field: the root fields of a query operation the compiler covers run as one SQL statement each;
the others (and a compiled one whose answer would be an error: a missing or unreadable object) run through the
resolvers, as the same operation reduced to those root fields, and the two are merged in the operation's response
order. `cityos_graphql_root_fields_total{path}` counts root fields by path.

Warm reads do no planning: the plan is cached per (document, operation, variables' shape, current store), the
Cerbos query plans per (principal, kind) for `PLAN_TTL` seconds (the PDP gives no policy version to watch), and each
root field's SQL text and parameters per (plan, principal, tenant) while the query plans it was built from stay cached.
The SQL text goes to asyncpg as is, which prepares it once per connection (its statement cache)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson
from graphql.utilities import get_operation_ast
from prometheus_client import Counter
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from cityos.auth.principal import STAFF_ROLES
from cityos.errors import ApiError
from cityos.graphql.core.compiler import jsontext, templates
from cityos.graphql.core.compiler.masks import unmask
from cityos.graphql.core.compiler.plans import Fallback, needed_plans
from cityos.graphql.core.compiler.selection import (
    Guarded,
    NotCovered,
    OperationPlan,
    RootConnection,
    RootNodes,
    RootSingle,
    Typename,
    Walker,
)
from cityos.graphql.core.compiler.shapes import shapes_of
from cityos.graphql.core.compiler.sql import Builder, Caller
from cityos.graphql.core.context import RequestContext
from cityos.graphql.core.nodes import DECLARATIONS
from cityos.observability.metrics import name_span, record_operation
from cityos.observability.tracing import tracer
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

log = logging.getLogger("cityos.graphql.compiler")
ROOT_FIELDS = Counter("cityos_graphql_root_fields_total", "Root fields of query operations by execution path",
                      ["path"])
WARM_ANSWERS = Counter("cityos_graphql_warm_answers_total",
                       "Query operations answered from the compiled caches alone (no parse, validation, extensions)")


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
PLAN_TTL = 10.0  # seconds a Cerbos query plan (and the SQL built on it) is reused: how late a policy change shows
_clock = time.monotonic  # the query plans' clock (a seam for tests)


class Lru(Generic[K, V]):
    """A bounded mapping that forgets the least recently used entry."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        found = self.entries.get(key)
        if found is not None:
            self.entries.move_to_end(key)
        return found

    def put(self, key: K, value: V) -> None:
        self.entries[key] = value
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

    def clear(self) -> None:
        self.entries.clear()


@dataclass(frozen=True)
class CompiledRoot:
    sql: str
    parameters: tuple[Any, ...]
    denials: tuple[Guarded, ...] = ()  # the guarded fields, by the number of their marker
    checked: bool = False  # it may carry jsontext.FALLBACK (a JSON document Python would write otherwise)
    slots: tuple[templates.Slot, ...] | None = None  # its parameters from a request's variables (templates)


@dataclass(frozen=True)
class Statements:
    filters: tuple[Any, ...]  # the query plans (cached objects) they were built from: valid while those are
    roots: dict[str, CompiledRoot]


@dataclass
class Planned:
    """A cached plan. With `marked` (the same operation walked with markers for its variables' string leaves), it
    serves every request of its variables' shape, the leaves bound as parameters (`templates`)."""

    plan: OperationPlan
    marked: OperationPlan | None = None
    markers: tuple[templates.Leaf, ...] = ()
    sample: tuple[templates.Leaf, ...] = ()  # the leaves `plan` was walked with
    general: bool = False


@dataclass(frozen=True)
class Lookup:
    plan: OperationPlan
    key: tuple[Any, ...] | None  # the statements' cache key part (None: not cached)
    warm: tuple[Any, ...] | None = None  # the key of requests like it that `answer_warm` may answer
    planned: Planned | None = None
    leaves: tuple[templates.Leaf, ...] = ()  # the request's parameter leaves, when `planned` is general


class Caches:
    """One app's caches (by its engine: one per app, like its PDP client): plans, query plans, statements."""

    def __init__(self) -> None:
        self.plans: Lru[tuple[Any, ...], Planned] = Lru(2048)
        self.filters: Lru[tuple[Any, ...], tuple[float, Any]] = Lru(4096)
        self.statements: Lru[tuple[Any, ...], Statements] = Lru(4096)
        self.textual: Lru[tuple[Any, ...], templates.Textual] = Lru(2048)
        # (text, operation name given, shape) answered whole → its cost and operation name
        self.refreshing: dict[tuple[Any, ...], asyncio.Future[Any]] = {}  # query plans being fetched
        self.warm: Lru[tuple[Any, ...], tuple[int, str | None]] = Lru(4096)


_CACHES: weakref.WeakKeyDictionary[Any, Caches] = weakref.WeakKeyDictionary()


def caches_for(engine: Any) -> Caches | None:
    return _CACHES.get(engine)


def caches_of(context: RequestContext) -> Caches:
    found = _CACHES.get(context.services.app_engine)
    if found is None:
        found = _CACHES[context.services.app_engine] = Caches()
    return found


def plan_operation(schema: GraphQLSchema, context: RequestContext, document: Any, operation_name: str | None,
                   variables: dict[str, Any] | None, query: str | None = None) -> Lookup:
    """The operation's plan, cached by its text when it has one (a plan depends on the document, the operation,
    the variables and the current store, never on the principal): per shape of the variables when their string
    leaves can be parameters (`templates`), else per their values."""
    current = context.store.store_id if context.store is not None else None
    shape = templates.shape_of(variables, textual_of(context, schema, document, operation_name, query)) \
        if query is not None else None
    if shape is None:
        return Lookup(Walker(schema, shapes_of(schema), document, operation_name, variables, current).plan(), None)
    found = cached_plan(context, query, operation_name, shape)
    if found is not None:
        return found
    plans = caches_of(context).plans
    key = (query, operation_name, shape.key, current)
    planned = plans.get(key)
    walked = None
    if planned is None:
        walked = Walker(schema, shapes_of(schema), document, operation_name, variables, current).plan()
        planned = Planned(walked)
        if shape.leaves:
            markers = tuple(templates.markers_for(shape))
            try:
                marked = Walker(schema, shapes_of(schema), document, operation_name,
                                templates.substituted(variables, markers), current).plan()
            except NotCovered:
                marked = None
            if marked is not None and _same_roots(planned.plan, marked):
                planned = Planned(planned.plan, marked, markers, shape.leaves, general=True)
        plans.put(key, planned)
    if shape.leaves and not planned.general:  # a shape whose leaves are not parameters: per their values
        plans.put((*key, tuple(leaf.value for leaf in shape.leaves)), Planned(
            walked or Walker(schema, shapes_of(schema), document, operation_name, variables, current).plan()))
    found = cached_plan(context, query, operation_name, shape)
    assert found is not None
    return found


def cached_plan(context: RequestContext, query: str | None, operation_name: str | None,
                shape: templates.Shape) -> Lookup | None:
    """The cached plan of a request of this shape, or None (not planned yet)."""
    current = context.store.store_id if context.store is not None else None
    plans = caches_of(context).plans
    warm = (query, operation_name, shape.key)
    key = (*warm, current)
    found = plans.get(key)
    if found is None:
        return None
    if found.general:
        return Lookup(found.plan, key, warm, found, shape.leaves)
    if not shape.leaves:
        return Lookup(found.plan, key, warm)
    by_value = (*key, tuple(leaf.value for leaf in shape.leaves))
    exact = plans.get(by_value)
    return Lookup(exact.plan, by_value, warm) if exact is not None else None


def textual_of(context: RequestContext, schema: GraphQLSchema, document: Any, operation_name: str | None,
               query: str | None) -> templates.Textual:
    """Which paths of the operation's variables are String or ID (cached by its text)."""
    key = (query, operation_name)
    found = caches_of(context).textual.get(key)
    if found is None:
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            return lambda path: False
        found = templates.textual_paths(schema, operation)
        caches_of(context).textual.put(key, found)
    return found


def _same_roots(plan: OperationPlan, marked: OperationPlan) -> bool:
    return [(key, type(root)) for key, root in plan.roots] == [(key, type(root)) for key, root in marked.roots]


async def query_plans(context: RequestContext, plan: OperationPlan) -> dict[tuple[str, str], Any]:
    """The clause of every (kind, action) the plan needs (`read` of the rows it reads, each guarded field's
    action): from the cache while fresh (`PLAN_TTL`); for one more `PLAN_TTL` the cached one while the PDP is asked
    again in the background (requests do not wait for it, nor ask it together); older, from the PDP, one call for
    all requests that need it at once. A refreshed clause equal to the cached one keeps the cached object, so the
    statements built on it stay valid."""
    who = context.principal.shape
    now = _clock()
    caches = caches_of(context)
    if plan.needed is None:
        plan.needed = sorted(needed_plans(plan))
    filters = {}
    for type_name, action in plan.needed:
        declaration = DECLARATIONS[type_name]
        key = (who, context.principal.tenant_id, declaration.kind, declaration.table.name, action)
        cached = caches.filters.get(key)
        if cached is not None and now - cached[0] < PLAN_TTL:
            filters[(declaration.kind, action)] = cached[1]
            continue
        refresh = caches.refreshing.get(key)
        if refresh is None:
            refresh = asyncio.ensure_future(_refreshed(caches, key, context.authz, declaration, action, cached))
            caches.refreshing[key] = refresh
            refresh.add_done_callback(functools.partial(_refreshed_done, caches, key))
        if cached is not None and now - cached[0] < 2 * PLAN_TTL:
            filters[(declaration.kind, action)] = cached[1]
            continue
        filters[(declaration.kind, action)] = await asyncio.shield(refresh)
    return filters


async def _refreshed(caches: Caches, key: tuple[Any, ...], authz: Any, declaration: Any, action: str,
                     cached: tuple[float, Any] | None) -> Any:
    try:
        clause = await authz.sql_filter(declaration.kind, action, declaration.table, declaration.plan_attributes)
    except ApiError:
        raise  # the PDP: the resolvers fail closed the same way
    except Exception as error:  # a plan the SQL translation does not take: the resolvers decide
        raise NotCovered(f"query plan of {action} on {declaration.kind}") from error
    if cached is not None and clause.compare(cached[1]):
        clause = cached[1]  # unchanged: the statements built on it stay valid
    caches.filters.put(key, (_clock(), clause))
    return clause


def _refreshed_done(caches: Caches, key: tuple[Any, ...], done: asyncio.Future[Any]) -> None:
    caches.refreshing.pop(key, None)
    if not done.cancelled() and done.exception() is not None:
        log.debug("query plan refresh failed: %r", done.exception())  # retrieved: a waiting request raises it


def compile_root(context: RequestContext, builder: Builder, root: RootConnection | RootSingle | RootNodes
                 ) -> CompiledRoot:
    builder.denials = []
    builder.checked = False
    statement = builder.root_connection(root) if isinstance(root, RootConnection) else \
        builder.root_nodes(root) if isinstance(root, RootNodes) else builder.root_single(root)
    compiled = statement.compile(dialect=context.services.app_engine.dialect,
                                 compile_kwargs={"render_postcompile": True})
    params = compiled.params
    return CompiledRoot(compiled.string, tuple(params[name] for name in compiled.positiontup or ()),
                        tuple(builder.denials), builder.checked)


def compile_roots(context: RequestContext, filters: dict[tuple[str, str], Any], plan: OperationPlan
                  ) -> dict[str, CompiledRoot | None]:
    """Each compiled root's statement (None: the resolvers' for this principal)."""
    principal = context.principal
    builder = Builder(filters, context.db.tenant_id, Caller(principal.authenticated,
                                                            bool(principal.roles & STAFF_ROLES), principal.tenant_id))
    compiled_roots: dict[str, CompiledRoot | None] = {}
    for root_key, root in plan.roots:
        if isinstance(root, RootConnection | RootSingle | RootNodes):
            try:
                compiled_roots[root_key] = compile_root(context, builder, root)
            except Fallback as reason:
                log.debug("fallback: %r", reason)
                compiled_roots[root_key] = None
    return compiled_roots


def templated(real: dict[str, CompiledRoot | None], marked: dict[str, CompiledRoot | None], planned: Planned
              ) -> dict[str, CompiledRoot] | None:
    """The real statements with the slots their parameters take from the variables, or None when the marked
    compilation differs otherwise (the shape's leaves are then no parameters)."""
    result = {}
    for root_key, ours in real.items():
        theirs = marked.get(root_key)
        if ours is None or theirs is None:
            if ours is not theirs:
                return None
            continue
        if ours.sql != theirs.sql or ours.checked != theirs.checked or len(ours.denials) != len(theirs.denials):
            return None
        slots = templates.slots_of(ours.parameters, theirs.parameters, templates.Shape((), planned.sample),
                                   planned.markers)
        if slots is None:
            return None
        result[root_key] = dataclasses.replace(ours, slots=slots)
    return result


async def statements_for(context: RequestContext, lookup: Lookup) -> Statements:
    """The statements of the looked-up plan for this principal, from the cache while the query plans they were
    built from are the cached ones."""
    filters = await query_plans(context, lookup.plan)
    key = (lookup.key, context.principal.shape, context.db.tenant_id) if lookup.key is not None else None
    statements = caches_of(context).statements.get(key) if key is not None else None
    used = tuple(filters[kind] for kind in sorted(filters))
    if statements is not None and len(statements.filters) == len(used) and all(
            a is b for a, b in zip(statements.filters, used, strict=True)):
        return statements
    real = compile_roots(context, filters, lookup.plan)
    roots: dict[str, CompiledRoot] | None = None
    planned = lookup.planned
    if planned is not None and planned.general and planned.marked is not None:
        roots = templated(real, compile_roots(context, filters, planned.marked), planned)
        if roots is None:  # for this principal the leaves are no parameters: cache per value from now on
            planned.general = False
            raise Replan()
    if roots is None:
        roots = {root_key: compiled for root_key, compiled in real.items() if compiled is not None}
    statements = Statements(used, roots)
    if key is not None:
        caches_of(context).statements.put(key, statements)
    return statements


class Replan(Exception):
    """The cached plan turned out not to serve other values of its variables: look it up again."""


async def run_compiled(context: RequestContext, lookup: Lookup) -> tuple[dict[str, Any], list[GraphQLError]]:
    """The compiled root fields' values by response key (and `__typename`s), and the FORBIDDEN errors of guarded
    fields; a root whose answer would be an error (null: missing or unreadable) is left out, for the resolvers.
    Raises ApiError (the PDP) for them all, Replan when the plan must be looked up again."""
    statements = await statements_for(context, lookup)
    data: dict[str, Any] = {}
    errors: list[GraphQLError] = []
    for root_key, root in lookup.plan.roots:
        if isinstance(root, Typename):
            data[root_key] = root.name
            continue
        compiled = statements.roots.get(root_key)
        if compiled is None:
            continue
        parameters = compiled.parameters if compiled.slots is None else \
            templates.parameters(compiled.slots, lookup.leaves)
        text = await context.db.read_value(compiled.sql, parameters)
        if text is None or (compiled.checked and jsontext.FALLBACK in text):
            continue
        if compiled.denials:
            data[root_key] = unmask(orjson.loads(text), [root_key], compiled.denials, errors)
        else:  # the JSON text is the response's, byte for byte (jsontext): spliced in, not parsed
            data[root_key] = orjson.Fragment(text)
    return data, errors


async def answer_warm(context: RequestContext, query: str, operation_name: str | None,
                      variables: dict[str, Any] | None) -> bytes | None:
    """The response to a query whose text, operation and variables' shape the compiled path answered whole
    before (validated then, no error, no fallback), from the caches alone: no parsing, validation or extension
    runs, only what those would do for it — identify the caller, spend the operation's cost, run each root's
    statement, count and time the operation. None (nothing sent, the context keeps what it learnt: identity,
    spending) hands the request to the full path: a request never seen, a principal or store whose statements
    would need a plan, an answer with an error or a fallback."""
    started = time.perf_counter()
    caches = caches_of(context)
    textual = caches.textual.get((query, operation_name))
    shape = templates.shape_of(variables, textual) if textual is not None else None
    warm = caches.warm.get((query, operation_name, shape.key)) if shape is not None else None
    if shape is None or warm is None:
        return None
    cost, name = warm
    context.cost = cost
    await context.identify()
    await context.spend(cost)
    context.read_from_replica()
    lookup = cached_plan(context, query, operation_name, shape)
    if lookup is None:
        return None
    try:
        data, errors = await run_compiled(context, lookup)
    except (Replan, NotCovered, ApiError) as reason:
        log.debug("not warm: %r", reason)
        return None
    roots = [key for key, root in lookup.plan.roots if not isinstance(root, Typename)]
    if errors or any(key not in data for key in roots):
        return None
    await context.db.finish(commit=True)
    ROOT_FIELDS.labels("compiled").inc(len(roots))
    WARM_ANSWERS.inc()
    record_operation(name, "query", started)
    span = tracer("cityos.graphql").start_span("graphql operation", start_time=time.time_ns() - int(
        (time.perf_counter() - started) * 1e9))
    name_span(span, name, "query")
    span.end()
    return orjson.dumps({"data": data})


def reduced(document: DocumentNode, operation: OperationDefinitionNode, nodes: list[Any]) -> DocumentNode:
    """The document with its operation reduced to these root field nodes (fragments as they are)."""
    selection_set = SelectionSetNode(selections=tuple(nodes))
    narrowed = OperationDefinitionNode(operation=operation.operation, name=operation.name,
                                       variable_definitions=operation.variable_definitions,
                                       directives=operation.directives, selection_set=selection_set)
    return DocumentNode(definitions=tuple(narrowed if definition is operation else definition
                                          for definition in document.definitions))


def root_fields(document: Any, operation_name: str | None) -> int:
    """How many root fields an operation executes (distinct response keys at the top, through fragments,
    __typename aside): what the fallback counter counts for an operation the walker did not plan."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    fragments = {definition.name.value: definition for definition in document.definitions
                 if isinstance(definition, FragmentDefinitionNode)}

    names: set[str] = set()
    visited: set[str] = set()

    def collect(selections: Any) -> None:
        """Each fragment once, as execution merges fields: linear in the document (a document of fragments that
        spread each other twice per level stays cheap)."""
        for selection in selections:
            if isinstance(selection, FieldNode):
                if selection.name.value != "__typename":
                    names.add((selection.alias or selection.name).value)
            elif isinstance(selection, InlineFragmentNode):
                collect(selection.selection_set.selections)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments \
                    and selection.name.value not in visited:
                visited.add(selection.name.value)
                collect(fragments[selection.name.value].selection_set.selections)

    collect(operation.selection_set.selections)
    return len(names)


class CompiledReads(SchemaExtension):
    """After RequestScope identified the caller: answer covered root fields of query operations from compiled SQL,
    the others through the resolvers, merged in response order."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        document = execution.graphql_document
        if not (isinstance(context, RequestContext) and context.settings.CITYOS_COMPILED_READS
                and not context.is_websocket and execution.result is None and document is not None
                and execution.operation_type is OperationType.QUERY):
            yield
            return
        roots = root_fields(document, execution.operation_name)
        given = execution._provided_operation_name  # the caches' keys: the name a request gives (answer_warm's)
        try:
            lookup = plan_operation(execution.schema._schema, context, document, given, execution.variables,
                                    execution.query)
        except NotCovered as reason:
            log.debug("fallback: %r", reason)
            ROOT_FIELDS.labels("fallback").inc(roots)
            yield
            return
        errors: list[GraphQLError] = []
        try:
            try:
                data, errors = await run_compiled(context, lookup)
            except Replan:  # the first statements for this principal showed the leaves are no parameters
                lookup = plan_operation(execution.schema._schema, context, document, given, execution.variables,
                                        execution.query)
                data, errors = await run_compiled(context, lookup)
        except NotCovered as reason:
            log.warning("fallback: %r", reason)
            data = {}
        except ApiError as reason:  # the PDP: the resolvers fail closed the same way, at each field's path
            log.debug("fallback: %r", reason)
            data = {}
        plan = lookup.plan
        fields = [key for key, root in plan.roots if not isinstance(root, Typename)]
        compiled = sum(1 for key in fields if key in data)
        ROOT_FIELDS.labels("compiled").inc(compiled)
        ROOT_FIELDS.labels("fallback").inc(len(fields) - compiled)
        rest = [node for key, _ in plan.roots if key not in data for node in plan.nodes[key]]
        if not rest:
            execution.result = ExecutionResult(data=data, errors=errors or None)
            if not errors and lookup.warm is not None:
                caches_of(context).warm.put(lookup.warm, (context.cost, execution.operation_name))
            yield
            return
        if not data:
            yield
            return
        operation = get_operation_ast(document, execution.operation_name)
        assert operation is not None
        execution.graphql_document = reduced(document, operation, rest)
        try:
            yield
        finally:
            execution.graphql_document = document
        result = execution.result
        if isinstance(result, ExecutionResult) and result.data is not None:
            executed = result.data
            result.data = {key: data[key] if key in data else executed[key] for key, _ in plan.roots
                           if key in data or key in executed}
            if errors:
                result.errors = [*(result.errors or ()), *errors]  # ErrorsInResponseOrder orders them
