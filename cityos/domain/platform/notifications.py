"""The notification port: how the platform tells a person something (a customer's email). The domain renders a
`Notice`; an adapter delivers it (integrations/smtp: `CITYOS_SMTP_URL`). Notices are written to the outbox in the
business transaction and delivered by the `dispatch-outbox` job after it commits, so a rolled-back change
notifies nobody; with no channel configured they are kept and marked `skipped`, never lost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Notice:
    """One message to one recipient. `key` identifies it for good (the outbox row's id): the adapter puts it in
    the message's headers, so a message delivered twice after a crash can be recognized."""

    to: str
    subject: str
    body: str
    key: str


class NoticeFailed(Exception):
    """The channel did not take the notice. `retryable`: a later attempt may succeed (the server was down or
    answered 4xx); otherwise it never will (5xx: the recipient is refused)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class NoticeSender(Protocol):
    async def send(self, notice: Notice) -> None:
        """Deliver the notice, or raise NoticeFailed."""
        ...
