"""The alert rules and dashboards of deploy/: promtool checks the rules and runs their unit tests
(deploy/prometheus/alerts.test.yaml), the committed dashboards are the generator's, and every metric they name is
one the API exports (a renamed metric must not leave an alert silently watching nothing)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

from prometheus_client import REGISTRY

import cityos.app  # noqa: F401 (registers every metric of the API)

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
METRIC = re.compile(r"\bcityos_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def promtool(*arguments: str) -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool (Debian's prometheus package) is needed: `make test` installs it"
    run = subprocess.run([binary, *arguments], cwd=PROMETHEUS, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def generator():
    spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exported() -> set[str]:
    return {family.name for family in REGISTRY.collect()}


def base_name(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_alert_rules_are_valid_and_their_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("check", "rules", "alerts.yaml")
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yaml")


def test_the_committed_dashboards_are_generated() -> None:
    module = generator()
    for name in module.DASHBOARDS:
        assert (GRAFANA / f"{name}.json").read_text() == module.render(name), \
            f"deploy/grafana/{name}.json is stale: run python deploy/grafana/generate.py"


def test_every_metric_named_by_alerts_adapter_and_dashboards_is_exported() -> None:
    known = {base_name(name) for name in exported()}
    named = set()
    for path in [PROMETHEUS / "alerts.yaml", PROMETHEUS / "adapter.yaml", *GRAFANA.glob("*.json")]:
        named |= {base_name(name) for name in METRIC.findall(path.read_text())}
    named.discard("cityos_http_request_duration_p95_seconds")  # the adapter's own name for the HPA
    assert named, "no metric found"
    assert named <= known, f"not exported by the API: {sorted(named - known)}"
