"""Outbound mail about tickets: agent replies, acknowledgements, notices and CSAT mail.

The desk's services call `queue_ticket_mail` inside their transaction. For each recipient it
renders the mail (plain text and HTML, in the recipient's language), works out its threading
headers, and writes three rows that commit with the action:

- a `mail_delivery` row (`queued`), which agents see under the reply on the ticket page;
- a `mail_reference` row (`out`) with the mail's Message-ID, so a customer's answer threads
  onto the ticket even if it arrives before the worker has sent the mail;
- a `mail.ticket` job whose idempotency key is the delivery's key.

Headers. Message-ID `tokens.message_id(ticket, key)`: the key is one per (mail, recipient) and
never changes, so every try of one delivery carries the same Message-ID. In-Reply-To is the
latest Message-ID on the ticket this recipient has seen (the customer's own mail, or our mail
to them); References is the chain (the first and the last ten, at most ~900 characters).
Reply-To is the ticket's signed plus-address and the subject carries `[#id]`. Every value that
comes from people (names, subjects) has its control characters removed and goes through
`email.headerregistry`, so nothing in it can start a new header.

Bouncing addresses (server/channels/email/bounces.py) get nothing: when the worker takes the job
and the recipient is marked as bouncing, the delivery becomes `skipped` with the reason
`bouncing`, shown to agents on the ticket as "Not sent". It is checked when sending rather than
when queuing, so a bounce that arrives in between still counts and the desk's write path gains
no query; the mark goes away when the address writes to us again.

Delivery guarantee (at least once, deduplicable): the worker sends, then marks the delivery
`sent` in its next statement, then the job is marked done. A retry of a delivery already `sent`
sends nothing. Only if the worker dies in the instant between the SMTP server's "250 accepted"
and that mark does the retry send a second copy, and that copy has the same Message-ID, which
receiving systems and mail clients use to drop duplicates.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email import encoders
from email.charset import QP, Charset
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate
from typing import Any

import aiosmtplib
from markupsafe import Markup

from server import jobs, mail, policy
from server.accounts.auth import utcnow
from server.channels.email import bounces, tokens
from server.channels.email.outbound_tables import MailDelivery
from server.channels.email.tables import MailReference
from server.db import atomic
from server.desk import attachments
from server.desk.tables import TicketAttachment
from server.i18n import _
from server.markdown import MarkdownTooLarge, render
from server.policy import Actor
from server.prepared import insert, insert_many
from server.settings import get_settings
from server.templating import render_in_locale, render_text

log = logging.getLogger("kizuna.mail.outbound")

KIND = "mail.ticket"
QUEUED, SENT, RETRYING, FAILED, SKIPPED = "queued", "sent", "retrying", "failed", "skipped"
BOUNCING = "bouncing"  # why a delivery was skipped: the recipient's address bounces
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # in total per mail; larger files are linked instead
MAX_REFERENCES = 10  # besides the first one
MAX_REFERENCES_CHARS = 900
MAX_SUBJECT_CHARS = 250
MAX_NAME_CHARS = 120
MAX_KEY_CHARS = 200
ACKNOWLEDGEMENT = "desk_ticket_created"
# Mail that continues the conversation itself: its subject is the ticket's, as "Re: … [#id]".
REPLY_TEMPLATES = frozenset({"desk_ticket_reply"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MIME_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
_MESSAGE_ID = re.compile(r"<[^<>\s\x00-\x1f\x7f]{1,250}>")
_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|aw|sv)\s*(?:\[\d+\])?\s*[:：])+\s*", re.IGNORECASE)


# Headers --------------------------------------------------------------------------------------


def header_text(value: str, limit: int = MAX_SUBJECT_CHARS) -> str:
    """`value` fit for a header: control characters (CR, LF, NUL, …) become spaces, runs of
    whitespace one space, and it is cut to `limit` characters."""
    return " ".join(_CONTROL.sub(" ", value or "").split())[:limit]


def mailbox(name: str, address: str) -> str:
    """A From/To/Reply-To mailbox as header text: the display name cleaned, then quoted or
    RFC 2047-encoded; a malformed address raises ValueError (or a header parse error)."""
    address = address.strip()
    if not address or _CONTROL.search(address) or any(ch in address for ch in '<>,;"() '):
        raise ValueError(f"not a mail address: {address!r}")
    Address(addr_spec=address)  # the standard parser refuses what is not one address
    return formataddr((header_text(name, MAX_NAME_CHARS), address), charset="utf-8")


def references(chain: Sequence[str]) -> list[str]:
    """The References list: well-formed ids, deduplicated, the first one and the last
    MAX_REFERENCES, dropping from the middle until it fits MAX_REFERENCES_CHARS."""
    unique = list(dict.fromkeys(ref for ref in chain if _MESSAGE_ID.fullmatch(ref)))
    if not unique:
        return []
    picked = [unique[0], *unique[1:][-MAX_REFERENCES:]]
    while len(picked) > 2 and len(" ".join(picked)) > MAX_REFERENCES_CHARS:
        del picked[1]
    return picked


def reply_subject(ticket_subject: str, ticket_id: int) -> str:
    """`Re: <subject> [#id]`, with the subject's own "Re:" (or "AW:", "SV:") kept only once."""
    tag = tokens.subject_tag(ticket_id)
    base = _REPLY_PREFIX.sub("", header_text(ticket_subject).replace(tag, " "))
    return header_text(f"Re: {base} {tag}" if base.strip() else f"Re: {tag}")


