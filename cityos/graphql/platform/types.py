"""Platform types declared here: job runs (the record of the scheduled jobs) and audit entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from cityos.domain.platform.job_runs import JOB_RUN
from cityos.domain.platform.models import JobOutcome
from cityos.domain.platform.queries import AUDIT
from cityos.graphql.core.nodes import Declaration, Declared, columns, declare
from cityos.graphql.core.relay import to_global_id
from cityos.graphql.core.values import described_enum

described_enum(JobOutcome, "How a run of a scheduled job ended.", {
    JobOutcome.RUNNING: "Started and not finished (still running, or its runner stopped before recording the end).",
    JobOutcome.OK: "Finished without error.",
    JobOutcome.FAILED: "Raised an error (see error); for a per-tenant job, failed for at least one tenant.",
    JobOutcome.TIMEOUT: "Cancelled after the job's timeout.",
})

JOB_RUN_DECLARATION = Declaration(
    "JobRun", JOB_RUN, "job_run", columns(JOB_RUN, "tenant_id"),
    fields={"outcome": lambda row: JobOutcome(row.outcome),
            "tenant": lambda row: to_global_id("Tenant", row.tenant_id) if row.tenant_id else None},
    node=False)


@strawberry.type(description="One run of a scheduled job (see `cityos jobs list`): the whole run across tenants "
                             "(platform admins), or one tenant's part of a per-tenant job (that tenant's admins).")
@declare(JOB_RUN_DECLARATION)
class JobRun(Declared):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the run.")
    job: str = strawberry.field(description="The job's name, e.g. process-vendor-payouts.")
    tenant: strawberry.ID | None = strawberry.field(
        description="Global id of the tenant this row is the part of (per-tenant jobs); null for the whole run.")
    trigger: str = strawberry.field(description="schedule (the scheduler or a CronJob ran a due tick) or manual "
                                                "(`cityos jobs run` by hand).")
    scheduled_for: datetime = strawberry.field(description="The cron tick the run is for (a manual run: when it "
                                                           "was asked for), UTC.")
    started_at: datetime = strawberry.field(description="When the run started (ISO 8601, UTC).")
    finished_at: datetime | None = strawberry.field(description="When the run ended; null while running.")
    outcome: JobOutcome = strawberry.field(description="running, ok, failed or timeout.")
    counts: JSON = strawberry.field(description="What the run did, as JSON: the job's counts or summary; for a "
                                                "per-tenant run, tenants, ok, failed and each tenant's result.")
    error: str | None = strawberry.field(description="Why the run failed or timed out (per-tenant runs: each "
                                                     "failed tenant's error).")
    row: strawberry.Private[Any]

    @strawberry.field(description="Seconds from start to finish; null while running.")
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


AUDIT_ENTRY_DECLARATION = Declaration("AuditEntry", AUDIT, "audit_entry", columns(AUDIT, "tenant_id"), node=False)


@strawberry.type(description="Who changed what, when: one changed row of an admin's or vendor's mutation (or a "
                             "platform operation). Entries can never be changed or deleted.")
@declare(AUDIT_ENTRY_DECLARATION)
class AuditEntry(Declared):
    id: strawberry.ID = strawberry.field(description="Opaque global id of the entry.")
    actor: str = strawberry.field(description="Who: the token's subject.")
    action: str = strawberry.field(description="What: the mutation (e.g. refundOrder, updateProduct).")
    target_kind: str = strawberry.field(description="The kind of object changed (its table, e.g. product).")
    target_id: str = strawberry.field(description="The changed object's id.")
    operation: str | None = strawberry.field(description="insert | update | delete of that object.")
    before: JSON | None = strawberry.field(description="The changed fields' values before (null for an insert).")
    after: JSON | None = strawberry.field(description="The changed fields' values after (null for a delete).")
    details: JSON = strawberry.field(description="Anything else the action recorded.")
    request_id: str | None = strawberry.field(description="The request's X-Request-Id, to find it in the logs.")
    created_at: datetime = strawberry.field(description="When (ISO 8601, UTC).")
    row: strawberry.Private[Any]
