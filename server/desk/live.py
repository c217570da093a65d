"""The desk's live side: the `ticket` and `desk` realtime topics, the fragments their events
render per audience group, presence (who has a ticket open), the typing indicator, and the
"someone replied while you were typing" check.

Channels and groups:

- `ticket:{id}`: agents subscribe as group "agent" and get every message (public replies,
  internal notes, system events) and the sidebar summary; the requester, an admin of its
  organisation or a copied customer subscribe as "customer" and get public replies and the
  status badge only. Internal notes render "" for customers, so they are never sent.
- `desk:0`: the queue, for agents. Its event carries no list HTML (each agent's views are their
  own); it pulses an element on desk pages, and static/js/desk_live.js refetches the list and
  the view counts.

Services call `message_added`, `ticket_updated` and `queue_changed` inside their transaction.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from markupsafe import escape

from server import i18n, policy, realtime
from server.accounts.auth import utcnow
from server.db import atomic
from server.desk import fields, queries
from server.desk.agent_tables import DeskTicketViewer
from server.desk.tables import Ticket, TicketAttachment, TicketMessage
from server.desk.web import describe_event, field_names
from server.policy import Actor, ensure
from server.prepared import prepared
from server.templating import render_in_locale as render_fragment

QUEUE_CHANNEL = "desk:0"
MESSAGE_EVENT = "ticket.message.created"
UPDATED_EVENT = "ticket.updated"
QUEUE_EVENT = "desk.queue"
PRESENCE_EVENT = "ticket.presence"
VIEWER_TTL = timedelta(seconds=45)  # the page's heartbeat comes every 20 s
VIEWER_FORGET = timedelta(hours=1)


def ticket_channel(ticket_id: int) -> str:
    return realtime.channel_name("ticket", ticket_id)


def typing_id(ticket_id: int) -> str:
    return realtime.typing_element_id(ticket_channel(ticket_id))


async def last_event_id() -> int:
    """Read before a page's data: its socket replays what happened while it was rendered."""
    return await realtime.current_event_id()


# Who may subscribe ----------------------------------------------------------------------------


async def authorize_ticket(actor: Actor, ticket_id: int) -> str | None:
    if not actor.is_authenticated:
        return None
    row = await Ticket.select(Ticket.requester, Ticket.organisation).where(Ticket.id == ticket_id).first()
    if row is None:
        return None
    followers = frozenset() if policy.can_see_internal_notes(actor) else await queries.follower_ids(ticket_id)
    return policy.ticket_channel_group(actor, row["requester"], row["organisation"], followers)


async def authorize_queue(actor: Actor, object_id: int) -> str | None:
    return policy.desk_queue_channel_group(actor) if object_id == 0 else None


# Rendering ------------------------------------------------------------------------------------


def _kinds(group: str) -> tuple[str, ...]:
    return ("public", "internal", "system") if group == "agent" else ("public",)


async def render_message(payload: dict[str, Any], group: str, locale: str) -> str:
    ticket_id = int(payload["ticket_id"])
    message = (
        await TicketMessage.select(
            *TicketMessage.all_columns(),
            TicketMessage.author.display_name.as_alias("author_name"),
            TicketMessage.ticket.requester.time_zone.as_alias("requester_time_zone"),
        )
        .where(TicketMessage.id == int(payload["message_id"]))
        .output(load_json=True)
        .first()
    )
    # Customers never get internal notes or system events: nothing is rendered, nothing is sent.
    if message is None or message["ticket"] != ticket_id or message["kind"] not in _kinds(group):
        return ""
    message["attachments"] = await (
        TicketAttachment.select(
            TicketAttachment.id, TicketAttachment.filename, TicketAttachment.size_bytes, TicketAttachment.content_type
        )
        .where(TicketAttachment.message == message["id"])
        .order_by(TicketAttachment.id)
    )
    # A fragment is shared by everyone in the group: times in the requester's zone for customers
    # (who are, almost always, the requester), in UTC for agents.
    zone = (message["requester_time_zone"] or "UTC") if group == "customer" else "UTC"
    names = field_names(await queries.field_definitions(), locale) if message["kind"] == "system" else {}
    context = {
        "m": message,
        "actor": Actor(time_zone=zone),
        "describe": describe_event,
        "field_names": names,
        "live": True,
    }
    html = render_fragment("desk/_message.html", context, locale)
    return f'<ol id="conversation-{ticket_id}" hx-swap-oob="beforeend">{html}</ol>'


