"""Relay: opaque global ids, the Node interface, cursor connections with totalCount.

Every list is a connection ordered by (created_at, id). A cursor is the opaque, url-safe encoding of that
pair, so pages stay stable while rows are added (keyset pagination, no OFFSET). Top-level lists page in SQL;
nested lists, loaded for many parents at once by a loader, page the loaded rows with the same cursors.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson
import strawberry
from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.engine import Row

from cityos.errors import BadUserInput

NodeType = TypeVar("NodeType")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def to_global_id(type_name: str, local_id: uuid.UUID | str) -> strawberry.ID:
    return strawberry.ID(base64.urlsafe_b64encode(f"{type_name}:{local_id}".encode()).decode().rstrip("="))


def from_global_id(global_id: str, expected_type: str | None = None) -> tuple[str, uuid.UUID]:
    """Decode a global id. Malformed → BAD_USER_INPUT; a well-formed id of another type → BAD_USER_INPUT."""
    try:
        decoded = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
        type_name, local_id = decoded.split(":", 1)
        parsed = uuid.UUID(local_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadUserInput(f"malformed id {global_id!r}", field="id") from None
    if expected_type is not None and type_name != expected_type:
        raise BadUserInput(f"id {global_id!r} is not a {expected_type} id", field="id")
    return type_name, parsed


@strawberry.interface(description="An object with a globally unique, opaque id (Relay).")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeType]):
    cursor: str
    node: NodeType


@strawberry.type(description="A page of a list, Relay style, with the size of the whole list.")
class Connection(Generic[NodeType]):
    edges: list[Edge[NodeType]]
    page_info: PageInfo
    total_count: int

    @strawberry.field(description="The nodes of the edges, for clients that need no cursors.")
    def nodes(self) -> list[NodeType]:
        return [edge.node for edge in self.edges]


@dataclass(frozen=True)
class PageRequest:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def __post_init__(self) -> None:
        if self.first is not None and self.last is not None:
            raise BadUserInput("pass either first or last, not both", field="first")
        for name in ("first", "last"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
                raise BadUserInput(f"{name} must be between 0 and {MAX_PAGE_SIZE}", field=name)

    @property
    def backwards(self) -> bool:
        return self.last is not None

    @property
    def size(self) -> int:
        if self.last is not None:
            return self.last
        return self.first if self.first is not None else DEFAULT_PAGE_SIZE


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created_at.isoformat(), str(row_id)])).decode().rstrip("=")


def decode_cursor(cursor: str, field: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, row_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(created_at), uuid.UUID(row_id)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise BadUserInput(f"malformed cursor {cursor!r}", field=field) from None


def _sort_key(row: Any) -> tuple[datetime, uuid.UUID]:
    return row.created_at, row.id


def _build(rows: Sequence[Any], page: PageRequest, has_more: bool, total: int,
           to_node: Callable[[Any], NodeType], had_cursor_before: bool, had_cursor_after: bool,
           ) -> Connection[NodeType]:
    edges = [Edge(cursor=encode_cursor(*_sort_key(row)), node=to_node(row)) for row in rows]
    if page.backwards:
        has_previous, has_next = has_more, had_cursor_before
    else:
        has_previous, has_next = had_cursor_after, has_more
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=has_next, has_previous_page=has_previous,
                           start_cursor=edges[0].cursor if edges else None,
                           end_cursor=edges[-1].cursor if edges else None),
        total_count=total,
    )


def page_loaded_rows(rows: Sequence[Any], page: PageRequest, to_node: Callable[[Any], NodeType],
                     ) -> Connection[NodeType]:
    """Page rows already loaded (and sorted by created_at, id) for one parent."""
    selected = list(rows)
    if page.after is not None:
        after = decode_cursor(page.after, "after")
        selected = [row for row in selected if _sort_key(row) > after]
    if page.before is not None:
        before = decode_cursor(page.before, "before")
        selected = [row for row in selected if _sort_key(row) < before]
    size = page.size
    if page.backwards:
        window = selected[max(len(selected) - size, 0):]
        has_more = len(selected) > size
    else:
        window = selected[:size]
        has_more = len(selected) > size
    return _build(window, page, has_more, len(rows), to_node, page.before is not None, page.after is not None)


async def page_query(execute: Callable[[Any], Any], statement: Select[Any], page: PageRequest,
                     to_node: Callable[[Row[Any]], NodeType]) -> Connection[NodeType]:
    """Page a SELECT (whose table has created_at and id) in SQL: one COUNT and one keyset-limited query."""
    table = statement.selected_columns
    key = tuple_(table.created_at, table.id)
    total = (await execute(select(func.count()).select_from(statement.order_by(None).subquery()))).scalar_one()
    keyed = statement
    if page.after is not None:
        keyed = keyed.where(key > tuple_(*decode_cursor(page.after, "after")))
    if page.before is not None:
        keyed = keyed.where(key < tuple_(*decode_cursor(page.before, "before")))
    if page.backwards:
        keyed = keyed.order_by(table.created_at.desc(), table.id.desc())
    else:
        keyed = keyed.order_by(table.created_at, table.id)
    rows = list((await execute(keyed.limit(page.size + 1))).all())
    has_more = len(rows) > page.size
    rows = rows[: page.size]
    if page.backwards:
        rows.reverse()
    return _build(rows, page, has_more, total, to_node, page.before is not None, page.after is not None)
