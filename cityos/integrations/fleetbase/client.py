"""Fleetbase's REST API (external-apis.md §3): `Authorization: Bearer <key>`, `{host}/v1/orders…`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class FleetbaseError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class FleetbaseOrder:
    id: str
    tracking_number: str | None
    status: str | None


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        message = body.get("error") or "; ".join(body.get("errors") or []) or response.text
    except ValueError:
        message = response.text
    # 4xx (but 408/429) will not get better by retrying; 5xx and those might
    retryable = response.status_code >= 500 or response.status_code in (408, 429)
    raise FleetbaseError(f"Fleetbase {response.status_code}: {message}"[:500], retryable=retryable)


class FleetbaseClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

    async def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = await self.http.request(method, f"{self.base_url}{path}", json=body, headers=self.headers,
                                               timeout=TIMEOUT)
        except httpx.HTTPError as error:
            raise FleetbaseError(f"Fleetbase unreachable: {type(error).__name__}", retryable=True) from error
        _raise_for(response)
        return response

    async def create_order(self, order: dict[str, Any]) -> FleetbaseOrder:
        data = (await self._send("POST", "/v1/orders", order)).json()
        tracking = data.get("tracking_number")
        if isinstance(tracking, dict):
            tracking = tracking.get("tracking_number") or tracking.get("id")
        return FleetbaseOrder(id=str(data["id"]), tracking_number=tracking, status=data.get("status"))

    async def cancel_order(self, order_id: str) -> None:
        await self._send("DELETE", f"/v1/orders/{order_id}/cancel")
