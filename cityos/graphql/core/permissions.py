"""Authorization helpers for schema types: object reads through the batching Cerbos loader, and declarative
field permissions (`read:field:<name>`), kept as data so a later SQL compiler can turn them into masks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import strawberry
from strawberry.extensions import FieldExtension
from strawberry.types.field import StrawberryField

from cityos.auth.authz import DENIED_FIELDS, ResourceRef
from cityos.errors import Forbidden, NotFound

# (GraphQL type, field) → Cerbos action. The single source of truth for field guards.
FIELD_PERMISSIONS: dict[tuple[str, str], str] = {}


class Guarded(Protocol):
    def resource(self) -> ResourceRef: ...


G = TypeVar("G", bound=Guarded)


class FieldPermission(FieldExtension):
    """Resolve the field only if the principal may `read:field:<field>` on the parent object; otherwise null
    and a FORBIDDEN error at the field's path while the rest of the response returns."""

    def __init__(self, type_name: str, field_name: str) -> None:
        self.type_name = type_name
        self.field_name = field_name
        self.action = f"read:field:{field_name}"
        FIELD_PERMISSIONS[(type_name, field_name)] = self.action

    def apply(self, field: StrawberryField) -> None:
        note = f"Requires permission `{self.action}`."
        field.description = f"{field.description} {note}" if field.description else note

    async def resolve_async(self, next_: Callable[..., Awaitable[Any]], source: Any, info: strawberry.Info,
                            **kwargs: Any) -> Any:
        resource: ResourceRef = source.resource()
        if not await info.context.authz.allowed(resource, self.action):
            DENIED_FIELDS.labels(resource.kind, self.field_name).inc()
            raise Forbidden(f"{self.field_name} requires {self.action}", action=self.action)
        return await next_(source, info, **kwargs)


def guarded_field(type_name: str, field_name: str, description: str | None = None) -> Any:
    return strawberry.field(description=description, extensions=[FieldPermission(type_name, field_name)])


async def readable(info: strawberry.Info, node: G | None, what: str) -> G:
    """The node, if it exists (RLS) and the principal may read it (Cerbos)."""
    if node is None:
        raise NotFound(f"no {what} with that id")
    await info.context.authz.require(node.resource(), "read")
    return node
