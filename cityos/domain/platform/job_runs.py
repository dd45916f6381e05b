"""The record of scheduled job runs (table job_run): claiming a due tick once across scheduler replicas, and
recording how each run (and each tenant's part of a per-tenant run) ended.

- The run row (tenant_id null) is the claim: `claim_run` inserts (job, scheduled_for) and does nothing on a
  conflict with the partial unique index, so of any number of replicas exactly one gets the id back and runs it.
- A per-tenant job also records one row per tenant (`start_tenant_run`), written in the tenant's own scope, which
  row-level security shows to that tenant's admins.
- A run whose runner died (a replica killed mid-run) would stay `running` for ever: `reclaim_abandoned` records
  it as failed ("abandoned") once it is older than its job's timeout plus a grace, so it shows and alerts as a
  failure. Its tick is not run again; the next tick does the work (every job is idempotent by design).
- History is bounded: `prune_finished` deletes finished runs older than the retention (the prune-job-runs job).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, false, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.engines import set_platform_scope, tenant_transaction
from cityos.domain.base import table_of
from cityos.domain.kernel import Listing, SortKey
from cityos.domain.platform.models import JobOutcome, JobRun

JOB_RUN = table_of(JobRun)
ERROR_LENGTH = 4000


async def last_scheduled_for(engine: AsyncEngine, job: str) -> datetime | None:
    """The tick of the job's latest scheduled run (None: it never ran on schedule)."""
    async with tenant_transaction(engine, None) as connection:
        await set_platform_scope(connection)
        last: datetime | None = (await connection.execute(select(func.max(JOB_RUN.c.scheduled_for)).where(
            JOB_RUN.c.job == job, JOB_RUN.c.tenant_id.is_(None), JOB_RUN.c.trigger == "schedule"))).scalar()
        return last


async def claim_run(engine: AsyncEngine, job: str, scheduled_for: datetime, trigger: str = "schedule",
                    ) -> uuid.UUID | None:
    """The id of the new run row, or None when another runner has claimed this tick already."""
    async with tenant_transaction(engine, None) as connection:
        await set_platform_scope(connection)
        claimed: uuid.UUID | None = (await connection.execute(
            insert(JOB_RUN).values(id=uuid.uuid4(), job=job, scheduled_for=scheduled_for, trigger=trigger,
                                   started_at=func.clock_timestamp())
            .on_conflict_do_nothing(index_elements=["job", "scheduled_for"],
                                    index_where=JOB_RUN.c.tenant_id.is_(None))
            .returning(JOB_RUN.c.id))).scalar()
        return claimed


async def start_tenant_run(engine: AsyncEngine, job: str, scheduled_for: datetime, tenant_id: uuid.UUID,
                           trigger: str = "schedule") -> uuid.UUID | None:
    """The tenant's row of a per-tenant run, in the tenant's scope; None when it exists already."""
    async with tenant_transaction(engine, tenant_id) as connection:
        started: uuid.UUID | None = (await connection.execute(
            insert(JOB_RUN).values(id=uuid.uuid4(), job=job, scheduled_for=scheduled_for, tenant_id=tenant_id,
                                   trigger=trigger, started_at=func.clock_timestamp())
            .on_conflict_do_nothing(index_elements=["job", "scheduled_for", "tenant_id"],
                                    index_where=JOB_RUN.c.tenant_id.is_not(None))
            .returning(JOB_RUN.c.id))).scalar()
        return started


async def finish_run(engine: AsyncEngine, run_id: uuid.UUID, outcome: JobOutcome, counts: dict[str, Any],
                     error: str | None = None, *, tenant_id: uuid.UUID | None = None) -> Any:
    """Record the end of a run (or of a tenant's part, in that tenant's scope); returns the row."""
    async with tenant_transaction(engine, tenant_id) as connection:
        if tenant_id is None:
            await set_platform_scope(connection)
        return (await connection.execute(update(JOB_RUN).where(JOB_RUN.c.id == run_id).values(
            finished_at=func.clock_timestamp(), outcome=outcome.value, counts=counts,
            error=error[:ERROR_LENGTH] if error else None).returning(*JOB_RUN.c))).one()


ABANDONED = "abandoned: its runner stopped before recording an end (the process died or lost the database)"
PRUNE_BATCH = 5000


async def reclaim_abandoned(engine: AsyncEngine, timeouts: Mapping[str, float], grace: float = 60.0) -> list[str]:
    """Record as failed every run still `running` past its job's timeout plus `grace` seconds (a live runner
    would have cancelled it at the timeout); returns the names of the jobs of the rows reclaimed. Ages are taken
    on the database's clock, the one that stamped `started_at` (replicas' clocks may differ)."""
    if not timeouts:
        return []
    overdue = or_(*(and_(JOB_RUN.c.job == job,
                         JOB_RUN.c.started_at < func.clock_timestamp() - timedelta(seconds=timeout + grace))
                    for job, timeout in timeouts.items()))
    async with tenant_transaction(engine, None) as connection:
        await set_platform_scope(connection)
        return list((await connection.execute(update(JOB_RUN).where(
            JOB_RUN.c.outcome == JobOutcome.RUNNING.value, overdue,
        ).values(outcome=JobOutcome.FAILED.value, finished_at=func.clock_timestamp(), error=ABANDONED)
            .returning(JOB_RUN.c.job))).scalars())


async def prune_finished(engine: AsyncEngine, older_than: datetime, *, batch: int = PRUNE_BATCH) -> int:
    """Delete finished runs that started before `older_than`, in batches (short transactions); returns how many.
    Runs still `running` are kept whatever their age (reclaim_abandoned ends them first)."""
    deleted = 0
    while True:
        async with tenant_transaction(engine, None) as connection:
            await set_platform_scope(connection)
            chunk = select(JOB_RUN.c.id).where(JOB_RUN.c.outcome != JobOutcome.RUNNING.value,
                                                JOB_RUN.c.started_at < older_than).limit(batch)
            count = len((await connection.execute(delete(JOB_RUN).where(JOB_RUN.c.id.in_(chunk))
                                                  .returning(JOB_RUN.c.id))).all())
        deleted += count
        if count < batch:
            return deleted


def job_runs(*scope: ColumnElement[bool], job: str | None, tenant_id: uuid.UUID | None,
             platform: bool = False) -> Listing:
    """Runs newest first. In platform scope every row; otherwise the tenant's parts only (explicit, so that the
    tenant-leading index drives it; a caller of no tenant sees nothing)."""
    statement = select(JOB_RUN).where(*scope)
    if not platform:
        statement = statement.where(JOB_RUN.c.tenant_id == tenant_id if tenant_id is not None else false())
    if job is not None:
        statement = statement.where(JOB_RUN.c.job == job)
    return Listing(statement, [SortKey(JOB_RUN.c.started_at, True), SortKey(JOB_RUN.c.id, True)])
