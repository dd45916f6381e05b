"""Authorization through the Cerbos PDP: query plans cached per principal shape, checks batched per request.

`Authorizer.allowed(resource, action)` (and `require`, `visible`) decides by the PDP's query plan for (principal,
kind, action), cached per process for a few seconds by `SharedDecisions` and evaluated here against the resource's
attributes (`evaluate_plan`): no PDP call per decision once warm. A plan the evaluator cannot read falls back to
CheckResources through the request's dataloader: every (resource, action) pair asked for in one execution tick goes
to the PDP as one request. Lists are filtered in SQL from PlanResources (`sql_filter`). The PDP unreachable or slow
→ UNAVAILABLE: nothing is ever allowed by default.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from aiodataloader import DataLoader
from cerbos.engine.v1 import engine_pb2
from cerbos.request.v1 import request_pb2
from cerbos.response.v1 import response_pb2
from cerbos_sqlalchemy import get_query
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Value
from prometheus_client import Counter, Histogram
from sqlalchemy import ColumnElement, Table, Text, and_, cast, false, select, true

from cityos.auth.plan_sql import Untyped, typed_condition
from cityos.auth.principal import Principal
from cityos.errors import Forbidden, Unavailable
from cityos.observability.tracing import tracer

log = logging.getLogger(__name__)
T = TypeVar("T")
K = TypeVar("K")

PDP_LATENCY = Histogram("cityos_pdp_call_duration_seconds", "Cerbos PDP call latency", ["call"])
DECISIONS = Counter("cityos_authz_decisions_total", "Authorization decisions", ["kind", "action", "effect"])
DENIED_FIELDS = Counter("cityos_authz_denied_fields_total", "Fields resolved to null by a field permission",
                        ["kind", "field"])
EFFECT_ALLOW = 1  # cerbos.effect.v1.Effect.EFFECT_ALLOW
# The PDP's server.requestLimits.maxResourcesPerRequest (Cerbos default 50): larger batches go out in chunks,
# concurrently, so a page of up to 50 objects is one CheckResources and 500 objects are ten.
MAX_RESOURCES_PER_REQUEST = 50


@dataclass(frozen=True)
class ResourceRef:
    """An object as Cerbos sees it: kind, id, attributes (all strings) and the tenant scope."""

    kind: str
    id: str
    attrs: tuple[tuple[str, str], ...]
    scope: str = ""

    @classmethod
    def of(cls, kind: str, id: object, scope: str | None = None, **attrs: object) -> ResourceRef:
        return cls(kind, str(id), tuple(sorted((k, "" if v is None else str(v)) for k, v in attrs.items())),
                   scope or "")

    @property
    def key(self) -> str:
        """Unique across kinds within one request's batch."""
        return f"{self.kind}:{self.id}"

    @functools.cached_property
    def attributes(self) -> dict[str, str]:
        return dict(self.attrs)

    def to_cerbos(self, default_scope: str = "") -> engine_pb2.Resource:
        return engine_pb2.Resource(kind=self.kind, id=self.key, scope=self.scope or default_scope,
                                   attr={key: Value(string_value=value) for key, value in self.attrs})


class PdpCounter:
    """Counts PDP round trips (tests assert on it)."""

    def __init__(self) -> None:
        self.check_calls = 0
        self.plan_calls = 0


async def _call_pdp(name: str, call: Callable[[], Awaitable[Any]]) -> Any:
    """One PDP call, read-only: tried again once when the channel was not connected (gRPC UNAVAILABLE, e.g. the
    first call after a PDP restart); a timeout is not retried. Any failure fails closed."""
    started = time.perf_counter()
    try:
        try:
            with tracer("cityos.authz").start_as_current_span(f"cerbos {name}"):
                return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() is not grpc.StatusCode.UNAVAILABLE:
                raise
            return await call()
    except Exception as error:  # gRPC errors, timeouts, a closed channel: fail closed
        status = getattr(error, "code", None)
        log.warning("policy decision point call %s failed: %s %s", name, type(error).__name__,
                    status() if callable(status) else "")
        raise Unavailable("the authorization service is unavailable; nothing was returned or changed") from error
    finally:
        PDP_LATENCY.labels(name).observe(time.perf_counter() - started)


