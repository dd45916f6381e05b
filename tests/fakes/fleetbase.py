"""A local Fleetbase following external-apis.md §3: Bearer API keys (401 `{"errors": […]}`), `POST /v1/orders`
needing a pickup and a dropoff (400 `{"error": …}`), `DELETE /v1/orders/{id}/cancel`, and webhook envelopes
signed `Signature: hex(HMAC-SHA256(json body, secret))` with PHP's escaped slashes."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class FakeFleetbase:
    def __init__(self, api_key: str, webhook_secret: str) -> None:
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.base_url = ""
        self.orders: dict[str, dict[str, Any]] = {}
        self.canceled: list[str] = []
        self.failures: list[int] = []  # statuses to answer the next calls with

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/orders", self._create, methods=["POST"]),
                                 Route("/v1/orders/{order_id}/cancel", self._cancel, methods=["DELETE"])])

    def _refused(self, request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"errors": ["Oops! The api credentials provided were not valid"]}, status_code=401)
        if self.failures:
            return JSONResponse({"error": "Server Error"}, status_code=self.failures.pop(0))
        return None

    async def _create(self, request: Request) -> JSONResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        body = await request.json()
        payload = body.get("payload") or {}
        if not (payload.get("pickup") and payload.get("dropoff")) and len(payload.get("waypoints") or []) < 2:
            return JSONResponse({"error": "A pickup and dropoff are required"}, status_code=400)
        order_id = f"order_{secrets.token_hex(5)}"
        order = {"id": order_id, "internal_id": body.get("internal_id"), "status": "created",
                 "tracking_number": f"TRK{secrets.token_hex(4).upper()}", "payload": payload, "meta": body.get("meta"),
                 "customer": body.get("customer"), "type": body.get("type"), "created_at": time.strftime(
                     "%Y-%m-%d %H:%M:%S", time.gmtime())}
        self.orders[order_id] = order
        return JSONResponse(order)

    async def _cancel(self, request: Request) -> JSONResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        order_id = request.path_params["order_id"]
        if order_id not in self.orders:
            return JSONResponse({"error": "Order resource not found."}, status_code=400)
        self.orders[order_id]["status"] = "canceled"
        self.canceled.append(order_id)
        return JSONResponse(self.orders[order_id])

    def webhook(self, event_name: str, order_id: str, *, event_id: str | None = None, created_at: str | None = None,
                **data: Any) -> tuple[bytes, str]:
        """(body, Signature header) of a lifecycle event about one of our orders."""
        envelope = {"id": event_id or f"event_{uuid.uuid4().hex[:13]}", "api_version": "2024-03-12",
                    "event": event_name, "created_at": created_at or time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                    "data": {**self.orders.get(order_id, {"id": order_id}), **data}}
        body = json.dumps(envelope).replace("/", "\\/").encode()  # PHP's json_encode escapes slashes
        return body, hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
