"""prune-job-runs: the job-run history is kept for CITYOS_JOB_RUN_RETENTION_DAYS days, then deleted in batches
(runs still marked running are first ended by the scheduler's reclaim of abandoned runs, never deleted here)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.domain.platform.job_runs import prune_finished


async def prune_job_runs(engine: AsyncEngine, retention_days: int, now: datetime) -> dict[str, int]:
    return {"deleted": await prune_finished(engine, now - timedelta(days=retention_days))}