class _DecisionLoader(DataLoader[tuple[ResourceRef, str], bool]):
    def __init__(self, authorizer: Authorizer) -> None:
        super().__init__()
        self.authorizer = authorizer

    async def batch_load_fn(self, keys: Sequence[tuple[ResourceRef, str]]) -> list[bool]:
        actions: dict[ResourceRef, list[str]] = defaultdict(list)
        for resource, action in keys:
            if action not in actions[resource]:
                actions[resource].append(action)
        scope = self.authorizer.principal.tenant_slug or ""
        entries = [request_pb2.CheckResourcesRequest.ResourceEntry(actions=resource_actions,
                                                                   resource=resource.to_cerbos(scope))
                   for resource, resource_actions in actions.items()]
        principal = self.authorizer.principal.to_cerbos()
        chunks = [entries[start:start + MAX_RESOURCES_PER_REQUEST]
                  for start in range(0, len(entries), MAX_RESOURCES_PER_REQUEST)]
        self.authorizer.counter.check_calls += len(chunks)
        responses: list[response_pb2.CheckResourcesResponse] = await asyncio.gather(*(
            _call_pdp("check_resources", functools.partial(self.authorizer.pdp.check_resources, principal, chunk))
            for chunk in chunks))
        effects: dict[tuple[str, str], bool] = {}
        for response in responses:
            for result in response.results:
                for action, effect in result.actions.items():
                    effects[(result.resource.id, action)] = effect == EFFECT_ALLOW
        decisions = []
        for resource, action in keys:
            allowed = effects.get((resource.key, action), False)
            DECISIONS.labels(resource.kind, action, "allow" if allowed else "deny").inc()
            decisions.append(allowed)
        return decisions