def tagged_subject(subject: str, ticket_id: int) -> str:
    tag = tokens.subject_tag(ticket_id)
    subject = header_text(subject)
    if tag in subject:
        return subject
    return header_text(f"{subject[: MAX_SUBJECT_CHARS - len(tag) - 1]} {tag}")


def delivery_key(key: str, recipient: str) -> str:
    """One idempotency key per (mail, recipient), within the job table's 200 characters."""
    full = f"{key}:{recipient}"
    if len(full) <= MAX_KEY_CHARS:
        return full
    return f"{key[:120]}:{hashlib.sha256(full.encode()).hexdigest()[:40]}"


# Queuing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    email: str
    locale: str = "en"
    name: str = ""


def _absolute_links(html: str) -> str:
    """Site-relative links and images of rendered Markdown, made absolute for a mail client."""
    base = get_settings().base_url
    return re.sub(r'(\s(?:href|src)=")/(?!/)', lambda m: f"{m.group(1)}{base}/", html)


def _body_html(markdown_source: str) -> Markup:
    try:
        return Markup(_absolute_links(render(markdown_source)))  # noqa: S704 - sanitised by server.markdown
    except MarkdownTooLarge:
        return Markup("<pre>{}</pre>").format(markdown_source)


async def _thread(ticket: Mapping[str, Any], *, fresh: bool = False) -> list[dict[str, Any]]:
    """The ticket's Message-IDs, oldest first, each with its direction (and, for our own
    mail, who it went to): the customer's original first when the ticket came by mail.
    `fresh`: the ticket was opened in this transaction and has no mail of ours yet."""
    thread: list[dict[str, Any]] = []
    if not fresh:
        rows = (
            await MailReference.select(MailReference.message_id, MailReference.direction)
            .where(MailReference.ticket == ticket["id"])
            .order_by(MailReference.created_at)
            .order_by(MailReference.id)
        )
        sent_to = {
            r["message_id"]: r["recipient"]
            for r in await MailDelivery.select(MailDelivery.message_id, MailDelivery.recipient).where(
                MailDelivery.ticket == ticket["id"]
            )
        }
        thread = [{**r, "recipient": sent_to.get(r["message_id"])} for r in rows]
    original = (ticket.get("channel_ref") or "").strip()
    if ticket.get("channel") == "email" and _MESSAGE_ID.fullmatch(original):  # the thread's start
        thread = [r for r in thread if r["message_id"] != original]
        thread.insert(0, {"message_id": original, "direction": "in", "recipient": None})
    return thread


async def _files(ticket_message: int | None) -> tuple[list[int], list[dict[str, Any]]]:
    """The reply's attachments: ids to attach (up to MAX_ATTACHMENT_BYTES in total, in order)
    and the rest, to be linked."""
    if ticket_message is None:
        return [], []
    rows = (
        await TicketAttachment.select(TicketAttachment.id, TicketAttachment.filename, TicketAttachment.size_bytes)
        .where(TicketAttachment.message == ticket_message)
        .order_by(TicketAttachment.id)
    )
    attach, link, total = [], [], 0
    base = get_settings().base_url
    for row in rows:
        if total + row["size_bytes"] <= MAX_ATTACHMENT_BYTES:
            attach.append(row["id"])
            total += row["size_bytes"]
        else:
            link.append({**row, "url": f"{base}/support/attachments/{row['id']}"})
    return attach, link


def _linked_files_text(files: list[dict[str, Any]], locale: str) -> str:
    if not files:
        return ""
    return "\n" + render_in_locale("mail/_linked_files.txt", {"files": files}, locale).strip() + "\n"


