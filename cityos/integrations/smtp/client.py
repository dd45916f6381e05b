"""The notification port (domain/platform/notifications.py) on SMTP, with the standard library's smtplib run in a
worker thread (no event-loop blocking, no extra dependency).

`CITYOS_SMTP_URL`: `smtp://[user:password@]host[:port]` (default port 25; STARTTLS when the server offers it) or
`smtps://[user:password@]host[:port]` (TLS from the first byte, default port 465). User and password are
URL-encoded. `CITYOS_SMTP_FROM` is the sender; `CITYOS_SMTP_TIMEOUT` bounds every wait on the server."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

from cityos.config import Settings
from cityos.domain.platform.notifications import Notice, NoticeFailed

SCHEMES = {"smtp": 25, "smtps": 465}


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: bool  # smtps: TLS from the start
    user: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ValueError("CITYOS_SMTP_URL must be smtp://host[:port] or smtps://host[:port]")
        return cls(parts.hostname, parts.port or SCHEMES[parts.scheme], parts.scheme == "smtps",
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)


class SmtpSender:
    def __init__(self, server: SmtpServer, sender: str, timeout: float) -> None:
        self.server, self.sender, self.timeout = server, sender, timeout

    def _message(self, notice: Notice) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = notice.to
        message["Subject"] = notice.subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(idstring=notice.key.replace("-", ""), domain="cityos")
        message["X-CityOS-Notice"] = notice.key  # the same on a second delivery after a crash
        message.set_content(notice.body)
        return message

    def _deliver(self, message: EmailMessage) -> None:
        server = self.server
        context = ssl.create_default_context()
        connection: smtplib.SMTP
        if server.tls:
            connection = smtplib.SMTP_SSL(server.host, server.port, timeout=self.timeout, context=context)
        else:
            connection = smtplib.SMTP(server.host, server.port, timeout=self.timeout)
        with connection:
            connection.ehlo()
            if not server.tls and connection.has_extn("starttls"):
                connection.starttls(context=context)
                connection.ehlo()
            if server.user:
                connection.login(server.user, server.password or "")
            connection.send_message(message)

    async def send(self, notice: Notice) -> None:
        try:
            await asyncio.to_thread(self._deliver, self._message(notice))
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            raise NoticeFailed(f"the mail server refused the recipient: {error.recipients}",
                               retryable=all(400 <= code < 500 for code in codes)) from error
        except smtplib.SMTPResponseException as error:
            raise NoticeFailed(f"the mail server answered {error.smtp_code}: {error.smtp_error!r}",
                               retryable=400 <= error.smtp_code < 500) from error
        except (smtplib.SMTPException, OSError) as error:  # refused, reset, timed out, TLS
            raise NoticeFailed(f"the mail server could not be reached: {error}", retryable=True) from error


def smtp_sender(settings: Settings) -> SmtpSender | None:
    """The configured sender, or None when CITYOS_SMTP_URL is unset (notices are then kept and marked skipped)."""
    if not settings.CITYOS_SMTP_URL:
        return None
    return SmtpSender(SmtpServer.parse(settings.CITYOS_SMTP_URL), settings.CITYOS_SMTP_FROM,
                      settings.CITYOS_SMTP_TIMEOUT)
