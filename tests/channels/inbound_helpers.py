"""Helpers for the inbound mail tests: build raw messages, store and process them the way the
listener and the worker do, and read what came of them."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from server import features, jobs  # noqa: F401 - features registers the job handlers
from server.channels.email import inbound, tokens
from server.channels.email.inbound_tables import InboundMail
from server.desk.tables import Ticket, TicketMessage


def support() -> str:
    return tokens.support_address()


def raw_mail(
    *,
    sender: str | None = "Casey Customer <casey@example.test>",
    to: str | None = None,
    subject: str = "Export fails",
    body: str = "The CSV export stops at 50%.",
    message_id: str | None = "auto",
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
) -> bytes:
    message = EmailMessage()
    if sender is not None:
        message["From"] = sender
    message["To"] = to or support()
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    if message_id == "auto":
        message["Message-ID"] = make_msgid(domain="mail.example.test")
    elif message_id:
        message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    for filename, content_type, data in attachments or []:
        maintype, _sep, subtype = content_type.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(message)


def bounce_mail(original_message_id: str, failed: str) -> bytes:
    """A delivery status report (RFC 3464) saying our mail `original_message_id` to `failed` bounced."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\n"
        f"To: {support()}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='mx.example.test')}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered: mailbox unknown.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.test\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original_message_id}\r\nSubject: Re: Export fails\r\n\r\n"
        "--b1--\r\n"
    ).encode()


async def deliver(raw: bytes, *, source: str = "http", envelope_to: list[str] | None = None) -> dict[str, Any]:
    """Store like the endpoint does, run the worker's jobs, return the processed row."""
    inbound_id = await inbound.store_raw(raw, source=source, envelope_to=envelope_to or [support()])
    await jobs.run_pending("test-worker")
    return await row(inbound_id)


async def row(inbound_id: int) -> dict[str, Any]:
    found = await InboundMail.select().where(InboundMail.id == inbound_id).output(load_json=True).first()
    assert found is not None
    return found


async def ticket_count() -> int:
    return await Ticket.count()


async def public_messages(ticket_id: int) -> list[dict[str, Any]]:
    return (
        await TicketMessage.select()
        .where((TicketMessage.ticket == ticket_id) & (TicketMessage.kind == "public"))
        .order_by(TicketMessage.id)
        .output(load_json=True)
    )
