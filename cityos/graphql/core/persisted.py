"""Persisted queries: Apollo's automatic persisted queries protocol, and an allow-list mode for production.

A request may send `extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}` with or without `query`:
- hash only, known → the stored document runs; unknown → `PERSISTED_QUERY_NOT_FOUND` (the client resends the
  query with the hash, which registers it);
- query and hash → the hash must be the SHA-256 of the query (else BAD_USER_INPUT), and the document is stored.

`CITYOS_PERSISTED_QUERIES`:
- `automatic` (default): the above; documents without a hash run as usual. Registered documents live in a
  bounded per-process LRU (a replica that lacks one answers NOT_FOUND and the client resends it).
- `allowlist`: only the documents in `graphql/operations/` run, named by hash or sent as their exact text;
  anything else is `PERSISTED_QUERY_NOT_ALLOWED`, and nothing new is registered.
- `off`: persisted-query extensions are refused with `PERSISTED_QUERY_NOT_SUPPORTED`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from cityos.operations import document_hash, known_operations
from graphql import GraphQLError

MAX_REGISTERED = 10_000
MAX_DOCUMENT_BYTES = 64 * 1024


class DocumentStore:
    def __init__(self, limit: int = MAX_REGISTERED) -> None:
        self.limit = limit
        self._documents: OrderedDict[str, str] = OrderedDict()

    def get(self, digest: str) -> str | None:
        document = self._documents.get(digest)
        if document is not None:
            self._documents.move_to_end(digest)
        return document

    def put(self, digest: str, document: str) -> None:
        self._documents[digest] = document
        self._documents.move_to_end(digest)
        while len(self._documents) > self.limit:
            self._documents.popitem(last=False)


REGISTERED = DocumentStore()


def _error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def _requested_hash(extensions: dict[str, Any] | None) -> str | None:
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict) or persisted.get("version") != 1 or not isinstance(
            persisted.get("sha256Hash"), str):
        raise _error("extensions.persistedQuery must be {version: 1, sha256Hash: <hex>}", "BAD_USER_INPUT")
    digest: str = persisted["sha256Hash"].lower()
    return digest


class PersistedQueries(SchemaExtension):
    """Must come first among the extensions: it supplies the document before anything else looks at it."""

    def on_operation(self) -> Iterator[None]:
        settings = getattr(self.execution_context.context, "settings", None)
        self.mode = settings.CITYOS_PERSISTED_QUERIES if settings is not None else "automatic"
        self._resolve_document()
        yield

    def _resolve_document(self) -> None:
        context = self.execution_context
        digest = _requested_hash(context.operation_extensions)
        if self.mode == "off":
            if digest is not None:
                raise _error("persisted queries are not supported here", "PERSISTED_QUERY_NOT_SUPPORTED")
            return
        allowed = known_operations().by_hash
        if self.mode == "allowlist":
            digest = digest or (document_hash(context.query) if context.query else None)
            if digest is None or digest not in allowed:
                raise _error("only the operations of graphql/operations may run here (by sha256 hash)",
                             "PERSISTED_QUERY_NOT_ALLOWED")
            if context.query is not None and document_hash(context.query) != digest:
                raise _error("provided sha does not match query", "BAD_USER_INPUT")
            context.query = allowed[digest]
            return
        if digest is None:
            return
        if context.query is None:
            stored = allowed.get(digest) or REGISTERED.get(digest)
            if stored is None:
                raise _error("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
            context.query = stored
            return
        if document_hash(context.query) != digest:
            raise _error("provided sha does not match query", "BAD_USER_INPUT")
        if len(context.query.encode()) <= MAX_DOCUMENT_BYTES:
            REGISTERED.put(digest, context.query)
