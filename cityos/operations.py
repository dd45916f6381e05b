"""The operation documents our own storefront, admin and vendor apps send (`graphql/operations/`).

Their names are the only operation names that label metrics (any other name is `other`, so a client cannot grow
`/metrics`), and their SHA-256 hashes are the persisted-query allow-list.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from graphql import OperationDefinitionNode, parse

OPERATIONS_DIR = Path(__file__).resolve().parents[1] / "graphql" / "operations"


@dataclass(frozen=True)
class KnownOperations:
    by_hash: dict[str, str]  # sha256 hex digest of the document text → the document
    names: frozenset[str]


def document_hash(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


@lru_cache(maxsize=1)
def known_operations(directory: Path = OPERATIONS_DIR) -> KnownOperations:
    by_hash: dict[str, str] = {}
    names: set[str] = set()
    for path in sorted(directory.glob("*/*.graphql")):
        document = path.read_text()
        by_hash[document_hash(document)] = document
        names.update(definition.name.value for definition in parse(document).definitions
                     if isinstance(definition, OperationDefinitionNode) and definition.name)
    return KnownOperations(by_hash, frozenset(names))


def metric_name(operation_name: str | None) -> str:
    """The label value for an operation name: known names as they are, no name `anonymous`, the rest `other`."""
    if not operation_name:
        return "anonymous"
    return operation_name if operation_name in known_operations().names else "other"
