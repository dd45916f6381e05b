"""Field permissions in a compiled answer: the SQL puts a marker (`{"!denied": n}`) where a guarded field's
permission denies it; `unmask` turns each into null and the error the resolvers raise there (FieldPermission:
FORBIDDEN "<name> requires <action>" at the field's path and locations), and counts it as they do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cityos.auth.authz import DENIED_FIELDS
from cityos.errors import Forbidden
from graphql import GraphQLError, located_error

DENIED = "!denied"  # not a GraphQL name: no selection makes this key


def unmask(value: Any, path: list[str | int], denials: Sequence[Any], errors: list[GraphQLError]) -> Any:
    """`value` with every marker replaced by null; an error per marker appended to `errors`, in response order.
    `denials[n]` is the `selection.Guarded` entry of marker n."""
    if isinstance(value, dict):
        if len(value) == 1 and DENIED in value:
            entry = denials[value[DENIED]]
            guard = entry.guard
            errors.append(located_error(Forbidden(f"{guard.name} requires {guard.action}", action=guard.action),
                                        list(entry.nodes), path))
            DENIED_FIELDS.labels(guard.declaration.kind, guard.name).inc()
            return None
        return {key: unmask(item, [*path, key], denials, errors) for key, item in value.items()}
    if isinstance(value, list):
        return [unmask(item, [*path, index], denials, errors) for index, item in enumerate(value)]
    return value
