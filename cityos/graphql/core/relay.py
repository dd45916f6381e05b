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
from typing import Annotated, Any, Generic, TypeVar, cast

import orjson
import strawberry
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.engine import Row
from strawberry.types.nodes import SelectedField

from cityos.domain.kernel import SortKey as SortKey  # the domain defines the orders it lists in
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
        raise BadUserInput(f"malformed id {global_id!r}", field="id", value=global_id) from None
    if expected_type is not None and type_name != expected_type:
        raise BadUserInput(f"id {global_id!r} is not a {expected_type} id", field="id", value=global_id)
    return type_name, parsed


def described_value(value: str, description: str) -> str:
    """An enum member's value with its GraphQL description (`strawberry.enum_value`); strawberry unwraps it, so at
    run time and for mypy the member's value stays the plain string."""
    return cast(str, strawberry.enum_value(value, description=description))


# The arguments of every connection field (Relay cursor pagination), described once.
First = Annotated[int | None, strawberry.argument(
    description=f"Page forwards: at most this many items (0–{MAX_PAGE_SIZE}; default {DEFAULT_PAGE_SIZE}). "
                "Not together with `last`.")]
After = Annotated[str | None, strawberry.argument(
    description="Page forwards: only items after this cursor (an `endCursor` or an edge's `cursor`).")]
Last = Annotated[int | None, strawberry.argument(
    description=f"Page backwards: at most this many items, the last ones (0–{MAX_PAGE_SIZE}). "
                "Not together with `first`.")]
Before = Annotated[str | None, strawberry.argument(
    description="Page backwards: only items before this cursor (a `startCursor` or an edge's `cursor`).")]


@strawberry.interface(description="An object with a globally unique, opaque id (Relay).")
class Node:
    id: strawberry.ID = strawberry.field(description="Opaque global id; fetch the object again with `node(id:)`.")


@strawberry.type(description="Where a page sits in its list, and the cursors to fetch the pages around it.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether more items follow this page (in list order).")
    has_previous_page: bool = strawberry.field(description="Whether items precede this page (in list order).")
    start_cursor: str | None = strawberry.field(
        description="Cursor of the first item of the page; pass it as `before` for the previous page.")
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last item of the page; pass it as `after` for the next page.")


@strawberry.type(description="One item of a connection with its cursor.")
class Edge(Generic[NodeType]):
    cursor: str = strawberry.field(description="Opaque position of this item in the list, for `after`/`before`.")
    node: NodeType = strawberry.field(description="The item.")


@strawberry.type(description="A page of a list, Relay style, with the size of the whole list.")
class Connection(Generic[NodeType]):
    edges: list[Edge[NodeType]] = strawberry.field(description="The items of this page, with their cursors.")
    page_info: PageInfo = strawberry.field(description="Whether there are more pages, and their cursors.")
    total_count: int = strawberry.field(description="How many items the whole list holds (all pages), as the "
                                                    "caller may see them.")

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


def _sort_key(row: Any) -> tuple[datetime, uuid.UUID]:
    return row.created_at, row.id


def _build(rows: Sequence[Any], page: PageRequest, has_more: bool, total: int,
           to_node: Callable[[Any], NodeType], had_cursor_before: bool, had_cursor_after: bool,
           ) -> Connection[NodeType]:
    edges = [Edge(cursor=encode_keys(_sort_key(row)), node=to_node(row)) for row in rows]
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


def first_page(rows: Sequence[Any], total: int, page: PageRequest, to_node: Callable[[Any], NodeType],
               ) -> Connection[NodeType]:
    """The first page of a list whose first `page.size + 1` rows (at most) and total size are known."""
    return _build(list(rows)[: page.size], page, len(rows) > page.size, total, to_node, False, False)


def page_loaded_rows(rows: Sequence[Any], page: PageRequest, to_node: Callable[[Any], NodeType],
                     ) -> Connection[NodeType]:
    """Page rows already loaded (and sorted by created_at, id) for one parent."""
    selected = list(rows)
    if page.after is not None:
        after = tuple(decode_keys(page.after, "after", DEFAULT_KEY_TYPES))
        selected = [row for row in selected if _sort_key(row) > after]
    if page.before is not None:
        before = tuple(decode_keys(page.before, "before", DEFAULT_KEY_TYPES))
        selected = [row for row in selected if _sort_key(row) < before]
    size = page.size
    if page.backwards:
        window = selected[max(len(selected) - size, 0):]
        has_more = len(selected) > size
    else:
        window = selected[:size]
        has_more = len(selected) > size
    return _build(window, page, has_more, len(rows), to_node, page.before is not None, page.after is not None)


DEFAULT_ORDER = ("created_at", "id")


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "t" in value:
        return datetime.fromisoformat(value["t"])
    if isinstance(value, dict) and "u" in value:
        return uuid.UUID(value["u"])
    return value


