"""Scheduled jobs: `cityos jobs run NAME` runs one (what a Kubernetes CronJob calls), `cityos jobs list` names
them. Each job is idempotent and takes its work with FOR UPDATE SKIP LOCKED, so two runners never collide."""
