"""Shared subscription streams: one execution per event for every subscriber that would get the same bytes.

Subscribers of one process that send the same subscription document with the same variables and hold the same
principal (the whole Cerbos principal: id, roles, every attribute the policies may read, the tenant scope) would be
authorized identically and receive identical results. They join one `LiveGroup`: the group runs the subscription
once (the resolvers, the per-event authorization, graphql-core's execution of the selection set), encodes each
result once, and hands the same text to every member's socket (only the operation id in front of it differs, and
members with the same id share the whole frame).

What stays per subscriber: the rate-limit spend of subscribing, the token's expiry (a member whose token expires
gets UNAUTHENTICATED and leaves; the group goes on), a bounded queue of frames (a member that falls behind is cut
off with 4413), and completing or disconnecting. When the group's own broker queue overflows, every member is cut
off with the same code. The last member to leave ends the group and its broker subscription.

A `next` is encoded into a WebSocket frame once per operation id and written to each member's socket in the
broadcast loop itself while the socket takes it (cityos.http.frames); a member whose socket is paused, or that has
frames waiting, gets it queued and sent by its own task through ASGI, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import orjson
from graphql.utilities import get_operation_ast
from prometheus_client import Counter, Gauge
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError

from cityos.errors import ApiError, Unauthenticated
from cityos.graphql.core.context import RequestContext
from cityos.http.frames import FrameSink, text_frame
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, located_error, parse

if TYPE_CHECKING:
    from strawberry.schema.schema import StreamResult

    from cityos.http.graphql import GraphQLEndpoint

log = logging.getLogger(__name__)
LIVE_EXECUTIONS = Counter("cityos_live_executions_total", "Subscription results executed and encoded (once per "
                          "event per group of subscribers that share document, variables and principal)")
LIVE_DELIVERIES = Counter("cityos_live_deliveries_total", "Subscription results handed to subscribers")
LIVE_GROUPS = Gauge("cityos_live_groups", "Shared subscription groups running in this process")
LIVE_FRAMES_WRITTEN = Counter("cityos_live_frames_written_total", "Subscription results written to a subscriber's "
                              "socket as an encoded frame in the broadcast (the others are queued for its task)")
SUBSCRIBER_TOO_SLOW = 4413  # as cityos.graphql.orders.subscriptions: the member fell too far behind
EXPIRED_MESSAGE = "the token has expired: reconnect with a fresh one"


@functools.lru_cache(maxsize=512)
def _subscription_field(query: str, operation_name: str | None) -> tuple[str, FieldNode] | None:
    """(response key, field node) of the root field of a subscription operation; None for anything else (queries
    and mutations over the socket run as before, and so do documents that do not parse: strawberry reports
    them)."""
    try:
        operation = get_operation_ast(parse(query), operation_name)
    except GraphQLError:
        return None
    if not isinstance(operation, OperationDefinitionNode) or operation.operation is not OperationType.SUBSCRIPTION:
        return None
    fields = [selection for selection in operation.selection_set.selections if isinstance(selection, FieldNode)]
    if len(fields) != 1:
        return None
    node = fields[0]
    return (node.alias or node.name).value, node


def principal_shape(context: RequestContext) -> tuple[Any, ...]:
    """Everything about the caller that an authorization decision can depend on."""
    return context.principal.shape


class _Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(eq=False)
class _GroupSocket:
    """What the group's resolvers see as their WebSocket: closing it closes every member's."""

    group: LiveGroup

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.group.closed_with = (code, reason or "")


@dataclass(eq=False)
class Member:
    """One subscriber in a group: the frames waiting for its socket (at most `max_queue`), and why it must stop."""

    operation: Operation[RequestContext, None]
    max_queue: int
    sink: FrameSink | None = None  # the socket's frames, written in the broadcast (cityos.http.frames)
    frames: deque[tuple[str, Any]] = field(default_factory=deque)
    overflowed: bool = False
    expired: bool = False
    sending: bool = False  # its task is sending a frame it took from `frames`
    _waiter: asyncio.Future[None] | None = None

    def deliver(self, kind: str, value: Any, frame: bytes | None = None) -> None:
        """Queue a frame for the member's task; a `next` whose encoded `frame` can go out now, in order (nothing
        queued or being sent), is written to the socket here instead, without waking the task."""
        if self.overflowed:
            return
        if frame is not None and self.sink is not None and not self.frames and not self.sending \
                and not self.expired and self.sink.write(frame):
            LIVE_FRAMES_WRITTEN.inc()
            return
        if len(self.frames) >= self.max_queue:
            self.overflowed = True  # it sees this before anything else queued
        else:
            self.frames.append((kind, value))
        self._wake()

    def expire(self) -> None:
        self.expired = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        """Until there is a frame or a reason to stop (no task, no timeout object per event)."""
        while not self.frames and not self.overflowed and not self.expired:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None


@dataclass(eq=False)
class LiveGroup:
    hub: LiveHub
    key: Hashable
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    response_key: str
    field_node: FieldNode
    members: set[Member] = field(default_factory=set)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cost: int = 1
    executions: int = 0  # results produced (tests: one per event, whatever the number of members)
    closed_with: tuple[int, str] | None = None
    done: bool = False
    task: asyncio.Task[None] | None = None

    def start(self, context: RequestContext, schema: Any) -> None:
        leader = dataclasses.replace(context, response=_GroupSocket(self),
                                     principal=dataclasses.replace(context.principal, expires_at=None))
        leader._identified = True  # the same caller, already identified (dataclasses.replace resets it)
        self.task = asyncio.create_task(self._run(leader, schema), name="live-group")

    async def _run(self, leader: RequestContext, schema: Any) -> None:
        try:
            source: StreamResult = await schema.stream(self.query, variable_values=self.variables,
                                                       context_value=leader, operation_name=self.operation_name)
            self.cost = leader.cost
            self.started.set()
            first = True
            try:
                async for result in source:
                    if first and isinstance(result, PreExecutionError):
                        self._broadcast("error", orjson.dumps([error.formatted for error in result.errors or []]))
                        return
                    first = False
                    if not isinstance(result, ExecutionResult):
                        self._broadcast("error", orjson.dumps([{
                            "message": "Incremental delivery is not supported over graphql-transport-ws"}]))
                        return
                    self.executions += 1
                    LIVE_EXECUTIONS.inc()
                    LIVE_DELIVERIES.inc(len(self.members))
                    self._broadcast("next", orjson.dumps(_payload(result)).decode())
            finally:
                await source.aclose()
            if self.closed_with is not None:
                self._broadcast("close", self.closed_with)
            else:
                self._broadcast("complete", None)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live group %s failed", self.response_key)
            self._broadcast("complete", None)
        finally:
            self.done = True
            self.started.set()
            self.hub.forget(self)

    def _broadcast(self, kind: str, value: Any) -> None:
        if kind != "next":
            for member in list(self.members):
                member.deliver(kind, value)
            return
        frames: dict[str, bytes] = {}  # one encoded frame per operation id (members with the same id share it)
        for member in list(self.members):
            operation_id = member.operation.id
            frame = frames.get(operation_id)
            if frame is None:
                frame = frames[operation_id] = text_frame(next_message(operation_id, value).encode())
            member.deliver(kind, value, frame)

    async def leave(self, member: Member) -> None:
        self.members.discard(member)
        if not self.members and not self.done and self.task is not None:
            self.done = True
            self.hub.forget(self)
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


def next_message(operation_id: str, payload: str) -> str:
    """The graphql-transport-ws `next` message of an encoded payload."""
    return f'{{"id":{orjson.dumps(operation_id).decode()},"type":"next","payload":{payload}}}'


def _payload(result: ExecutionResult) -> dict[str, Any]:
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return payload


class LiveHub:
    """This process's shared subscription groups, by (document, operation, variables, principal shape)."""

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self.groups: dict[Hashable, LiveGroup] = {}

    def forget(self, group: LiveGroup) -> None:
        if self.groups.get(group.key) is group:
            del self.groups[group.key]
            LIVE_GROUPS.set(len(self.groups))

    def group_for(self, key: Hashable, query: str, variables: dict[str, Any] | None, operation_name: str | None,
                  target: tuple[str, FieldNode], context: RequestContext, schema: Any) -> tuple[LiveGroup, bool]:
        group = self.groups.get(key)
        if group is not None and not group.done:
            return group, False
        group = LiveGroup(self, key, query, variables, operation_name, target[0], target[1])
        self.groups[key] = group
        LIVE_GROUPS.set(len(self.groups))
        group.start(context, schema)
        return group, True


