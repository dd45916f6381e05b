"""The in-process scheduler (`cityos serve` runs it unless CITYOS_SCHEDULER=off) and the runner of one job run
(also what `cityos jobs run NAME` uses).

Once across replicas: every replica computes, per job, the latest cron tick at or before now (croniter); the
first to insert the run row (job, tick) into job_run runs it, the others see the conflict and skip it.

Caught up once: after downtime the latest missed tick is due (one run), never every tick that was missed. A job
that has never run on schedule starts with the first tick after the scheduler started (a fresh deployment does not
run last night's payouts the moment it boots).

A run that outlasts the job's timeout is cancelled and recorded as a timeout; one that raises is recorded as
failed with its error, and the next tick runs normally. While a replica still runs a job's previous tick it does
not claim the next one (another replica may; otherwise it is caught up once when the run ends). Per-tenant jobs run
tenant by tenant, each in the tenant's scope, each tenant's outcome recorded on its own row.

A run whose replica died stays `running` in job_run; every replica's tick also records such runs (older than their
job's timeout plus a grace) as failed, "abandoned", at most once a minute (`reclaim_abandoned`).

The clock is injectable (`clock`, and `tick(now)`), so tests drive the schedule without waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.db.engines import set_platform_scope, tenant_transaction
from cityos.domain.base import table_of
from cityos.domain.platform.job_runs import (
    claim_run,
    finish_run,
    last_scheduled_for,
    reclaim_abandoned,
    start_tenant_run,
)
from cityos.domain.platform.models import JobOutcome
from cityos.domain.tenancy.models import Tenant
from cityos.jobs.registry import Job, JobContext, JobResult
from cityos.observability.metrics import JOB_DURATION, JOB_LAG, JOB_LAST_SUCCESS, JOB_RUNS, JOB_TENANT_FAILURES

log = logging.getLogger(__name__)
TENANT = table_of(Tenant)
Clock = Callable[[], datetime]
RECLAIM_EVERY = timedelta(minutes=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def latest_tick(schedule: str, now: datetime) -> datetime:
    """The latest tick of a 5-field cron schedule at or before `now` (UTC)."""
    next_minute = now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    tick: datetime = croniter(schedule, next_minute).get_prev(datetime)
    return tick


def next_tick(schedule: str, now: datetime) -> datetime:
    """The first tick strictly after `now` (UTC)."""
    tick: datetime = croniter(schedule, now.astimezone(UTC)).get_next(datetime)
    return tick


def as_counts(result: JobResult) -> dict[str, Any]:
    return {"summary": result} if isinstance(result, str) else dict(result)


def summary_of(counts: Mapping[str, Any]) -> str:
    if isinstance(counts.get("summary"), str):
        return str(counts["summary"])
    return ", ".join(f"{key} {value}" for key, value in counts.items() if not isinstance(value, dict | list))


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def active_tenant_ids(engine: AsyncEngine) -> list[uuid.UUID]:
    """The tenants a per-tenant job runs for (a platform read of the tenant list)."""
    async with tenant_transaction(engine, None) as connection:
        await set_platform_scope(connection)
        return list((await connection.execute(select(TENANT.c.id).where(TENANT.c.status == "active")
                                              .order_by(TENANT.c.id))).scalars())


@dataclasses.dataclass
class _TenantPart:
    tenant_id: uuid.UUID
    run_id: uuid.UUID


async def _run_per_tenant(job: Job, context: JobContext, scheduled_for: datetime, trigger: str,
                          counts: dict[str, Any], current: list[_TenantPart]) -> str | None:
    """Every active tenant in turn, each in its own scope; a tenant's failure is recorded and the next goes on.
    Returns the failures as one error text (None when every tenant succeeded)."""
    results: dict[str, str] = {}
    failures: dict[str, str] = {}
    counts.update(tenants=0, ok=0, failed=0, results=results, failures=failures)
    for tenant_id in await active_tenant_ids(context.engine):
        run_id = await start_tenant_run(context.engine, job.name, scheduled_for, tenant_id, trigger)
        if run_id is None:
            continue  # this tenant's part of the tick was done already (a resumed run)
        counts["tenants"] += 1
        current[:] = [_TenantPart(tenant_id, run_id)]
        try:
            result = as_counts(await job.run(dataclasses.replace(context, tenant_id=tenant_id)))
        except Exception as error:
            log.warning("job %s failed for tenant %s: %s", job.name, tenant_id, describe(error))
            JOB_TENANT_FAILURES.labels(job.name).inc()
            failures[str(tenant_id)] = describe(error)
            counts["failed"] += 1
            current.clear()
            await finish_run(context.engine, run_id, JobOutcome.FAILED, {}, describe(error), tenant_id=tenant_id)
            continue
        current.clear()
        counts["ok"] += 1
        results[str(tenant_id)] = summary_of(result)
        await finish_run(context.engine, run_id, JobOutcome.OK, result, tenant_id=tenant_id)
    if not failures:
        return None
    return f"{len(failures)} tenant(s) failed: " + "; ".join(f"{tenant}: {error}"
                                                             for tenant, error in failures.items())


async def run_claimed(job: Job, context: JobContext, run_id: uuid.UUID, scheduled_for: datetime, *,
                      trigger: str = "schedule", lag: float | None = None) -> Any:
    """Run a claimed run to its end and record it (outcome, counts, error); returns the job_run row. Never
    raises for the job's own failure; a cancellation (shutdown) is recorded as failed and propagates."""
    counts: dict[str, Any] = {}
    current: list[_TenantPart] = []
    error: str | None = None
    started = time.perf_counter()
    if lag is not None:
        JOB_LAG.labels(job.name).observe(max(lag, 0.0))
    deadline = asyncio.timeout(job.timeout)
    try:
        async with deadline:
            if job.per_tenant:
                error = await _run_per_tenant(job, context, scheduled_for, trigger, counts, current)
            else:
                counts.update(as_counts(await job.run(context)))
        outcome = JobOutcome.FAILED if error else JobOutcome.OK
    except TimeoutError as raised:
        if not deadline.expired():
            outcome, error = JobOutcome.FAILED, describe(raised)  # the job's own timeout (e.g. an HTTP call)
        else:
            outcome, error = JobOutcome.TIMEOUT, f"did not finish within {job.timeout:g} s"
    except asyncio.CancelledError:
        await _finish(job, context, run_id, JobOutcome.FAILED, counts, "stopped: the scheduler shut down",
                      current, started)
        raise
    except Exception as raised:
        log.exception("job %s failed", job.name)
        outcome, error = JobOutcome.FAILED, describe(raised)
    return await _finish(job, context, run_id, outcome, counts, error, current, started)


