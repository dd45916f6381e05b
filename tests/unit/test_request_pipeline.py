"""Per-request costs stay per request: no schema extension hooks into every field's resolution (graphql-core then
wraps every resolver in a middleware call), so logging, metrics and request scoping cost once per operation."""

from __future__ import annotations

from strawberry.extensions import SchemaExtension

from cityos.graphql.schema import schema


def test_no_schema_extension_runs_per_field() -> None:
    extensions = [extension() if not isinstance(extension, SchemaExtension) else extension
                  for extension in schema.extensions]
    assert len(extensions) >= 10
    for extension in extensions:
        assert type(extension).resolve is SchemaExtension.resolve, type(extension).__name__
