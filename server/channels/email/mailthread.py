"""Which ticket an inbound message continues, if any.

In this order, first match wins:

1. `In-Reply-To` / `References`: one of our own signed Message-IDs (`tokens.ticket_from_message_ids`),
   or a Message-ID recorded on a ticket (`MailReference`, either direction).
2. A signed ticket token in a recipient's plus-address (`support+t12-…@`), in To, Cc or the
   envelope recipients.
3. A subject tag `[#12]`, only when the sender is the ticket's requester or a follower: the tag
   is unsigned and proves nothing on its own.
4. Same requester and the same subject once `Re:`/`Fwd:`/`AW:`/`返信:`… prefixes are stripped,
   on a ticket created within 14 days that is unsolved or was solved within 7 days.

A merged ticket leads to the ticket it was merged into. A reference or token only proves that
the sender saw mail about the ticket (it may have been forwarded to them), so the message joins
the ticket only when its sender is the requester or a follower. Otherwise, and when the ticket
is closed, the message opens a new ticket linked to the matched one as related: nobody reads
someone else's conversation by forwarding or guessing, and agents still see the connection.

Mail is not authenticated here, so an agent's address gets no special standing: agents are
participants only where they are the requester or a follower, like anyone else.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from typing import Any

from server.accounts.auth import utcnow
from server.channels.email import tokens
from server.channels.email.tables import MailReference
from server.desk.tables import UNSOLVED, Ticket, TicketFollower
from server.prepared import prepared

SUBJECT_WINDOW = timedelta(days=14)  # the ticket was created at most this long ago
SOLVED_WINDOW = timedelta(days=7)  # a solved ticket still takes a subject match this long
MAX_REFERENCES = 50

_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|antw|tr|rif|r|res|enc|返信|転送|回复|回覆|答复|转发|轉寄)\s*(?:\[\d+\])?\s*[:：]\s*)+",
    re.IGNORECASE,
)
_TAG = re.compile(r"\[#\d{1,12}\]")


@dataclass(frozen=True)
class Match:
    """`ticket_id`: the ticket to add the message to. `related_id`: a ticket the message named
    but may not join (it opens a new ticket linked to that one). `how`: which rule matched."""

    ticket_id: int | None = None
    related_id: int | None = None
    how: str = ""


def normalise_subject(subject: str) -> str:
    subject = unicodedata.normalize("NFKC", subject or "")
    subject = _TAG.sub(" ", subject)
    previous = None
    while previous != subject:
        previous = subject
        subject = _PREFIX.sub("", subject)
    return " ".join(subject.split()).casefold()


@prepared
def _ticket_link_row(ticket_id: Any) -> Any:
    return Ticket.select(Ticket.id, Ticket.requester, Ticket.status, Ticket.merged_into).where(Ticket.id == ticket_id)


@prepared
def _is_follower(ticket_id: Any, user_id: Any) -> Any:
    return TicketFollower.exists().where((TicketFollower.ticket == ticket_id) & (TicketFollower.user == user_id))


async def _survivor(ticket_id: int) -> dict[str, Any] | None:
    """The ticket, or the one it was merged into (followed to the end)."""
    seen: set[int] = set()
    current: int | None = ticket_id
    while current is not None and current not in seen:
        seen.add(current)
        row = await _ticket_link_row.first(current)
        if row is None:
            return None
        if row["merged_into"] is None:
            return row
        current = row["merged_into"]
    return None


async def is_participant(ticket: dict[str, Any], user_id: int) -> bool:
    if ticket["requester"] == user_id:
        return True
    return bool(await _is_follower(ticket["id"], user_id))


async def _decide(ticket_id: int, sender_id: int, how: str) -> Match | None:
    ticket = await _survivor(ticket_id)
    if ticket is None:
        return None
    if ticket["status"] != "closed" and await is_participant(ticket, sender_id):
        return Match(ticket_id=ticket["id"], how=how)
    return Match(related_id=ticket["id"], how=how)


def _referenced_ids(in_reply_to: list[str], references: list[str]) -> list[str]:
    """In-Reply-To first, then References newest first; each once."""
    ordered = [*in_reply_to, *reversed(references[-MAX_REFERENCES:])]
    seen: list[str] = []
    for value in ordered:
        value = value.strip()
        if value and value not in seen and len(value) <= 998:
            seen.append(value)
    return seen[:MAX_REFERENCES]


async def by_references(in_reply_to: list[str], references: list[str]) -> int | None:
    ids = _referenced_ids(in_reply_to, references)
    for value in ids:
        if (found := tokens.ticket_from_message_ids(value)) is not None:
            return found
    if not ids:
        return None
    row = (
        await MailReference.select(MailReference.ticket)
        .where(MailReference.message_id.is_in(ids))
        .order_by(MailReference.id, ascending=False)
        .first()
    )
    return row["ticket"] if row else None


def by_plus_address(addresses: list[str]) -> int | None:
    domain = tokens.support_address().rpartition("@")[2].lower()
    for address in addresses:
        bare = parseaddr(address)[1] if "<" in address else address
        local, _sep, host = bare.strip().lower().rpartition("@")
        if host == domain and "+" in local and (found := tokens.find_ticket_token(local)) is not None:
            return found
    return None


async def by_subject_and_requester(subject: str, sender_id: int) -> int | None:
    wanted = normalise_subject(subject)
    if not wanted:
        return None
    moment = utcnow()
    rows = (
        await Ticket.select(Ticket.id, Ticket.subject, Ticket.status, Ticket.solved_at)
        .where(
            (Ticket.requester == sender_id)
            & (Ticket.created_at >= moment - SUBJECT_WINDOW)
            & Ticket.merged_into.is_null()
            & (
                Ticket.status.is_in(list(UNSOLVED))
                | ((Ticket.status == "solved") & (Ticket.solved_at >= moment - SOLVED_WINDOW))
            )
        )
        .order_by(Ticket.id, ascending=False)
        .limit(50)
    )
    for row in rows:
        if normalise_subject(row["subject"]) == wanted:
            return row["id"]
    return None


async def find_ticket(
    *,
    sender_id: int,
    subject: str,
    in_reply_to: list[str],
    references: list[str],
    recipients: list[str],
    new_sender: bool = False,
) -> Match:
    """`new_sender`: the sender's account was made for this message, so no ticket is theirs yet
    (the subject match is skipped)."""
    found = await by_references(in_reply_to, references)
    if found is not None and (match := await _decide(found, sender_id, "references")):
        return match
    found = by_plus_address(recipients)
    if found is not None and (match := await _decide(found, sender_id, "plus_address")):
        return match
    found = tokens.ticket_from_subject(subject)
    if found is not None:
        ticket = await _survivor(found)
        if ticket is not None and await is_participant(ticket, sender_id):
            if ticket["status"] == "closed":
                return Match(related_id=ticket["id"], how="subject_tag")
            return Match(ticket_id=ticket["id"], how="subject_tag")
    found = None if new_sender else await by_subject_and_requester(subject, sender_id)
    if found is not None:
        return Match(ticket_id=found, how="subject")
    return Match()