def encode_keys(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([_encode_value(v) for v in values])).decode().rstrip("=")


DEFAULT_KEY_TYPES: tuple[type, ...] = (datetime, uuid.UUID)


def decode_keys(cursor: str, field: str, types: Sequence[type | None]) -> list[Any]:
    """The sort-key values of a cursor, each of the type its key expects (None: any scalar). Anything else — not
    base64, not JSON, the wrong number or type of values — is BAD_USER_INPUT naming the argument."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        decoded = [_decode_value(value) for value in values] if isinstance(values, list) else []
    except (ValueError, TypeError, KeyError, binascii.Error, orjson.JSONDecodeError):
        raise BadUserInput(f"malformed cursor {cursor!r}", field=field, value=cursor) from None
    if len(decoded) != len(types) or not all(_fits(value, expected) for value, expected in zip(decoded, types,
                                                                                               strict=True)):
        raise BadUserInput(f"malformed cursor {cursor!r}", field=field, value=cursor)
    return decoded


def _fits(value: Any, expected: type | None) -> bool:
    if expected is None:
        return isinstance(value, str | int | float | bool | datetime | uuid.UUID)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is datetime:
        return isinstance(value, datetime) and value.tzinfo is not None
    return isinstance(value, expected)


def _key_type(column: Any) -> type | None:
    try:
        python_type: type = column.type.python_type
    except (AttributeError, NotImplementedError):
        return None
    return python_type


def key_types(keys: Sequence[SortKey]) -> list[type | None]:
    """The Python type each sort key's values have (what a cursor of that order decodes to)."""
    return [_key_type(key.column) for key in keys]


def keyset_after(keys: Sequence[SortKey], values: Sequence[Any], backwards: bool) -> Any:
    """Rows strictly after `values` in the order of `keys` (before, when walking backwards)."""
    clauses = []
    for index, key in enumerate(keys):
        descending = key.descending != backwards
        step = key.column < values[index] if descending else key.column > values[index]
        equal = [keys[i].column == values[i] for i in range(index)]
        clauses.append(and_(*equal, step) if equal else step)
    return or_(*clauses)


async def page_query(execute: Callable[[Any], Any], statement: Select[Any], page: PageRequest,
                     to_node: Callable[[Row[Any]], NodeType], order: Sequence[SortKey] | None = None,
                     count: bool = True, counted: Select[Any] | None = None) -> Connection[NodeType]:
    """Page a SELECT in SQL by keyset: one COUNT and one query limited to the page (+1 to know if more).

    `order` defaults to (created_at, id) of the selected table; its values are appended to each row as
    `_k0, _k1, …` and make up the cursor. `count=False` (the caller did not select totalCount, see
    `wants_total`) skips the COUNT, which reads every matching row (#12); totalCount is then 0, never sent.
    `counted`: the same rows as `statement` in a shape made for counting them (`Listing.counted`)."""
    columns = statement.selected_columns
    keys = list(order) if order else [SortKey(columns[name]) for name in DEFAULT_ORDER]
    source = statement if counted is None else counted
    total = (await execute(select(func.count()).select_from(source.order_by(None).subquery()))).scalar_one() \
        if count else 0
    keyed = statement.add_columns(*(key.column.label(f"_k{index}") for index, key in enumerate(keys)))
    types = key_types(keys)
    if page.after is not None:
        keyed = keyed.where(keyset_after(keys, decode_keys(page.after, "after", types), backwards=False))
    if page.before is not None:
        keyed = keyed.where(keyset_after(keys, decode_keys(page.before, "before", types), backwards=True))
    keyed = keyed.order_by(*((key.column.desc() if key.descending != page.backwards else key.column.asc())
                             for key in keys))
    rows = list((await execute(keyed.limit(page.size + 1))).all())
    has_more = len(rows) > page.size
    rows = rows[: page.size]
    if page.backwards:
        rows.reverse()
    edges = [Edge(cursor=encode_keys([getattr(row, f"_k{i}") for i in range(len(keys))]), node=to_node(row))
             for row in rows]
    has_previous, has_next = ((has_more, page.before is not None) if page.backwards
                              else (page.after is not None, has_more))
    return Connection(edges=edges, page_info=PageInfo(
        has_next_page=has_next, has_previous_page=has_previous,
        start_cursor=edges[0].cursor if edges else None, end_cursor=edges[-1].cursor if edges else None),
        total_count=total)


def wants_total(info: Any) -> bool:
    """Whether the field being resolved (a connection) selects totalCount, directly or in a fragment; when unsure,
    yes."""
    def selects(selections: Any) -> bool:
        for selection in selections or ():
            if isinstance(selection, SelectedField):
                if selection.name == "totalCount":
                    return True
            elif selects(selection.selections):  # a fragment spread or an inline fragment
                return True
        return False

    return any(selects(field.selections) for field in info.selected_fields)
