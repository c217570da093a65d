"""Outbound mail: services queue it in their transaction, the worker sends it over SMTP.

Each message's Message-ID comes from its job's idempotency key, so a retry after a crash
between "sent" and "marked done" carries the same Message-ID and receivers can drop the copy.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import weakref
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlparse

import aiosmtplib

from server import jobs
from server.settings import get_settings
from server.templating import render_text

KIND = "mail.send"


async def queue_mail(
    to: str,
    template: str,
    context: dict[str, object],
    *,
    locale: str,
    key: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Render `templates/mail/<template>.txt` in the recipient's locale and queue it.
    `headers`: extra ones such as List-Unsubscribe."""
    subject, body = render_text(f"mail/{template}.txt", context, locale=locale)
    payload: dict[str, object] = {"to": to, "subject": subject, "text": body}
    if headers:
        payload["headers"] = headers
    await jobs.enqueue(KIND, payload, key=key)


def build_message(to: str, subject: str, text: str, key: str, headers: dict[str, str] | None = None) -> EmailMessage:
    settings = get_settings()
    domain = urlparse(settings.base_url).hostname or "kizuna.localhost"
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = f"<{digest}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    return message


# One SMTP connection per event loop, reused by consecutive sends (the worker sends one job
# after another; a backlog of acknowledgements would otherwise pay a connect, EHLO and QUIT
# each). It is dropped after any error (the job's retry connects afresh: a message is never
# re-sent in place) and when idle for longer than servers commonly keep one open.
REUSE_IDLE_SECONDS = 10.0


@dataclass
class _Reused:
    url: str
    client: aiosmtplib.SMTP
    used_at: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


_connections: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Reused] = weakref.WeakKeyDictionary()


def _client(url: str) -> aiosmtplib.SMTP:
    parsed = urlparse(url)
    return aiosmtplib.SMTP(
        hostname=parsed.hostname or "127.0.0.1",
        port=parsed.port or 25,
        username=parsed.username or None,
        password=parsed.password or None,
        use_tls=parsed.scheme == "smtps",
        start_tls=True if parsed.scheme == "smtp+starttls" else None,
        timeout=30,
    )


def _drop(reused: _Reused) -> None:
    loop = asyncio.get_running_loop()
    if _connections.get(loop) is reused:
        del _connections[loop]
    if reused.client.is_connected:
        reused.client.close()


async def send(message: EmailMessage, *, sender: str | None = None, recipients: list[str] | None = None) -> None:
    """Hand the message to SMTP_URL. `sender`/`recipients`: the envelope, when not the headers'."""
    url = get_settings().smtp_url
    loop = asyncio.get_running_loop()
    reused = _connections.get(loop)
    stale = reused is not None and (
        reused.url != url or not reused.client.is_connected or time.monotonic() - reused.used_at > REUSE_IDLE_SECONDS
    )
    if reused is not None and stale:
        _drop(reused)
        reused = None
    if reused is None:
        reused = _connections[loop] = _Reused(url, _client(url), time.monotonic())
    async with reused.lock:
        try:
            if not reused.client.is_connected:
                await reused.client.connect()
            await reused.client.send_message(message, sender=sender, recipients=recipients)
        except BaseException:
            _drop(reused)
            raise
        reused.used_at = time.monotonic()


@jobs.handler(KIND)
async def send_mail_job(job: jobs.ClaimedJob) -> None:
    payload = job.payload
    key = job.idempotency_key or f"job-{job.id}"
    await send(build_message(payload["to"], payload["subject"], payload["text"], key, payload.get("headers")))