async def render_updated(payload: dict[str, Any], group: str, locale: str) -> str:
    ticket = await queries.get_ticket(int(payload["ticket_id"]))
    if ticket is None:
        return ""
    token = i18n.set_locale(locale)
    try:
        agent = group == "agent"
        shown = {"statuses": fields.status_labels()} if agent else fields.requester_status_context()
        priorities = fields.priority_labels()
    finally:
        i18n._current_locale.reset(token)
    context = {"ticket": ticket, **shown, "priorities": priorities, "agent": agent}
    return render_fragment("desk/_live_ticket.html", context, locale)


async def render_queue(payload: dict[str, Any], group: str, locale: str) -> str:
    if group != "agent":
        return ""
    ticket_id = int(payload.get("ticket_id", 0))
    return f'<span id="desk-queue-pulse" hx-swap-oob="true" hidden data-ticket="{ticket_id}"></span>'


async def render_presence(payload: dict[str, Any], group: str, locale: str) -> str:
    if group != "agent":
        return ""
    context = {"ticket_id": int(payload["ticket_id"]), "viewers": payload.get("viewers", []), "oob": True}
    return render_fragment("desk/_live_viewers.html", context, locale)


async def render_typing(channel: str, others: int, locale: str) -> str:
    text = (
        i18n.ngettext("%(num)d other person is typing a reply…", "%(num)d other people are typing a reply…", others)
        if others
        else ""
    )
    element_id = realtime.typing_element_id(channel)
    return f'<div id="{element_id}" hx-swap-oob="true" class="live-typing" aria-live="polite">{escape(text)}</div>'


# Publishing (inside the caller's transaction) ---------------------------------------------------


async def _publish(channel: str, event: str, payload: dict[str, Any], *, once: bool = False) -> None:
    async with atomic() as tx:
        if once:  # several changes in one action: one event per channel
            sent: set[tuple[str, str, int]] = tx.__dict__.setdefault("_desk_live_once", set())
            key = (channel, event, int(payload.get("ticket_id", 0)))
            if key in sent:
                return
            sent.add(key)
        await realtime.publish(tx, channel, event, payload)


async def queue_changed(ticket_id: int) -> None:
    """A ticket was opened or changed: open desk views refresh their list and counts."""
    await _publish(QUEUE_CHANNEL, QUEUE_EVENT, {"ticket_id": ticket_id}, once=True)


async def message_added(ticket_id: int, message_id: int) -> None:
    await _publish(ticket_channel(ticket_id), MESSAGE_EVENT, {"ticket_id": ticket_id, "message_id": message_id})
    await queue_changed(ticket_id)


async def ticket_updated(ticket_id: int, message_id: int | None = None) -> None:
    """Fields changed (`message_id`: the system event that records it)."""
    if message_id is not None:
        await _publish(ticket_channel(ticket_id), MESSAGE_EVENT, {"ticket_id": ticket_id, "message_id": message_id})
    await _publish(ticket_channel(ticket_id), UPDATED_EVENT, {"ticket_id": ticket_id}, once=True)
    await queue_changed(ticket_id)


# Presence -------------------------------------------------------------------------------------


@prepared
def _viewers(ticket_id: Any, cutoff: Any) -> Any:
    return (
        DeskTicketViewer.select(
            DeskTicketViewer.user.as_alias("id"), DeskTicketViewer.user.display_name.as_alias("name")
        )
        .where((DeskTicketViewer.ticket == ticket_id) & (DeskTicketViewer.seen_at >= cutoff))
        .order_by(DeskTicketViewer.seen_at)
    )