class Authorizer:
    """One request's decisions for one principal. With `decisions` (the process's `SharedDecisions`), `allowed`,
    `require` and `visible` decide by the cached query plans; without, every decision is a CheckResources."""

    def __init__(self, pdp: Any, principal: Principal, counter: PdpCounter | None = None,
                 decisions: SharedDecisions | None = None) -> None:
        self.pdp = pdp
        self.principal = principal
        self.counter = counter or PdpCounter()
        self.decisions = decisions
        self._loader = _DecisionLoader(self)
        self._plans: dict[tuple[str, str, str], ColumnElement[bool]] = {}

    def for_principal(self, principal: Principal) -> Authorizer:
        """The same PDP, counter and shared decisions for another principal (a request's principal changed)."""
        return Authorizer(self.pdp, principal, self.counter, self.decisions)

    async def allowed(self, resource: ResourceRef, action: str) -> bool:
        if self.decisions is not None:
            return await self.decisions.allowed(self, resource, action)
        return await self._loader.load((resource, action))

    async def checked(self, resource: ResourceRef, action: str) -> bool:
        """The PDP's CheckResources answer, batched with the request's other checks of this tick. With shared
        decisions the answer is kept there for their TTL only, not for the life of this authorizer (a WebSocket's
        lasts as long as the connection)."""
        try:
            return await self._loader.load((resource, action))
        finally:
            if self.decisions is not None:
                self._loader.clear((resource, action))

    async def require(self, resource: ResourceRef, action: str) -> None:
        if not await self.allowed(resource, action):
            raise Forbidden(f"not allowed to {action} this {resource.kind}", action=action)

    async def visible(self, items: Iterable[T], resource_of: Callable[[T], ResourceRef],
                      action: str = "read") -> list[T]:
        """The items the principal may `action`, in order; the checks the plans cannot decide go out in one
        batch."""
        materialised = list(items)
        resources = [resource_of(item) for item in materialised]
        if self.decisions is not None:
            decisions = await self.decisions.allowed_many(self, resources, action)
        else:
            decisions = await self._loader.load_many([(resource, action) for resource in resources])
        return [item for item, allowed in zip(materialised, decisions, strict=True) if allowed]

    async def sql_filter(self, kind: str, action: str, table: Table,
                         attributes: Mapping[str, ColumnElement[Any]]) -> ColumnElement[bool]:
        """A WHERE clause on `table` from the PDP's query plan for `action` on every `kind` (RLS still applies).

        The plan's comparisons are written on the table's typed columns (`plan_sql.typed_condition`); a plan of
        another form is applied to a projection of the table with each attribute cast to text, and the clause
        becomes `table.id IN (ids of that projection matching the plan)`. Either way the clause reads `table`
        (`compiler.plans.on_column` moves it onto another row). A request asks the PDP once per kind, action and
        table."""
        cache_key = (kind, action, table.name)
        if cache_key in self._plans:
            return self._plans[cache_key]
        clause = await self._plan(kind, action, table, attributes)
        self._plans[cache_key] = clause
        return clause

    async def _plan(self, kind: str, action: str, table: Table,
                    attributes: Mapping[str, ColumnElement[Any]]) -> ColumnElement[bool]:
        self.counter.plan_calls += 1
        resource = engine_pb2.PlanResourcesInput.Resource(kind=kind, scope=self.principal.tenant_slug or "")
        plan = await _call_pdp("plan_resources", functools.partial(
            self.pdp.plan_resources, action, self.principal.to_cerbos(), resource))
        if plan.filter.kind == engine_pb2.PlanResourcesFilter.KIND_ALWAYS_ALLOWED:
            return true()
        if plan.filter.kind != engine_pb2.PlanResourcesFilter.KIND_CONDITIONAL:
            return false()
        tenant = [table.c.tenant_id == self.principal.tenant_id] \
            if self.principal.tenant_id is not None and "tenant_id" in table.c else []  # an index path (in_tenant)
        try:  # on the table's own typed columns: the planner estimates it (plan_sql)
            return and_(*tenant, typed_condition(MessageToDict(plan.filter.condition), table, attributes))
        except Untyped:
            pass
        projection: Any = select(table.c.id.label("_key"), *(cast(column, Text).label(name)
                                                         for name, column in attributes.items()))
        if self.principal.tenant_id is not None and "tenant_id" in table.c:  # an index path (see in_tenant)
            projection = projection.where(table.c.tenant_id == self.principal.tenant_id)
        subquery = projection.subquery()
        mapped = {f"request.resource.attr.{name}": subquery.c[name] for name in attributes}
        condition = get_query(plan, subquery, mapped).whereclause
        if condition is None:
            return true()
        return table.c.id.in_(select(subquery.c._key).where(condition))


class UnsupportedPlan(Exception):
    """The plan uses an operator or a variable `evaluate_plan` does not know: ask the PDP instead."""


RESOURCE_ATTR = "request.resource.attr."


def _same_type(left: Any, right: Any) -> bool:
    return type(left) is type(right)


def _in(left: Any, right: Any) -> bool:
    if not isinstance(right, list) or not all(_same_type(left, item) for item in right):
        raise UnsupportedPlan("in")
    return left in right


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: bool(a == b), "ne": lambda a, b: bool(a != b),
    "lt": lambda a, b: bool(a < b), "le": lambda a, b: bool(a <= b),
    "gt": lambda a, b: bool(a > b), "ge": lambda a, b: bool(a >= b),
}


# CEL's string functions as the planner writes them: (receiver, argument), both strings.
_STRING_FUNCTIONS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda text, part: part in text, "startsWith": str.startswith, "endsWith": str.endswith,
}


def _boolean(operand: Mapping[str, Any], resource: ResourceRef) -> bool:
    value = evaluate_plan(operand, resource)
    if not isinstance(value, bool):  # CEL: an error, which the PDP would not read as false under `not`
        raise UnsupportedPlan("a non-boolean operand of and/or/not")
    return value


