"""The scheduler against the real database, on a fast clock (each scheduler's `now` is given, nobody sleeps):
each due run happens once across replicas, missed ticks are caught up once, failures and timeouts are recorded,
per-tenant jobs run tenant by tenant in the tenant's scope, and the runs are visible to the right admins only."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from cityos.app import create_app
from cityos.db.engines import tenant_transaction
from cityos.jobs.registry import JOBS, Job, JobContext, JobResult
from cityos.jobs.scheduler import Scheduler, run_now
from tests.conftest import GraphQLClient, Server, TenantWorld, Tokens, serve_asgi
from tests.operations import all_operations

JOB_RUNS = all_operations()["admin/JobRuns"]
_far_future = itertools.count()


def a_base_time() -> datetime:
    """A midnight of its own per test, far from any other test's ticks (job_run rows stay in the database)."""
    return datetime(2200, 1, 1, tzinfo=UTC) + timedelta(days=400 * next(_far_future) + uuid.uuid4().int % 300)


def a_job(run: Callable[[JobContext], Awaitable[JobResult]], schedule: str = "*/10 * * * *", **options: Any) -> Job:
    return Job(f"test-{uuid.uuid4().hex[:10]}", schedule, run, "A job of this test.", **options)


def context_of(server: Server) -> JobContext:
    services = server.services
    return JobContext(services.app_engine, services.settings, services.stripe, services.http, services.broker)


async def tick(now: datetime, *schedulers: Scheduler) -> int:
    """Every scheduler ticks at `now` at the same time; returns how many runs they started (and awaits them)."""
    started = [task for tasks in await asyncio.gather(*(s.tick(now) for s in schedulers)) for task in tasks]
    await asyncio.gather(*started)
    return len(started)


async def runs_of(owner_engine, job: str, tenant: bool = False) -> list[Any]:
    where = "tenant_id is not null" if tenant else "tenant_id is null"
    async with owner_engine.connect() as connection:
        return list((await connection.execute(text(
            f"select * from job_run where job = :job and {where} order by scheduled_for, tenant_id"),
            {"job": job})).all())


async def test_two_schedulers_run_each_job_once(server: Server, owner_engine, world: TenantWorld) -> None:
    """The registry's own jobs on two replicas sharing the database, from 01:58 to 02:06 every 20 seconds."""
    start = a_base_time() + timedelta(hours=1, minutes=58)
    clock = [start]
    replicas = [Scheduler(JOBS, context_of(server), clock=lambda: clock[0]) for _ in range(2)]
    started = 0
    now = start
    while now <= start + timedelta(minutes=8):
        clock[0] = now
        started += await tick(now, *replicas)
        now += timedelta(seconds=20)
    minutes = [start + timedelta(minutes=m) for m in range(9)]
    expected = {"dispatch-outbox": minutes,
                "release-expired-reservations": [t for t in minutes if t.minute % 5 == 0],
                "process-vendor-payouts": [start + timedelta(minutes=2)],
                "sync-to-payload": [start + timedelta(minutes=2)], "sync-from-payload": [start + timedelta(minutes=2)],
                "process-billing-cycles": [start + timedelta(minutes=7)]}
    for job, ticks in expected.items():
        runs = [run for run in await runs_of(owner_engine, job) if start <= run.scheduled_for <= now]
        assert [run.scheduled_for for run in runs] == ticks, job
        assert all(run.outcome == "ok" and run.finished_at is not None for run in runs), [
            (run.outcome, run.error) for run in runs]
    assert started == sum(len(ticks) for ticks in expected.values())  # the losers of each race started nothing
    payouts = next(run for run in await runs_of(owner_engine, "process-vendor-payouts")
                   if run.scheduled_for == start + timedelta(minutes=2))
    assert payouts.counts["tenants"] >= 1 and payouts.counts["failed"] == 0, payouts.counts
    assert str(world.tenant_id) in payouts.counts["results"]  # paid tenant by tenant, each with its part's row
    parts = [run for run in await runs_of(owner_engine, "process-vendor-payouts", tenant=True)
             if run.scheduled_for == payouts.scheduled_for]
    assert len(parts) == payouts.counts["tenants"] and {part.outcome for part in parts} == {"ok"}


