"""Inbound mail, second step: the worker parses a stored message and acts on it.

One transaction per message. Outcomes (the `inbound_mail` row's status and reason):

- ignored: a duplicate (same bytes, or the same Message-ID from the same sender, already taken),
  our own outbound mail coming back, an auto-reply or bulk mail. Nothing is created and nothing
  is sent, so two systems can never answer each other forever.
- done: a bounce (the failed addresses are recorded in `mail_bounce` and shown on the ticket the
  bounced mail was about), a new ticket (the requester gets the usual acknowledgement), or a
  reply on the ticket found by server/channels/email/mailthread.py (it reopens a solved or
  pending ticket). Its Message-ID is recorded on the ticket (`mail_reference`, `in`).
- quarantined: over a limit (size, recipients, header length) or without a usable From; an
  admin may inspect, retry (which lets it past the limits) or delete it.
- failed: processing raised. The message is kept; the error is logged and shown to admins,
  who may retry it. A malformed message never stops the worker or the messages after it.

Senders are found by their From address; an unknown address gets a customer account (no
password, unverified: a password reset makes it usable). Mail carries no authentication here,
so whoever the From names, the message counts as a customer's: an agent's address writing in
opens or continues a ticket as a customer would, and is never posted as an agent's reply.

A normal message from an address that bounced lifts its bouncing mark (bounces.py). The people
a new ticket or a reply was addressed to (To/Cc) are copied on the ticket, within the limits
`_copy_recipients` sets out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from server import jobs, policy
from server.accounts.auth import utcnow
from server.accounts.services import EMAIL_RE, normalise_email
from server.accounts.tables import Membership, User, UserRole
from server.accounts.usernames import unique_handle
from server.channels.email import bounces, inbound, mailthread, tokens
from server.channels.email.inbound_tables import InboundMail, MailBounce
from server.channels.email.tables import MailReference
from server.db import atomic, engine, is_postgres
from server.desk import attachments, live, queries, services
from server.desk.attachments import Upload
from server.desk.tables import Ticket, TicketLink, TicketMessage
from server.errors import Invalid
from server.policy import Actor
from server.prepared import insert, prepared

if TYPE_CHECKING:  # parsing is imported where it is used: the app starts without parsing anything
    from server.channels.email.parsing import ParsedMail

log = logging.getLogger("kizuna.email.inbound")

MAX_RECIPIENTS = 50
MAX_HEADER_CHARS = 2_000
MAX_PROCESS_ATTEMPTS = 5  # a message whose processing never finishes (it kills the worker) fails
MAX_MARKDOWN_BYTES = 60_000  # under the renderer's 64 KiB
MAX_CCS_PER_MESSAGE = 20  # people one message may copy on a ticket
# Never shown, often long: trace and signature headers are exempt from the header-length limit.
_EXEMPT_HEADERS = frozenset(
    {
        "references",
        "in-reply-to",
        "received",
        "dkim-signature",
        "arc-seal",
        "arc-message-signature",
        "arc-authentication-results",
        "authentication-results",
        "x-google-dkim-signature",
        "x-ms-exchange-antispam-messagedata-0",
        "x-ms-exchange-antispam-messagedata-chunkcount",
        "x-microsoft-antispam-message-info",
        "x-forefront-antispam-report",
        "subject",
    }
)
_FORWARD = re.compile(r"^\s*(?:fwd?|wg|tr|enc|転送|转发|轉寄)\s*[:：]", re.IGNORECASE)
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
NO_SUBJECT = "(no subject)"
NO_TEXT = "(This email had no text.)"


class Outcome(Exception):
    """Stop processing with this status and reason (raised inside the transaction)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# Text -----------------------------------------------------------------------------------------

_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~!])")
_BLOCK_START = re.compile(r"^(\s{0,3})([#>+=\-]|\d{1,9}[.)])")


def plain_to_markdown(text: str) -> str:
    """Markdown that renders as the plain text it came from: Markdown syntax escaped, line
    breaks kept (hard breaks), indentation not turned into code blocks."""
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.rstrip().expandtabs(4)
        stripped = line.lstrip(" ")
        if len(line) - len(stripped) > 3:
            line = stripped
        line = _INLINE_SPECIAL.sub(r"\\\1", line)
        line = _BLOCK_START.sub(lambda m: m.group(1) + "\\" + m.group(2), line)
        lines.append(line)
    out: list[str] = []
    for index, line in enumerate(lines):
        following = lines[index + 1] if index + 1 < len(lines) else ""
        out.append(line + ("  " if line and following else ""))
    return "\n".join(out).strip("\n")


