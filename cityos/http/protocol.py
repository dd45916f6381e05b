"""HTTP/1.1 with a header read timeout: a client that opens a connection (or starts a request on a kept-alive one)
and does not finish sending its headers within CITYOS_HEADER_TIMEOUT seconds is disconnected, so slow clients
cannot hold connections open (uvicorn itself only bounds idle keep-alive connections)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderTimeoutProtocol(HttpToolsProtocol):
    header_timeout = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": seconds})


class WorkerHeaderTimeoutProtocol(HeaderTimeoutProtocol):
    """The same for `cityos serve` with CITYOS_WORKERS > 1: worker processes import the protocol by name, so its
    timeout comes from the environment the workers inherit."""

    header_timeout = float(os.environ.get("CITYOS_HEADER_TIMEOUT") or 10.0)
