"""The Kubernetes manifests (deploy/k8s): each overlay renders with kustomize (`kubectl kustomize`), every resource
validates strictly against the target Kubernetes version's schemas, the configuration names exactly the settings
of cityos/config.py and is valid for production, and the API's pods keep the hardening the deployment relies on."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from cityos.config import Settings
from cityos.jobs.registry import JOBS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
TARGET_VERSION = "1.33.0"
OVERLAYS = ("staging", "production")
# Settings that exist for development and tests only, and must not be set in a cluster.
DEVELOPMENT_ONLY = {"CITYOS_STRIPE_API_BASE": "points the Stripe SDK at the test suite's fake Stripe"}
# Strong stand-ins for the Secret's placeholders: what an operator's secret store would hold.
SECRET_VALUES = {
    "DATABASE_URL": "postgresql+asyncpg://cityos:" + "p" * 40 + "@postgres:5432/cityos",
    "REDIS_URL": "redis://:" + "r" * 40 + "@redis:6379/0",
    "DATABASE_READ_URL": "postgresql+asyncpg://cityos:" + "p" * 40 + "@postgres-replica:5432/cityos",
    "STRIPE_API_KEY": "sk_live_" + "k" * 40,
    "STRIPE_WEBHOOK_SECRET": "whsec_" + "w" * 40,
    "ERPNEXT_API_KEY": "e" * 15,
    "ERPNEXT_API_SECRET": "f" * 15,
    "SENTRY_DSN": "",
    "CITYOS_SMTP_URL": "smtps://notices:" + "m" * 40 + "@smtp.cityos.example:465",
}


def render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is needed: `make test` installs it"
    output = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / overlay)], check=True,
                            capture_output=True, text=True).stdout
    return [document for document in yaml.safe_load_all(output) if document]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(request.param)


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [document for document in documents if document["kind"] == kind]


def one(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [document for document in of_kind(documents, kind) if document["metadata"]["name"] == name]
    return found


def base_secret_keys() -> set[str]:
    secret = yaml.safe_load((K8S / "base" / "secret.yaml").read_text())
    return set(secret["stringData"])


def test_every_resource_validates_strictly(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, documents = rendered
    for document in documents:
        kubernetes_validate.validate(document, TARGET_VERSION, strict=True)


def test_the_configuration_names_exactly_the_settings(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, documents = rendered
    config = set(one(documents, "ConfigMap", "cityos-config")["data"])
    secrets = base_secret_keys()
    assert not config & secrets, "a setting is both in the ConfigMap and in the Secret"
    expected = set(Settings.model_fields) - set(DEVELOPMENT_ONLY)
    assert config | secrets == expected, (
        f"missing from deploy/k8s: {sorted(expected - config - secrets)}; "
        f"unknown settings in deploy/k8s: {sorted((config | secrets) - expected)}")


def test_the_configuration_is_valid_in_production(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    overlay, documents = rendered
    environment = dict(one(documents, "ConfigMap", "cityos-config")["data"])
    for key in base_secret_keys():
        environment[key] = SECRET_VALUES.get(key, f"{key.lower()}-" + "s" * 40)
    if overlay == "staging":  # Stripe in test mode: keys of the same mode
        environment["STRIPE_API_KEY"] = "sk_test_" + "k" * 40
    settings = Settings(**environment)
    assert settings.is_production
    assert settings.problems() == []
    assert settings.CERBOS_URL == "grpc://127.0.0.1:3593"  # the sidecar
    assert settings.CITYOS_SCHEDULER is False  # the CronJobs run the jobs


def test_the_placeholder_secret_is_refused_in_production() -> None:
    secret = yaml.safe_load((K8S / "base" / "secret.yaml").read_text())["stringData"]
    config = yaml.safe_load((K8S / "base" / "config.yaml").read_text())["data"]
    problems = Settings(**config, **secret).problems()
    assert any(problem.startswith("JWT_SECRET") for problem in problems)


def test_production_does_not_apply_the_placeholder_secret() -> None:
    assert not of_kind(render("production"), "Secret")


def test_api_pods_are_hardened_and_probed(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, documents = rendered
    deployment = one(documents, "Deployment", "cityos-api")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    containers = pod["containers"] + pod["initContainers"]
    for container in containers:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, container["name"]
        assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
        assert {"requests", "limits"} <= set(container["resources"]), container["name"]
        assert "memory" in container["resources"]["limits"], container["name"]
    [api] = pod["containers"]
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["startupProbe"]["httpGet"]["path"] == "/health/live"
    cerbos = next(container for container in pod["initContainers"] if container["name"] == "cerbos")
    assert cerbos["restartPolicy"] == "Always"  # a native sidecar: up before the API, down after it
    # Termination: preStop, then uvicorn's graceful shutdown (10 s), within the grace period.
    assert pod["terminationGracePeriodSeconds"] > api["lifecycle"]["preStop"]["sleep"]["seconds"] + 10 + 5
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_scaling_disruption_ingress_and_network(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    overlay, documents = rendered
    hpa = one(documents, "HorizontalPodAutoscaler", "cityos-api")
    metrics = {metric["type"] for metric in hpa["spec"]["metrics"]}
    assert metrics == {"Resource", "Pods"}  # CPU and request latency
    if overlay == "production":
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
        assert one(documents, "PodDisruptionBudget", "cityos-api")["spec"]["minAvailable"] >= 1
    ingress = one(documents, "Ingress", "cityos-api")
    hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
    assert any(host.startswith("*.") for host in hosts)  # tenants' store subdomains
    assert set(hosts) <= set(ingress["spec"]["tls"][0]["hosts"])
    policies = {policy["metadata"]["name"] for policy in of_kind(documents, "NetworkPolicy")}
    assert {"cityos-default-deny", "cityos-api-ingress", "cityos-egress"} <= policies
    assert one(documents, "Job", "cityos-migrate")["spec"]["template"]["spec"]["containers"][0]["command"][-1] == \
        "migrate"


def test_the_cronjobs_are_the_registry(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, documents = rendered
    cronjobs = {cronjob["metadata"]["labels"]["cityos.dev/job"]: cronjob for cronjob in of_kind(documents, "CronJob")}
    assert set(cronjobs) == set(JOBS)
    for name, cronjob in cronjobs.items():
        assert cronjob["spec"]["schedule"] == JOBS[name].schedule
        pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert [source for source in pod["containers"][0]["envFrom"]] == [
            {"configMapRef": {"name": "cityos-config"}}, {"secretRef": {"name": "cityos-secrets"}}]