def _fit(markdown: str) -> str:
    """Cut to what the renderer accepts, at a line end where possible."""
    if len(markdown.encode("utf-8")) <= MAX_MARKDOWN_BYTES:
        return markdown
    cut = markdown.encode("utf-8")[:MAX_MARKDOWN_BYTES].decode("utf-8", "ignore")
    cut = cut[: cut.rfind("\n")] if "\n" in cut[-2000:] else cut
    return cut.rstrip(" \\") + "\n\n[…]"


def body_markdown(parsed: ParsedMail, *, new_ticket: bool) -> str:
    """The ticket message: the new text (quotes and signature removed), or for a new ticket
    that forwards something, the whole text. The original stays viewable in full."""
    text = parsed.new_text.strip()
    if new_ticket and (not text or _FORWARD.match(parsed.subject or "")):
        text = parsed.text.strip()
    text = text or parsed.text.strip()
    return _fit(plain_to_markdown(text)) if text else NO_TEXT


def ticket_subject(subject: str) -> str:
    subject = " ".join((subject or "").split())[:200].strip()
    return subject or NO_SUBJECT


# Checks ---------------------------------------------------------------------------------------


def _is_own_outbound_id(message_id: str) -> bool:
    return bool(message_id) and tokens.ticket_from_message_ids(message_id) is not None


_HEADER_BLOCK_END = re.compile(rb"\r?\n\r?\n")


def long_header(raw: bytes) -> tuple[str, int] | None:
    """The first header (not exempt) whose unfolded value is over MAX_HEADER_CHARS, read from
    the raw header block (the parser cuts values, so it cannot tell)."""
    end = _HEADER_BLOCK_END.search(raw)
    block = raw[: end.start() if end else len(raw)].decode("latin-1")
    name, length = "", 0
    for line in block.splitlines():
        if line[:1] in (" ", "\t") and name:
            length += len(line.strip()) + 1
        else:
            if name and name not in _EXEMPT_HEADERS and length > MAX_HEADER_CHARS:
                return name, length
            head, colon, value = line.partition(":")
            name, length = (head.strip().lower(), len(value.strip())) if colon else ("", 0)
    if name and name not in _EXEMPT_HEADERS and length > MAX_HEADER_CHARS:
        return name, length
    return None


def _limit_problem(parsed: ParsedMail, raw: bytes, size: int) -> str | None:
    if size > inbound.max_bytes():
        return f"too large: {size} bytes, the limit is {inbound.max_bytes()}"
    if parsed.recipient_count > MAX_RECIPIENTS:
        return f"too many recipients: {parsed.recipient_count}, the limit is {MAX_RECIPIENTS}"
    if found := long_header(raw):
        return f"header too long: {found[0][:60]} has {found[1]} characters, the limit is {MAX_HEADER_CHARS}"
    return None


def _uploads(parsed: ParsedMail) -> tuple[list[Upload], list[str]]:
    """The attachments the desk accepts (type, size, count) and the names of those left out."""
    kept: list[Upload] = []
    skipped: list[str] = []
    for number, part in enumerate(parsed.attachments, start=1):
        name = part.filename or ""
        if not name:
            subtype = (part.content_type or "").partition("/")[2].partition(";")[0].strip().lower()
            name = f"{'image' if part.inline else 'attachment'}-{number}.{subtype or 'bin'}"
            name = name.replace(".jpeg", ".jpg").replace(".plain", ".txt")
        name = attachments.clean_filename(name)
        upload = Upload(name, part.data)
        try:
            attachments.check([upload])
        except Invalid:
            skipped.append(name)
            continue
        if len(kept) >= attachments.MAX_FILES:
            skipped.append(name)
            continue
        kept.append(upload)
    return kept, skipped


# Senders --------------------------------------------------------------------------------------


def _sender_address(parsed: ParsedMail) -> str:
    address = normalise_email(parsed.from_address or "")
    if not address or len(address) > 254 or not EMAIL_RE.match(address):
        return ""
    return address