async def queue_ticket_mail(
    ticket: Mapping[str, Any],
    recipients: Sequence[Recipient],
    template: str,
    key: str,
    context: dict[str, Any],
    *,
    ticket_message: int | None = None,
    automatic: bool = True,
    fresh: bool = False,
    has_files: bool = True,
) -> None:
    """Queue `templates/mail/<template>.txt` (and `.html`) about `ticket` to each recipient,
    in the caller's transaction. `key` names the mail (e.g. `desk.reply:<message id>`): the
    same key queued again does nothing. `ticket_message`: the public reply it carries (its
    attachments go along). `automatic=False` for an agent's own reply (`context["author"]`
    is then the agent's name, shown in From). `fresh`: the ticket was opened in this
    transaction (no earlier mail to look up; inbound mail that opened it may have recorded its
    own Message-ID, which is the ticket's `channel_ref` and so still leads the thread).
    `has_files=False`: `ticket_message` has no attachments (none to look up)."""
    ticket_id = int(ticket["id"])
    thread = await _thread(ticket, fresh=fresh)
    attach, linked = await _files(ticket_message) if has_files else ([], [])
    support_name, support_address = tokens.mail_from()
    support_address = support_address or tokens.support_address()
    from_name = support_name
    if not automatic and context.get("author"):
        from_name = f"{context['author']} ({support_name})" if support_name else str(context["author"])
    reply_style = template in REPLY_TEMPLATES or (template == ACKNOWLEDGEMENT and bool(thread))
    body_html = _body_html(str(context["body"])) if context.get("body") else ""
    moment = utcnow()
    seen: set[str] = set()
    for person in recipients:
        address = (person.email or "").strip()
        if not address or address.lower() in seen:
            continue
        seen.add(address.lower())
        locale = person.locale or "en"
        unique = delivery_key(key, address)
        message_id = tokens.message_id(ticket_id, unique)
        # Only what this recipient has seen: mail from customers and our mail to them.
        chain = [r["message_id"] for r in thread if (r["recipient"] or address).lower() == address.lower()]
        refs = references(chain)
        values = {**context, "linked_files": linked, "body_html": body_html}
        subject, text = render_text(f"mail/{template}.txt", values, locale=locale)
        text += _linked_files_text(linked, locale)
        html = render_in_locale(f"mail/{template}.html", values, locale)
        if reply_style:
            subject = reply_subject(str(ticket["subject"]), ticket_id)
        else:
            subject = tagged_subject(subject, ticket_id)
        inserted = await insert_many(
            MailDelivery,
            [
                {
                    "ticket": ticket_id,
                    "ticket_message": ticket_message,
                    "recipient": address,
                    "message_id": message_id,
                    "key": unique,
                    "template": template,
                    "automatic": automatic,
                    "status": QUEUED,
                    "created_at": moment,
                    "updated_at": moment,
                }
            ],
            skip_conflicts_on=MailDelivery.key,
        )
        if not inserted:
            continue  # this mail was queued to this recipient already
        await insert(
            MailReference,
            {
                "ticket": ticket_id,
                "ticket_message": ticket_message,
                "message_id": message_id,
                "direction": "out",
                "created_at": moment,
            },
        )
        payload = {
            "delivery": inserted[0],
            "ticket": ticket_id,
            "to": address,
            "to_name": person.name,
            "from_name": from_name,
            "from": support_address,
            "reply_to": tokens.reply_address(ticket_id),
            "subject": subject,
            "text": text,
            "html": html,
            "message_id": message_id,
            "in_reply_to": refs[-1] if refs else "",
            "references": refs,
            "automatic": automatic,
            "attachments": attach,
            "ticket_message": ticket_message,
        }
        await jobs.enqueue(KIND, payload, key=unique)


# Sending --------------------------------------------------------------------------------------


class PermanentFailure(Exception):
    """The mail cannot be built (a malformed address): trying again would not help."""


# Messages are built with the standard library's original API (email.mime, the compat32 policy):
# about ten times faster than EmailMessage, whose header objects are parsed when set and parsed
# again to fold them (measured: 1.8 ms a mail, most of a worker's time for an acknowledgement).
# The header values are made safe here instead: names and subjects cleaned by header_text,
# addresses checked by mailbox, ids by references(), and nothing with a line break is sent.
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # 7-bit clean, and English stays readable in the raw mail


