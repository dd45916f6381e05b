"""The SQL of the tenant wall, shared by migrations: row-level security, the app role, cross-tenant lookups.

Later migrations call `enable_tenant_rls(table)` for every tenant-owned table they add, and `audit_table(table)`
for every table an admin or vendor mutation changes (the trigger function is migration 0016's).
"""

from __future__ import annotations

from alembic import op

from cityos.db.engines import APP_ROLE

__all__ = ["APP_ROLE"]

CURRENT_TENANT = "cityos_current_tenant()"
PLATFORM_SCOPE = "cityos_platform_scope()"


def once(call: str) -> str:
    """`call` as a scalar sub-select: an InitPlan, evaluated once per statement (not per row) when a row is first
    checked, and unknown to the planner. Left bare, these SQL functions are inlined to `current_setting(…)`, which
    the planner evaluates while planning to estimate the policy: a compiled read names its own tenant inside its
    statement (`engines.scoped_statement`), so at planning time the setting is empty, `tenant_id = NULL` is
    estimated to match no row, and every scan of the statement is planned for one row (#12: the product listing
    then read, probed and sorted a whole store for a 24-row page). As a parameter the check is estimated as an
    equality to an unknown tenant (1 / the number of tenants) and costs one evaluation per statement."""
    return f"(select {call})"


def tenant_wall(column: str = "tenant_id") -> str:
    """The condition of every `tenant_isolation` policy: the transaction's tenant's rows, or all in platform
    scope."""
    return f"{column} = {once(CURRENT_TENANT)} or {once(PLATFORM_SCOPE)}"


def create_tenant_functions() -> None:
    op.execute("""
        create function cityos_current_tenant() returns uuid language sql stable as
        $$ select nullif(current_setting('app.tenant_id', true), '')::uuid $$""")
    op.execute("""
        create function cityos_platform_scope() returns boolean language sql stable as
        $$ select coalesce(current_setting('app.platform_scope', true), '') = 'on' $$""")


def drop_tenant_functions() -> None:
    op.execute("drop function if exists cityos_platform_scope()")
    op.execute("drop function if exists cityos_current_tenant()")


def create_app_role() -> None:
    """A NOLOGIN role without BYPASSRLS that the migration owner may SET ROLE to. Roles are cluster-wide, so
    it may already exist (another database of the same cluster)."""
    op.execute(f"""
        do $$ begin
          if not exists (select 1 from pg_roles where rolname = '{APP_ROLE}') then
            create role {APP_ROLE} nologin nobypassrls;
          end if;
        end $$""")
    op.execute(f"grant {APP_ROLE} to current_user")
    op.execute(f"grant usage on schema public to {APP_ROLE}")


def drop_app_role() -> None:
    op.execute(f"revoke usage on schema public from {APP_ROLE}")
    op.execute(f"""
        do $$ begin
          drop role if exists {APP_ROLE};
        exception when dependent_objects_still_exist then
          null;  -- still used by another database of this cluster: leave it
        end $$""")


def grant_app(table: str, *, writable: bool = True) -> None:
    privileges = "select, insert, update, delete" if writable else "select"
    op.execute(f"grant {privileges} on table {table} to {APP_ROLE}")


def enable_tenant_rls(table: str, column: str = "tenant_id") -> None:
    """Rows are visible and writable only for the transaction's tenant, or in an explicit platform scope."""
    grant_app(table)
    op.execute(f"alter table {table} enable row level security")
    condition = tenant_wall(column)
    op.execute(f"create policy tenant_isolation on {table} using ({condition}) with check ({condition})")


def disable_tenant_rls(table: str) -> None:
    op.execute(f"drop policy if exists tenant_isolation on {table}")
    op.execute(f"alter table {table} disable row level security")
    op.execute(f"revoke all on table {table} from {APP_ROLE}")


def audit_table(table: str) -> None:
    """Every insert, update and delete of `table` (rows with `id` and `tenant_id`) made by a mutation is recorded
    in audit_log with its before/after values (the `cityos_audit` trigger function, db/audit.py)."""
    op.execute(f"create trigger audit_{table} after insert or update or delete on {table} "
               f"for each row execute function cityos_audit()")


def unaudit_table(table: str) -> None:
    op.execute(f"drop trigger if exists audit_{table} on {table}")