async def _new_customer(address: str, name: str, sample_text: str) -> Actor:
    """A customer account for an address we do not know (a sender, or someone copied): no
    password, unverified; its language is the mail's (Japanese text: Japanese)."""
    display = " ".join((name or "").split())[:80] or address.split("@", 1)[0][:80] or "customer"
    locale = "ja" if _JAPANESE.search(sample_text) else "en"  # the language of the mail it gets
    user_id = await insert(
        User,
        {
            "email": address,
            "password_hash": "",  # no password: nothing verifies against it; a reset sets one
            "display_name": display,
            "username": await unique_handle(address),
            "locale": locale,
            "notification_prefs": {"email": "immediate", "mentions": True, "ticket_updates": True},
            "email_verified_at": None,
            "created_at": utcnow(),
        },
    )
    await insert(UserRole, {"user": user_id, "role": "customer"})
    log.info("inbound mail: new customer account %s for %s", user_id, address)
    return Actor(user_id=user_id, email=address, display_name=display, locale=locale, roles=frozenset({"customer"}))


@prepared
def _account_by_email(address: Any) -> Any:
    return (
        User.select(
            User.id,
            User.is_active,
            User.email,
            User.display_name,
            User.locale,
            User.time_zone,
            User.email_verified_at,
        )
        .where(User.email == address)
        .limit(1)
    )


@prepared
def _organisations_of(user_id: Any) -> Any:
    return Membership.select(Membership.organisation).where(Membership.user == user_id)


async def _mail_actor(address: str, name: str, sample_text: str) -> tuple[Actor, bool]:
    """The sender as a customer: their account (made when unknown), with no staff role and no
    organisation admin rights, whatever the account holds; and whether it was made now."""
    row = await _account_by_email.first(address)
    if row is None:
        return await _new_customer(address, name, sample_text), True
    if not row["is_active"]:
        raise Outcome("quarantined", f"the sender's account ({address}) is deactivated")
    # What load_actor builds, without the roles and organisation-admin rights it would drop here.
    orgs = await _organisations_of(row["id"])
    actor = Actor(
        user_id=row["id"],
        email=row["email"],
        display_name=row["display_name"],
        locale=row["locale"],
        time_zone=row["time_zone"],
        roles=frozenset({"customer"}),
        org_ids=frozenset(r["organisation"] for r in orgs),
        admin_org_ids=frozenset(),
        email_verified=row["email_verified_at"] is not None,
    )
    return actor, False


# People copied ----------------------------------------------------------------------------------


def _cc_candidates(parsed: ParsedMail, sender: str) -> list[str]:
    """The To and Cc addresses, in order and each once, without the sender and without our own
    support address and its plus-addresses (copying those would mail ourselves). At most
    MAX_RECIPIENTS: a message an admin let past that limit is not read further."""
    found: list[str] = []
    for value in [*parsed.to, *parsed.cc]:
        address = normalise_email(value)
        if (
            address
            and address != sender
            and address not in found
            and len(address) <= 254
            and EMAIL_RE.match(address)
            and not inbound.is_our_recipient(address)
        ):
            found.append(address)
            if len(found) >= MAX_RECIPIENTS:
                break
    return found