async def test_missed_ticks_are_caught_up_once_after_downtime(server: Server, owner_engine) -> None:
    calls: list[datetime] = []
    clock: list[datetime] = []

    async def remember(_context: JobContext) -> JobResult:
        calls.append(clock[0])
        return {"calls": len(calls)}

    job = a_job(remember, "*/10 * * * *")
    base = a_base_time()
    clock.append(base + timedelta(minutes=5))
    # A job that never ran starts with the first tick after the scheduler started, not the one before it.
    first = Scheduler({job.name: job}, context_of(server), clock=lambda: clock[0])
    assert await tick(clock[0], first) == 0
    clock[0] = base + timedelta(minutes=10)
    assert await tick(clock[0], first) == 1
    # Down for three hours (18 ticks missed); a new replica catches up the latest missed tick, once.
    clock[0] = base + timedelta(hours=3, minutes=15)
    restarted = Scheduler({job.name: job}, context_of(server), clock=lambda: clock[0])
    assert await tick(clock[0], restarted) == 1
    assert await tick(clock[0] + timedelta(minutes=4), restarted) == 0
    assert await tick(base + timedelta(hours=3, minutes=20), restarted) == 1
    runs = await runs_of(owner_engine, job.name)
    assert [run.scheduled_for for run in runs] == [base + timedelta(minutes=10), base + timedelta(hours=3, minutes=10),
                                                   base + timedelta(hours=3, minutes=20)]
    assert len(calls) == 3 and [run.counts for run in runs] == [{"calls": 1}, {"calls": 2}, {"calls": 3}]
    # Lag is the time from the tick to the start: the caught-up run started 5 minutes late.
    assert REGISTRY.get_sample_value("cityos_job_run_lag_seconds_count", {"job": job.name}) == 3
    assert REGISTRY.get_sample_value("cityos_job_run_lag_seconds_sum", {"job": job.name}) == pytest.approx(300)


async def test_a_failing_job_is_recorded_and_the_next_tick_still_runs(server: Server, owner_engine) -> None:
    attempts: list[int] = []

    async def flaky(_context: JobContext) -> JobResult:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("the first run breaks")
        return "2 things done"

    job = a_job(flaky, "* * * * *")
    base = a_base_time()
    scheduler = Scheduler({job.name: job}, context_of(server), clock=lambda: base)
    assert await tick(base, scheduler) == 1
    assert await tick(base + timedelta(minutes=1), scheduler) == 1
    failed, ok = await runs_of(owner_engine, job.name)
    assert (failed.outcome, failed.error) == ("failed", "RuntimeError: the first run breaks")
    assert failed.finished_at is not None and failed.started_at <= failed.finished_at
    assert (ok.outcome, ok.error, ok.counts) == ("ok", None, {"summary": "2 things done"})
    assert REGISTRY.get_sample_value("cityos_job_runs_total", {"job": job.name, "outcome": "failed"}) == 1
    assert REGISTRY.get_sample_value("cityos_job_runs_total", {"job": job.name, "outcome": "ok"}) == 1
    assert REGISTRY.get_sample_value("cityos_job_run_duration_seconds_count", {"job": job.name}) == 2


async def test_a_run_past_its_timeout_is_cancelled_and_recorded(server: Server, owner_engine) -> None:
    async def slow(_context: JobContext) -> JobResult:
        await asyncio.sleep(30)
        return "never"

    job = a_job(slow, "* * * * *", timeout=0.2)
    base = a_base_time()
    scheduler = Scheduler({job.name: job}, context_of(server), clock=lambda: base)
    assert await asyncio.wait_for(tick(base, scheduler), 10) == 1
    [run] = await runs_of(owner_engine, job.name)
    assert (run.outcome, run.error) == ("timeout", "did not finish within 0.2 s")