def build(payload: Mapping[str, Any], files: Sequence[tuple[str, str, bytes]] = ()) -> Message:
    """The message of a `mail.ticket` job; `files`: (filename, content type, bytes)."""
    body = _text_part(payload["text"], "plain")
    if payload.get("html"):
        body = MIMEMultipart("alternative", _subparts=[body, _text_part(payload["html"], "html")])
        del body["MIME-Version"]
    attachments = [_attachment(*file) for file in files]
    message: Message = MIMEMultipart("mixed", _subparts=[body, *attachments]) if attachments else body
    del message["MIME-Version"]  # once, on the outermost part only
    message["MIME-Version"] = "1.0"
    try:
        message["From"] = mailbox(payload["from_name"], payload["from"])
        message["To"] = mailbox(payload["to_name"], payload["to"])
        message["Reply-To"] = mailbox(payload["from_name"], payload["reply_to"])
    except Exception as exc:  # ValueError and the address parser's own errors
        raise PermanentFailure(f"bad address: {exc}") from exc
    subject = header_text(payload["subject"])
    message["Subject"] = subject if subject.isascii() else Header(subject, _UTF8, header_name="Subject")
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = payload["message_id"]
    refs = references(payload.get("references") or [])
    if refs:
        message["In-Reply-To"] = payload["in_reply_to"] if payload["in_reply_to"] in refs else refs[-1]
        message["References"] = " ".join(refs)  # folded between ids: each stays whole
    if payload.get("automatic"):
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"  # no out-of-office answers to automatic mail
    message["X-Kizuna-Ticket"] = tokens.ticket_token(int(payload["ticket"]))
    if any("\r" in str(value) or "\n" in str(value) for value in message.values()):
        raise PermanentFailure("a header value holds a line break")
    return message


def _text_part(text: str, subtype: str) -> MIMEText:
    part = MIMEText(text, subtype, _UTF8)  # type: ignore[arg-type] - a Charset is accepted
    del part["MIME-Version"]
    return part


def _attachment(filename: str, content_type: str, data: bytes) -> MIMEBase:
    maintype, _sep, subtype = content_type.partition(";")[0].strip().partition("/")
    if not (_MIME_TOKEN.fullmatch(maintype) and _MIME_TOKEN.fullmatch(subtype)):
        maintype, subtype = "application", "octet-stream"
    part = MIMEBase(maintype, subtype)
    del part["MIME-Version"]
    part.set_payload(data)
    encoders.encode_base64(part)
    name = header_text(filename)
    part.add_header("Content-Disposition", "attachment", filename=name if name.isascii() else ("utf-8", "", name))
    return part


async def _read_files(payload: Mapping[str, Any]) -> list[tuple[str, str, bytes]]:
    ids = [int(i) for i in payload.get("attachments") or []]
    if not ids or payload.get("ticket_message") is None:
        return []
    rows = (
        await TicketAttachment.select(
            TicketAttachment.filename, TicketAttachment.content_type, TicketAttachment.storage_key
        )
        .where(TicketAttachment.id.is_in(ids) & (TicketAttachment.message == int(payload["ticket_message"])))
        .order_by(TicketAttachment.id)
    )
    files = []
    for row in rows:
        try:
            files.append((row["filename"], row["content_type"], attachments.path_for(row["storage_key"]).read_bytes()))
        except (OSError, ValueError) as exc:
            log.warning("attachment %s of mail %s unreadable, sent without it: %s", row["filename"], payload["to"], exc)
    return files


def describe_error(exc: BaseException) -> str:
    """An SMTP failure as agents read it: `550 5.1.1 No such user`."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        return "; ".join(describe_error(r) for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return header_text(f"{exc.code} {exc.message}", 500)
    return header_text(f"{type(exc).__name__}: {exc}", 500)


SENDS_PER_RECORD = 20  # sends recorded together, in one transaction


@dataclass(frozen=True)
class _Outcome:
    delivery: int
    status: str
    attempts: int
    error: str = ""
    retry: Exception | None = None  # the send failed: its job is retried on its own


async def _record(outcomes: list[_Outcome]) -> None:
    """The deliveries' new states, in one transaction (one statement per distinct state)."""
    moment = utcnow()
    same: dict[tuple[str, int, str], list[int]] = {}
    for outcome in outcomes:
        same.setdefault((outcome.status, outcome.attempts, outcome.error), []).append(outcome.delivery)
    async with atomic():
        for (status, attempts, error), ids in same.items():
            values: dict[Any, Any] = {
                MailDelivery.status: status,
                MailDelivery.attempts: attempts,
                MailDelivery.last_error: error,
                MailDelivery.updated_at: moment,
            }
            if status == SENT:
                values[MailDelivery.sent_at] = moment
            await MailDelivery.update(values).where(MailDelivery.id.is_in(ids))


