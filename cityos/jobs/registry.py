"""The jobs of the platform, by name, with their deployed schedules (cron syntax)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.jobs.reservations import release_expired_reservations

JobFunction = Callable[[AsyncEngine], Awaitable[str]]


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str
    run: JobFunction
    description: str


JOBS = {job.name: job for job in (
    Job("release-expired-reservations", "*/5 * * * *", release_expired_reservations,
        "Give stock reserved by abandoned checkouts back to their variants."),
)}
