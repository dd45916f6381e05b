"""Every tenant-owned table's primary key leads with tenant_id, so the schema can be distributed by tenant (Citus,
distribution column tenant_id; docs/scaling.md). The tables that also hold platform rows (tenant_id null) are
named here with the reason: they would stay on the coordinator (Citus local or reference tables)."""

from __future__ import annotations

from sqlalchemy import text

PLATFORM_TABLES = {
    "audit_log": "platform admins' actions have no tenant",
    "job_run": "a run row covers all tenants; the per-tenant parts carry theirs",
    "outbox": "written by tenant and platform operations alike, dispatched across tenants",
    "webhook_inbox": "an event's tenant is known only after it is read (unknown: refused with none)",
}


async def test_tenant_owned_primary_keys_lead_with_tenant_id(owner_engine) -> None:
    async with owner_engine.connect() as connection:
        rows = (await connection.execute(text("""
            select c.relname as table,
                   (select a.attname from pg_attribute a where a.attrelid = c.oid and a.attnum = i.indkey[0]) as first
            from pg_class c join pg_index i on i.indrelid = c.oid and i.indisprimary
            where c.relnamespace = 'public'::regnamespace
              and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id')
            order by 1"""))).all()
    assert rows
    leading = {row.table: row.first for row in rows}
    offenders = sorted(table for table, first in leading.items()
                       if first != "tenant_id" and table not in PLATFORM_TABLES)
    assert offenders == [], f"primary keys not leading with tenant_id: {offenders}"
    assert set(PLATFORM_TABLES) <= set(leading)  # the exceptions still exist (else drop them from the list)
