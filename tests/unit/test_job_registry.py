"""The job registry: schedules read by croniter, `cityos jobs list`, and the committed CronJob manifests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml
from typer.testing import CliRunner

from cityos.cli import app
from cityos.jobs.manifests import MANIFESTS_PATH, render
from cityos.jobs.registry import JOBS, Job
from cityos.jobs.scheduler import latest_tick, next_tick

# The deployment plan's schedules (DESIGN §7) for the jobs built so far, and ours.
PLAN = {"process-vendor-payouts": "0 2 * * *", "dispatch-outbox": "* * * * *",
        "release-expired-reservations": "*/5 * * * *"}


async def _nothing(_context: object) -> str:
    return "nothing"


def test_the_registry_has_the_plans_schedules() -> None:
    for name, schedule in PLAN.items():
        assert JOBS[name].schedule == schedule, name
    assert JOBS["process-vendor-payouts"].per_tenant
    assert not JOBS["dispatch-outbox"].per_tenant


def test_a_job_needs_a_valid_cron_schedule_and_timeout() -> None:
    with pytest.raises(ValueError, match="cron"):
        Job("bad", "every minute", _nothing, "x")
    with pytest.raises(ValueError, match="cron"):
        Job("bad", "0 0 * * * *", _nothing, "six fields (seconds) are not ours")
    with pytest.raises(ValueError, match="timeout"):
        Job("bad", "* * * * *", _nothing, "x", timeout=0)


def test_ticks_are_read_by_croniter() -> None:
    on_tick = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    assert latest_tick("0 2 * * *", on_tick) == on_tick  # a tick is due at its own instant
    assert latest_tick("0 2 * * *", on_tick.replace(minute=59, second=59)) == on_tick
    assert latest_tick("0 2 * * *", on_tick.replace(hour=1)) == datetime(2026, 2, 28, 2, 0, tzinfo=UTC)
    assert latest_tick("*/5 * * * *", datetime(2026, 3, 1, 10, 14, 59, 999999, tzinfo=UTC)) == \
        datetime(2026, 3, 1, 10, 10, tzinfo=UTC)
    assert next_tick("*/5 * * * *", datetime(2026, 3, 1, 10, 10, tzinfo=UTC)) == \
        datetime(2026, 3, 1, 10, 15, tzinfo=UTC)


def test_jobs_list_shows_every_job_with_its_schedule() -> None:
    result = CliRunner().invoke(app, ["jobs", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(JOBS)
    for job, line in zip(JOBS.values(), lines, strict=True):
        assert line.split()[0] == job.name
        assert f" {job.schedule} " in line
        assert ("per-tenant" in line) == job.per_tenant


def test_the_committed_cronjobs_match_the_registry() -> None:
    """Regenerate with `cityos jobs manifests` after changing cityos/jobs/registry.py."""
    committed = MANIFESTS_PATH.read_text()
    assert committed == render(JOBS), "deploy/k8s/base/cronjobs.yaml is stale: run `cityos jobs manifests`"
    documents = [document for document in yaml.safe_load_all(committed) if document]
    assert [document["metadata"]["name"] for document in documents] == [f"cityos-{name}" for name in JOBS]
    for document, job in zip(documents, JOBS.values(), strict=True):
        assert document["kind"] == "CronJob" and document["apiVersion"] == "batch/v1"
        assert document["spec"]["schedule"] == job.schedule
        assert document["spec"]["concurrencyPolicy"] == "Forbid"
        container = document["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][-3:] == ["run", job.name, "--on-schedule"]
        assert document["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"] > job.timeout


def test_jobs_manifests_writes_the_file(tmp_path) -> None:
    target = tmp_path / "k8s" / "cronjobs.yaml"
    result = CliRunner().invoke(app, ["jobs", "manifests", "--path", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text() == render(JOBS)
