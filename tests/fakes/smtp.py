"""A fake mail server: aiosmtpd's SMTP server on 127.0.0.1, keeping every message it accepts. The notification
adapter (cityos/integrations/smtp) talks to it over a real SMTP session, AUTH included when `users` is given.
`refuse` makes it answer the next RCPT TO with that SMTP code (a 4xx is temporary, a 5xx permanent)."""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class FakeSmtp:
    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.users = users or {}
        self.messages: list[Message] = []
        self.refusals: list[int] = []
        self._lock = threading.Lock()
        self.port = free_port()
        authenticate = bool(self.users)
        self.controller = Controller(
            self, hostname="127.0.0.1", port=self.port, authenticator=self._authenticate if authenticate else None,
            auth_required=authenticate, auth_require_tls=False)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword) and self.users.get(data.login.decode()) == data.password.decode():
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self._lock:
            refusal = self.refusals.pop(0) if self.refusals else None
        if refusal is not None:
            return f"{refusal} {'4.2.0 mailbox busy, try later' if refusal < 500 else '5.1.1 no such user'}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        with self._lock:
            return [message for message in self.messages if message["To"] == address]

    @property
    def url(self) -> str:
        user, password = next(iter(self.users.items()), (None, None))
        credentials = f"{user}:{password}@" if user else ""
        return f"smtp://{credentials}127.0.0.1:{self.port}"

    def __enter__(self) -> FakeSmtp:
        self.controller.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.controller.stop()