async def _copy_recipients(
    ticket_id: int, actor: Actor, parsed: ParsedMail, sample_text: str, *, fresh: bool
) -> tuple[list[str], list[str]]:
    """Copy the people the message was addressed to (To/Cc) on the ticket, as Zendesk does:
    they become followers, who get its later public replies by mail and may read it in the
    portal. Returns (the addresses copied, those left out with the reason). `fresh`: the
    message opened the ticket (the sender is its requester; nobody is copied yet).

    The rules, since whoever is copied gets to read the conversation:
    - Only the ticket's requester or someone already copied on it adds people. The matching
      (mailthread.py) puts a message on a ticket only in that case, and a stranger whose mail
      names a ticket (by subject, a forwarded reference) opens a ticket of their own; checked
      again here, so that no other path can let a stranger widen someone else's audience.
    - At most MAX_CCS_PER_MESSAGE people per message: a message cannot turn a ticket into a
      mailing list (the message itself may have up to MAX_RECIPIENTS).
    - Never our own support mailbox: the support address and its plus-addresses.
    - Never a bouncing address (bounces.py): it would only bounce again.
    - Never a staff account (agent, moderator, admin): followers are the customers copied on
      the ticket, and mail is not authenticated, so a customer's Cc must not make an agent
      anything on a ticket; agents already see every ticket in the desk.
    - Never a deactivated account. An unknown address gets a customer account, as an unknown
      sender does (no password, unverified).
    """
    sender = actor.email.lower() if actor.email else ""
    candidates = _cc_candidates(parsed, sender)
    if not candidates or actor.user_id is None:
        return [], []
    already: set[int] = set()
    if not fresh:
        ticket = await Ticket.select(Ticket.id, Ticket.requester).where(Ticket.id == ticket_id).first()
        if ticket is None:
            return [], []
        already = set(await queries.follower_ids(ticket_id)) | {ticket["requester"]}
        if actor.user_id not in already:
            return [], [f"{address} (the sender is not on the ticket)" for address in candidates]
    skipped: list[str] = []
    bouncing = await bounces.bouncing(candidates)
    accounts = {
        row["email"]: row
        for row in await User.select(User.id, User.email, User.is_active).where(User.email.is_in(candidates))
    }
    staff = set()
    if accounts:
        staff = {
            row["user"]
            for row in await UserRole.select(UserRole.user).where(
                UserRole.user.is_in([row["id"] for row in accounts.values()])
                & UserRole.role.is_in(sorted(policy.STAFF_ROLES))
            )
        }
    copied: list[str] = []
    for address in candidates:
        account = accounts.get(address)
        if account is not None and account["id"] in already:
            continue  # the requester or copied already
        reason = ""
        if address in bouncing:
            reason = "bouncing"
        elif account is not None and account["id"] in staff:
            reason = "staff"
        elif account is not None and not account["is_active"]:
            reason = "deactivated"
        elif len(copied) >= MAX_CCS_PER_MESSAGE:
            reason = f"over {MAX_CCS_PER_MESSAGE} per message"
        if reason:
            skipped.append(f"{address} ({reason})")
            continue
        if account is None:
            user_id = (await _new_customer(address, parsed.names.get(address, ""), sample_text)).user_id
        else:
            user_id = account["id"]
        await services.copy_on_ticket(ticket_id, user_id, address, by=actor.user_id, channel="email")
        already.add(user_id)
        copied.append(address)
    return copied, skipped


def _copy_note(copied: list[str], skipped: list[str]) -> str:
    note = f"; copied on the ticket: {', '.join(copied)}" if copied else ""
    if skipped:
        note += f"; not copied: {', '.join(skipped)}"
    return note[:1500]


# Actions --------------------------------------------------------------------------------------


async def _link_related(new_id: int, other_id: int) -> None:
    low, high = sorted((new_id, other_id))
    if await TicketLink.exists().where((TicketLink.source == low) & (TicketLink.target == high)):
        return
    await TicketLink.insert(TicketLink(source=low, target=high, created_at=utcnow()))
    for one, two in ((new_id, other_id), (other_id, new_id)):
        rows = await TicketMessage.insert(
            TicketMessage(
                ticket=one, author=None, kind="system", event={"event": "linked", "other": two}, created_at=utcnow()
            )
        ).returning(TicketMessage.id)
        await live.message_added(one, rows[0]["id"])


async def _record_bounce(row: dict[str, Any], parsed: ParsedMail, raw: bytes) -> tuple[int | None, str, list[str]]:
    """Mark the failed addresses as bouncing and tell the ticket the bounced mail was about.
    Returns (the ticket, the reason, the addresses marked)."""
    ticket_id = await mailthread.by_references(parsed.in_reply_to, parsed.references)
    if ticket_id is None:  # the report quotes the bounced mail's headers: find our Message-ID there
        ticket_id = tokens.ticket_from_message_ids(raw[: 512 * 1024].decode("latin-1"))
    if ticket_id is not None and not await Ticket.exists().where(Ticket.id == ticket_id):
        ticket_id = None
    addresses = [normalise_email(a) for a in parsed.bounce_recipients if a and "@" in a][:20]
    reason = " ".join((parsed.new_text or parsed.text or parsed.subject or "").split())[:500]
    for address in addresses:
        await MailBounce.insert(
            MailBounce(address=address[:254], ticket=ticket_id, inbound=row["id"], reason=reason, created_at=utcnow())
        )
        if ticket_id is not None:
            rows = await TicketMessage.insert(
                TicketMessage(
                    ticket=ticket_id,
                    author=None,
                    kind="system",
                    event={"event": "mail_bounced", "email": address, "reason": reason[:200]},
                    channel="email",
                    created_at=utcnow(),
                )
            ).returning(TicketMessage.id)
            await live.message_added(ticket_id, rows[0]["id"])
    where = f" on ticket #{ticket_id}" if ticket_id is not None else " (no ticket found)"
    return ticket_id, f"bounce for {', '.join(addresses) or 'an unknown address'}{where}", addresses