async def viewers(ticket_id: int) -> list[dict[str, Any]]:
    """Agents whose page of this ticket sent a heartbeat lately, by name."""
    rows = await _viewers(ticket_id, utcnow() - VIEWER_TTL)
    seen: dict[int, dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(row["id"], {"id": row["id"], "name": row["name"], "initials": initials(row["name"])})
    return list(seen.values())


def initials(name: str) -> str:
    parts = name.split()
    return "".join(p[0] for p in parts[:2]).upper() if parts else "?"


async def _announce(ticket_id: int, before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    after = await viewers(ticket_id)
    if [v["id"] for v in after] != [v["id"] for v in before]:
        async with atomic() as tx:
            payload = {"ticket_id": ticket_id, "viewers": after}
            tx.on_commit(lambda: realtime.publish_ephemeral(ticket_channel(ticket_id), PRESENCE_EVENT, payload))
    return after


async def heartbeat(actor: Actor, ticket_id: int) -> list[dict[str, Any]]:
    """The agent has the ticket open; tells the other viewers when the list of viewers changed."""
    ensure(policy.can_work_tickets(actor))
    await queries.access_ticket(actor, ticket_id)
    async with atomic():
        before = await viewers(ticket_id)
        moment = utcnow()
        await DeskTicketViewer.delete().where(
            (DeskTicketViewer.user == actor.user_id)
            & ((DeskTicketViewer.ticket == ticket_id) | (DeskTicketViewer.seen_at < moment - VIEWER_FORGET))
        )
        await DeskTicketViewer.insert(DeskTicketViewer(ticket=ticket_id, user=actor.user_id, seen_at=moment))
        return await _announce(ticket_id, before)


async def leave(actor: Actor, ticket_id: int) -> None:
    ensure(policy.can_work_tickets(actor))
    await queries.access_ticket(actor, ticket_id)
    async with atomic():
        before = await viewers(ticket_id)
        await DeskTicketViewer.delete().where(
            (DeskTicketViewer.user == actor.user_id) & (DeskTicketViewer.ticket == ticket_id)
        )
        await _announce(ticket_id, before)


# "Someone replied while you were typing" --------------------------------------------------------


class ReplyCollision(Exception):
    """Public messages by others arrived after the newest one the replying agent had seen."""

    def __init__(self, messages: list[dict[str, Any]], newest_id: int) -> None:
        super().__init__(f"{len(messages)} newer message(s)")
        self.messages = messages
        self.newest_id = newest_id


async def newer_public_messages(ticket_id: int, seen_message_id: int, actor: Actor) -> list[dict[str, Any]]:
    return (
        await TicketMessage.select(
            *TicketMessage.all_columns(), TicketMessage.author.display_name.as_alias("author_name")
        )
        .where(
            (TicketMessage.ticket == ticket_id)
            & (TicketMessage.kind == "public")
            & (TicketMessage.id > seen_message_id)
            & ((TicketMessage.author != actor.user_id) | TicketMessage.author.is_null())
        )
        .order_by(TicketMessage.id)
        .limit(20)
        .output(load_json=True)
    )


async def check_collision(actor: Actor, ticket_id: int, seen_message_id: int | None) -> None:
    """Raise ReplyCollision when someone else replied publicly after `seen_message_id`."""
    if seen_message_id is None:
        return
    newer = await newer_public_messages(ticket_id, seen_message_id, actor)
    if newer:
        for message in newer:
            message["attachments"] = []
        raise ReplyCollision(newer, max(m["id"] for m in newer))


async def newest_message_id(ticket_id: int) -> int:
    row = (
        await TicketMessage.select(TicketMessage.id)
        .where(TicketMessage.ticket == ticket_id)
        .order_by(TicketMessage.id, ascending=False)
        .first()
    )
    return row["id"] if row else 0


async def page_context(ticket_id: int, last_event_id: int, newest_id: int | None = None) -> dict[str, Any]:
    """What the agent's ticket page needs for its live parts. `newest_id`: the newest message id
    when the caller has just read the whole conversation (every kind) in the same snapshot."""
    return {
        "last_event_id": last_event_id,
        "viewers": await viewers(ticket_id),
        "seen_message_id": newest_id if newest_id is not None else await newest_message_id(ticket_id),
    }


realtime.register_topic("ticket", authorize_ticket)
realtime.register_topic("desk", authorize_queue)
realtime.register_event(MESSAGE_EVENT, render_message)
realtime.register_event(UPDATED_EVENT, render_updated)
realtime.register_event(QUEUE_EVENT, render_queue)
realtime.register_event(PRESENCE_EVENT, render_presence)
realtime.register_typing("ticket", render_typing)