@jobs.batch_handler(KIND, retry_cap_seconds=1800)
async def send_ticket_mail(batch: list[jobs.ClaimedJob]) -> dict[int, Exception]:
    """Send the claimed ticket mails one after another over one SMTP connection, recording
    their deliveries SENDS_PER_RECORD at a time (a commit per mail would cost more than the
    send). A worker killed before recording re-sends those mails when their jobs run again:
    the same Message-IDs, which receivers drop as duplicates. A delivery recorded as sent is
    never sent again. Returns the mails that failed, to be retried on their own."""
    failures: dict[int, Exception] = {}
    for start in range(0, len(batch), SENDS_PER_RECORD):
        chunk = batch[start : start + SENDS_PER_RECORD]
        ids = [int(job.payload["delivery"]) for job in chunk]
        rows = await MailDelivery.select(MailDelivery.id, MailDelivery.status).where(MailDelivery.id.is_in(ids))
        statuses = {row["id"]: row["status"] for row in rows}
        bouncing = await bounces.bouncing(job.payload["to"] for job in chunk)
        outcomes: list[_Outcome] = []
        try:
            for job in chunk:
                outcome = await _send_one(job, statuses, bouncing)
                if outcome is not None:
                    outcomes.append(outcome)
                    if outcome.retry is not None:
                        failures[job.id] = outcome.retry
        finally:  # what was sent is recorded, even when the worker is told to stop mid-chunk
            if outcomes:
                await _record(outcomes)
    return failures


async def _send_one(job: jobs.ClaimedJob, statuses: Mapping[int, str], bouncing: set[str]) -> _Outcome | None:
    payload = job.payload
    delivery = int(payload["delivery"])
    status = statuses.get(delivery)
    if status is None:  # the ticket was deleted
        return None
    if status in (SENT, SKIPPED):
        log.info("mail %s to %s was %s already; not again", payload["message_id"], payload["to"], status)
        return None
    if payload["to"].strip().lower() in bouncing:
        log.info("mail %s not sent: %s is bouncing", payload["message_id"], payload["to"])
        return _Outcome(delivery, SKIPPED, job.attempts, BOUNCING)
    try:
        message = build(payload, await _read_files(payload))
    except PermanentFailure as exc:
        log.error("mail %s cannot be sent: %s", payload["message_id"], exc)
        return _Outcome(delivery, FAILED, job.attempts, str(exc))
    try:
        await mail.send(message, sender=payload["from"], recipients=[payload["to"]])
    except Exception as exc:
        final = job.attempts >= job.max_attempts
        return _Outcome(delivery, FAILED if final else RETRYING, job.attempts, describe_error(exc), retry=exc)
    return _Outcome(delivery, SENT, job.attempts)


# The ticket page ------------------------------------------------------------------------------


def skip_reasons() -> dict[str, str]:
    """Why a delivery was not sent, as agents read it."""
    return {BOUNCING: _("the address is bouncing")}


def template_labels() -> dict[str, str]:
    return {
        "desk_ticket_created": _("Acknowledgement"),
        "desk_ticket_merged": _("Merge notice"),
        "desk_ticket_merged_into": _("Merge notice"),
        "desk_csat_ask": _("Satisfaction survey"),
        "desk_csat_reminder": _("Satisfaction survey reminder"),
    }


async def ticket_deliveries(actor: Actor, ticket_id: int) -> dict[str, Any]:
    """For the agent ticket page, in one query: `by_message` {reply id: [deliveries]} and
    `automatic` (mail not tied to a reply). Empty for anyone who may not see delivery state."""
    if not policy.can_see_mail_delivery(actor):
        return {"by_message": {}, "automatic": []}
    # Two indexed lookups: mail queued on this ticket, and mail carrying a reply that is now on
    # it (a merge moves replies, not their deliveries).
    columns = "d.id, d.ticket_message, d.recipient, d.template, d.status, d.attempts, d.last_error"
    rows = await MailDelivery.raw(
        f"""
        SELECT {columns} FROM mail_delivery d WHERE d.ticket = {{}}
        UNION
        SELECT {columns} FROM mail_delivery d JOIN ticket_message m ON m.id = d.ticket_message
        WHERE m.ticket = {{}}
        ORDER BY id
        """,  # noqa: S608 - `columns` is a constant
        ticket_id,
        ticket_id,
    )
    labels = template_labels()
    reasons = skip_reasons()
    by_message: dict[int, list[dict[str, Any]]] = {}
    automatic: list[dict[str, Any]] = []
    for row in rows:
        row["label"] = labels.get(row["template"], row["template"])
        if row["status"] == SKIPPED:
            row["reason"] = reasons.get(row["last_error"], row["last_error"])
        if row["ticket_message"] is None:
            automatic.append(row)
        else:
            by_message.setdefault(row["ticket_message"], []).append(row)
    return {"by_message": by_message, "automatic": automatic}
