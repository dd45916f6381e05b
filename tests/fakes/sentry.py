"""A fake Sentry ingestion endpoint: accepts the SDK's envelopes (POST /api/<project>/envelope/, the DSN's public key
in X-Sentry-Auth) and keeps their items, so a test proves our errors reach Sentry through the real sentry-sdk."""

from __future__ import annotations

import gzip
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class FakeSentry:
    def __init__(self, public_key: str = "cityospublickey", project: str = "42") -> None:
        self.public_key = public_key
        self.project = project
        self.events: list[dict[str, Any]] = []
        self.base_url = ""  # set by tests.conftest.served

    def dsn(self) -> str:
        return self.base_url.replace("http://", f"http://{self.public_key}@", 1) + f"/{self.project}"

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/{project}/envelope/", self._envelope, methods=["POST"])])

    async def _envelope(self, request: Request) -> Response:
        auth = request.headers.get("x-sentry-auth", "")
        if request.path_params["project"] != self.project or f"sentry_key={self.public_key}" not in auth:
            return JSONResponse({"detail": "bad DSN"}, status_code=401)
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        elif request.headers.get("content-encoding") == "br":
            import brotli

            body = brotli.decompress(body)
        lines = body.split(b"\n")
        # An envelope: a header line, then pairs of item header and payload.
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                self.events.append(json.loads(payload))
        return JSONResponse({"id": "fake"})
