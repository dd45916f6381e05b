"""A local Payload CMS 3 following external-apis.md §5: API-key auth (`<auth collection> API-Key <key>`, matched
case-sensitively; anything else → 403 `{"errors":[{"message":"You are not allowed to perform this action."}]}`),
`/api/{slug}` lists with `where[field][op]=…` (equals, not_equals, greater_than(_equal), less_than(_equal), in),
`sort`, `limit` (default 10), `page`, `depth`, answered in the paginated shape; `POST` → 201 `{doc, message}`,
`PATCH /api/{slug}/{id}` → `{doc, message: "Updated successfully."}`, `GET /api/{slug}/{id}`, `GET /api/{slug}/count`,
`DELETE /api/{slug}/{id}`; validation errors 400 in Payload's shape (`cityosId` is a unique required field); ids
are numbers (Payload on Postgres). It also plays the Payload side of deploy/payload/hooks.ts: `edit` changes a
document as an editor would and `change_event` builds the signed webhook its afterChange hook sends."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

FORBIDDEN = {"errors": [{"message": "You are not allowed to perform this action."}]}
NOT_FOUND = {"errors": [{"message": "Not Found"}]}
LABELS = {"products": "Product", "categories": "Category", "vendors": "Vendor", "stores": "Store"}
REQUIRED = {"products": ("cityosId", "tenant", "title"), "categories": ("cityosId", "tenant", "name"),
            "vendors": ("cityosId", "tenant", "name"), "stores": ("cityosId", "tenant", "name")}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakePayload:
    def __init__(self, api_key: str, secret: str, auth_collection: str = "users") -> None:
        self.api_key = api_key
        self.secret = secret
        self.auth_collection = auth_collection
        self.base_url = ""
        self.collections: dict[str, dict[int, dict[str, Any]]] = {slug: {} for slug in LABELS}
        self.next_id = 1
        self.requests: list[tuple[str, str]] = []  # (method, path) of every authorised request
        self.writes_until_down: int | None = None  # after this many more writes, every call answers 500
        self.clock = datetime.now(UTC)

    # -- the Payload side ------------------------------------------------------------------------------------
    def _now(self) -> str:
        # Strictly increasing timestamps (ms), as distinct saves get on a real server.
        self.clock = max(self.clock + timedelta(milliseconds=1), datetime.now(UTC))
        return _iso(self.clock)

    def documents(self, slug: str) -> list[dict[str, Any]]:
        return list(self.collections[slug].values())

    def by_cityos_id(self, slug: str, cityos_id: Any) -> dict[str, Any] | None:
        return next((doc for doc in self.collections[slug].values() if doc.get("cityosId") == str(cityos_id)), None)

    def edit(self, slug: str, document_id: int, **fields: Any) -> dict[str, Any]:
        """An editor saves the document in the admin UI."""
        document = self.collections[slug][document_id]
        document.update(fields, updatedAt=self._now())
        return document

    def change_event(self, slug: str, document: dict[str, Any], *, operation: str = "update",
                     event_id: str | None = None, timestamp: int | None = None,
                     secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        """(body, headers) of what deploy/payload/hooks.ts POSTs to /webhooks/payload after a change."""
        body = json.dumps({"id": event_id or str(uuid.uuid4()),
                           "event": "afterDelete" if operation == "delete" else "afterChange",
                           "collection": slug, "operation": operation, "doc": document}).encode()
        t = int(time.time()) if timestamp is None else timestamp
        digest = hmac.new((secret or self.secret).encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return body, {"content-type": "application/json", "x-cityos-signature": f"t={t},v1={digest}"}

    # -- the REST API ----------------------------------------------------------------------------------------
    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/api/{slug}/count", self._count, methods=["GET"]),
            Route("/api/{slug}", self._list, methods=["GET"]),
            Route("/api/{slug}", self._create, methods=["POST"]),
            Route("/api/{slug}/{document_id}", self._read, methods=["GET"]),
            Route("/api/{slug}/{document_id}", self._update, methods=["PATCH"]),
            Route("/api/{slug}/{document_id}", self._delete, methods=["DELETE"]),
        ])

    def _refused(self, request: Request, *, write: bool = False) -> JSONResponse | None:
        if not request.headers.get("authorization", "").startswith(f"{self.auth_collection} API-Key {self.api_key}"):
            return JSONResponse(FORBIDDEN, status_code=403)
        if request.path_params["slug"] not in self.collections:
            return JSONResponse(NOT_FOUND, status_code=404)
        if self.writes_until_down is not None:
            if self.writes_until_down <= 0:
                return JSONResponse({"errors": [{"message": "Something went wrong."}]}, status_code=500)
            if write:
                self.writes_until_down -= 1
        self.requests.append((request.method, request.url.path))
        return None

    @staticmethod
    def _where(params: list[tuple[str, str]]) -> list[tuple[str, str, Any]]:
        conditions: dict[tuple[str, str], Any] = {}
        for key, value in params:
            if not key.startswith("where["):
                continue
            parts = key[len("where["):-1].split("][")
            if len(parts) == 2:
                conditions[(parts[0], parts[1])] = value
            elif len(parts) == 3 and parts[1] in ("in", "not_in"):
                conditions.setdefault((parts[0], parts[1]), []).append(value)
        return [(field, op, value) for (field, op), value in conditions.items()]

    @staticmethod
    def _matches(document: dict[str, Any], field: str, op: str, value: Any) -> bool:
        current = document.get(field)
        text = None if current is None else str(current)
        if op == "equals":
            return text == value
        if op == "not_equals":
            return text != value
        if op == "in":
            return text in (value if isinstance(value, list) else str(value).split(","))
        if op == "exists":
            return (current is not None) == (value == "true")
        if text is None:
            return False
        compare = {"greater_than": text > value, "greater_than_equal": text >= value,
                   "less_than": text < value, "less_than_equal": text <= value}
        if op not in compare:
            raise ValueError(op)
        return bool(compare[op])

    async def _list(self, request: Request) -> JSONResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        params = list(request.query_params.multi_items())
        docs = list(self.collections[request.path_params["slug"]].values())
        try:
            for field, op, value in self._where(params):
                docs = [doc for doc in docs if self._matches(doc, field, op, value)]
        except ValueError:
            return JSONResponse({"errors": [{"message": "The following path cannot be queried: where"}]},
                                status_code=400)
        sort = request.query_params.get("sort", "-createdAt")
        field = sort.lstrip("-")
        docs.sort(key=lambda doc: (str(doc.get(field, "")), doc["id"]), reverse=sort.startswith("-"))
        limit = int(request.query_params.get("limit", "10"))
        page = max(int(request.query_params.get("page", "1")), 1)
        total = len(docs)
        pages = max((total + limit - 1) // limit, 1) if limit else 1
        chunk = docs[(page - 1) * limit:page * limit] if limit else docs
        return JSONResponse({"docs": chunk, "totalDocs": total, "limit": limit, "totalPages": pages, "page": page,
                             "pagingCounter": (page - 1) * limit + 1, "hasPrevPage": page > 1,
                             "hasNextPage": page < pages, "prevPage": page - 1 if page > 1 else None,
                             "nextPage": page + 1 if page < pages else None})

    async def _count(self, request: Request) -> JSONResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        return JSONResponse({"totalDocs": len(self.collections[request.path_params["slug"]])})

    def _invalid(self, slug: str, body: dict[str, Any], document_id: int | None) -> JSONResponse | None:
        errors = [{"path": name, "message": "This field is required."} for name in REQUIRED[slug]
                  if document_id is None and not body.get(name)]
        if body.get("cityosId"):
            twin = self.by_cityos_id(slug, body["cityosId"])
            if twin is not None and twin["id"] != document_id:
                errors.append({"path": "cityosId", "message": "Value must be unique"})
        if not errors:
            return None
        names = ", ".join(error["path"] for error in errors)
        return JSONResponse({"errors": [{"name": "ValidationError",
                                         "message": f"The following field is invalid: {names}",
                                         "data": {"collection": slug, "errors": errors}}]}, status_code=400)

    async def _create(self, request: Request) -> JSONResponse:
        if (refused := self._refused(request, write=True)) is not None:
            return refused
        slug = request.path_params["slug"]
        body = await request.json()
        if (invalid := self._invalid(slug, body, None)) is not None:
            return invalid
        now = self._now()
        document = {**body, "id": self.next_id, "createdAt": now, "updatedAt": now}
        self.collections[slug][self.next_id] = document
        self.next_id += 1
        return JSONResponse({"doc": document, "message": f"{LABELS[slug]} successfully created."}, status_code=201)

    def _document(self, request: Request) -> dict[str, Any] | None:
        try:
            return self.collections[request.path_params["slug"]].get(int(request.path_params["document_id"]))
        except ValueError:
            return None

    async def _read(self, request: Request) -> JSONResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        document = self._document(request)
        return JSONResponse(document) if document else JSONResponse(NOT_FOUND, status_code=404)

    async def _update(self, request: Request) -> JSONResponse:
        if (refused := self._refused(request, write=True)) is not None:
            return refused
        document = self._document(request)
        if document is None:
            return JSONResponse(NOT_FOUND, status_code=404)
        body = {key: value for key, value in (await request.json()).items()
                if key not in ("id", "createdAt", "updatedAt")}
        if (invalid := self._invalid(request.path_params["slug"], body, document["id"])) is not None:
            return invalid
        document.update(body, updatedAt=self._now())
        return JSONResponse({"doc": document, "message": "Updated successfully."})

    async def _delete(self, request: Request) -> JSONResponse:
        if (refused := self._refused(request, write=True)) is not None:
            return refused
        document = self._document(request)
        if document is None:
            return JSONResponse({"message": "Not Found"}, status_code=404)
        del self.collections[request.path_params["slug"]][document["id"]]
        return JSONResponse({"doc": document, "message": "Deleted successfully."})
