"""Writes the Grafana dashboards of deploy/grafana/*.json (`python deploy/grafana/generate.py`). The JSON files are
committed for provisioning; tests/unit/test_observability_rules.py fails when they differ from this generator or
name a metric the API does not export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
Panel = tuple[str, str, str]  # title, PromQL, unit


def panel(index: int, title: str, expr: str, unit: str) -> dict[str, Any]:
    return {
        "id": index + 1, "type": "timeseries", "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": (index % 2) * 12, "y": (index // 2) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": "A", "expr": expr, "legendFormat": "__auto"}],
    }


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "tags": ["cityos"], "timezone": "utc", "schemaVersion": 39, "version": 1,
        "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": [panel(index, *spec) for index, spec in enumerate(panels)],
    }


DASHBOARDS: dict[str, dict[str, Any]] = {
    "api": dashboard("cityos-api", "CityOS — API", [
        ("Requests by route and status", "sum by (route, status) (rate(cityos_http_requests_total[5m]))", "reqps"),
        ("5xx ratio", 'sum(rate(cityos_http_requests_total{status=~"5.."}[5m])) / '
                      "sum(rate(cityos_http_requests_total[5m]))", "percentunit"),
        ("GraphQL p95 by operation", "histogram_quantile(0.95, sum by (le, operation_name) "
                                     "(rate(cityos_graphql_operation_duration_seconds_bucket[5m])))", "s"),
        ("Operations by name", "sum by (operation_name, operation_type) "
                               "(rate(cityos_graphql_operations_total[5m]))", "ops"),
        ("GraphQL errors by code", "sum by (code) (rate(cityos_graphql_errors_total[5m]))", "ops"),
        ("Root fields: compiled vs fallback", "sum by (path) (rate(cityos_graphql_root_fields_total[5m]))", "ops"),
        ("Warm answers (compiled caches alone)", "sum(rate(cityos_graphql_warm_answers_total[5m]))", "ops"),
        ("HTTP p50 / p95 / p99", "histogram_quantile(0.95, sum by (le) "
                                 "(rate(cityos_http_request_duration_seconds_bucket[5m])))", "s"),
    ]),
    "dependencies": dashboard("cityos-dependencies", "CityOS — database and Cerbos", [
        ("Cerbos PDP p95", "histogram_quantile(0.95, sum by (le) (rate(cityos_pdp_call_duration_seconds_bucket[5m])))",
         "s"),
        ("Authorization decisions", "sum by (effect) (rate(cityos_authz_decisions_total[5m]))", "ops"),
        ("Fields denied", "sum(rate(cityos_authz_denied_fields_total[5m]))", "ops"),
        ("Embedded children up", "min by (service) (cityos_embedded_up)", "none"),
        ("Embedded restarts", "sum by (service) (increase(cityos_embedded_restarts_total[1h]))", "none"),
        ("UNAVAILABLE errors (database, PDP)", 'sum(rate(cityos_graphql_errors_total{code="UNAVAILABLE"}[5m]))',
         "ops"),
    ]),
    "jobs": dashboard("cityos-jobs", "CityOS — scheduled jobs", [
        ("Runs in the last 24 h by outcome", "sum by (job, outcome) (cityos_job_runs_last_24h)", "none"),
        ("Since the last successful run", "max by (job) (cityos_job_seconds_since_ok)", "s"),
        ("Run duration p95", "histogram_quantile(0.95, sum by (le, job) "
                             "(rate(cityos_job_run_duration_seconds_bucket[1h])))", "s"),
        ("Lag (tick → start) p95", "histogram_quantile(0.95, sum by (le, job) "
                                   "(rate(cityos_job_run_lag_seconds_bucket[1h])))", "s"),
        ("Tenant failures", "sum by (job) (increase(cityos_job_tenant_failures_total[1h]))", "none"),
    ]),
    "integrations": dashboard("cityos-integrations", "CityOS — integrations", [
        ("Webhooks by source and outcome", "sum by (source, status) (cityos_webhook_events)", "none"),
        ("Outbox depth (pending)", 'sum by (topic) (cityos_outbox_messages{status="pending"})', "none"),
        ("Dead letters", 'sum by (topic) (cityos_outbox_messages{status="dead"})', "none"),
        ("Outbox sent / failed", "sum(rate(cityos_outbox_sent_total[5m])) or sum(rate(cityos_outbox_failures_total"
                                 "[5m]))", "ops"),
        ("Sync lag by integration", "max by (integration) (cityos_sync_lag_seconds)", "s"),
        ("Sync failures in a row", "sum by (integration) (cityos_sync_failures)", "none"),
    ]),
    "business": dashboard("cityos-business", "CityOS — business", [
        ("Orders by status", "sum by (status) (cityos_orders)", "none"),
        ("GMV by tenant (minor units)", "sum by (tenant, currency) (cityos_gmv_minor_units)", "none"),
        ("Refunded (minor units)", 'sum by (tenant, currency) (cityos_refunded_minor_units{status!="failed"})', "none"),
        ("Refunds by status", "sum by (status) (cityos_refunds)", "none"),
        ("Quotes by status", "sum by (status) (cityos_quotes)", "none"),
        ("Approval requests by status", "sum by (status) (cityos_approval_requests)", "none"),
        ("Payouts by status", "sum by (status) (cityos_payouts)", "none"),
        ("Payout amounts (minor units)", "sum by (currency, status) (cityos_payout_amount_minor_units)", "none"),
        ("Recurring subscriptions by status", "sum by (status) (cityos_customer_subscriptions)", "none"),
        ("MRR by tenant (minor units a month)", "sum by (tenant, currency) (cityos_billing_mrr_minor_units)", "none"),
        ("Subscription churn (30 days)", "max by (tenant) (cityos_billing_churn_ratio)", "percentunit"),
        ("Failed renewals", "sum by (tenant) (increase(cityos_billing_failed_renewals_total[1d]))", "none"),
    ]),
}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name], indent=2, sort_keys=True) + "\n"


def main() -> None:
    for name in DASHBOARDS:
        (HERE / f"{name}.json").write_text(render(name))
        print(f"wrote deploy/grafana/{name}.json")


if __name__ == "__main__":
    main()