async def _seen_before(row: dict[str, Any], parsed: ParsedMail, sender: str) -> tuple[int | None, bool]:
    """(the earlier processed copy of this message, if any; whether its Message-ID is one of our
    own outbound mails), in one statement. A copy is the same bytes, or the same Message-ID from
    the same sender."""
    message_id = parsed.message_id or ""
    found = await InboundMail.raw(
        "SELECT (SELECT id FROM inbound_mail WHERE (sha256 = {} OR ({} <> '' AND message_id = {} AND "
        "from_address = {})) AND id <> {} AND status IN ('done', 'ignored') ORDER BY id LIMIT 1) AS earlier, "
        "EXISTS (SELECT 1 FROM mail_reference WHERE {} <> '' AND message_id = {} AND direction = 'out') AS ours",
        row["sha256"],
        message_id,
        message_id,
        sender,
        row["id"],
        message_id,
        message_id,
    )
    return found[0]["earlier"], bool(found[0]["ours"])


async def _serialise_on(key: str) -> None:
    """PostgreSQL: one worker at a time per Message-ID (or content), so two copies of one
    message processed at once by two workers still make one ticket message. SQLite's write
    transactions are serial already."""
    if is_postgres():
        digest = hashlib.sha256(key.encode()).hexdigest()  # hex only: safe inside the statement
        await engine().run_ddl(f"SELECT pg_advisory_xact_lock(hashtext('{digest}'))")


async def _act(
    row: dict[str, Any], parsed: ParsedMail, raw: bytes, chunk: _Chunk
) -> tuple[str, str, int | None, int | None]:
    """The message's outcome: (status, reason, ticket, ticket message)."""
    release = row["retries"] > 0  # an admin retried it: the limits no longer apply
    sender = _sender_address(parsed)
    await _serialise_on(parsed.message_id or row["sha256"])
    earlier, ours = await _seen_before(row, parsed, sender)
    if earlier is not None:
        raise Outcome("ignored", f"duplicate of inbound message #{earlier}")
    if ours or _is_own_outbound_id(parsed.message_id):
        raise Outcome("ignored", "our own outbound mail")
    if sender and sender == tokens.support_address().lower():
        raise Outcome("ignored", "sent from our own support address")
    if parsed.kind == "bounce":
        ticket_id, reason, marked = await _record_bounce(row, parsed, raw)
        chunk.bouncing.update(marked)
        return "done", reason, ticket_id, None
    if parsed.kind in ("auto_reply", "bulk"):
        raise Outcome("ignored", f"{parsed.kind.replace('_', '-')}: no ticket and no answer")
    if not release and (problem := _limit_problem(parsed, raw, row["size_bytes"])):
        raise Outcome("quarantined", problem)
    if not sender:
        raise Outcome("quarantined", "no usable From address")
    if inbound.is_our_recipient(sender):
        raise Outcome("ignored", "sent from one of our own support addresses")
    sample_text = f"{parsed.subject}\n{parsed.text[:2000]}"
    actor, new_sender = await _mail_actor(sender, parsed.from_name, sample_text)
    assert actor.user_id is not None
    if sender in chunk.bouncing:
        await bounces.clear(sender)  # someone reads this mailbox again
        chunk.bouncing.discard(sender)
    match = await mailthread.find_ticket(
        sender_id=actor.user_id,
        new_sender=new_sender,
        subject=parsed.subject,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        recipients=[*parsed.to, *parsed.cc, *row["envelope_to"]],
    )
    uploads, skipped = _uploads(parsed)
    note = f"; not attached: {', '.join(skipped)[:500]}" if skipped else ""
    if len(parsed.subject or "") > 200:
        note += f"; subject cut from {len(parsed.subject)} characters"
    if match.ticket_id is not None:
        body = body_markdown(parsed, new_ticket=False)
        message_id = await services.add_reply(actor, match.ticket_id, body, uploads=uploads, channel="email")
        note += _copy_note(*await _copy_recipients(match.ticket_id, actor, parsed, sample_text, fresh=False))
        return "done", f"reply on ticket #{match.ticket_id} (matched by {match.how}){note}", match.ticket_id, message_id
    body = body_markdown(parsed, new_ticket=True)
    ticket_id, first_id = await services.open_ticket_with_message(
        actor,
        ticket_subject(parsed.subject),
        body,
        channel="email",
        channel_ref=parsed.message_id[:200],
        uploads=uploads,
    )
    note += _copy_note(*await _copy_recipients(ticket_id, actor, parsed, sample_text, fresh=True))
    reason = f"new ticket #{ticket_id}"
    if match.related_id is not None:
        await _link_related(ticket_id, match.related_id)
        reason += f", linked to #{match.related_id} (matched by {match.how}, but the sender is not on that ticket)"
    return "done", reason + note, ticket_id, first_id


