from __future__ import annotations

from pathlib import Path

from cityos.schema.api import schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "graphql" / "schema.graphql"


def test_exported_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text() == schema.as_str() + "\n", (
        "graphql/schema.graphql is stale: run `cityos schema export`")
