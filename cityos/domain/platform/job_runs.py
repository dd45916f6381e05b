"""The record of scheduled job runs (table job_run): claiming a due tick once across scheduler replicas, and
recording how each run (and each tenant's part of a per-tenant run) ended.

- The run row (tenant_id null) is the claim: `claim_run` inserts (job, scheduled_for) and does nothing on a
  conflict with the partial unique index, so of any number of replicas exactly one gets the id back and runs it.
- A per-tenant job also records one row per tenant (`start_tenant_run`), written in the tenant's own scope, which
  row-level security shows to that tenant's admins.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, func, select, update
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