def _transient(exc: BaseException) -> bool:
    """Errors of the database itself (locked, gone): the job retries, the message stays pending."""
    if isinstance(exc, sqlite3.OperationalError | ConnectionError | OSError):
        return True
    try:
        from asyncpg.exceptions import PostgresConnectionError, SerializationError, UniqueViolationError
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, PostgresConnectionError | SerializationError | UniqueViolationError)


async def _finish(
    inbound_id: int,
    status: str,
    reason: str,
    ticket_id: int | None = None,
    message_id: int | None = None,
    fields: dict[Any, Any] | None = None,
) -> None:
    """The outcome, with the headers the admin's list shows (`fields`, from `_header_fields`)."""
    await InboundMail.update(
        {
            **(fields or {}),
            InboundMail.status: status,
            InboundMail.reason: reason[:4000],
            InboundMail.ticket: ticket_id,
            InboundMail.ticket_message: message_id,
            InboundMail.processed_at: utcnow(),
        }
    ).where(InboundMail.id == inbound_id)


def _header_fields(parsed: ParsedMail) -> dict[Any, Any]:
    return {
        InboundMail.message_id: (parsed.message_id or "")[:998],
        InboundMail.from_address: _sender_address(parsed),
        InboundMail.subject: " ".join((parsed.subject or "").split())[:200],
    }


COMMIT_EVERY = 20  # messages per commit (each in its own savepoint); short, so intake is not held up


@dataclasses.dataclass
class _Chunk:
    """What the messages of one transaction share, read once for all of them."""

    claimed: set[int]  # the ids this transaction took (still pending when it began)
    bouncing: set[str]  # senders marked as bouncing (a normal message from one lifts the mark)


@dataclasses.dataclass
class _Prepared:
    row: dict[str, Any]
    raw: bytes = b""
    parsed: ParsedMail | None = None
    problem: str = ""  # why it cannot be processed (unreadable, too many tries)


def _prepare(row: dict[str, Any]) -> _Prepared:
    """Read and parse outside the transaction (CPU and disk only)."""
    if row["attempts"] > MAX_PROCESS_ATTEMPTS:
        return _Prepared(row, problem=f"processing never finished after {MAX_PROCESS_ATTEMPTS} tries")
    try:
        from server.channels.email.parsing import parse_mail

        raw = inbound.read_raw(row["storage_key"])
        return _Prepared(row, raw, parse_mail(raw))
    except Exception as exc:
        log.exception("inbound mail %s could not be read or parsed", row["id"])
        return _Prepared(row, problem=f"unreadable: {type(exc).__name__}: {exc}")


async def _handle(item: _Prepared, chunk: _Chunk) -> tuple[str, str]:
    """One message inside the batch's transaction. Returns (status, reason)."""
    row, parsed = item.row, item.parsed
    if row["id"] not in chunk.claimed:  # another worker finished it meanwhile
        return "skipped", ""
    if parsed is None:
        await _finish(row["id"], "failed", item.problem)
        return "failed", item.problem
    try:
        status, reason, ticket_id, message_id = await _act(row, parsed, item.raw, chunk)
    except Outcome as outcome:
        status, reason, ticket_id, message_id = outcome.status, outcome.reason, None, None
    if status == "done" and message_id is not None and parsed.message_id and ticket_id is not None:
        await insert(
            MailReference,
            {
                "ticket": ticket_id,
                "ticket_message": message_id,
                "message_id": parsed.message_id[:998],
                "direction": "in",
                "created_at": utcnow(),
            },
        )
    await _finish(row["id"], status, reason, ticket_id, message_id, _header_fields(parsed))
    return status, reason


