"""The runbooks and guides match the code: every alert has its runbook section, every GraphQL call they show
exists in the schema with the arguments they name, every `cityos` command and job they name exists, and the README
links every document."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from cityos.cli import app
from cityos.jobs.registry import JOBS
from graphql import build_schema

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").rglob("*.md"))
CALL = re.compile(r"`([a-z][a-zA-Z]*)\(([^`]*)\)")
COMMAND = re.compile(r"(?:python -m |`)cityos ((?:jobs|schema) )?([a-z]+)")
JOB_RUN = re.compile(r"cityos jobs run ([a-z-]+)")


def schema_fields() -> dict[str, set[str]]:
    """Field name → the argument names it takes (on any type)."""
    schema = build_schema((ROOT / "graphql" / "schema.graphql").read_text())
    fields: dict[str, set[str]] = {}
    for named in schema.type_map.values():
        for name, field in (getattr(named, "fields", None) or {}).items():
            fields.setdefault(name, set()).update(getattr(field, "args", {}) or {})
    return fields


def test_every_alert_has_its_runbook_section() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())
    runbook = (ROOT / "docs" / "runbooks" / "alerts.md").read_text()
    sections = set(re.findall(r"^## (\w+)$", runbook, re.MULTILINE))
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in alerts} == sections
    for rule in alerts:
        assert rule["annotations"]["runbook"] == f"docs/runbooks/alerts.md#{rule['alert'].lower()}"


def test_graphql_calls_in_the_docs_exist_with_their_arguments() -> None:
    fields = schema_fields()
    checked = 0
    for document in DOCS:
        for name, arguments in CALL.findall(document.read_text()):
            assert name in fields, f"{document.name}: `{name}` is not a field of the schema"
            named = set(re.findall(r"(?:^|,\s*)([a-zA-Z]+):", arguments))
            assert named <= fields[name], f"{document.name}: `{name}` takes no {sorted(named - fields[name])}"
            checked += 1
    assert checked > 10


def test_commands_and_jobs_in_the_docs_exist() -> None:
    commands = {command.name or command.callback.__name__ for command in app.registered_commands}
    groups = {group.name for group in app.registered_groups}
    for document in DOCS:
        text = document.read_text()
        for group, command in COMMAND.findall(text):
            assert (group.strip() in groups) if group else (command in commands), f"{document.name}: cityos {command}"
        for job in JOB_RUN.findall(text):
            assert job in JOBS, f"{document.name}: no job {job}"


def test_the_readme_links_every_document() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [str(document.relative_to(ROOT)) for document in DOCS if str(document.relative_to(ROOT)) not in readme]
    assert missing == []
