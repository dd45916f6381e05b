from __future__ import annotations

from pathlib import Path

from cityos.graphql.schema import schema
from graphql import build_schema, parse, validate
from tests.operations import all_operations

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "graphql" / "schema.graphql"


def test_exported_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text() == schema.export_sdl(), (
        "graphql/schema.graphql is stale: run `cityos schema export`")


def test_standard_tools_parse_the_exported_schema() -> None:
    """graphql-core builds a schema from the file (federation directives defined in it); graphql-js does the same
    in tests/clients/test_federation.py."""
    built = build_schema(SCHEMA_FILE.read_text())
    assert built.get_directive("key") is not None and built.get_directive("link") is not None
    assert built.query_type is not None and "_entities" in built.query_type.fields


def test_every_operation_document_validates_against_the_file() -> None:
    built = build_schema(SCHEMA_FILE.read_text())
    invalid = {name: [error.message for error in errors] for name, document in all_operations().items()
               if (errors := validate(built, parse(document)))}
    assert invalid == {}