def evaluate_plan(operand: Mapping[str, Any], resource: ResourceRef) -> Any:
    """The value of a PlanResources condition (its JSON form) for one resource's attributes. The principal's side
    is already substituted by the PDP; what remains reads the resource. Anything this cannot decide exactly as
    CEL would (another operator or variable, a missing attribute, operands of different types, a non-boolean
    operand of a logical operator) raises UnsupportedPlan: the caller asks the PDP."""
    if "value" in operand:
        return operand["value"]
    if "variable" in operand:
        name = str(operand["variable"])
        if name.startswith(RESOURCE_ATTR):
            key = name[len(RESOURCE_ATTR):]
            attributes = resource.attributes
            if key not in attributes:  # CEL: no such key, an error
                raise UnsupportedPlan(name)
            return attributes[key]
        if name == "request.resource.id":
            return resource.key
        raise UnsupportedPlan(name)
    expression = operand.get("expression") or {}
    operator, operands = expression.get("operator"), expression.get("operands", [])
    if operator == "and" and operands:
        return all(_boolean(item, resource) for item in operands)
    if operator == "or" and operands:
        return any(_boolean(item, resource) for item in operands)
    if operator == "not" and len(operands) == 1:
        return not _boolean(operands[0], resource)
    if operator == "in" and len(operands) == 2:
        return _in(*(evaluate_plan(item, resource) for item in operands))
    if operator in _STRING_FUNCTIONS and len(operands) == 2:
        text, argument = (evaluate_plan(item, resource) for item in operands)
        if not isinstance(text, str) or not isinstance(argument, str):
            raise UnsupportedPlan(str(operator))  # a list's contains, another type: the PDP decides
        return _STRING_FUNCTIONS[operator](text, argument)
    if operator in _COMPARISONS and len(operands) == 2:
        left, right = (evaluate_plan(item, resource) for item in operands)
        if not _same_type(left, right) or not isinstance(left, (str, bool, int, float)) or \
                (isinstance(left, bool) and operator not in ("eq", "ne")):
            raise UnsupportedPlan(str(operator))  # CEL's typing of mixed or structured operands: the PDP decides
        return _COMPARISONS[operator](left, right)
    raise UnsupportedPlan(str(operator))


_Plan = tuple[Any, dict[str, Any]]  # the filter's kind and its condition in JSON form


