"""ERPNext / Frappe REST (external-apis.md §4): `Authorization: token <key>:<secret>`, `/api/resource/{Doctype}`
(doctype names URL-encoded), lists `{"data": [...]}` with JSON `fields`/`filters` and `limit_page_length`, a POST
answering `{"data": {doc}}`, errors `{"exc_type", "_server_messages"}` with 401/403/404/409/417/5xx."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

TIMEOUT = httpx.Timeout(20.0, connect=3.0)


class ERPNextError(Exception):
    def __init__(self, message: str, *, status: int | None = None, exc_type: str | None = None,
                 retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.exc_type = exc_type
        self.retryable = retryable


def _messages(body: dict[str, Any]) -> str:
    try:
        return "; ".join(str(json.loads(item).get("message", item)) for item in json.loads(
            body.get("_server_messages") or "[]"))
    except (ValueError, AttributeError, TypeError):
        return ""


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    exc_type = None
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("errors"):  # v2
            exc_type = str(body["errors"][0].get("type"))
            message = "; ".join(str(error.get("message")) for error in body["errors"])
        else:
            exc_type = body.get("exc_type")
            message = _messages(body) or str(body.get("exception") or body.get("message") or response.text)
    except ValueError:
        message = response.text
    # 5xx (and 408/429) may pass on a retry; 401/403 (credentials), 404, 409 and 417 (validation) will not
    retryable = response.status_code >= 500 or response.status_code in (408, 429)
    raise ERPNextError(f"ERPNext {response.status_code} {exc_type or ''}: {message}"[:500],
                       status=response.status_code, exc_type=exc_type, retryable=retryable)


class ERPNextClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: str, api_secret: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"token {api_key}:{api_secret}", "Accept": "application/json"}

    async def _send(self, method: str, path: str, *, params: dict[str, str] | None = None,
                    body: dict[str, Any] | None = None) -> Any:
        try:
            response = await self.http.request(method, f"{self.base_url}{path}", params=params, json=body,
                                               headers=self.headers, timeout=TIMEOUT)
        except httpx.HTTPError as error:
            raise ERPNextError(f"ERPNext unreachable: {type(error).__name__}", retryable=True) from error
        _raise_for(response)
        return response.json()

    @staticmethod
    def _path(doctype: str, name: str | None = None) -> str:
        path = f"/api/resource/{quote(doctype)}"
        return f"{path}/{quote(name, safe='')}" if name is not None else path

    async def find(self, doctype: str, filters: list[list[Any]], fields: list[str],
                   limit: int = 20) -> list[dict[str, Any]]:
        body = await self._send("GET", self._path(doctype), params={
            "filters": json.dumps(filters), "fields": json.dumps(fields), "limit_page_length": str(limit)})
        return list(body["data"])

    async def insert(self, doctype: str, document: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = (await self._send("POST", self._path(doctype), body=document))["data"]
        return data

    async def update(self, doctype: str, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = (await self._send("PUT", self._path(doctype, name), body=changes))["data"]
        return data

    async def ensure(self, doctype: str, document: dict[str, Any]) -> str:
        """The name of the document keyed by `document["cityos_id"]`, created (and submitted, when the document
        asks for `docstatus` 1) unless it exists; a draft left by an interrupted run is submitted."""
        found = await self.find(doctype, [[doctype, "cityos_id", "=", document["cityos_id"]]],
                                ["name", "docstatus"], limit=1)
        if found:
            name = str(found[0]["name"])
            if document.get("docstatus") == 1 and int(found[0].get("docstatus") or 0) == 0:
                await self.update(doctype, name, {"docstatus": 1})
            return name
        return str((await self.insert(doctype, document))["name"])
