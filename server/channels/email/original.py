"""The original of an inbound message, for reading: its headers, its whole text (with the quoted
history the ticket message leaves out) and its attachments' names. Always shown inert: text in
a <pre>, never the sender's HTML."""

from __future__ import annotations

from typing import Any

from server import policy
from server.channels.email import inbound
from server.channels.email.inbound_tables import InboundMail
from server.desk import queries
from server.desk.tables import TicketMessage
from server.errors import NotFound
from server.policy import Actor, ensure, ensure_signed_in

SHOWN_HEADERS = ("from", "reply-to", "to", "cc", "date", "subject", "message-id", "in-reply-to")
MAX_TEXT_CHARS = 200_000


def readable(row: dict[str, Any]) -> dict[str, Any]:
    """What the original-mail templates show for one `inbound_mail` row."""
    try:
        raw = inbound.read_raw(row["storage_key"])
    except (OSError, ValueError):
        return {"row": row, "missing": True, "headers": [], "all_headers": [], "text": "", "attachments": []}
    from server.channels.email.parsing import parse_mail

    parsed = parse_mail(raw)
    headers = [(name, parsed.headers[name]) for name in SHOWN_HEADERS if parsed.headers.get(name)]
    return {
        "row": row,
        "missing": False,
        "headers": headers,
        "all_headers": sorted(parsed.headers.items()),
        "text": parsed.text[:MAX_TEXT_CHARS],
        "cut": len(parsed.text) > MAX_TEXT_CHARS,
        "attachments": [
            {"filename": a.filename or "—", "content_type": a.content_type, "size_bytes": len(a.data)}
            for a in parsed.attachments
        ],
        "defects": parsed.defects,
        "kind": parsed.kind,
    }


async def access_original(actor: Actor, ticket_id: int, message_id: int) -> dict[str, Any]:
    """The original mail behind a ticket message, when the actor may read it (404 when the
    ticket is not theirs to see, 403 for a customer on the ticket who did not write it)."""
    ensure_signed_in(actor)
    ticket = await queries.access_ticket(actor, ticket_id)
    message = (
        await TicketMessage.select(TicketMessage.id, TicketMessage.author, TicketMessage.kind)
        .where((TicketMessage.id == message_id) & (TicketMessage.ticket == ticket_id))
        .first()
    )
    if message is None or message["kind"] not in queries.visible_kinds(actor):
        raise NotFound
    row = (
        await InboundMail.select()
        .where(InboundMail.ticket_message == message_id)
        .order_by(InboundMail.id)
        .output(load_json=True)
        .first()
    )
    if row is None:
        raise NotFound
    ensure(policy.can_view_original_mail(actor, True, message["author"]))
    return {**readable(row), "ticket": ticket, "message_id": message_id}