class SharedStreamHandler(BaseGraphQLTransportWSHandler[RequestContext, None]):
    """graphql-transport-ws with subscriptions served from shared groups (queries and mutations over the socket,
    and documents that are not a single-root-field subscription, run as strawberry runs them)."""

    async def run_operation(self, operation: Operation[RequestContext, None]) -> None:
        context = self.context
        target = _subscription_field(operation.query, operation.operation_name)
        if target is None or not isinstance(context, RequestContext):
            await super().run_operation(operation)
            return
        hub = cast("GraphQLEndpoint", self.view).live_hub(context.settings.CITYOS_SUBSCRIBER_QUEUE)
        key = (operation.query, operation.operation_name,
               orjson.dumps(operation.variables or {}, option=orjson.OPT_SORT_KEYS), principal_shape(context))
        group, created = hub.group_for(key, operation.query, operation.variables, operation.operation_name, target,
                                       context, self.schema)
        member = Member(operation, hub.max_queue, sink=getattr(self.websocket, "frame_sink", None))
        expires_at = context.principal.expires_at
        timer = None
        if expires_at is not None:  # the token's own end, whatever the group's
            loop = asyncio.get_running_loop()
            timer = loop.call_at(loop.time() + max(expires_at - time.time(), 0), member.expire)
        group.members.add(member)
        try:
            if not created:
                await group.started.wait()
                await context.spend(group.cost)  # each subscriber pays for subscribing, as it would alone
            await self._serve(member, group)
        except _Closed as closed:
            await self.websocket.close(code=closed.code, reason=closed.reason)
            self.operations.pop(operation.id, None)
        except ApiError as error:  # refused to join (rate limits)
            await operation.send_initial_errors([located_error(error, [group.field_node], [group.response_key])])
        finally:
            if timer is not None:
                timer.cancel()
            await group.leave(member)

    async def _serve(self, member: Member, group: LiveGroup) -> None:
        operation = member.operation
        while True:
            await member.wait()
            if member.overflowed:
                raise _Closed(SUBSCRIBER_TOO_SLOW, "subscriber too slow: events were dropped")
            if member.expired:
                await self._expired(member, group)
                return
            kind, value = member.frames.popleft()
            if kind == "next":  # queued: the socket was not writable, or frames were waiting before it
                member.sending = True
                try:
                    await self._send_text(next_message(operation.id, value))
                finally:
                    member.sending = False
            elif kind == "error":
                await operation.send_operation_message(
                    {"id": operation.id, "type": "error", "payload": orjson.loads(value)})
                return
            elif kind == "complete":
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
                return
            else:  # the group's stream closed the socket (its broker queue overflowed): every member's closes
                code, reason = value
                raise _Closed(code, reason)

    async def _expired(self, member: Member, group: LiveGroup) -> None:
        operation = member.operation
        error = located_error(Unauthenticated(EXPIRED_MESSAGE), [group.field_node], [group.response_key])
        await operation.send_operation_message(
            {"id": operation.id, "type": "next", "payload": {"data": None, "errors": [error.formatted]}})
        await operation.send_operation_message({"id": operation.id, "type": "complete"})

    async def _send_text(self, text: str) -> None:
        sender = getattr(self.websocket, "send_text_frame", None)
        if sender is not None:
            await sender(text)
        else:  # pragma: no cover - the adapter of cityos.http.graphql always has it
            await self.websocket.send_json(orjson.loads(text))
