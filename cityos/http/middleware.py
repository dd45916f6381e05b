"""Pure ASGI middleware: request ids, access metrics, and the request body limit."""

from __future__ import annotations

import functools
import itertools
import os
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cityos.observability.logs import request_id_var, tenant_id_var
from cityos.observability.metrics import HTTP_LATENCY, HTTP_REQUESTS

REQUEST_ID_HEADER = b"x-request-id"
_REQUEST_ID_PREFIX = os.urandom(10).hex()  # this process's: ids are the prefix and a counter (no syscall per request)
_REQUEST_NUMBERS = itertools.count()


def new_request_id() -> str:
    """32 hex digits like a uuid4's, unique across processes (a random prefix each) and requests (a counter)."""
    return f"{_REQUEST_ID_PREFIX}{next(_REQUEST_NUMBERS) & 0xFFFFFFFFFFFF:012x}"


@functools.lru_cache(maxsize=1024)
def _access_metrics(route: str, method: str, status: int) -> tuple[Any, Any]:
    """The labelled children of the access metrics (labels() takes a lock and builds a key each time)."""
    return HTTP_REQUESTS.labels(route, method, str(status)), HTTP_LATENCY.labels(route, method)


class RequestIdAndMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER, b"").decode("latin-1")
        request_id = incoming[:128] if incoming else new_request_id()
        request_token = request_id_var.set(request_id)
        tenant_token = tenant_id_var.set(None)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER, request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                requests, latency = _access_metrics(_route_of(scope), scope["method"], status)
                requests.inc()
                latency.observe(time.perf_counter() - started)
            request_id_var.reset(request_token)
            tenant_id_var.reset(tenant_token)


def _route_of(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """413 when the declared or the streamed body is larger than `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(send, self.max_bytes)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await _too_large(send, self.max_bytes)


async def _too_large(send: Send, max_bytes: int) -> None:
    body = (b'{"errors":[{"message":"request body larger than %d bytes","extensions":{"code":"PAYLOAD_TOO_LARGE"}}]}'
            % max_bytes)
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self' ws: wss:; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """Headers on every HTTP response: no sniffing, no framing, no referrer, a CSP the self-hosted GraphiQL
    satisfies, HSTS in production; GraphQL answers are never cached (they depend on the caller)."""

    def __init__(self, app: ASGIApp, *, production: bool) -> None:
        self.app = app
        headers = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                   (b"referrer-policy", b"no-referrer"),
                   (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())]
        if production:
            headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope["path"] == "/graphql"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [header for header in self.headers if header[0] not in present]
                if no_store:
                    extra = [header for header in extra if header[0] != b"cache-control"]
                    extra.append((b"cache-control", b"no-store"))
                    message["headers"] = [h for h in message.get("headers", []) if h[0].lower() != b"cache-control"]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)