async def _finish(job: Job, context: JobContext, run_id: uuid.UUID, outcome: JobOutcome, counts: dict[str, Any],
                  error: str | None, current: list[_TenantPart], started: float) -> Any:
    for part in current:  # the tenant whose part was cut short by the timeout or the shutdown
        await finish_run(context.engine, part.run_id, outcome, {}, error, tenant_id=part.tenant_id)
    row = await finish_run(context.engine, run_id, outcome, counts, error)
    JOB_RUNS.labels(job.name, outcome.value).inc()
    JOB_DURATION.labels(job.name).observe(time.perf_counter() - started)
    if outcome is JobOutcome.OK:
        JOB_LAST_SUCCESS.labels(job.name).set(time.time())
    log.info("job %s %s: %s", job.name, outcome.value, error or summary_of(counts))
    return row


async def run_now(job: Job, context: JobContext, now: datetime | None = None, *, on_schedule: bool = False) -> Any:
    """One run outside the scheduler (`cityos jobs run`): recorded as a manual run, or with `on_schedule` (what a
    Kubernetes CronJob calls) as the run of the latest tick, which is skipped (None) when a scheduler replica or
    another CronJob pod has claimed it already."""
    now = now or utc_now()
    scheduled_for = latest_tick(job.schedule, now) if on_schedule else now
    trigger = "schedule" if on_schedule else "manual"
    run_id = await claim_run(context.engine, job.name, scheduled_for, trigger)
    if run_id is None:
        return None
    lag = (now - scheduled_for).total_seconds() if on_schedule else None
    return await run_claimed(job, context, run_id, scheduled_for, trigger=trigger, lag=lag)


class Scheduler:
    """Runs the registry's jobs on their schedules in this process, beside any number of other replicas."""

    def __init__(self, jobs: Mapping[str, Job], context: JobContext, *, clock: Clock = utc_now,
                 max_sleep: float = 30.0) -> None:
        self.jobs = dict(jobs)
        self.context = context
        self.clock = clock
        self.max_sleep = max_sleep
        self.started_at = clock()
        self._handled: dict[str, datetime] = {}  # per job: the latest tick already claimed (by anyone) or skipped
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._reclaimed_at: datetime | None = None

    async def tick(self, now: datetime | None = None) -> list[asyncio.Task[Any]]:
        """Claim and start every run due at `now` (default: the clock); returns the tasks of the runs this
        replica won. Runs go on in the background; the caller may await the tasks."""
        now = now or self.clock()
        await self._reclaim(now)
        started: list[asyncio.Task[Any]] = []
        for job in self.jobs.values():
            due = latest_tick(job.schedule, now)
            handled = self._handled.get(job.name)
            if handled is not None and due <= handled:
                continue
            running = self._running.get(job.name)
            if running is not None and not running.done():
                continue  # still on an earlier tick; this one waits (another replica may take it)
            if handled is None:
                last = await last_scheduled_for(self.context.engine, job.name)
                if (last is not None and due <= last) or (last is None and due < self.started_at):
                    self._handled[job.name] = due
                    continue
            run_id = await claim_run(self.context.engine, job.name, due)
            self._handled[job.name] = due
            if run_id is None:
                continue  # another replica won this tick
            task = asyncio.create_task(
                run_claimed(job, self.context, run_id, due, lag=(self.clock() - due).total_seconds()),
                name=f"cityos-job-{job.name}")
            self._running[job.name] = task
            started.append(task)
        return started

    async def _reclaim(self, now: datetime) -> None:
        if self._reclaimed_at is not None and now - self._reclaimed_at < RECLAIM_EVERY:
            return
        self._reclaimed_at = now
        for name in await reclaim_abandoned(self.context.engine, {job.name: job.timeout
                                                                  for job in self.jobs.values()}):
            log.warning("job %s: a run abandoned by its runner was recorded as failed", name)
            JOB_RUNS.labels(name, "abandoned").inc()

    def seconds_to_next_tick(self, now: datetime | None = None) -> float:
        now = now or self.clock()
        wake = min((next_tick(job.schedule, now) for job in self.jobs.values()), default=now)
        return min(max((wake - now).total_seconds(), 0.05), self.max_sleep)

    async def run_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception:  # the database is away, say: try again at the next wake-up
                log.exception("the scheduler's tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.seconds_to_next_tick())

    def start(self) -> None:
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self.run_forever(), name="cityos-scheduler")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop ticking; give running jobs `grace` seconds to end, then cancel them (recorded as failed)."""
        self._stopping.set()
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
        running = [task for task in self._running.values() if not task.done()]
        if running:
            _, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
