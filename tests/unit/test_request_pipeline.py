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


def test_request_ids_are_32_hex_digits_and_never_repeat() -> None:
    from cityos.http.middleware import new_request_id

    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(request_id) == 32 and int(request_id, 16) >= 0 for request_id in ids)
    assert len({request_id[:20] for request_id in ids}) == 1  # this process's prefix, then its counter
