"""Payload CMS 3's REST API (external-apis.md §5): `Authorization: <auth collection> API-Key <key>`,
`/api/{slug}` lists (`where[field][op]=…`, `limit`, `page`, `sort`, `depth`) in the paginated shape, `POST` → 201
`{doc, message}`, `PATCH /api/{slug}/{id}` → `{doc, message}`, errors `{"errors":[{message, …}]}`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(15.0, connect=3.0)


class PayloadError(Exception):
    def __init__(self, message: str, *, status: int | None = None, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


@dataclass(frozen=True)
class PayloadPage:
    docs: list[dict[str, Any]]
    total_docs: int
    page: int
    has_next_page: bool


def query_params(where: dict[str, Any], prefix: str = "where") -> list[tuple[str, str]]:
    """`{"a": {"equals": 1}}` → `where[a][equals]=1` (Payload's qs syntax; lists become `[0]`, `[1]`, …)."""
    params: list[tuple[str, str]] = []
    for key, value in where.items():
        name = f"{prefix}[{key}]"
        if isinstance(value, dict):
            params.extend(query_params(value, name))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    params.extend(query_params(item, f"{name}[{index}]"))
                else:
                    params.append((f"{name}[{index}]", str(item)))
        else:
            params.append((name, "true" if value is True else "false" if value is False else str(value)))
    return params


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        errors = body.get("errors") if isinstance(body, dict) else None
        message = "; ".join(str(error.get("message")) for error in errors if isinstance(error, dict)) if errors \
            else str(body.get("message") or response.text)
    except ValueError:
        message = response.text
    retryable = response.status_code >= 500 or response.status_code in (408, 429)
    raise PayloadError(f"Payload {response.status_code}: {message}"[:500], status=response.status_code,
                       retryable=retryable)


class PayloadClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: str, auth_collection: str = "users") -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"{auth_collection} API-Key {api_key}", "Accept": "application/json"}

    async def _send(self, method: str, path: str, *, params: list[tuple[str, str]] | None = None,
                    body: dict[str, Any] | None = None) -> Any:
        try:
            response = await self.http.request(method, f"{self.base_url}/api{path}",
                                               params=tuple(params or ()), json=body,
                                               headers=self.headers, timeout=TIMEOUT)
        except httpx.HTTPError as error:
            raise PayloadError(f"Payload unreachable: {type(error).__name__}", retryable=True) from error
        _raise_for(response)
        return response.json()

    async def find(self, collection: str, where: dict[str, Any], *, page: int = 1, limit: int = 50,
                   sort: str | None = None, depth: int = 1) -> PayloadPage:
        params = [*query_params(where), ("page", str(page)), ("limit", str(limit)), ("depth", str(depth))]
        if sort:
            params.append(("sort", sort))
        body = await self._send("GET", f"/{collection}", params=params)
        return PayloadPage(docs=list(body["docs"]), total_docs=int(body["totalDocs"]), page=int(body["page"]),
                           has_next_page=bool(body["hasNextPage"]))

    async def create(self, collection: str, data: dict[str, Any]) -> dict[str, Any]:
        doc: dict[str, Any] = (await self._send("POST", f"/{collection}", body=data))["doc"]
        return doc

    async def update(self, collection: str, document_id: str, data: dict[str, Any]) -> dict[str, Any]:
        doc: dict[str, Any] = (await self._send("PATCH", f"/{collection}/{document_id}", body=data))["doc"]
        return doc

    async def upsert(self, collection: str, data: dict[str, Any], known_id: str | None) -> str:
        """Create or update the document keyed by `data["cityosId"]`; returns its Payload id. With the id we
        recorded, a PATCH; else (or when that document is gone) a look-up by cityosId before any create, so a
        run that died after Payload created a document never creates a second one."""
        if known_id is not None:
            try:
                return str((await self.update(collection, known_id, data))["id"])
            except PayloadError as error:
                if error.status != 404:
                    raise
        found = await self.find(collection, {"cityosId": {"equals": data["cityosId"]}}, limit=1, depth=0)
        if found.docs:
            return str((await self.update(collection, str(found.docs[0]["id"]), data))["id"])
        return str((await self.create(collection, data))["id"])
