"""Per-request dataloaders: two generic shapes parameterised by table and column.

`RowsByKeyLoader` loads, for many keys at once, the rows whose column equals each key (a foreign key: many
rows per key, ordered by created_at, id); `RowByKeyLoader` the one row per key (a primary or unique key).
One SELECT … WHERE column = ANY(keys) per batch, whatever the number of parents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

from aiodataloader import DataLoader
from sqlalchemy import Column, Table, func, select
from sqlalchemy.engine import Row

from cityos.db.request import RequestDatabase


def in_tenant(db: RequestDatabase, table: Table) -> list[Any]:
    """The request's tenant as an explicit predicate. Row-level security already restricts every query to it, but
    its policy (tenant OR platform scope) cannot drive an index; this one can (indexes start with tenant_id)."""
    if db.tenant_id is None or "tenant_id" not in table.c:
        return []
    return [table.c.tenant_id == db.tenant_id]


class _ByKeyLoader(DataLoader[Hashable, Any]):
    def __init__(self, db: RequestDatabase, table: Table, column: Column[Any]) -> None:
        super().__init__()
        self.db = db
        self.table = table
        self.column = column

    async def _rows(self, keys: Sequence[Hashable]) -> list[Row[Any]]:
        statement = select(self.table).where(self.column.in_(list(set(keys))), *in_tenant(self.db, self.table))
        if "created_at" in self.table.c and "id" in self.table.c:
            statement = statement.order_by(self.table.c.created_at, self.table.c.id)
        return list((await self.db.execute(statement)).all())


class RowByKeyLoader(_ByKeyLoader):
    async def batch_load_fn(self, keys: Sequence[Hashable]) -> list[Row[Any] | None]:
        by_key = {getattr(row, self.column.key): row for row in await self._rows(keys)}
        return [by_key.get(key) for key in keys]


class RowsByKeyLoader(_ByKeyLoader):
    async def batch_load_fn(self, keys: Sequence[Hashable]) -> list[list[Row[Any]]]:
        by_key: dict[Hashable, list[Row[Any]]] = defaultdict(list)
        for row in await self._rows(keys):
            by_key[getattr(row, self.column.key)].append(row)
        return [by_key.get(key, []) for key in keys]


class WindowedRowsLoader(DataLoader[Hashable, Any]):
    """For many parents at once, the first `limit` children each may read — filtered in SQL by the policy's query
    plan, ordered by (created_at, id), cut per parent with a window function — and how many there are in all.
    One statement per batch; no child the caller may not read, and no child beyond the page, leaves Postgres."""

    def __init__(self, db: RequestDatabase, table: Table, column: Column[Any], allowed: Any, limit: int) -> None:
        super().__init__()
        self.db, self.table, self.column, self.allowed, self.limit = db, table, column, allowed, limit

    async def batch_load_fn(self, keys: Sequence[Hashable]) -> list[tuple[list[Row[Any]], int]]:
        order = (self.table.c.created_at, self.table.c.id)
        inner = (select(self.table, func.row_number().over(partition_by=self.column, order_by=order).label("_rn"),
                        func.count().over(partition_by=self.column).label("_total"))
                 .where(self.column.in_(list(set(keys))), *in_tenant(self.db, self.table), await self.allowed())
                 .subquery())
        rows = (await self.db.execute(select(inner).where(inner.c._rn <= self.limit)
                                      .order_by(inner.c[self.column.key], inner.c._rn))).all()
        by_key: dict[Hashable, list[Row[Any]]] = defaultdict(list)
        for row in rows:
            by_key[getattr(row, self.column.key)].append(row)
        return [(by_key.get(key, []), by_key[key][0]._total if by_key.get(key) else 0) for key in keys]


class Loaders:
    """The registry of one request's loaders, created on first use."""

    def __init__(self, db: RequestDatabase) -> None:
        self.db = db
        self._loaders: dict[tuple[str, str, str], DataLoader[Hashable, Any]] = {}

    def _get(self, kind: type[_ByKeyLoader], table: Table, column_name: str) -> DataLoader[Hashable, Any]:
        key = (kind.__name__, table.name, column_name)
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = kind(self.db, table, table.c[column_name])
        return loader

    def by_key(self, table: Table, column_name: str = "id") -> DataLoader[Hashable, Any]:
        return self._get(RowByKeyLoader, table, column_name)

    def many_by_key(self, table: Table, column_name: str) -> DataLoader[Hashable, Any]:
        return self._get(RowsByKeyLoader, table, column_name)

    def first_by_key(self, table: Table, column_name: str, allowed: Any, limit: int) -> DataLoader[Hashable, Any]:
        """`allowed` is an async callable returning the policy's WHERE clause for the table."""
        key = ("WindowedRowsLoader", table.name, f"{column_name}:{limit}")
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = WindowedRowsLoader(self.db, table, table.c[column_name], allowed, limit)
        return loader
