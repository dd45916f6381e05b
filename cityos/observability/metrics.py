"""Prometheus metrics: HTTP requests and latency by route, GraphQL operations, errors by code, embedded
children's restarts, scheduled job runs (duration, outcome, lag)."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from strawberry.extensions import SchemaExtension

from cityos.observability.tracing import tracer
from cityos.operations import metric_name
from graphql import GraphQLError

HTTP_REQUESTS = Counter("cityos_http_requests_total", "HTTP requests", ["route", "method", "status"])
HTTP_LATENCY = Histogram("cityos_http_request_duration_seconds", "HTTP request latency", ["route", "method"])
GRAPHQL_OPERATIONS = Counter("cityos_graphql_operations_total", "GraphQL operations",
                             ["operation_name", "operation_type"])
GRAPHQL_LATENCY = Histogram("cityos_graphql_operation_duration_seconds", "GraphQL operation latency",
                            ["operation_name", "operation_type"])
GRAPHQL_ERRORS = Counter("cityos_graphql_errors_total", "GraphQL errors by code", ["code"])
EMBEDDED_RESTARTS = Counter("cityos_embedded_restarts_total",
                            "Restart attempts of an embedded child process (postgres, cerbos) after it exited",
                            ["service"])
EMBEDDED_UP = Gauge("cityos_embedded_up", "1 while the embedded child process runs, 0 while it is down or given up",
                    ["service"])
# Scheduled jobs (cityos/jobs/scheduler.py). Alert on cityos_job_runs_total{outcome!="ok"} increasing, or on
# time() - cityos_job_last_success_timestamp_seconds exceeding a job's period.
JOB_BUCKETS = (0.05, 0.25, 1, 5, 15, 60, 300, 900, 1800, 3600)
JOB_RUNS = Counter("cityos_job_runs_total", "Finished scheduled job runs by outcome (ok, failed, timeout, abandoned)",
                   ["job", "outcome"])
JOB_DURATION = Histogram("cityos_job_run_duration_seconds", "Duration of scheduled job runs", ["job"],
                         buckets=JOB_BUCKETS)
JOB_LAG = Histogram("cityos_job_run_lag_seconds", "Seconds from a run's scheduled tick to its start", ["job"],
                    buckets=JOB_BUCKETS)
JOB_TENANT_FAILURES = Counter("cityos_job_tenant_failures_total",
                              "Tenants whose part of a per-tenant job run failed", ["job"])
JOB_LAST_SUCCESS = Gauge("cityos_job_last_success_timestamp_seconds",
                         "Unix time when the job last finished ok", ["job"])
# Recurring billing, per tenant (label: the tenant's slug), refreshed by the billing jobs (cityos/jobs/billing.py).
BILLING_ACTIVE = Gauge("cityos_billing_active_subscriptions",
                       "Customer subscriptions trialing, active or past due", ["tenant"])
BILLING_MRR = Gauge("cityos_billing_mrr_minor_units",
                    "Monthly recurring revenue of active and past-due subscriptions, normalized to a month, in minor "
                    "units", ["tenant", "currency"])
BILLING_CHURN = Gauge("cityos_billing_churn_ratio",
                      "Subscriptions canceled in the last 30 days over those live in that window", ["tenant"])
BILLING_FAILED_RENEWALS = Counter("cityos_billing_failed_renewals_total",
                                  "Renewal charges declined (including those needing the customer's authentication)",
                                  ["tenant"])


def error_code(error: GraphQLError) -> str:
    extensions = error.extensions or {}
    code = extensions.get("code")
    if code:
        return str(code)
    return "GRAPHQL_VALIDATION_FAILED" if error.original_error is None else "INTERNAL_SERVER_ERROR"


def name_span(span: Any, operation_name: str | None, kind: str) -> None:
    """An operation's span named after it (when tracing records it)."""
    if span.is_recording():
        span.update_name(f"graphql {kind} {metric_name(operation_name)}")
        span.set_attribute("graphql.operation.name", operation_name or "")
        span.set_attribute("graphql.operation.type", kind)


def record_operation(operation_name: str | None, kind: str, started: float) -> None:
    """Count and time one operation (by its metric name and kind)."""
    count, latency = _operation_metrics(operation_name, kind)
    count.inc()
    latency.observe(time.perf_counter() - started)


@functools.lru_cache(maxsize=1024)
def _operation_metrics(operation_name: str | None, kind: str) -> tuple[Any, Any]:
    name = metric_name(operation_name)
    return GRAPHQL_OPERATIONS.labels(name, kind), GRAPHQL_LATENCY.labels(name, kind)


def _kind_of(context: Any) -> str:
    try:
        return str(context.operation_type.value)
    except Exception:  # invalid documents have no operation type
        return "unknown"


class GraphQLMetrics(SchemaExtension):
    """Counts and times each operation, and traces it as one span when tracing is on."""

    async def on_operation(self) -> AsyncIterator[None]:
        started = time.perf_counter()
        with tracer("cityos.graphql").start_as_current_span("graphql operation") as span:
            yield
            context = self.execution_context
            name_span(span, context.operation_name, _kind_of(context))
        self._record(started)

    def _record(self, started: float) -> None:
        context = self.execution_context
        record_operation(context.operation_name, _kind_of(context), started)
        result = context.result
        for error in (getattr(result, "errors", None) or []):
            GRAPHQL_ERRORS.labels(error_code(error)).inc()