async def test_per_tenant_jobs_run_tenant_by_tenant_in_scope(server: Server, owner_engine, world: TenantWorld,
                                                             other_world: TenantWorld) -> None:
    async def in_scope(context: JobContext) -> JobResult:
        # The job opens its transactions in the tenant it is called for: row-level security shows it only the
        # tenant's own stores.
        async with tenant_transaction(context.engine, context.tenant) as connection:
            tenants = (await connection.execute(text("select distinct tenant_id from store"))).scalars().all()
        if context.tenant == world.tenant_id:
            raise ValueError("this tenant's data is broken")
        return {"stores_of_other_tenants": len([t for t in tenants if t != context.tenant])}

    job = a_job(in_scope, "0 * * * *", per_tenant=True)
    base = a_base_time()
    scheduler = Scheduler({job.name: job}, context_of(server), clock=lambda: base)
    assert await tick(base, scheduler) == 1
    [run] = await runs_of(owner_engine, job.name)
    assert run.outcome == "failed"
    assert run.counts["failed"] == 1 and run.counts["ok"] == run.counts["tenants"] - 1 >= 1
    assert run.error == f"1 tenant(s) failed: {world.tenant_id}: ValueError: this tenant's data is broken"
    parts = {part.tenant_id: part for part in await runs_of(owner_engine, job.name, tenant=True)}
    assert len(parts) == run.counts["tenants"]
    assert (parts[world.tenant_id].outcome, parts[world.tenant_id].error) == (
        "failed", "ValueError: this tenant's data is broken")
    assert (parts[other_world.tenant_id].outcome, parts[other_world.tenant_id].counts) == (
        "ok", {"stores_of_other_tenants": 0})
    assert run.counts["results"][str(other_world.tenant_id)] == "stores_of_other_tenants 0"
    assert REGISTRY.get_sample_value("cityos_job_tenant_failures_total", {"job": job.name}) == 1


async def test_job_runs_are_visible_to_platform_admins_and_their_tenants_admins(
        server: Server, owner_engine, world: TenantWorld, other_world: TenantWorld, gql: GraphQLClient,
        tokens: Tokens) -> None:
    async def per_tenant(context: JobContext) -> JobResult:
        return {"tenant": str(context.tenant)}

    job = a_job(per_tenant, "0 * * * *", per_tenant=True)
    base = a_base_time()
    scheduler = Scheduler({job.name: job}, context_of(server), clock=lambda: base)
    assert await tick(base, scheduler) == 1

    platform = await gql(JOB_RUNS, {"job": job.name, "first": 1}, token=tokens("super_admin"))
    assert "errors" not in platform, platform
    listed = platform["data"]["jobRuns"]
    assert listed["totalCount"] >= 3  # the whole run and each tenant's part
    assert listed["pageInfo"]["hasNextPage"] and len(listed["nodes"]) == 1
    nodes, page = list(listed["nodes"]), listed["pageInfo"]
    while page["hasNextPage"]:  # one part per active tenant of the database: page through them all
        rest = (await gql(JOB_RUNS, {"job": job.name, "first": 100, "after": page["endCursor"]},
                          token=tokens("super_admin")))["data"]["jobRuns"]
        nodes, page = nodes + rest["nodes"], rest["pageInfo"]
    assert len(nodes) == listed["totalCount"] and len({node["id"] for node in nodes}) == len(nodes)
    whole = [node for node in nodes if node["tenant"] is None]
    assert len(whole) == 1 and whole[0]["outcome"] == "OK" and whole[0]["counts"]["failed"] == 0
    assert whole[0]["durationSeconds"] >= 0 and whole[0]["scheduledFor"].startswith(base.strftime("%Y-%m-%dT%H"))

    own = await gql(JOB_RUNS, {"job": job.name, "first": 50}, token=tokens("tenant_admin", world))
    [mine] = own["data"]["jobRuns"]["nodes"]
    assert mine["counts"] == {"tenant": str(world.tenant_id)} and mine["outcome"] == "OK", own
    assert own["data"]["jobRuns"]["totalCount"] == 1
    others = await gql(JOB_RUNS, {"job": job.name, "first": 50}, token=tokens("tenant_admin", other_world))
    assert [node["counts"] for node in others["data"]["jobRuns"]["nodes"]] == [{"tenant": str(other_world.tenant_id)}]

    for role in ("store_admin", "vendor_admin", "customer"):
        body = await gql(JOB_RUNS, {"job": job.name, "first": 50},
                         token=tokens(role, world, stores=[str(world.store_id)]),
                         key=world.key if role == "customer" else None)
        assert body["data"]["jobRuns"]["totalCount"] == 0 and body["data"]["jobRuns"]["nodes"] == [], (role, body)
    anonymous = await gql(JOB_RUNS, {"job": job.name, "first": 50}, key=world.key)
    assert not ((anonymous.get("data") or {}).get("jobRuns") or {}).get("nodes"), anonymous