class SharedDecisions:
    """Decisions shared across requests and connections for `ttl` seconds. A resource is authorized by the PDP's
    query plan for (principal, kind, scope, action), cached per principal shape, and evaluated here against the
    resource's attributes: no PDP call per decision once warm. A plan this evaluator cannot read falls back to the
    request's CheckResources loader (batched per request), its answer shared per (principal, resource, action)
    the same way (concurrent asks wait for the first answer). A policy change reaches decisions within `ttl`
    seconds. A PDP error is raised to every waiting caller (UNAVAILABLE) and nothing of it is cached."""

    def __init__(self, ttl: float = 5.0, max_entries: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock  # the time seam (tests move it past `ttl`)
        self._entries: dict[tuple[Any, ResourceRef, str], tuple[float, asyncio.Future[bool]]] = {}
        self._plans: dict[tuple[Any, str, str, str], tuple[float, asyncio.Future[_Plan]]] = {}
        self.plan_calls = 0
        self.planned = 0

    async def allowed(self, authorizer: Authorizer, resource: ResourceRef, action: str) -> bool:
        decision = self._decided(await self._plan(authorizer, resource, action), resource, action)
        if decision is None:
            return await self._checked(authorizer, resource, action)
        return decision

    async def allowed_many(self, authorizer: Authorizer, resources: Sequence[ResourceRef],
                           action: str) -> list[bool]:
        """The decisions on `resources`, in order: one plan per (kind, scope), the undecided ones checked in one
        batch."""
        plans: dict[tuple[str, str], _Plan] = {}
        for resource in resources:
            where = (resource.kind, resource.scope)
            if where not in plans:
                plans[where] = await self._plan(authorizer, resource, action)
        decisions: list[bool | None] = [self._decided(plans[(resource.kind, resource.scope)], resource, action)
                                        for resource in resources]
        undecided = [index for index, decision in enumerate(decisions) if decision is None]
        if undecided:
            checked = await asyncio.gather(*(self._checked(authorizer, resources[index], action)
                                             for index in undecided))
            for index, decision in zip(undecided, checked, strict=True):
                decisions[index] = decision
        return [decision is True for decision in decisions]

    def _decided(self, plan: _Plan, resource: ResourceRef, action: str) -> bool | None:
        """The plan's decision on `resource` (counted), or None when the evaluator cannot read the plan."""
        kind, condition = plan
        if kind == engine_pb2.PlanResourcesFilter.KIND_CONDITIONAL:
            try:
                decision = evaluate_plan(condition, resource) is True
            except UnsupportedPlan:
                return None
        else:
            decision = kind == engine_pb2.PlanResourcesFilter.KIND_ALWAYS_ALLOWED
        self.planned += 1
        # Counted whichever way it was decided (always allowed, always denied, or by the plan's condition).
        DECISIONS.labels(resource.kind, action, "allow" if decision else "deny").inc()
        return decision

    async def _plan(self, authorizer: Authorizer, resource: ResourceRef, action: str) -> _Plan:
        """(filter kind, condition in its JSON form, converted once per plan) of the cached plan."""
        scope = resource.scope or authorizer.principal.tenant_slug or ""
        key = (authorizer.principal.shape, resource.kind, scope, action)
        now = self.clock()
        entry = self._plans.get(key)
        if entry is not None and now - entry[0] < self.ttl:
            return await _shared(entry[1])
        if len(self._plans) >= self.max_entries:
            self._plans = self._pruned(self._plans, now)
        future: asyncio.Future[_Plan] = asyncio.get_running_loop().create_future()
        self._plans[key] = (now, future)
        try:
            self.plan_calls += 1
            authorizer.counter.plan_calls += 1
            plan = await _call_pdp("plan_resources", functools.partial(
                authorizer.pdp.plan_resources, action, authorizer.principal.to_cerbos(),
                engine_pb2.PlanResourcesInput.Resource(kind=resource.kind, scope=scope)))
        except BaseException as error:
            _failed(self._plans, key, future, error)
            raise
        planned = (plan.filter.kind, MessageToDict(plan.filter.condition))
        future.set_result(planned)
        return planned

    def _pruned(self, cache: dict[K, tuple[float, Any]], now: float) -> dict[K, tuple[float, Any]]:
        """The fresh entries; none when even those fill the cache (pruning again at every insert would cost
        O(n) each). Waiters keep their futures."""
        fresh = {key: entry for key, entry in cache.items() if now - entry[0] < self.ttl}
        return fresh if len(fresh) < self.max_entries // 2 else {}

    async def _checked(self, authorizer: Authorizer, resource: ResourceRef, action: str) -> bool:
        key = (authorizer.principal.shape, resource, action)
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.ttl:
            decision = await _shared(entry[1])
            DECISIONS.labels(resource.kind, action, "allow" if decision else "deny").inc()
            return decision
        if len(self._entries) >= self.max_entries:
            self._entries = self._pruned(self._entries, now)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._entries[key] = (now, future)
        try:
            decision = await authorizer.checked(resource, action)  # counted by the loader
        except BaseException as error:
            _failed(self._entries, key, future, error)
            raise
        future.set_result(decision)
        return decision


async def _shared(future: asyncio.Future[T]) -> T:
    """A cached future's result: at once when done, else awaited without letting a cancelled waiter cancel it."""
    if future.done():
        return future.result()
    return await asyncio.shield(future)


def _failed(cache: dict[Any, Any], key: Any, future: asyncio.Future[Any], error: BaseException) -> None:
    """Nothing of a failed call stays cached; its waiters re-raise the error."""
    cache.pop(key, None)
    future.set_exception(error)
    future.exception()  # retrieved: no "never retrieved" warning when nobody waits
