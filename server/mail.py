"""Outbound mail: services queue it in their transaction, the worker sends it over SMTP.

Each message's Message-ID comes from its job's idempotency key, so a retry after a crash
between "sent" and "marked done" carries the same Message-ID and receivers can drop the copy.
"""

from __future__ import annotations

import hashlib
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


async def send(message: EmailMessage, *, sender: str | None = None, recipients: list[str] | None = None) -> None:
    """Hand the message to SMTP_URL. `sender`/`recipients`: the envelope, when not the headers'."""
    parsed = urlparse(get_settings().smtp_url)
    await aiosmtplib.send(
        message,
        sender=sender,
        recipients=recipients,
        hostname=parsed.hostname or "127.0.0.1",
        port=parsed.port or 25,
        username=parsed.username or None,
        password=parsed.password or None,
        use_tls=parsed.scheme == "smtps",
        start_tls=True if parsed.scheme == "smtp+starttls" else None,
        timeout=30,
    )


@jobs.handler(KIND)
async def send_mail_job(job: jobs.ClaimedJob) -> None:
    payload = job.payload
    key = job.idempotency_key or f"job-{job.id}"
    await send(build_message(payload["to"], payload["subject"], payload["text"], key, payload.get("headers")))