async def test_run_now_records_manual_runs_and_skips_a_claimed_tick(server: Server, owner_engine) -> None:
    async def once(_context: JobContext) -> JobResult:
        return "done"

    job = a_job(once, "0 2 * * *")
    base = a_base_time() + timedelta(hours=2)
    context = context_of(server)
    manual = await run_now(job, context, base + timedelta(hours=5))
    assert (manual.trigger, manual.outcome, manual.counts) == ("manual", "ok", {"summary": "done"})
    # What a CronJob calls: the latest tick, unless a scheduler (or another pod) has claimed it.
    scheduled = await run_now(job, context, base + timedelta(hours=5), on_schedule=True)
    assert (scheduled.trigger, scheduled.scheduled_for) == ("schedule", base)
    assert await run_now(job, context, base + timedelta(hours=6), on_schedule=True) is None
    scheduler = Scheduler({job.name: job}, context, clock=lambda: base + timedelta(hours=7))
    assert await tick(base + timedelta(hours=7), scheduler) == 0


async def test_serve_runs_the_scheduler_and_stops_it_cleanly(settings, server: Server) -> None:
    """The app's lifespan starts the scheduler (CITYOS_SCHEDULER on) and stops it on shutdown; requests are
    answered while it waits for the next tick (it never blocks the event loop)."""
    on = settings.model_copy(update={"CITYOS_SCHEDULER": True})
    app = create_app(on, server.services)
    uvicorn_server, task, port = await serve_asgi(app)
    try:
        scheduler = app.state.scheduler
        assert isinstance(scheduler, Scheduler) and set(scheduler.jobs) == set(JOBS)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            for _ in range(3):
                assert (await client.get("/health/live")).status_code == 200
        loop_task = scheduler._loop_task
        assert loop_task is not None and not loop_task.done()
    finally:
        uvicorn_server.should_exit = True
        await asyncio.wait_for(task, 20)
    assert loop_task.done() and scheduler._loop_task is None
    off = create_app(settings, server.services)
    uvicorn_server, task, _ = await serve_asgi(off)
    uvicorn_server.should_exit = True
    await task
    assert off.state.scheduler is None


async def test_a_run_abandoned_by_a_dead_replica_is_recorded_as_failed(server: Server, owner_engine) -> None:
    """A replica died mid-run: its row says `running` for ever. Past the job's timeout plus the grace, the next
    tick of any replica records it as failed ("abandoned"); a run still within its timeout is left alone."""
    job = a_job(lambda _context: asyncio.sleep(0, "done"), "0 0 1 1 *", timeout=60)
    base = a_base_time()
    async with owner_engine.begin() as connection:
        for age, tick_at in ((3600, base - timedelta(days=2)), (30, base - timedelta(days=1))):
            await connection.execute(text(
                "insert into job_run (id, job, scheduled_for, trigger, started_at, outcome) values "
                "(:id, :job, :at, 'schedule', clock_timestamp() - make_interval(secs => :age), 'running')"),
                {"id": uuid.uuid4(), "job": job.name, "at": tick_at, "age": age})
    scheduler = Scheduler({job.name: job}, context_of(server), clock=lambda: base)
    await tick(base, scheduler)
    old, recent = await runs_of(owner_engine, job.name)
    assert (old.outcome, old.error.startswith("abandoned")) == ("failed", True) and old.finished_at is not None
    assert (recent.outcome, recent.error, recent.finished_at) == ("running", None, None)
    abandoned = REGISTRY.get_sample_value("cityos_job_runs_total", {"job": job.name, "outcome": "abandoned"})
    assert abandoned == 1.0


async def test_prune_job_runs_deletes_old_finished_runs_only(server: Server, owner_engine) -> None:
    job = a_job(lambda _context: asyncio.sleep(0, "done"), "0 0 1 1 *")
    rows = {"old-finished": (40, "ok"), "old-running": (40, "running"), "recent": (5, "failed")}
    async with owner_engine.begin() as connection:
        for index, (days, outcome) in enumerate(rows.values()):
            await connection.execute(text(
                "insert into job_run (id, job, scheduled_for, trigger, started_at, outcome) values "
                "(:id, :job, now() - make_interval(days => :days, secs => :index), 'manual', "
                "now() - make_interval(days => :days), :outcome)"),
                {"id": uuid.uuid4(), "job": job.name, "days": days, "index": index, "outcome": outcome})
    prune = JOBS["prune-job-runs"]
    assert prune.schedule == "30 4 * * *"
    result = await prune.run(context_of(server))
    assert result["deleted"] >= 1
    left = sorted(row.outcome for row in await runs_of(owner_engine, job.name))
    assert left == ["failed", "running"]