async def _handle_isolated(tx: Any, item: _Prepared, chunk: _Chunk) -> str:
    """`_handle` in a savepoint: a message that raises is rolled back alone and marked failed;
    the others of the batch commit. A database error (busy, gone) fails the whole batch, whose
    messages stay pending for the job's retry."""
    savepoint = await engine().current_transaction.get().savepoint()
    callbacks = len(tx.callbacks)
    try:
        status, reason = await _handle(item, chunk)
    except Exception as exc:
        await savepoint.rollback_to()
        del tx.callbacks[callbacks:]  # no realtime events for what was rolled back
        if _transient(exc):
            raise
        log.exception("inbound mail %s failed", item.row["id"])
        fields = _header_fields(item.parsed) if item.parsed is not None else {}
        status, reason = "failed", f"{type(exc).__name__}: {exc}"
        await _finish(item.row["id"], status, reason, fields=fields)
    else:
        await savepoint.release()
    if status != "skipped":
        level = logging.INFO if status in ("done", "ignored") else logging.WARNING
        log.log(level, "inbound mail %s %s: %s", item.row["id"], status, reason)
    return status


async def _claim(prepared: list[_Prepared]) -> _Chunk:
    """Take the chunk's messages that are still pending, in one statement inside its transaction
    (a concurrent worker's claim waits for it, then finds them done), and read which senders
    bounce."""
    ids = [item.row["id"] for item in prepared]
    claimed = await (
        InboundMail.update({InboundMail.processed_at: utcnow()})
        .where(InboundMail.id.is_in(ids) & (InboundMail.status == "pending"))
        .returning(InboundMail.id)
    )
    senders = [_sender_address(item.parsed) for item in prepared if item.parsed is not None]
    return _Chunk(claimed={row["id"] for row in claimed}, bouncing=await bounces.bouncing(senders))


async def process_many(ids: Sequence[int]) -> dict[int, str]:
    """Process pending messages in arrival order, COMMIT_EVERY to a transaction; each counts a
    try first (see MAX_PROCESS_ATTEMPTS). Returns {id: status} of those processed now."""
    ordered = sorted(set(ids))
    outcome: dict[int, str] = {}
    if not ordered:
        return outcome
    async with atomic():
        await InboundMail.update({InboundMail.attempts: InboundMail.attempts + 1}).where(
            InboundMail.id.is_in(ordered) & (InboundMail.status == "pending")
        )
    for start in range(0, len(ordered), COMMIT_EVERY):
        chunk = ordered[start : start + COMMIT_EVERY]
        rows = (
            await InboundMail.select()
            .where(InboundMail.id.is_in(chunk) & (InboundMail.status == "pending"))
            .order_by(InboundMail.id)
            .output(load_json=True)
        )
        if not rows:
            continue
        prepared = [_prepare(row) for row in rows]
        async with atomic() as tx:
            chunk = await _claim(prepared)
            for item in prepared:
                outcome[item.row["id"]] = await _handle_isolated(tx, item, chunk)
    return outcome


async def process(inbound_id: int) -> str:
    """Process one stored message (a no-op unless it is pending). Returns its status."""
    done = await process_many([inbound_id])
    if inbound_id in done:
        return done[inbound_id]
    row = await InboundMail.select(InboundMail.status).where(InboundMail.id == inbound_id).first()
    return row["status"] if row else "missing"


@jobs.batch_handler(inbound.JOB_KIND)
async def _process_jobs(batch: list[jobs.ClaimedJob]) -> None:
    await process_many([int(job.payload["id"]) for job in batch if str(job.payload.get("id", "")).isdigit()])


@jobs.handler(inbound.SWEEP_KIND)
async def _sweep(job: jobs.ClaimedJob) -> None:
    """Pick up messages still pending well after they arrived: their job belonged to a worker
    that died (its lease has not run out yet). Processing is guarded, so a message whose job
    is merely late is never processed twice."""
    cutoff = utcnow() - inbound.SWEEP_AFTER
    rows = (
        await InboundMail.select(InboundMail.id)
        .where((InboundMail.status == "pending") & (InboundMail.received_at < cutoff))
        .order_by(InboundMail.id)
        .limit(500)
    )
    await process_many([r["id"] for r in rows])
    if len(rows) == 500 or await InboundMail.exists().where(InboundMail.status == "pending"):
        async with atomic():
            await inbound.enqueue_sweep()
